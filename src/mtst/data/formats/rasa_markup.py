"""Rasa's entity markup inside one example line, read into a plain text and character spans.

`[text](type)`, `[text](type:synonym)`, `[text]{"entity": "type", "role": ...}` and the list form for several
types on one span, `[text][{"entity": "a"}, {"entity": "b"}]`, of which mtst keeps the first (BIO tags hold
one type per word). What tags nothing (a synonym value, a `group`, the extra types) is dropped with one counted
warning per file; markup that does not parse is an error, so it never trains as literal words.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mtst.data.example import Example
from mtst.data.formats.spans import record_example
from mtst.data.repairs import Repair
from mtst.errors import DataError

ENTITY = re.compile(
    r"\[(?P<text>[^\[\]]+)\]"
    r"(?:\((?P<short>[^()]*)\)|(?P<json>\{[^{}]*\})|(?P<list>\[[^\[\]]*\]))"
)
# What is left of markup that did not parse: `]` then what opens a type, or `[` ... `(type)` with no `]`.
BROKEN = re.compile(r"\]\s*[({\[]|\[[^\]]*\([^()]*\)")


class Markup:
    """Reads the example lines of one file, counting what it drops or keeps as literal text."""

    def __init__(self, path: Path, strict: bool):
        self.path = path
        self.dropped = Repair(
            path, "{n} entity synonym values or groups dropped (mtst tags the span as written)", strict
        )
        self.extra_types = Repair(path, "{n} entity spans with several types; the first type kept", strict)
        self.brackets = Repair(path, "{n} examples hold `[` or `]` outside entity markup; kept as literal text", strict)

    def example(self, annotated: str, intent: str, line: int) -> Example:
        text, entities, position = [], [], 0
        for match in ENTITY.finditer(annotated):
            text.append(annotated[position : match.start()])
            start = sum(map(len, text))
            kind = self._entity_type(match, line)
            entities.append({"start": start, "end": start + len(match["text"]), "label": kind})
            text.append(match["text"])
            position = match.end()
        text.append(annotated[position:])
        plain = "".join(text)
        if BROKEN.search(plain):
            raise DataError(self.path, line, f"malformed entity annotation in {annotated[:60]!r}: use [text](type)")
        if "[" in plain or "]" in plain:
            self.brackets.note(line, f"`[` or `]` outside entity markup in {annotated[:60]!r}")
        if not plain.strip():
            raise DataError(self.path, line, "empty example")
        return record_example(plain, {"label": intent}, entities, self.path, line)

    def report(self) -> None:
        for repair in (self.dropped, self.extra_types, self.brackets):
            repair.report()

    def _entity_type(self, match: re.Match, line: int) -> str:
        details = self._details(match, line)
        kind = details.get("entity") if isinstance(details, dict) else None
        if not isinstance(kind, str) or not kind.strip():
            raise DataError(self.path, line, f"entity [{match['text']}] names no type: write [{match['text']}](type)")
        for key in ("value", "group"):
            if key in details:
                self.dropped.note(line, f"{key} {details[key]!r} of [{match['text']}]")
        role = details.get("role")
        if role is not None and (not isinstance(role, str) or not role.strip()):
            raise DataError(self.path, line, f"entity [{match['text']}]: `role` must be a non-empty string")
        names = [kind.strip(), *([role.strip()] if role else [])]
        for name in names:
            self._check_name(name, match["text"], line)
        return ".".join(names)

    def _details(self, match: re.Match, line: int) -> dict:
        if match["short"] is not None:
            kind, colon, synonym = match["short"].partition(":")
            if colon and synonym.strip():
                self.dropped.note(line, f"synonym value {synonym.strip()!r} of [{match['text']}]")
            return {"entity": kind}
        written = match["json"] or match["list"]
        try:
            details = json.loads(written)
        except (ValueError, RecursionError):
            raise DataError(self.path, line, f"entity {written[:60]} is not valid JSON") from None
        if match["list"] is None:
            return details
        if not isinstance(details, list) or not details or not all(isinstance(d, dict) for d in details):
            raise DataError(self.path, line, f'entity {written[:60]}: expected a list of {{"entity": ...}} objects')
        if len(details) > 1:
            self.extra_types.note(line, f"several types on [{match['text']}]")
        return details[0]

    def _check_name(self, name: str, text: str, line: int) -> None:
        """A type or role becomes part of a BIO tag (`B-type.role`), so it cannot hold what the tag splits on."""
        problem = None
        if any(char.isspace() for char in name):
            problem = "holds whitespace"
        elif "." in name:
            problem = "holds `.`, which joins a type and its role (use `role`)"
        elif name[:2] in ("B-", "I-") or name == "O":
            problem = "is a BIO tag or starts with a BIO prefix; write the bare type"
        if problem:
            raise DataError(self.path, line, f"entity [{text}]: the name {name!r} {problem}")
