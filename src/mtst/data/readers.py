"""Dataset readers: each `read_X(path, strict) -> list[Example]`, raising `DataError` with `file:line`.

Repairable problems (a byte-order mark, tabs and spaces mixed as column separators, `I-X` opening an entity)
are repaired with one counted warning per file, or refused in strict mode. Format detection and split lookup
live here too, so that no other module guesses formats.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from mtst.data.example import Example
from mtst.data.repairs import Repair
from mtst.data.tags import BioChecker
from mtst.errors import DataError

CONLL_SUFFIXES = (".txt", ".conll", ".iob", ".bio", ".tsv")
# Only these end a line: str.splitlines() would also split on U+2028, \x85 or \x0c inside a text.
LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Words are separated by spaces or tabs only, so a no-break space stays inside its word.
COLUMN_BREAK = re.compile(r"[ \t]+")
SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    **{s: "conll" for s in CONLL_SUFFIXES},
    ".yml": "rasa",
    ".yaml": "rasa",
}
# The annotation tools' exports (mtst.data.tools) come after the research formats.
FORMATS = ("jointbert", "conll", "jsonl", "csv", "rasa", "label_studio", "doccano")
# The annotation tools' readers (mtst.data.tools, imported by the mtst.data package) build on this module's
# helpers, so they register here instead of being imported by it: (path, text_column, strict) -> examples,
# and for the formats told apart by content, path -> bool, asked in this order.
TOOL_READERS: dict = {}
TOOL_SNIFFERS: dict = {}
BOM = "\ufeff"
# The JSONL field holding a set of labels (a multi-label task's default field); any other list is token tags.
LABEL_SET = "labels"


def _decode(path: Path) -> str:
    """The file's text, refusing invalid UTF-8 with the line of the first bad byte."""
    try:
        if path.exists() and not path.is_file() and not path.is_dir():
            raise DataError(path, None, "not a regular file; give a file or a folder")  # a pipe would block
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, None, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, None, "expected a file, found a folder") from None
    except OSError as error:
        raise DataError(path, None, f"cannot read the file ({error.strerror or error})") from None
    return decode_utf8(raw, path)


def decode_utf8(raw: bytes, origin: str | Path) -> str:
    """`raw` as text, refusing invalid UTF-8 with the line of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        head = raw[: error.start]  # lines end at \n, \r\n or \r, as everywhere else
        line = head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1
        raise DataError(origin, line, f"invalid UTF-8 (byte 0x{raw[error.start]:02x})") from None


def _split_lines(text: str) -> list[str]:
    lines = LINE_BREAK.split(text)
    return lines[:-1] if lines[-1] == "" else lines


def _read_lines(path: Path, strict: bool = False) -> list[str]:
    """The lines of a data file without line endings (\\n, \\r\\n or \\r); a leading BOM is a repair."""
    text = _decode(path)
    if text.startswith(BOM):
        bom = Repair(path, "UTF-8 byte-order mark at the start of the file; removed", strict)
        bom.note(1, "UTF-8 byte-order mark at the start of the file")
        bom.report()
        text = text[1:]
    if not text.strip():
        raise DataError(path, None, "empty file")
    return _split_lines(text)


class _Columns:
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


def read_jointbert(folder: str | Path, strict: bool = False) -> list[Example]:
    """JointBERT layout: `seq.in` (words), `seq.out` (one tag per word), `label` (one per line)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, None, "a JointBERT split is a folder holding seq.in, seq.out and label")
    words_file, tags_file, label_file = folder / "seq.in", folder / "seq.out", folder / "label"
    sentences = _read_lines(words_file, strict)
    tag_lines = _read_lines(tags_file, strict) if tags_file.exists() else None
    labels = _read_lines(label_file, strict) if label_file.exists() else None
    for path, lines in ((tags_file, tag_lines), (label_file, labels)):
        if lines is not None:
            _same_length(path, lines, words_file, sentences)
    word_columns, tag_columns = _Columns(words_file, strict), _Columns(tags_file, strict)
    bio = BioChecker(tags_file, strict)
    examples = []
    for index, sentence in enumerate(sentences):
        line = index + 1
        words = word_columns(sentence, line)
        if not words:
            raise DataError(words_file, line, "empty sentence")
        annotations = {}
        if tag_lines is not None:
            tags = tag_columns(tag_lines[index], line)
            if len(tags) != len(words):
                raise DataError(tags_file, line, f"{len(tags)} tags for {len(words)} words")
            annotations["tags"] = bio.check(tags, line)
        if labels is not None:
            label = labels[index].strip()
            if not label:
                raise DataError(label_file, line, "empty label")
            annotations["label"] = label
        examples.append(Example.from_words(words, annotations, f"{words_file}:{line}"))
    for repairs in (word_columns.repair, tag_columns.repair, bio):
        repairs.report()
    return examples


