"""Whitespace columns (JointBERT lines, CoNLL rows): runs of spaces and tabs, mixed separators counted."""

from __future__ import annotations

import re
from pathlib import Path

from mtst.data.repairs import Repair

# Words are separated by spaces or tabs only, so a no-break space stays inside its word.
COLUMN_BREAK = re.compile(r"[ \t]+")


class Columns:
    """Splits lines at runs of spaces and tabs, counting lines whose separators differ from the file's own."""

    def __init__(self, path: Path, strict: bool):
        summary = "{n} lines mix tab and space column separators; each run of tabs and spaces read as one separator"
        self.repair = Repair(path, summary, strict)
        self.style: tuple[bool, bool] | None = None  # (tabs, spaces) of the first line with one kind only

    def __call__(self, line: str, number: int) -> list[str]:
        stripped = line.strip(" \t")
        if not stripped:
            return []
        style = ("\t" in stripped, " " in stripped)
        if all(style):
            self.repair.note(number, "tabs and spaces mixed as column separators on this line")
        elif any(style):
            self.style = self.style or style
            if style != self.style:
                used, earlier = ("tabs", "spaces") if style[0] else ("spaces", "tabs")
                self.repair.note(number, f"columns separated by {used}, earlier lines by {earlier}")
        return COLUMN_BREAK.split(stripped)
