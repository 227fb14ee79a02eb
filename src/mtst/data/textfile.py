"""Reading a text file the one way every reader and `predict` do: UTF-8, any line ending, a BOM noted.

Invalid UTF-8 is refused with the line of the first bad byte; a pipe or a device is refused rather than read
(it would block, or be consumed before the real pass).
"""

from __future__ import annotations

import re
from pathlib import Path

from mtst.data.repairs import Repair
from mtst.errors import DataError

BOM = "\ufeff"
# Only these end a line: str.splitlines() would also split on U+2028, \x85 or \x0c inside a text.
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def decode_file(path: Path) -> str:
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


def split_lines(text: str) -> list[str]:
    lines = LINE_BREAK.split(text)
    return lines[:-1] if lines[-1] == "" else lines


def read_lines(path: Path, strict: bool = False) -> list[str]:
    """The lines of a data file without line endings (\\n, \\r\\n or \\r); a leading BOM is a repair."""
    text = decode_file(path)
    if text.startswith(BOM):
        bom = Repair(path, "UTF-8 byte-order mark at the start of the file; removed", strict)
        bom.note(1, "UTF-8 byte-order mark at the start of the file")
        bom.report()
        text = text[1:]
    if not text.strip():
        raise DataError(path, None, "empty file")
    return split_lines(text)


def read_text_lines(path: str | Path) -> list[str]:
    """Non-blank lines of a plain text file (for prediction); a leading BOM is dropped without a warning."""
    return [line for line in split_lines(decode_file(Path(path)).removeprefix(BOM)) if line.strip()]


def text_lines(raw: bytes, origin: str) -> list[str]:
    """Non-blank lines of UTF-8 bytes from a stream such as standard input, named `origin` in errors."""
    return [line for line in split_lines(decode_utf8(raw, origin).removeprefix(BOM)) if line.strip()]