def _same_length(path: Path, lines: list[str], words_file: Path, sentences: list[str]) -> None:
    if len(lines) < len(sentences):
        counts = f"{path.name} has {len(lines)} lines, {words_file.name} has {len(sentences)}"
        problem = f"no matching line in {path.name} ({counts})"
        raise DataError(words_file, len(lines) + 1, problem)
    if len(lines) > len(sentences):
        problem = f"extra line: {words_file.name} has only {len(sentences)} lines"
        raise DataError(path, len(sentences) + 1, problem)


def read_conll(path: str | Path, strict: bool = False) -> list[Example]:
    """CoNLL columns: the word first and its tag last on each line, a blank line between sentences."""
    path = Path(path)
    lines = _read_lines(path, strict)
    columns_of, bio = _Columns(path, strict), BioChecker(path, strict)
    examples: list[Example] = []
    words: list[str] = []
    tags: list[str] = []
    tag_lines: list[int] = []

    def flush() -> None:
        if words:
            annotations = {"tags": bio.check(tags, tag_lines)}
            examples.append(Example.from_words(words, annotations, f"{path}:{tag_lines[0]}"))
            words.clear()
            tags.clear()
            tag_lines.clear()

    first_row: tuple[int, int] | None = None  # (line, columns) of the first word line: every line has as many
    for number, line in enumerate(lines, start=1):
        columns = columns_of(line, number)
        if not columns:
            flush()
            continue
        if columns[0] == "-DOCSTART-":
            continue
        if len(columns) < 2:
            raise DataError(path, number, f"expected a word and a tag, found 1 column ({columns[0]!r})")
        first_row = first_row or (number, len(columns))
        if len(columns) != first_row[1]:  # e.g. `Peter Blackburn B-PER`: a word would be dropped
            problem = f"{len(columns)} columns, but line {first_row[0]} has {first_row[1]}"
            raise DataError(path, number, f"{problem}; every line holds the same columns, the word first, the tag last")
        words.append(columns[0])
        tags.append(columns[-1])
        tag_lines.append(number)
    flush()
    if not examples:
        raise DataError(path, None, "no sentences found")
    columns_of.repair.report()
    bio.report()
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


def _spans_to_tags(text: str, entities, path: Path, line: int) -> tuple[tuple[str, ...], Example]:
    example = Example.from_text(text)
    starts = {start: i for i, (start, _) in enumerate(example.offsets)}
    ends = {end: i for i, (_, end) in enumerate(example.offsets)}
    tags = ["O"] * len(example.words)
    previous = None
    for start, end, label in _entity_spans(entities, path, line):
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
        if "entities" not in record:  # a sentence-classification record: no token annotation rather than all-O
            return Example.from_text(text, origin=origin), {"text"}
        if "tags" in record:
            raise DataError(path, line, "give `entities` or `tags`, not both")
        tags, example = _spans_to_tags(text, record["entities"], path, line)
        return Example(example.words, text, example.offsets, {"tags": tags}, origin), {"text", "entities"}
    raise DataError(path, line, "each record needs `tokens` (with `tags`) or `text` (with `entities`)")


def _jsonl_example(record: dict, path: Path, line: int, bio: BioChecker) -> Example:
    example, used = _record_example(record, path, line)
    annotations = dict(example.annotations)
    for key, value in record.items():
        if key in used:
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
    if "tags" in annotations and "tags" in record:
        annotations["tags"] = bio.check(annotations["tags"], line)
    _check_unicode(example.text, annotations, path, line)
    return Example(example.words, example.text, example.offsets, annotations, origin=example.origin)


