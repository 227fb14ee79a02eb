"""Label Studio's JSON export: a list of tasks, each with `data` (the text) and `annotations` (results).

A `choices` result gives the sentence label (field `label`), `labels` results give entity spans (field
`tags`). The text is `data[text_column]` (`data.text_column`, default `text`), or the task's only string when
`data` holds one. Of several annotations the first not marked `was_cancelled` is read (one counted warning);
a task nobody annotated is skipped with one counted warning. Other result types (relations, text areas,
ratings) are ignored. The JSON-MIN and CSV exports are refused with a note to export as JSON. A span's
`value.text` is checked against its offsets, which some exports count in UTF-16 code units.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

from mtst.data.example import Example
from mtst.data.formats.base import DataFormat
from mtst.data.formats.json_text import json_array
from mtst.data.formats.spans import record_example, utf16_span
from mtst.data.repairs import Repair
from mtst.data.textfile import decode_file
from mtst.errors import DataError

logger = logging.getLogger("mtst.data")
WHITESPACE = " \t\r\n"


TASK_KEYS = ("data", "annotations", "completions")


def looks_like_label_studio(path: Path) -> bool:
    """A `.json` file holding a JSON array whose first element is a Label Studio task (`data`, `annotations`).

    mtst's own JSONL records may also come as one array in a `.json` file; their keys tell them apart.
    """
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    text = path.read_bytes().decode("utf-8", "ignore").lstrip("\ufeff" + WHITESPACE)
    if not text.startswith("["):
        return False
    try:
        first, _ = json.JSONDecoder().raw_decode(text, len(text) - len(text[1:].lstrip(WHITESPACE)))
    except (ValueError, RecursionError):
        return False  # the reader chosen by suffix names the problem
    return isinstance(first, dict) and (any(key in first for key in TASK_KEYS) or _is_json_min(first))


def _is_json_min(task: dict) -> bool:
    """A JSON-MIN task: flat, its spans a list of `{start, end, labels}` (told apart so the reader can say to
    export as JSON instead)."""
    return any(
        isinstance(value, list) and value and all(isinstance(v, dict) and "labels" in v and "start" in v for v in value)
        for value in task.values()
    )


def read_label_studio(path: str | Path, text_column: str = "text", strict: bool = False) -> list[Example]:
    path = Path(path)
    skipped = Repair(path, "{n} tasks have no annotation (or only cancelled ones) and were skipped", strict)
    several = Repair(path, "{n} tasks have several annotations; the first not cancelled was read", strict)
    tagged = []  # (example, spans or None) before deciding whether the file is tagged at all
    for line, task in _tasks(decode_file(path).removeprefix("\ufeff"), path):
        read = _task(task, path, line, text_column, skipped, several)
        if read is not None:
            tagged.append(read)
    skipped.report()
    several.report()
    if not tagged:
        raise DataError(path, None, "no annotated tasks")
    file_has_spans = any(spans is not None for _, _, spans, _ in tagged)
    return [_example(text, label, spans or [], file_has_spans, path, line) for text, label, spans, line in tagged]


def _tasks(text: str, path: Path) -> Iterator[tuple[int, object]]:
    """Each element of the top-level JSON array with the line it starts on; no key given twice."""
    if not text.lstrip(WHITESPACE).startswith("["):
        line = text.count("\n", 0, len(text) - len(text.lstrip(WHITESPACE))) + 1
        raise DataError(path, line, "expected a JSON array of tasks (Label Studio's JSON export)")
    return json_array(text, path)


def _task(task, path: Path, line: int, text_column: str, skipped: Repair, several: Repair):
    if not isinstance(task, dict):
        raise DataError(path, line, f"expected a task object, found {type(task).__name__}")
    if "data" not in task:
        raise DataError(path, line, "task has no `data`; this looks like a JSON-MIN export: export as JSON instead")
    text = _task_text(task["data"], text_column, path, line)
    annotations = task.get("annotations", task.get("completions", []))
    if not isinstance(annotations, list):
        raise DataError(path, line, "`annotations` must be a list")
    kept = [a for a in annotations if not (isinstance(a, dict) and a.get("was_cancelled"))]
    if not kept:
        skipped.note(line, "task without an annotation")
        return None
    if len(kept) > 1:
        several.note(line, f"{len(kept)} annotations")
    label, spans = _results(kept[0], text, path, line)
    return text, label, spans, line


def _task_text(data, text_column: str, path: Path, line: int) -> str:
    if not isinstance(data, dict):
        raise DataError(path, line, "`data` must be an object holding the task's text")
    strings = [key for key, value in data.items() if isinstance(value, str)]
    key = text_column if text_column in data else (strings[0] if len(strings) == 1 else None)
    if key is None:
        found = ", ".join(repr(k) for k in data) or "none"
        raise DataError(
            path,
            line,
            f"no {text_column!r} in `data` (keys: {found}); name it with --text-column (config: data.text_column)",
        )
    text = data[key]
    if not isinstance(text, str) or not text.strip():
        raise DataError(path, line, f"empty text: `data.{key}` must be a non-blank string")
    return text


def _results(annotation, text: str, path: Path, line: int) -> tuple[str | None, list[dict] | None]:
    """The annotation's one choice (or None) and its labelled spans (or None when it has no `labels` result)."""
    results = annotation.get("result") if isinstance(annotation, dict) else None
    if not isinstance(results, list):
        raise DataError(path, line, "an annotation needs a `result` list")
    label, spans, controls = None, None, set()
    for result in results:
        value = result.get("value") if isinstance(result, dict) else None
        kind = result.get("type") if isinstance(result, dict) else None
        if kind not in ("choices", "labels"):
            continue  # relations, text areas, ratings: not a task mtst trains
        if not isinstance(value, dict):
            raise DataError(path, line, f"a `{kind}` result needs a `value` object")
        if kind == "choices":
            controls.add(result.get("from_name"))
            if len(controls) > 1 or label is not None:
                raise DataError(path, line, "several choice results; mtst's sentence task takes one label")
            label = _one(value.get("choices"), "choices", path, line)
        else:
            spans = (spans or []) + [_span(value, text, path, line)]
    return label, spans


