"""doccano's JSONL export: one `{"text": ..., spans, categories}` object per line.

Spans (field `tags`): `label` (or `labels`) as `[[start, end, "TYPE"], ...]` (sequence labelling projects),
or `entities` as such triples (intent detection and slot filling projects) or as objects with
`start_offset`, `end_offset`, `label` (relation extraction projects; relations are ignored).
Category (field `label`): `cats` (intent detection and slot filling) or `label` as a list of strings
(text classification); exactly one is required where given, since mtst's sentence tasks take one label.
Any other string field (e.g. your own `category`) is kept under its name, for a task's `field`.
"""

from __future__ import annotations

import json
from pathlib import Path

from mtst.data.example import Example
from mtst.data.formats.base import DataFormat
from mtst.data.formats.json_text import json_line
from mtst.data.formats.spans import record_example
from mtst.data.textfile import read_lines
from mtst.errors import DataError

SPAN_KEYS = ("label", "labels", "entities")
SKIPPED = {"text", "id", "cats", "relations", "Comments", "comments", *SPAN_KEYS}
# Lists only doccano's exports hold (mtst JSONL would read them as tags, and refuse them as too short).
DOCCANO_LISTS = ("relations", "Comments", "comments")


def looks_like_doccano(path: Path) -> bool:
    """A JSON-lines file whose first record holds doccano's spans, categories, relations or comments (never
    valid mtst JSONL): a relation export's first record may have no entity yet, but it has `relations`."""
    if path.suffix.lower() not in (".jsonl", ".json") or not path.is_file():
        return False
    with path.open("rb") as handle:
        for raw in handle:
            if raw.strip():
                try:
                    record = json.loads(raw.decode("utf-8", "ignore").lstrip("\ufeff"))
                except (ValueError, RecursionError):  # not JSON: the JSONL reader names the problem
                    return False
                return isinstance(record, dict) and _is_doccano(record)
    return False


def _is_doccano(record: dict) -> bool:
    spans = [record.get(key) for key in SPAN_KEYS]
    return (
        "cats" in record
        or any(isinstance(record.get(key), list) for key in DOCCANO_LISTS)
        or any(isinstance(value, list) and value and _span_like(value[0]) for value in spans)
        or (isinstance(record.get("label"), list) and all(isinstance(v, str) for v in record["label"]))
    )


def _span_like(item) -> bool:
    return (isinstance(item, list) and len(item) == 3) or (isinstance(item, dict) and "start_offset" in item)


def read_doccano(path: str | Path, strict: bool = False) -> list[Example]:
    path = Path(path)
    records = []
    for number, line in enumerate(read_lines(path, strict), start=1):
        if line.strip():
            records.append((number, _parse(line, path, number)))
    has_spans = any(_span_key(record) for _, record in records)
    return [_example(record, has_spans, path, number) for number, record in records]


def _parse(line: str, path: Path, number: int) -> dict:
    record = json_line(line, path, number)
    if not isinstance(record, dict):
        raise DataError(path, number, f"expected a JSON object, found {type(record).__name__}")
    return record


def _span_key(record: dict) -> str | None:
    """Which key holds the record's spans: `entities`, or `label`/`labels` unless they hold categories."""
    if "entities" in record:
        return "entities"
    for key in ("label", "labels"):
        value = record.get(key)
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            return key
        if isinstance(value, list) and not value and key == "labels":
            return key
    return None


def _example(record: dict, has_spans: bool, path: Path, line: int) -> Example:
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise DataError(path, line, "empty text: `text` must be a non-blank string")
    key = _span_key(record)
    annotations: dict = {}
    category = _category(record, key, path, line)
    if category is not None:
        annotations["label"] = category
    for name, value in record.items():
        if name not in SKIPPED and isinstance(value, str) and value.strip():
            annotations[name] = value.strip()
    # A record without spans in a tagged file has no entities (all O); a file without spans has no tags.
    items = record[key] if key else []
    if not isinstance(items, list):
        raise DataError(path, line, f"`{key}` must be a list of spans, found {json.dumps(items)[:40]}")
    spans = [_span(item, path, line) for item in items] if has_spans else None
    return record_example(text, annotations, spans, path, line)


def _category(record: dict, span_key: str | None, path: Path, line: int) -> str | None:
    key = next((k for k in ("cats", "label", "labels") if k in record and k != span_key), None)
    if key is None:
        return None
    values = record[key]
    if isinstance(values, list) and not values:
        return None  # not categorised: the example trains the other tasks only
    if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str) or not values[0].strip():
        found = json.dumps(values)[:60]
        raise DataError(path, line, f"`{key}` must hold one category (mtst's sentence task takes one), found {found}")
    return values[0].strip()


def _span(item, path: Path, line: int) -> dict:
    if isinstance(item, dict):
        start, end, label = item.get("start_offset"), item.get("end_offset"), item.get("label")
    elif isinstance(item, list) and len(item) == 3:
        start, end, label = item
    else:
        raise DataError(path, line, f'a span must be [start, end, "TYPE"], found {json.dumps(item)[:60]}')
    if type(start) is not int or type(end) is not int or not isinstance(label, str) or not label.strip():
        raise DataError(path, line, f"a span needs integer start and end and a type: {json.dumps(item)[:60]}")
    return {"start": start, "end": end, "label": label}


FORMAT = DataFormat(
    name="doccano",
    suffixes=(".jsonl", ".json"),
    reads='doccano\'s JSONL export: {"text", "label": [[start, end, "TYPE"], ...]}, or "entities" and "cats"',
    read=lambda path, options: read_doccano(path, options.strict),
    recognises=looks_like_doccano,
)