def _label_set(value, path: Path, line: int) -> frozenset[str]:
    """`"labels": [...]`: the labels of a multi-label task, any number of them (none too), in any order."""
    if not (isinstance(value, list) and all(_is_label(v) and str(v).strip() for v in value)):
        raise DataError(path, line, f"`labels` must be a list of non-empty labels, found {json.dumps(value)[:40]}")
    return frozenset(str(v).strip() for v in value)


def _is_label(value) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _check_unicode(text: str, annotations: dict, path: Path, line: int) -> None:
    """JSON escapes can spell lone surrogates (\\ud800), which no tokenizer or UTF-8 writer accepts."""
    strings = [text, *(v if isinstance(v, str) else "".join(v) for v in annotations.values())]
    try:
        "".join(strings).encode("utf-8")
    except UnicodeEncodeError as error:
        raise DataError(path, line, f"lone surrogate {error.object[error.start]!r} is not valid Unicode") from None


def read_jsonl(path: str | Path, strict: bool = False) -> list[Example]:
    """JSON lines: `{"tokens": [...], "tags": [...]}` or `{"text", "label", "entities": [{start, end, label}]}`."""
    path = Path(path)
    bio = BioChecker(path, strict)
    lines = _read_lines(path, strict)
    if path.suffix.lower() == ".json" and "\n".join(lines).lstrip().startswith("["):
        records = _json_array(lines, path)
    else:
        records = ((number, _json_line(line, path, number)) for number, line in enumerate(lines, 1) if line.strip())
    examples = []
    for number, record in records:
        if not isinstance(record, dict):
            raise DataError(path, number, f"expected a JSON object, found {type(record).__name__}")
        examples.append(_jsonl_example(record, path, number, bio))
    bio.report()
    return examples


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are all different: json.loads alone keeps the last of two silently."""
    record = dict(pairs)
    if len(record) != len(pairs):
        repeated = next(key for index, (key, _) in enumerate(pairs) if key in dict(pairs[:index]))
        raise _RepeatedKey(f"key `{repeated}` given twice")
    return record


class _RepeatedKey(ValueError):
    pass


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def _parse_json(text: str, path: Path, line: int, start: int = 0) -> tuple[object, int]:
    """The JSON value at `start` of `text` and where it ends; any problem is one DataError at `line`."""
    try:
        return _DECODER.raw_decode(text, start)
    except _RepeatedKey as error:
        raise DataError(path, line, str(error)) from None
    except RecursionError:
        raise DataError(path, line, "not valid JSON (nested too deeply)") from None
    except ValueError as error:  # JSONDecodeError, and integers past Python's digit limit
        raise DataError(path, line, f"not valid JSON ({getattr(error, 'msg', error)})") from None


def _json_line(line: str, path: Path, number: int):
    value, end = _parse_json(line.strip(" \t"), path, number)
    if line.strip(" \t")[end:]:
        raise DataError(path, number, "not valid JSON (Extra data)")
    return value


def _json_array(lines: list[str], path: Path):
    """(line, record) for each element of a `.json` file holding one array, each named by its first line."""
    text = "\n".join(lines)
    position = text.index("[") + 1
    while True:
        position = _skip_space(text, position)
        line = text.count("\n", 0, position) + 1
        if text.startswith("]", position):
            break
        if position >= len(text):
            raise DataError(path, line, "not valid JSON (the array has no closing `]`)")
        value, position = _parse_json(text, path, line, position)
        yield line, value
        position = _skip_space(text, position)
        if text.startswith(",", position):
            position += 1
        elif not text.startswith("]", position):
            raise DataError(path, text.count("\n", 0, position) + 1, "not valid JSON (expected `,` or `]`)")
    if text[position + 1 :].strip():
        raise DataError(path, text.count("\n", 0, position) + 1, "not valid JSON (extra data after the array)")


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\n\r":
        position += 1
    return position


def read_csv(
    path: str | Path, text_column: str = "text", label_column: str = "label", strict: bool = False
) -> list[Example]:
    """CSV with a header row; the text and label columns are named by the config."""
    path = Path(path)
    # csv refuses cells over 131,072 characters by default ("field larger than field limit"): a long document
    # is a valid cell. The limit is process-wide; raising it never refuses anything that was read before.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    # Each line gets its newline back so that a quoted cell spanning lines keeps it.
    reader = csv.reader((line + "\n" for line in _read_lines(path, strict)), strict=True)
    examples, start = [], 1
    try:
        header = next(reader)
        missing = [name for name in (text_column, label_column) if name not in header]
        if missing:
            found = ", ".join(repr(name) for name in header)
            problem = f"no column {' or '.join(map(repr, missing))} in the header (columns found: {found})"
            names = "--text-column / --label-column (in a config: data.text_column / data.label_column)"
            raise DataError(path, 1, f"{problem}; name the columns with {names}")
        text_at, label_at = header.index(text_column), header.index(label_column)
        while True:
            start = reader.line_num + 1  # the row's first physical line, also for a quoted cell spanning lines
            row = next(reader, None)
            if row is None:
                break
            if row:
                examples.append(_csv_example(row, len(header), text_at, label_at, path, start))
    except csv.Error as error:
        raise DataError(path, start, f"not valid CSV ({error})") from None
    if not examples:
        raise DataError(path, None, "no rows after the header")
    return examples


def _csv_example(row: list[str], width: int, text_at: int, label_at: int, path: Path, line: int) -> Example:
    if len(row) != width:
        raise DataError(path, line, f"{len(row)} columns, header has {width}")
    text, label = row[text_at].strip(), row[label_at].strip()
    if not text:
        raise DataError(path, line, "empty text")
    if not label:
        raise DataError(path, line, "empty label")
    return Example.from_text(text, {"label": label}, f"{path}:{line}")


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / "seq.in").exists():
            return "jointbert"
        raise DataError(path, None, "folder has no seq.in, so it is not a JointBERT split")
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(SUFFIX_FORMATS))
        raise DataError(path, None, f"unknown data format (suffix {path.suffix!r}); known suffixes: {known}")
    if fmt == "jsonl":  # .json/.jsonl: mtst's JSONL, or a tool's export told apart by its content
        for name, looks_like in TOOL_SNIFFERS.items():
            if looks_like(path):
                return name
    return fmt


def split_candidates(split: str) -> list[str]:
    return [f"{split}/", *(f"{split}{suffix}" for suffix in SUFFIX_FORMATS)]


def find_split(data_dir: str | Path, split: str) -> Path:
    """The file or folder holding a split: `DIR/split` as given, or with a known suffix."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        problem = "the folder does not exist" if not data_dir.exists() else "this is a file, not a folder"
        raise DataError(data_dir, None, f"no {split!r} split found: {problem}")
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
    raise DataError(data_dir, None, f"no {split!r} split found (looked for {', '.join(split_candidates(split))})")