def _one(values, key: str, path: Path, line: int) -> str:
    if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str) or not values[0].strip():
        found = json.dumps(values)[:60]
        raise DataError(path, line, f"`{key}` must hold exactly one non-empty string, found {found}")
    return values[0].strip()


def _span(value: dict, text: str, path: Path, line: int) -> dict:
    """The span in code points. Label Studio counts offsets in UTF-16 code units (as JavaScript does) in some
    versions and exports, so where `value.text` disagrees with the code-point reading the UTF-16 one is tried."""
    if not all(type(value.get(key)) is int for key in ("start", "end")):
        raise DataError(path, line, f"a `labels` result needs integer start and end: {json.dumps(value)[:80]}")
    start, end, written = value["start"], value["end"], value.get("text")
    if isinstance(written, str) and text[start:end] != written:
        converted = utf16_span(text, start, end)
        if converted is None or text[converted[0] : converted[1]] != written:
            problem = f"a `labels` span {start}-{end} covers {text[start:end]!r}, but its `text` is {written!r}"
            raise DataError(path, line, f"{problem} (read as code points and as UTF-16 alike)")
        start, end = converted
    return {"start": start, "end": end, "label": _one(value.get("labels"), "labels", path, line)}


def _example(text: str, label, spans: list[dict], tagged: bool, path: Path, line: int) -> Example:
    annotations: dict = {} if label is None else {"label": label}
    # A file with spans anywhere: a task without one has none to find (all O).
    return record_example(text, annotations, spans if tagged else None, path, line)


FORMAT = DataFormat(
    name="label_studio",
    suffixes=(".json",),
    reads="Label Studio's JSON export: a list of tasks with data.text, a choices result and labels spans",
    read=lambda path, options: read_label_studio(path, options.text_column, options.strict),
    recognises=looks_like_label_studio,
)
