"""`mtst predict --file IN --output OUT.jsonl`: a file of any size, in constant memory, resumable.

The input is read in chunks of lines (never whole); each chunk is predicted and appended to OUT as JSON lines,
then flushed, so a killed run leaves OUT with complete lines and at most one torn last line. Run again with
the same arguments and it truncates the torn line, checks that OUT's last record is the input's matching line,
and carries on after it. Each record is what `mtst predict --json` prints, plus `line`, the input line number
(blank input lines are skipped, so line numbers let a reader join results back to the input). A line longer
than MAX_LINE_BYTES is refused with its number. A pipe as input or output works in one pass, without resuming.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from mtst.errors import DataError, MtstError

logger = logging.getLogger(__name__)
CHUNK_LINES = 1024
BLOCK_BYTES = 1 << 16
# A longer line is refused, not predicted: it is no sentence, and its windows would all be held at once.
MAX_LINE_BYTES = 1 << 20
LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")
LOG_EVERY_S = 30.0


@dataclass
class StreamSummary:
    resumed_after: int  # texts already in OUT when the run started
    predicted: int  # texts predicted by this run
    seconds: float


def input_lines(path: Path, max_line_bytes: int | None = None) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line; lines end at \\n, \\r\\n or \\r only, as in the readers.

    Read as bytes in blocks and decoded line by line, so that an invalid byte is reported on its own line (a
    text-mode file decodes blocks ahead of the line being read), and a line longer than `max_line_bytes` is
    refused by its number before it fills memory (default MAX_LINE_BYTES).
    """
    max_line_bytes = max_line_bytes or MAX_LINE_BYTES
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(_raw_lines(handle, path, max_line_bytes), start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise DataError(path, number, f"invalid UTF-8 (byte 0x{raw[error.start]:02x})") from None
                text = text.removeprefix("\ufeff") if number == 1 else text
                if text.strip():
                    yield number, text
    except FileNotFoundError:
        raise DataError(path, None, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, None, "expected a file, found a folder") from None


def _raw_lines(handle: BinaryIO, path: Path, max_line_bytes: int) -> Iterator[bytes]:
    """The lines of a binary stream without their line breaks, holding at most one block and one line."""
    pending, number = b"", 0
    while block := handle.read(BLOCK_BYTES):
        pending += block
        cut = len(pending) - 1 if pending.endswith(b"\r") else len(pending)  # a final \r may be half of \r\n
        *lines, rest = LINE_BREAK_BYTES.split(pending[:cut])
        pending = rest + pending[cut:]
        for line in lines:
            number += 1
            _check_length(line, path, number, max_line_bytes)
            yield line
        _check_length(pending, path, number + 1, max_line_bytes)
    if pending:
        yield pending.removesuffix(b"\r")


def _check_length(line: bytes, path: Path, number: int, max_line_bytes: int) -> None:
    if len(line) > max_line_bytes:
        problem = f"line longer than {max_line_bytes} bytes; split it into sentences, one per line"
        raise DataError(path, number, problem)


def completed(output: Path) -> tuple[int, dict | None]:
    """How many complete records OUT holds and the last one; a torn last line (no newline) is truncated."""
    if not output.exists():
        return 0, None
    with output.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        keep = size
        while keep > 0:  # back to just after the last newline, reading 64 KiB blocks from the end
            start = max(0, keep - (1 << 16))
            handle.seek(start)
            block = handle.read(keep - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            keep = start
        if keep < size:
            logger.warning("%s: removed a torn last line (%d bytes) left by an interrupted run", output, size - keep)
            handle.truncate(keep)
    return _count_and_last(output)


def _count_and_last(output: Path) -> tuple[int, dict | None]:
    count, last = 0, None
    with output.open("rb") as handle:
        for raw in handle:
            count, last = count + 1, raw
    if last is None:
        return 0, None
    try:
        return count, json.loads(last)
    except ValueError:
        raise DataError(output, count, "not a JSON line written by mtst predict; refusing to append to it") from None


def predict_file(predictor, source: Path, output: Path, chunk_lines: int = CHUNK_LINES) -> StreamSummary:
    """Predict every non-blank line of `source` into `output`, continuing after what `output` already holds.

    A pipe (`--file /dev/stdin`, `<(...)`) is read in one pass, without a total; a pipe or a terminal as
    output (`--output /dev/stdout`) is written straight through, with nothing to resume.
    """
    if is_regular_file(output) and output.samefile(source):
        raise MtstError(f"{output}: the output would overwrite the input")
    done, last = completed(output) if is_regular_file(output) or not output.exists() else (0, None)
    # A file gets one counting pass first (seconds for millions of lines, beside hours of prediction): the
    # progress bar's total, and a bad byte anywhere stops the run before any prediction rather than hours into
    # it. A pipe can be read only once: it goes without.
    total = sum(1 for _ in input_lines(source)) if is_regular_file(source) else None
    if total is not None and done > total:
        raise DataError(output, done, f"holds {done} results but {source} has only {total} texts")
    lines = input_lines(source)
    if done:
        _skip_done(lines, done, last, source, output)
    started, predicted = time.monotonic(), 0
    with output.open("a", encoding="utf-8") as sink, _progress(source, done, total) as bar:
        chunk: list[tuple[int, str]] = []
        for item in lines:
            chunk.append(item)
            if len(chunk) == chunk_lines:
                predicted += _write_chunk(predictor, chunk, sink, bar)
                chunk = []
        if chunk:
            predicted += _write_chunk(predictor, chunk, sink, bar)
    return StreamSummary(done, predicted, time.monotonic() - started)


def is_regular_file(path: Path) -> bool:
    """A file on disk, not a pipe, a terminal or a folder (following links: /dev/stdin is one)."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _skip_done(lines: Iterator[tuple[int, str]], done: int, last: dict | None, source: Path, output: Path) -> None:
    """Consumes the first `done` texts, checking that OUT's last record is the last of them."""
    for index, (number, text) in enumerate(lines, start=1):
        if index == done:
            if not isinstance(last, dict) or last.get("text") != text or last.get("line") != number:
                problem = f"its last record is not line {number} of {source}: OUT belongs to another input"
                raise DataError(output, done, problem)
            logger.info("%s holds %d results; resuming after line %d of %s", output, done, number, source)
            return
    raise DataError(output, done, f"holds {done} results but {source} has fewer texts")


def _write_chunk(predictor, chunk: list[tuple[int, str]], sink, bar) -> int:
    results = predictor.predict([text for _, text in chunk])
    sink.write(
        "".join(
            json.dumps({"line": n, **r}, ensure_ascii=False) + "\n" for (n, _), r in zip(chunk, results, strict=True)
        )
    )
    sink.flush()
    bar.update(len(chunk))
    return len(chunk)


class _LogProgress:
    """Progress as log lines, every LOG_EVERY_S seconds, where stderr is not a terminal (a job's log file)."""

    def __init__(self, source: Path, done: int, total: int | None):
        self.source, self.done, self.total = source, done, total
        self.started = self.last = time.monotonic()
        self.count = 0

    def update(self, n: int) -> None:
        self.count += n
        now = time.monotonic()
        if now - self.last >= LOG_EVERY_S:
            self.last = now
            rate = self.count / (now - self.started)
            of = f" of {self.total}" if self.total is not None else ""
            logger.info("%s: %d%s texts done (%.0f texts/s)", self.source, self.done + self.count, of, rate)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        logger.info(
            "%s: %d texts predicted in %.1f s (%.0f texts/s)", self.source, self.count, elapsed, self.count / elapsed
        )


def _progress(source: Path, done: int, total: int | None):
    if not sys.stderr.isatty():
        return _LogProgress(source, done, total)
    return tqdm(total=total, initial=done, unit="texts", desc=source.name, dynamic_ncols=True)
