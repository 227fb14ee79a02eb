"""Repairable problems in a data file: counted and reported once per file, or refused in strict mode."""

from __future__ import annotations

import logging
from pathlib import Path

from mtst.errors import DataError

logger = logging.getLogger("mtst.data")


class Repair:
    """One kind of repair in one file.

    Each occurrence is counted; `report()` logs a single warning naming the count and the first line, so a
    corpus with thousands of them gives one line, not thousands. In strict mode the first occurrence is a
    `DataError` instead.
    """

    def __init__(self, path: str | Path, summary: str, strict: bool = False):
        # `summary` is formatted with the count `n`, e.g. "{n} I- tags ...; repaired to B-".
        self.path, self.summary, self.strict = path, summary, strict
        self.count, self.first_line = 0, None

    def note(self, line: int, problem: str) -> None:
        if self.strict:
            raise DataError(self.path, line, f"{problem} (strict mode: not repaired)")
        self.count += 1
        if self.first_line is None:
            self.first_line = line

    def report(self, hint: str = "") -> None:
        if self.count:
            summary = self.summary.format(n=self.count)
            logger.warning("%s:%d: %s (first here)%s", self.path, self.first_line, summary, hint)
