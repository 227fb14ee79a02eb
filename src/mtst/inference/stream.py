"""`mtst predict --file IN --output OUT.jsonl`: a file of any size, in constant memory, resumable.

The input is read in chunks of lines (never whole); each chunk is predicted and appended to OUT as JSON lines,
then flushed, so a killed run leaves OUT with complete lines and at most one torn last line. Run again with
the same arguments and it truncates the torn line, checks that OUT's last record is the input's matching line,
and carries on after it. Each record is what `mtst predict --json` prints, plus `line`, the input line number
(blank input lines are skipped, so line numbers let a reader join results back to the input).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mtst.data.textfile import LINE_BREAK
from mtst.errors import DataError, MtstError

logger = logging.getLogger(__name__)
CHUNK_LINES = 1024
LOG_EVERY_S = 30.0


@dataclass
class StreamSummary:
    resumed_after: int  # texts already in OUT when the run started
    predicted: int  # texts predicted by this run
    seconds: float


def input_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line; lines end at \\n, \\r\\n or \\r only, as in the readers.

    Read as bytes and decoded line by line, so that an invalid byte is reported on its own line (a text-mode
    file decodes blocks ahead of the line being read).
    """
    number = 0
    try:
        with path.open("rb") as handle:
            for raw in handle:  # splits after b"\n" only; a lone \r is split below
                try:
                    decoded = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    line = number + len(LINE_BREAK.findall(raw[: error.start].decode("utf-8"))) + 1
                    raise DataError(path, line, f"invalid UTF-8 (byte 0x{raw[error.start]:02x})") from None
                pieces = LINE_BREAK.split(decoded)
                for text in pieces[:-1] if pieces[-1] == "" else pieces:
                    number += 1
                    text = text.removeprefix("\ufeff") if number == 1 else text
                    if text.strip():
                        yield number, text
    except FileNotFoundError:
        raise DataError(path, None, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, None, "expected a file, found a folder") from None


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
    """Predict every non-blank line of `source` into `output`, continuing after what `output` already holds."""
    if source.resolve() == output.resolve():
        raise MtstError(f"{output}: the output would overwrite the input")
    done, last = completed(output)
    # One pass first (seconds for millions of lines, beside hours of prediction): the progress bar's total, and
    # a bad byte anywhere in the input stops the run before any prediction rather than hours into it.
    total = sum(1 for _ in input_lines(source))
    if done > total:
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


def _skip_done(lines: Iterator[tuple[int, str]], done: int, last: dict | None, source: Path, output: Path) -> None:
    """Consumes the first `done` texts, checking that OUT's last record is the last of them."""
    for index, (number, text) in enumerate(lines, start=1):
        if index == done:
            if not isinstance(last, dict) or last.get("text") != text or last.get("line") != number:
                problem = f"its last record is not line {number} of {source}: OUT belongs to another input"
                raise DataError(output, done, problem)
            logger.info("%s holds %d results; resuming after line %d of %s", output, done, number, source)
            return


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

    def __init__(self, source: Path, done: int, total: int):
        self.source, self.done, self.total = source, done, total
        self.started = self.last = time.monotonic()
        self.count = 0

    def update(self, n: int) -> None:
        self.count += n
        now = time.monotonic()
        if now - self.last >= LOG_EVERY_S:
            self.last = now
            rate = self.count / (now - self.started)
            logger.info("%s: %d of %d texts done (%.0f texts/s)", self.source, self.done + self.count, self.total, rate)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        logger.info(
            "%s: %d texts predicted in %.1f s (%.0f texts/s)", self.source, self.count, elapsed, self.count / elapsed
        )


def _progress(source: Path, done: int, total: int):
    if not sys.stderr.isatty():
        return _LogProgress(source, done, total)
    return tqdm(total=total, initial=done, unit="texts", desc=source.name, dynamic_ncols=True)
