import asyncio
import threading

import pytest

from mtst.serve.batching import MicroBatcher


class RecordingPredictor:
    """Answers each text with {"text": text} and records the size of every call."""

    def __init__(self, fail_on: str | None = None):
        self.calls: list[list[str]] = []
        self.fail_on = fail_on
        self.threads: set[str] = set()

    def __call__(self, texts: list[str]) -> list[dict]:
        self.calls.append(list(texts))
        self.threads.add(threading.current_thread().name)
        if self.fail_on in texts:
            raise ValueError(f"cannot predict {self.fail_on!r}")
        return [{"text": text} for text in texts]


class GatedPredictor(RecordingPredictor):
    """Blocks in its first call until `release` is set; `started` tells that the call began."""

    def __init__(self):
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self, texts: list[str]) -> list[dict]:
        self.started.set()
        if not self.release.wait(timeout=30):
            raise TimeoutError("the test never released the model")
        return super().__call__(texts)


async def until(condition, timeout: float = 10.0) -> None:
    """Polls `condition` on the event loop until it holds; fails the test after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.005)


async def run_requests(batcher: MicroBatcher, requests: list[list[str]]) -> list[list[dict]]:
    await batcher.start()
    try:
        return await asyncio.gather(*(batcher.predict(texts) for texts in requests))
    finally:
        await batcher.stop()


def requests_of(count: int, size: int) -> list[list[str]]:
    return [[f"r{r}s{s}" for s in range(size)] for r in range(count)]


def test_concurrent_requests_share_one_model_call_and_each_gets_its_own_results():
    predictor = RecordingPredictor()
    requests = requests_of(10, 2)
    results = asyncio.run(run_requests(MicroBatcher(predictor, max_sentences=64, max_wait_ms=50), requests))
    assert [[r["text"] for r in result] for result in results] == requests
    assert len(predictor.calls) == 1 and len(predictor.calls[0]) == 20
    assert threading.main_thread().name not in predictor.threads  # the model runs off the event loop's thread


def test_a_batch_never_exceeds_max_sentences_and_never_splits_a_request():
    predictor = RecordingPredictor()
    requests = requests_of(6, 2) + [[f"big{s}" for s in range(7)]]
    results = asyncio.run(run_requests(MicroBatcher(predictor, max_sentences=5, max_wait_ms=50), requests))
    assert [[r["text"] for r in result] for result in results] == requests
    sizes = [len(call) for call in predictor.calls]
    assert sizes == [4, 4, 4, 7]  # 2+2 (a third request would make 6), ...; the 7-sentence request alone
    assert sum(sizes) == 19


def test_max_batch_one_turns_batching_off():
    predictor = RecordingPredictor()
    asyncio.run(run_requests(MicroBatcher(predictor, max_sentences=1, max_wait_ms=50), requests_of(5, 1)))
    assert [len(call) for call in predictor.calls] == [1, 1, 1, 1, 1]


def test_the_wait_for_more_requests_is_bounded():
    predictor = RecordingPredictor()

    async def alone():
        batcher = MicroBatcher(predictor, max_sentences=64, max_wait_ms=20)
        await batcher.start()
        try:  # no second request ever comes: the first still runs, alone, once the window closes
            return await asyncio.wait_for(batcher.predict(["first"]), timeout=10)
        finally:
            await batcher.stop()

    assert asyncio.run(alone()) == [{"text": "first"}] and predictor.calls == [["first"]]


def test_a_failing_batch_fails_its_requests_and_the_worker_serves_the_next_ones():
    predictor = RecordingPredictor(fail_on="bad")

    async def scenario():
        batcher = MicroBatcher(predictor, max_sentences=64, max_wait_ms=20)
        await batcher.start()
        outcomes = await asyncio.gather(batcher.predict(["bad"]), batcher.predict(["ok"]), return_exceptions=True)
        later = await batcher.predict(["later"])
        await batcher.stop()
        return outcomes, later

    outcomes, later = asyncio.run(scenario())
    assert all(isinstance(outcome, ValueError) for outcome in outcomes)  # same batch, same error
    assert later == [{"text": "later"}]


def test_the_event_loop_keeps_running_while_the_model_works():
    predictor = GatedPredictor()

    async def scenario():
        batcher = MicroBatcher(predictor, max_sentences=64, max_wait_ms=0)
        await batcher.start()
        pending = asyncio.ensure_future(batcher.predict(["slow"]))
        await until(predictor.started.is_set)
        # The model is blocked until released: the loop could not take this step if the model ran on its thread.
        await asyncio.wait_for(asyncio.sleep(0.001), timeout=10)
        assert not pending.done()
        predictor.release.set()
        await pending
        await batcher.stop()

    asyncio.run(scenario())


def test_predict_before_start_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(MicroBatcher(RecordingPredictor(), 8, 1).predict(["x"]))


def test_a_request_whose_caller_left_is_dropped_before_it_is_batched():
    predictor = GatedPredictor()

    async def scenario():
        batcher = MicroBatcher(predictor, max_sentences=64, max_wait_ms=1)
        await batcher.start()
        busy = asyncio.ensure_future(batcher.predict(["busy"]))
        await until(predictor.started.is_set)  # the worker is computing "busy"
        gone = [asyncio.ensure_future(batcher.predict([f"gone{i}"])) for i in range(3)]
        await until(lambda: batcher.queued == 3)
        for caller in gone:
            caller.cancel()
        fresh = asyncio.ensure_future(batcher.predict(["fresh"]))
        predictor.release.set()
        fresh = await fresh
        await busy
        await batcher.stop()
        return fresh, batcher.stats

    fresh, stats = asyncio.run(scenario())
    assert fresh == [{"text": "fresh"}]
    assert predictor.calls == [["busy"], ["fresh"]] and stats.dropped == 3


def test_the_queue_is_bounded_and_a_left_caller_frees_its_place():
    from mtst.serve.batching import QueueFull

    predictor = GatedPredictor()

    async def scenario():
        batcher = MicroBatcher(predictor, max_sentences=1, max_wait_ms=0, max_queued=2)
        await batcher.start()
        busy = asyncio.ensure_future(batcher.predict(["busy"]))
        await until(predictor.started.is_set)  # taken into a batch: no longer queued
        waiting = [asyncio.ensure_future(batcher.predict([f"w{i}"])) for i in range(2)]
        await until(lambda: batcher.queued == 2)
        with pytest.raises(QueueFull, match="2 requests are already waiting"):
            await batcher.predict(["one too many"])
        waiting[0].cancel()
        await until(lambda: batcher.queued == 1)
        later = asyncio.ensure_future(batcher.predict(["room again"]))
        predictor.release.set()
        later = await later
        await asyncio.gather(busy, waiting[1])
        await batcher.stop()
        return later

    assert asyncio.run(scenario()) == [{"text": "room again"}]
    assert ["w0"] not in predictor.calls
