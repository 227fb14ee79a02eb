"""BIO (IOB2) tag validation, and the repair of `I-X` tags that open an entity instead of continuing one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mtst.data.repairs import Repair
from mtst.errors import DataError


class BioChecker:
    """Validates the tag sequences of one file; `report()` logs the repairs once, after the last sentence."""

    def __init__(self, path: str | Path, strict: bool = False):
        self.path = path
        self.repair = Repair(path, "{n} I- tags did not continue an entity of their type; repaired to B-", strict)
        self.openings = 0  # B- tags as written, to tell IOB1 files from a few broken entities

    def check(self, tags: Sequence[str], line: int | Sequence[int]) -> tuple[str, ...]:
        """The tags, IOB2-repaired; `line` is the sentence's line, or one line per tag (CoNLL)."""
        fixed, previous = [], None  # previous: the entity type the last tag belongs to
        for index, tag in enumerate(tags):
            where = line if isinstance(line, int) else line[index]
            if tag == "O":
                fixed.append(tag)
                previous = None
                continue
            prefix, dash, kind = tag.partition("-")
            if prefix not in ("B", "I") or not dash or not kind.strip():
                raise DataError(self.path, where, f"tag {tag!r} is not BIO/IOB2: expected O, B-TYPE or I-TYPE")
            if prefix == "B":
                self.openings += 1
            elif kind != previous:
                after = "the sentence start" if index == 0 else repr(tags[index - 1])
                self.repair.note(where, f"tag {tag!r} must continue a B-{kind} or I-{kind} tag but follows {after}")
                tag = f"B-{kind}"
            fixed.append(tag)
            previous = kind
        return tuple(fixed)

    def report(self) -> None:
        # IOB1 writes I- for every entity and B- only between two adjacent entities of one type.
        iob1 = self.repair.count > self.openings
        self.repair.report("; the file looks like IOB1 (I- opens entities), read as IOB2" if iob1 else "")


def repair_iob2(tags: Sequence[str]) -> list[str]:
    """`I-X` that does not continue an X entity opens one (`B-X`), as `BioChecker` repairs files but silently:
    for predictions, e.g. where the windows of a long text meet and two valid tag sequences join."""
    repaired, previous = [], None
    for tag in tags:
        if tag.startswith("I-") and previous not in (f"B-{tag[2:]}", f"I-{tag[2:]}"):
            tag = f"B-{tag[2:]}"
        repaired.append(tag)
        previous = tag
    return repaired
