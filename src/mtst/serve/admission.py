"""What a request passes before the model: a place within the queue limit, then the sub-token budget.

Counting sub-tokens costs about 0.8 s for 64 texts of 10,000 characters. Counted on the thread pool the model's
batches run in, a burst of such requests held every small request behind them for tens of seconds, and none
of them got a 503 (each was still being counted, not queued). So a request being counted holds a place within
`max_queued_requests`, counting runs on a thread of its own, and a request too short to exceed the budget is
not counted at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from mtst.serve.batching import MicroBatcher, QueueFull
from mtst.serve.config import ServeConfig

CountFn = Callable[[list[str]], int]


def most_subtokens(texts: list[str]) -> int:
    """An upper bound of any tokenizer's count, without tokenizing: a sub-token covers at least one byte of
    UTF-8 (byte fallback), and a word may add one marker token (SentencePiece's `▁`) to its bytes."""
    return sum(2 * len(text.encode("utf-8", "surrogatepass")) for text in texts)


class Admission:
    def __init__(self, batcher: MicroBatcher, config: ServeConfig, count_subtokens: CountFn | None):
        self.batcher, self.config, self.count_subtokens = batcher, config, count_subtokens
        self.counting = 0  # requests whose sub-tokens are being counted: waiting, like the batcher's queue
        self._counter = ThreadPoolExecutor(1, thread_name_prefix="mtst-subtokens")

    def close(self) -> None:
        self._counter.shutdown(wait=False, cancel_futures=True)

    @property
    def waiting(self) -> int:
        """Requests waiting for the model: being counted, or queued for a batch."""
        return self.batcher.queued + self.counting

    def check_room(self) -> None:
        if self.waiting >= self.config.max_queued_requests:
            raise QueueFull(f"{self.waiting} requests are already waiting for the model")

    async def over_budget(self, texts: list[str]) -> str | None:
        """Why `texts` ask for too much work, or None. Raises QueueFull when there is no room to count them."""
        self.check_room()
        if self.count_subtokens is None or most_subtokens(texts) <= self.config.max_subtokens:
            return None
        self.counting += 1
        try:
            loop = asyncio.get_running_loop()
            subtokens = await loop.run_in_executor(self._counter, self.count_subtokens, texts)
        finally:
            self.counting -= 1
        if subtokens > self.config.max_subtokens:
            return f"the texts hold {subtokens} sub-tokens; at most {self.config.max_subtokens} per request"
        return None