def read_path(
    path: str | Path, fmt: str = "auto", text_column: str = "text", label_column: str = "label", strict: bool = False
) -> list[Example]:
    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "jointbert":
        return read_jointbert(path, strict)
    if fmt == "conll":
        return read_conll(path, strict)
    if fmt == "jsonl":
        return read_jsonl(path, strict)
    if fmt == "csv":
        return read_csv(path, text_column, label_column, strict)
    return _read_tool_export(path, fmt, text_column, strict)


def _read_tool_export(path: Path, fmt: str, text_column: str, strict: bool) -> list[Example]:
    if fmt in TOOL_READERS:
        return TOOL_READERS[fmt](path, text_column, strict)
    raise DataError(path, None, f"unknown data format {fmt!r}; choose one of auto, {', '.join(FORMATS)}")


def read_text_lines(path: str | Path) -> list[str]:
    """Non-blank lines of a plain text file (for prediction); a leading BOM is dropped without a warning."""
    return [line for line in _split_lines(_decode(Path(path)).removeprefix(BOM)) if line.strip()]


def text_lines(raw: bytes, origin: str) -> list[str]:
    """Non-blank lines of UTF-8 bytes from a stream such as standard input, named `origin` in errors."""
    return [line for line in _split_lines(decode_utf8(raw, origin).removeprefix(BOM)) if line.strip()]
