"""Dataset readers: each `read_X(path) -> list[Example]`, raising `DataError` with `file:line`.

Format detection and split lookup live here too, so that no other module guesses formats.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from mtst.data.example import Example, split_words
from mtst.errors import DataError

CONLL_SUFFIXES = (".txt", ".conll", ".iob", ".bio", ".tsv")
# Only these end a line: str.splitlines() would also split on U+2028, \x85 or \x0c inside a text.
LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Words are separated by spaces or tabs only, so a no-break space stays inside its word.
COLUMN_BREAK = re.compile(r"[ \t]+")
SUFFIX_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", **{s: "conll" for s in CONLL_SUFFIXES}}


def _read_lines(path: Path) -> list[str]:
    """The file's lines without line endings (\\n, \\r\\n or \\r), refusing invalid UTF-8."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, None, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, None, "expected a file, found a folder") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(path, line, f"invalid UTF-8 (byte 0x{raw[error.start]:02x})") from None
    if not text.strip():
        raise DataError(path, None, "empty file")
    lines = LINE_BREAK.split(text)
    return lines[:-1] if lines[-1] == "" else lines


def _columns(line: str) -> list[str]:
    stripped = line.strip(" \t")
    return COLUMN_BREAK.split(stripped) if stripped else []


def read_jointbert(folder: str | Path) -> list[Example]:
    """JointBERT layout: `seq.in` (words), `seq.out` (one tag per word), `label` (one per line)."""
    folder = Path(folder)
    words_file = folder / "seq.in"
    sentences = _read_lines(words_file)
    columns = {"tags": folder / "seq.out", "label": folder / "label"}
    present = {name: _read_lines(path) for name, path in columns.items() if path.exists()}
    for name, lines in present.items():
        if len(lines) != len(sentences):
            raise DataError(columns[name], None, f"{len(lines)} lines, but {words_file.name} has {len(sentences)}")
    examples = []
    for index, sentence in enumerate(sentences):
        line = index + 1
        words = _columns(sentence)
        if not words:
            raise DataError(words_file, line, "empty sentence")
        annotations = {}
        if "tags" in present:
            tags = tuple(_columns(present["tags"][index]))
            if len(tags) != len(words):
                raise DataError(columns["tags"], line, f"{len(tags)} tags for {len(words)} words")
            annotations["tags"] = tags
        if "label" in present:
            label = present["label"][index].strip()
            if not label:
                raise DataError(columns["label"], line, "empty label")
            annotations["label"] = label
        examples.append(Example.from_words(words, annotations, f"{words_file}:{line}"))
    return examples


def read_conll(path: str | Path) -> list[Example]:
    """CoNLL columns: the word first and its tag last on each line, a blank line between sentences."""
    path = Path(path)
    examples: list[Example] = []
    words: list[str] = []
    tags: list[str] = []
    start_line = 1

    def flush() -> None:
        if words:
            examples.append(Example.from_words(words, {"tags": tuple(tags)}, f"{path}:{start_line}"))
            words.clear()
            tags.clear()

    for number, line in enumerate(_read_lines(path), start=1):
        columns = _columns(line)
        if not columns:
            flush()
            continue
        if columns[0] == "-DOCSTART-":
            continue
        if len(columns) < 2:
            raise DataError(path, number, f"expected a word and a tag, found {len(columns)} column")
        if not words:
            start_line = number
        words.append(columns[0])
        tags.append(columns[-1])
    flush()
    if not examples:
        raise DataError(path, None, "no sentences found")
    return examples


def _entity_spans(entities, path: Path, line: int) -> list[tuple[int, int, str]]:
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


def _spans_to_tags(text: str, entities, path: Path, line: int) -> tuple[tuple[str, ...], Example]:
    example = Example.from_text(text)
    starts = {start: i for i, (start, _) in enumerate(example.offsets)}
    ends = {end: i for i, (_, end) in enumerate(example.offsets)}
    tags = ["O"] * len(example.words)
    previous_end = -1
    for start, end, label in _entity_spans(entities, path, line):
        if not 0 <= start < end <= len(text):
            raise DataError(path, line, f"entity span {start}-{end} out of range for text of {len(text)} characters")
        if start < previous_end:
            raise DataError(path, line, f"entity span {start}-{end} overlaps the previous entity")
        if start not in starts or end not in ends:
            raise DataError(
                path, line, f"entity span {start}-{end} ({text[start:end]!r}) does not fall on word boundaries"
            )
        first, last = starts[start], ends[end]
        tags[first] = f"B-{label}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{label}"
        previous_end = end
    return tuple(tags), example


