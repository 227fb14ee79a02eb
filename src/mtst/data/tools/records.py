"""The last step every annotation-tool reader shares: a record's text, annotations and spans as an Example."""

from __future__ import annotations

from pathlib import Path

from mtst.data.example import Example
from mtst.data.readers import _check_unicode, _spans_to_tags


def record_example(text: str, annotations: dict, spans: list[dict] | None, path: Path, line: int) -> Example:
    """The record's words (the BERT word split of `text`) with `annotations`, plus `tags` made from `spans`
    (character offsets, whole words, no overlap) unless `spans` is None (a file that tags nothing)."""
    if spans is None:
        example = Example.from_text(text)
    else:
        tags, example = _spans_to_tags(text, spans, path, line)
        annotations = {**annotations, "tags": tags}
    _check_unicode(text, annotations, path, line)
    return Example(example.words, text, example.offsets, annotations, f"{path}:{line}")
