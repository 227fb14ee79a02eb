"""Micro-batching: requests that arrive close together share one model call.

One worker task takes the first waiting request, then keeps adding requests until the batch holds
`max_sentences` sentences or `max_wait_ms` has passed, runs the predictor in a thread (the event loop
keeps serving meanwhile) and hands each request its own slice of the results. A request is never split:
one larger than `max_sentences` runs as a batch of its own.

A request whose caller is cancelled (its client disconnected: the app cancels the call) is dropped before it
is batched; one already in a running batch cannot be taken back. At most `max_queued` requests wait for a
batch: one more raises `QueueFull` at once, so a backlog never grows without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

PredictFn = Callable[[list[str]], list[dict]]


class QueueFull(Exception):
    """Too many requests are already waiting for the model."""


@dataclass(eq=False)
class _Request:
    texts: list[str]
    future: asyncio.Future = field(repr=False)


@dataclass
class BatchStats:
    batches: int = 0
    sentences: int = 0
    dropped: int = 0  # requests whose caller left before they were batched


class MicroBatcher:
    def __init__(self, predict: PredictFn, max_sentences: int, max_wait_ms: float, max_queued: int | None = None):
        self._predict = predict
        self.max_sentences = max_sentences
        self.max_wait = max_wait_ms / 1000
        self.max_queued = max_queued
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Request] | None = None
        self._held: _Request | None = None  # taken from the queue but left for the next batch: it did not fit
        self._waiting: set[_Request] = set()  # queued or held, not yet in a batch, caller still there
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

    @property
    def queued(self) -> int:
        return len(self._waiting)

    async def predict(self, texts: Sequence[str]) -> list[dict]:
        if self._worker is None or self._queue is None:
            raise RuntimeError("the micro-batcher is not running (start() was not awaited)")
        if self.max_queued is not None and len(self._waiting) >= self.max_queued:
            raise QueueFull(f"{len(self._waiting)} requests are already waiting for the model")
        request = _Request(list(texts), asyncio.get_running_loop().create_future())
        self._waiting.add(request)
        request.future.add_done_callback(lambda _: self._waiting.discard(request))
        self._queue.put_nowait(request)
        return await request.future  # cancelling the caller cancels the future: the request is dropped

    async def _run(self) -> None:
        while True:
            collected = await self._collect()
            batch = [request for request in collected if not request.future.done()]
            self.stats.dropped += len(collected) - len(batch)
            self._waiting.difference_update(batch)
            if batch:
                await self._answer(batch)

    async def _collect(self) -> list[_Request]:
        first, self._held = self._held or await self._next_live(), None
        batch, size = [first], len(first.texts)
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_sentences:
            request = await self._next_before(deadline)
            if request is None:
                break
            if request.future.done():  # its caller left: takes no room in the batch
                self.stats.dropped += 1
                continue
            if size + len(request.texts) > self.max_sentences:
                self._held = request
                break
            batch.append(request)
            size += len(request.texts)
        return batch

    async def _next_live(self) -> _Request:
        while True:
            request = await self._queue.get()
            if not request.future.done():
                return request
            self.stats.dropped += 1

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
