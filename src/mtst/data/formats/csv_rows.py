"""CSV with a header row: one sentence per row, its text and label in the columns the config names."""

from __future__ import annotations

import csv
from pathlib import Path

from mtst.data.example import Example
from mtst.data.formats.base import DataFormat
from mtst.data.textfile import read_lines
from mtst.errors import DataError

COLUMN_OPTIONS = "--text-column / --label-column (in a config: data.text_column / data.label_column)"


def read_csv(
    path: str | Path, text_column: str = "text", label_column: str = "label", strict: bool = False
) -> list[Example]:
    """CSV with a header row; the text and label columns are named by the config."""
    path = Path(path)
    # csv refuses cells over 131,072 characters by default ("field larger than field limit"): a long document
    # is a valid cell. The limit is process-wide; raising it never refuses anything that was read before.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    # Each line gets its newline back so that a quoted cell spanning lines keeps it.
    reader = csv.reader((line + "\n" for line in read_lines(path, strict)), strict=True)
    examples, start = [], 1
    try:
        header = next(reader)
        text_at, label_at = _column_positions(header, text_column, label_column, path)
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


def _column_positions(header: list[str], text_column: str, label_column: str, path: Path) -> tuple[int, int]:
    missing = [name for name in (text_column, label_column) if name not in header]
    if missing:
        found = ", ".join(repr(name) for name in header)
        problem = f"no column {' or '.join(map(repr, missing))} in the header (columns found: {found})"
        raise DataError(path, 1, f"{problem}; name the columns with {COLUMN_OPTIONS}")
    return header.index(text_column), header.index(label_column)


def _csv_example(row: list[str], width: int, text_at: int, label_at: int, path: Path, line: int) -> Example:
    if len(row) != width:
        raise DataError(path, line, f"{len(row)} columns, header has {width}")
    text, label = row[text_at].strip(), row[label_at].strip()
    if not text:
        raise DataError(path, line, "empty text")
    if not label:
        raise DataError(path, line, "empty label")
    return Example.from_text(text, {"label": label}, f"{path}:{line}")


FORMAT = DataFormat(
    name="csv",
    suffixes=(".csv",),
    reads="a header row, then one sentence per row; data.text_column / data.label_column name the columns",
    read=lambda path, options: read_csv(path, options.text_column, options.label_column, options.strict),
)
