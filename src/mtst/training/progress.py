"""Progress within an epoch: tqdm's bar on a terminal, a log line every N seconds anywhere else.

A bar redrawn with carriage returns is noise in a log file, and tqdm draws none when stderr is not a
terminal; without these lines a run writing to a file or a pipe would say nothing for a whole epoch.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class EpochProgress:
    """Wraps an epoch's batches; `record` after each optimizer step.

    `on_terminal` None means: look at stderr (where both the bar and the log go). Off a terminal, a line
    `epoch 2: step 120/466 (26%), 41.3 sentences/s, loss 0.412, ETA 4:41` is logged after the first step
    (so a run shows signs of life at once) and then every `every_seconds`.
    """

    def __init__(
        self,
        name: str,
        total_steps: int,
        every_seconds: float,
        enabled: bool = True,
        on_terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name, self.total, self.every, self.enabled = name, total_steps, every_seconds, enabled
        self.on_terminal = sys.stderr.isatty() if on_terminal is None else on_terminal
        self.clock = clock
        self.bar: tqdm | None = None
        self.started = self.last_line = None
        self.steps = self.sentences = 0

    def wrap(self, batches: Iterable, done: int = 0) -> Iterator:
        """The batches, with a bar on a terminal; `done` of `total` were taken before a resume."""
        if self.enabled and self.on_terminal:
            self.bar = tqdm(batches, total=self.total, initial=done, desc=self.name, leave=False)
            return iter(self.bar)
        return iter(batches)

    def start(self) -> None:
        """Marks the time training proper starts (after batches skipped on resume)."""
        if self.started is None:
            self.started = self.clock()

    def record(self, step: int, sentences: int, loss: float | None) -> None:
        self.start()
        self.steps += 1
        self.sentences += sentences
        if self.bar is not None:
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.3f}")
            return
        now = self.clock()
        if self.enabled and (self.last_line is None or now - self.last_line >= self.every or step == self.total):
            self.last_line = now
            logger.info(self.line(step, loss, now - self.started))

    def line(self, step: int, loss: float | None, elapsed: float) -> str:
        rate = self.sentences / elapsed if elapsed > 0 else float("nan")
        eta = (self.total - step) * elapsed / self.steps if self.steps else float("nan")
        loss_text = f", loss {loss:.3f}" if loss is not None else ""
        return (
            f"{self.name}: step {step}/{self.total} ({100 * step / self.total:.0f}%), "
            f"{rate:.1f} sentences/s{loss_text}, ETA {_duration(eta) if eta == eta else '?'}"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
