"""Character spans to BIO tags, shared by every format that annotates entities as offsets into a text.

Spans must cover whole words (the BERT word split of the text) and must not overlap; each problem is one
`DataError` naming the record's line.
"""

from __future__ import annotations

import json
from pathlib import Path

from mtst.data.example import Example
from mtst.errors import DataError


def entity_spans(entities, path: Path, line: int) -> list[tuple[int, int, str]]:
    if not isinstance(entities, list):
        raise DataError(path, line, "`entities` must be a list of {start, end, label} objects")
    spans = []
    for entity in entities:
        valid = (
            isinstance(entity, dict)
            and all(type(entity.get(key)) is int for key in ("start", "end"))
            and isinstance(entity.get("label"), str)
            and entity["label"].strip()
        )
        if not valid:
            raise DataError(path, line, f"entity needs integer start, end and a label: {json.dumps(entity)[:80]}")
        spans.append((entity["start"], entity["end"], entity["label"].strip()))
    return sorted(spans)


def _word_at(example: Example, position: int) -> str | None:
    for start, end in example.offsets:
        if start <= position < end:
            return example.text[start:end]
    return None


def _span_problem(example: Example, start: int, end: int, starts: dict, ends: dict) -> str | None:
    """Why a character span does not cover whole words, or None when it does."""
    if start not in starts:
        word = _word_at(example, start)
        return f"starts inside the word {word!r}" if word else "starts on whitespace"
    if end not in ends:
        word = _word_at(example, end - 1)
        return f"ends inside the word {word!r}" if word else "ends on whitespace"
    return None


def spans_to_tags(text: str, entities, path: Path, line: int) -> tuple[tuple[str, ...], Example]:
    example = Example.from_text(text)
    starts = {start: i for i, (start, _) in enumerate(example.offsets)}
    ends = {end: i for i, (_, end) in enumerate(example.offsets)}
    tags = ["O"] * len(example.words)
    previous = None
    for start, end, label in entity_spans(entities, path, line):
        span = f"entity span {start}-{end}"
        if start >= end:
            raise DataError(path, line, f"{span} is empty: start must be below end")
        if start < 0 or end > len(text):
            raise DataError(path, line, f"{span} is out of range for a text of {len(text)} characters")
        if previous and start < previous[1]:
            raise DataError(path, line, f"{span} overlaps entity span {previous[0]}-{previous[1]}")
        problem = _span_problem(example, start, end, starts, ends)
        if problem:
            raise DataError(path, line, f"{span} ({text[start:end]!r}) {problem}; entities must cover whole words")
        first, last = starts[start], ends[end]
        tags[first] = f"B-{label}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{label}"
        previous = (start, end)
    return tuple(tags), example


def utf16_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The code-point offsets of a span given in UTF-16 code units, or None when it splits a character."""
    units = text.encode("utf-16-le")
    try:
        before = units[: 2 * start].decode("utf-16-le")
        inside = units[2 * start : 2 * end].decode("utf-16-le")
    except UnicodeDecodeError:
        return None
    if not 0 <= start <= end <= len(units) // 2:
        return None
    return len(before), len(before) + len(inside)


def check_unicode(text: str, annotations: dict, path: Path, line: int) -> None:
    """JSON escapes can spell lone surrogates (\\ud800), which no tokenizer or UTF-8 writer accepts."""
    strings = [text, *(v if isinstance(v, str) else "".join(v) for v in annotations.values())]
    try:
        "".join(strings).encode("utf-8")
    except UnicodeEncodeError as error:
        raise DataError(path, line, f"lone surrogate {error.object[error.start]!r} is not valid Unicode") from None


def record_example(text: str, annotations: dict, spans: list[dict] | None, path: Path, line: int) -> Example:
    """The record's words (the BERT word split of `text`) with `annotations`, plus `tags` made from `spans`
    (character offsets, whole words, no overlap) unless `spans` is None (a file that tags nothing)."""
    if spans is None:
        example = Example.from_text(text)
    else:
        tags, example = spans_to_tags(text, spans, path, line)
        annotations = {**annotations, "tags": tags}
    check_unicode(text, annotations, path, line)
    return Example(example.words, text, example.offsets, annotations, f"{path}:{line}")