def _jsonl_example(record: dict, path: Path, line: int) -> Example:
    origin = f"{path}:{line}"
    if "tokens" in record:
        words = record["tokens"]
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
            raise DataError(path, line, "`tokens` must be a non-empty list of non-empty strings")
        example = Example.from_words(words, origin=origin)
        skip = {"tokens"}
    elif "text" in record:
        text = record["text"]
        if not isinstance(text, str) or not text.strip():
            raise DataError(path, line, "`text` must be a non-empty string")
        if "entities" in record:
            tags, example = _spans_to_tags(text, record["entities"], path, line)
            example = Example(example.words, text, example.offsets, {"tags": tags}, origin)
        else:  # a sentence-classification record: no token annotation rather than all-O tags
            example = Example.from_text(text, origin=origin)
        skip = {"text", "entities"}
    else:
        raise DataError(path, line, "each record needs `tokens` (with `tags`) or `text` (with `entities`)")
    annotations = dict(example.annotations)
    for key, value in record.items():
        if key in skip:
            continue
        if _is_label(value):
            annotations[key] = str(value)  # integer class ids are labels too
        elif isinstance(value, list) and all(_is_label(v) for v in value):
            if len(value) != len(example.words):
                raise DataError(path, line, f"`{key}` has {len(value)} tags for {len(example.words)} tokens")
            annotations[key] = tuple(str(v) for v in value)
    return Example(example.words, example.text, example.offsets, annotations, origin)


def _is_label(value) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def read_jsonl(path: str | Path) -> list[Example]:
    """JSON lines: `{"tokens": [...], "tags": [...]}` or `{"text", "label", "entities": [{start, end, label}]}`."""
    path = Path(path)
    examples = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(path, number, f"not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise DataError(path, number, "expected a JSON object")
        examples.append(_jsonl_example(record, path, number))
    return examples


def read_csv(path: str | Path, text_column: str = "text", label_column: str = "label") -> list[Example]:
    """CSV with a header row; the text and label columns are named by the config."""
    path = Path(path)
    reader = csv.reader(_read_lines(path))
    header = next(reader)
    missing = [name for name in (text_column, label_column) if name not in header]
    if missing:
        raise DataError(path, 1, f"header {header} lacks column(s) {missing}")
    text_at, label_at = header.index(text_column), header.index(label_column)
    examples = []
    for row in reader:
        number = reader.line_num  # physical line, also after a quoted cell that spans lines
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(path, number, f"{len(row)} columns, header has {len(header)}")
        text, label = row[text_at].strip(), row[label_at].strip()
        if not text or not split_words(text):
            raise DataError(path, number, "empty text")
        if not label:
            raise DataError(path, number, "empty label")
        examples.append(Example.from_text(text, {"label": label}, f"{path}:{number}"))
    return examples


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / "seq.in").exists():
            return "jointbert"
        raise DataError(path, None, "folder has no seq.in, so it is not a JointBERT split")
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(SUFFIX_FORMATS))
        raise DataError(path, None, f"unknown data format (suffix {path.suffix!r}); known suffixes: {known}")
    return fmt


def find_split(data_dir: str | Path, split: str) -> Path:
    """The file or folder holding a split: `DIR/split` as given, or with a known suffix."""
    data_dir = Path(data_dir)
    direct = data_dir / split
    if direct.exists():
        return direct
    for suffix in SUFFIX_FORMATS:
        candidate = data_dir / f"{split}{suffix}"
        if candidate.exists():
            return candidate
    others = sorted(data_dir.glob(f"{split}.*"))
    if others:
        detect_format(others[0])  # names the unknown suffix and the known ones
    raise DataError(
        data_dir, None, f"no {split!r} split found (looked for {split}/, {split}.jsonl, {split}.csv, {split}.txt ...)"
    )


def read_path(
    path: str | Path, fmt: str = "auto", text_column: str = "text", label_column: str = "label"
) -> list[Example]:
    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "jointbert":
        return read_jointbert(path)
    if fmt == "conll":
        return read_conll(path)
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "csv":
        return read_csv(path, text_column, label_column)
    raise DataError(path, None, f"unknown data format {fmt!r}; choose one of auto, jointbert, conll, jsonl, csv")


def read_text_lines(path: str | Path) -> list[str]:
    """Non-blank lines of a plain text file (for prediction), with the same UTF-8 and line-ending rules."""
    return [line for line in _read_lines(Path(path)) if line.strip()]
