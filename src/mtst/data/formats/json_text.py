"""JSON as the JSON-based formats read it: no key given twice, and every problem one `DataError` at a line.

`json.loads` alone keeps the last of two equal keys silently (`"label": [...], "label": []` loses the spans);
here that is an error naming the key, in every format.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from mtst.errors import DataError

WHITESPACE = " \t\n\r"


class _RepeatedKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    record = dict(pairs)
    if len(record) != len(pairs):
        repeated = next(key for index, (key, _) in enumerate(pairs) if key in dict(pairs[:index]))
        raise _RepeatedKey(f"key `{repeated}` given twice")
    return record


DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def parse_json(text: str, path: Path, line: int, start: int = 0) -> tuple[object, int]:
    """The JSON value at `start` of `text` (which starts on `line`) and where it ends; any problem is one
    DataError at the line it is on."""
    try:
        return DECODER.raw_decode(text, start)
    except _RepeatedKey as error:
        raise DataError(path, line, str(error)) from None
    except RecursionError:
        raise DataError(path, line, "not valid JSON (nested too deeply)") from None
    except json.JSONDecodeError as error:
        where = line + text.count("\n", start, error.pos)
        raise DataError(path, where, f"not valid JSON ({error.msg})") from None
    except ValueError as error:  # integers past Python's digit limit
        raise DataError(path, line, f"not valid JSON ({error})") from None


def json_line(line: str, path: Path, number: int):
    """The one JSON value on a JSON-lines line."""
    value, end = parse_json(line.strip(" \t"), path, number)
    if line.strip(" \t")[end:]:
        raise DataError(path, number, "not valid JSON (Extra data)")
    return value


def json_lines(lines: list[str], path: Path) -> Iterator[tuple[int, object]]:
    """(line, value) of each non-blank line of a JSON-lines file."""
    return ((number, json_line(line, path, number)) for number, line in enumerate(lines, 1) if line.strip())


def json_array(text: str, path: Path) -> Iterator[tuple[int, object]]:
    """(line, element) for each element of the one JSON array `text` holds, each named by its first line.

    json.loads would give the elements but not their lines; raw_decode reads one element at a time instead.
    """
    position, line = _skip(text, 0, 1)
    if not text.startswith("[", position):
        raise DataError(path, line, "expected a JSON array")
    position, line = _skip(text, position + 1, line)
    while not text.startswith("]", position):
        if position >= len(text):
            raise DataError(path, line, "not valid JSON (the array has no closing `]`)")
        value, end = parse_json(text, path, line, position)
        yield line, value
        position, line = _skip(text, end, line + text.count("\n", position, end))
        if text.startswith(",", position):
            position, line = _skip(text, position + 1, line)
        elif not text.startswith("]", position):
            raise DataError(path, line, "not valid JSON (expected `,` or `]`)")
    if text[position + 1 :].strip(WHITESPACE):
        raise DataError(path, line, "not valid JSON (extra data after the array)")


def _skip(text: str, position: int, line: int) -> tuple[int, int]:
    """The first position at or after `position` that is not whitespace, and its line."""
    end = position
    while end < len(text) and text[end] in WHITESPACE:
        end += 1
    return end, line + text.count("\n", position, end)
