"""mtst's JSON lines: `{"tokens": [...], "tags": [...]}` or `{"text", "label", "entities": [{start, end, label}]}`.

A `.json` file may hold one JSON array of such records instead. No key may be given twice.
"""

from __future__ import annotations

import json
from pathlib import Path

from mtst.data.example import Example
from mtst.data.formats.base import DataFormat
from mtst.data.formats.json_text import json_array, json_lines
from mtst.data.formats.spans import check_unicode, spans_to_tags
from mtst.data.tags import BioChecker
from mtst.data.textfile import read_lines
from mtst.errors import DataError

# The field holding a set of labels (a multi-label task's default field); any other list is token tags.
LABEL_SET = "labels"


def read_jsonl(path: str | Path, strict: bool = False) -> list[Example]:
    """JSON lines: `{"tokens": [...], "tags": [...]}` or `{"text", "label", "entities": [{start, end, label}]}`."""
    path = Path(path)
    bio = BioChecker(path, strict)
    lines = read_lines(path, strict)
    if path.suffix.lower() == ".json" and "\n".join(lines).lstrip().startswith("["):
        records = json_array("\n".join(lines), path)
    else:
        records = json_lines(lines, path)
    examples = []
    for number, record in records:
        if not isinstance(record, dict):
            raise DataError(path, number, f"expected a JSON object, found {type(record).__name__}")
        examples.append(_jsonl_example(record, path, number, bio))
    bio.report()
    return examples


def _record_example(record: dict, path: Path, line: int) -> tuple[Example, set[str]]:
    """The words of a JSONL record (from `tokens` or `text`) and the keys they consumed."""
    origin = f"{path}:{line}"
    if "tokens" in record:
        if "text" in record:
            raise DataError(path, line, "give `tokens` or `text`, not both")
        if "entities" in record:
            raise DataError(path, line, "`entities` are character spans into `text`; with `tokens` give `tags`")
        words = record["tokens"]
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise DataError(path, line, "`tokens` must be a non-empty list of non-blank strings")
        return Example.from_words(words, origin=origin), {"tokens"}
    if "text" in record:
        text = record["text"]
        if not isinstance(text, str) or not text.strip():
            raise DataError(path, line, "empty text: `text` must be a non-blank string")
        # No `entities` (or null): the record's entities are unknown, not absent; `[]` says it has none.
        if record.get("entities") is None:
            return Example.from_text(text, origin=origin), {"text", "entities"}
        if "tags" in record:
            raise DataError(path, line, "give `entities` or `tags`, not both")
        tags, example = spans_to_tags(text, record["entities"], path, line)
        return Example(example.words, text, example.offsets, {"tags": tags}, origin), {"text", "entities"}
    raise DataError(path, line, "each record needs `tokens` (with `tags`) or `text` (with `entities`)")


def _jsonl_example(record: dict, path: Path, line: int, bio: BioChecker) -> Example:
    example, used = _record_example(record, path, line)
    annotations = dict(example.annotations)
    for key, value in record.items():
        if key in used or value is None:  # null: this annotation is unknown for the record (partly labelled)
            continue
        if key == "label" and not (_is_label(value) and str(value).strip()):
            found = json.dumps(value)[:40]
            raise DataError(path, line, f"`label` must be a non-empty string or an integer, found {found}")
        if key == "tags" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise DataError(path, line, f"`tags` must be a list of BIO tag strings, found {json.dumps(value)[:40]}")
        if key == LABEL_SET:
            annotations[key] = _label_set(value, path, line)
        elif _is_label(value):
            annotations[key] = str(value)  # integer class ids are labels too
        elif isinstance(value, list) and all(_is_label(v) for v in value):
            if len(value) != len(example.words):
                raise DataError(path, line, f"`{key}` has {len(value)} tags for {len(example.words)} tokens")
            annotations[key] = tuple(str(v) for v in value)
    if "tags" in annotations and record.get("tags") is not None:
        annotations["tags"] = bio.check(annotations["tags"], line)
    check_unicode(example.text, annotations, path, line)
    return Example(example.words, example.text, example.offsets, annotations, origin=example.origin)


def _label_set(value, path: Path, line: int) -> frozenset[str]:
    """`"labels": [...]`: the labels of a multi-label task, any number of them (none too), in any order."""
    if not (isinstance(value, list) and all(_is_label(v) and str(v).strip() for v in value)):
        raise DataError(path, line, f"`labels` must be a list of non-empty labels, found {json.dumps(value)[:40]}")
    return frozenset(str(v).strip() for v in value)


def _is_label(value) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


FORMAT = DataFormat(
    name="jsonl",
    suffixes=(".jsonl", ".json"),
    reads='{"tokens", "tags"} or {"text", "label", "entities": [{start, end, label}]} per line, or a .json array',
    read=lambda path, options: read_jsonl(path, options.strict),
)
