"""Progress within an epoch: log lines off a terminal (first step, then every N seconds), a bar on one."""

from __future__ import annotations

import logging

from mtst.training.progress import EpochProgress


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run(progress: EpochProgress, clock: FakeClock, steps: int, seconds_per_step: float) -> None:
    for step, _ in enumerate(progress.wrap(range(steps)), start=1):
        progress.start()
        clock.now += seconds_per_step
        progress.record(step, 32, 0.5 / step)
    progress.close()


def test_off_a_terminal_a_line_after_the_first_step_then_every_n_seconds(caplog):
    clock = FakeClock()
    progress = EpochProgress("epoch 2", 100, every_seconds=30, on_terminal=False, clock=clock)
    with caplog.at_level(logging.INFO, logger="mtst.training.progress"):
        _run(progress, clock, 100, seconds_per_step=2.0)
    lines = [record.getMessage() for record in caplog.records]
    # Step 1 at once, then each step at least 30 s after the previous line (every 15th), and the last one.
    assert [line.split(",")[0] for line in lines] == [
        f"epoch 2: step {step}/100 ({step}%)" for step in (1, 16, 31, 46, 61, 76, 91, 100)
    ]
    # 32 sentences every 2 s; after step 16 (32 s), 84 steps remain at 2 s each.
    assert lines[1] == "epoch 2: step 16/100 (16%), 16.0 sentences/s, loss 0.031, ETA 2:48"
    assert lines[-1].endswith("ETA 0:00")


def test_a_resumed_epoch_counts_only_the_steps_it_trains(caplog):
    clock = FakeClock()
    progress = EpochProgress("epoch 1", 10, every_seconds=1000, on_terminal=False, clock=clock)
    with caplog.at_level(logging.INFO, logger="mtst.training.progress"):
        for step in progress.wrap(range(1, 11)):
            if step <= 6:
                continue  # done before the interruption: no time, no sentences
            progress.start()
            clock.now += 1.0
            progress.record(step, 8, None)
    first, last = (record.getMessage() for record in caplog.records)
    assert first == "epoch 1: step 7/10 (70%), 8.0 sentences/s, ETA 0:03"
    assert last == "epoch 1: step 10/10 (100%), 8.0 sentences/s, ETA 0:00"


def test_a_terminal_gets_the_bar_and_no_lines(caplog):
    clock = FakeClock()
    progress = EpochProgress("epoch 1", 5, every_seconds=0.001, on_terminal=True, clock=clock)
    with caplog.at_level(logging.INFO, logger="mtst.training.progress"):
        _run(progress, clock, 5, seconds_per_step=1.0)
    assert progress.bar is not None and progress.bar.n == 5
    assert caplog.records == []


def test_a_process_other_than_the_main_one_shows_nothing(caplog):
    clock = FakeClock()
    progress = EpochProgress("epoch 1", 5, every_seconds=0.001, enabled=False, on_terminal=False, clock=clock)
    with caplog.at_level(logging.INFO, logger="mtst.training.progress"):
        _run(progress, clock, 5, seconds_per_step=1.0)
    assert caplog.records == [] and progress.bar is None
