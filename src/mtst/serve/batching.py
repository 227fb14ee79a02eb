"""Micro-batching: requests that arrive close together share one model call.

One worker task takes the first waiting request, then keeps adding requests until the batch holds
`max_sentences` sentences or `max_wait_ms` has passed, runs the predictor in a thread (the event loop
keeps serving meanwhile) and hands each request its own slice of the results. A request is never split:
one larger than `max_sentences` runs as a batch of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

PredictFn = Callable[[list[str]], list[dict]]


@dataclass
class _Request:
    texts: list[str]
    future: asyncio.Future = field(repr=False)


@dataclass
class BatchStats:
    batches: int = 0
    sentences: int = 0


class MicroBatcher:
    def __init__(self, predict: PredictFn, max_sentences: int, max_wait_ms: float):
        self._predict = predict
        self.max_sentences = max_sentences
        self.max_wait = max_wait_ms / 1000
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Request] | None = None
        self._held: _Request | None = None  # taken from the queue but left for the next batch: it did not fit
        self._worker: asyncio.Task | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="mtst-micro-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._worker = None

    async def predict(self, texts: Sequence[str]) -> list[dict]:
        if self._worker is None or self._queue is None:
            raise RuntimeError("the micro-batcher is not running (start() was not awaited)")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(list(texts), future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [request for request in await self._collect() if not request.future.done()]
            if batch:  # a client that went away has cancelled its future: nothing to compute for it
                await self._answer(batch)

    async def _collect(self) -> list[_Request]:
        first, self._held = self._held or await self._queue.get(), None
        batch, size = [first], len(first.texts)
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_sentences:
            request = await self._next_before(deadline)
            if request is None:
                break
            if size + len(request.texts) > self.max_sentences:
                self._held = request
                break
            batch.append(request)
            size += len(request.texts)
        return batch

    async def _next_before(self, deadline: float) -> _Request | None:
        if not self._queue.empty():
            return self._queue.get_nowait()
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), remaining)
        except asyncio.TimeoutError:
            return None

    async def _answer(self, batch: list[_Request]) -> None:
        texts = [text for request in batch for text in request.texts]
        try:
            results = await asyncio.to_thread(self._predict, texts)
        except Exception as error:  # every request of the batch gets the error; the worker lives on
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        self.stats.batches += 1
        self.stats.sentences += len(texts)
        start = 0
        for request in batch:
            end = start + len(request.texts)
            if not request.future.done():
                request.future.set_result(results[start:end])
            start = end
