"""`mtst predict --file IN --output OUT`: chunked, resumable, and the same results as predicting in one go."""

import contextlib
import json
import logging
import os
import threading

import pytest
from typer.testing import CliRunner

from mtst.cli import app
from mtst.errors import DataError
from mtst.inference import stream
from mtst.inference.predictor import Predictor
from mtst.inference.stream import completed, input_lines, predict_file

TEXTS = ["play queen", "", "weather in paris", "  ", "will it rain in berlin tomorrow", "hello", "x" * 3]


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor.from_checkpoint(tiny_checkpoint, device="cpu")


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(("\ufeff" + "\r\n".join(TEXTS) + "\r\n").encode())
    return path


def records(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_streamed_chunks_equal_one_call_with_input_line_numbers(predictor, source, tmp_path):
    out = tmp_path / "out.jsonl"
    summary = predict_file(predictor, source, out, chunk_lines=2)
    written = records(out)
    texts = [t for t in TEXTS if t.strip()]
    assert summary.predicted == len(texts) == len(written) and summary.resumed_after == 0
    assert [r.pop("line") for r in written] == [1, 3, 5, 6, 7]
    assert written == predictor.predict(texts)


def test_a_torn_last_line_is_cut_and_the_run_resumes_after_the_last_complete_one(predictor, source, tmp_path, caplog):
    whole = tmp_path / "whole.jsonl"
    predict_file(predictor, source, whole)
    lines = whole.read_bytes().splitlines(keepends=True)
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"".join(lines[:2]) + lines[2][:17])  # killed while writing the third record
    with caplog.at_level(logging.INFO, "mtst.inference.stream"):
        summary = predict_file(predictor, source, out, chunk_lines=2)
    assert "removed a torn last line (17 bytes)" in caplog.text and "resuming after line 3" in caplog.text
    assert (summary.resumed_after, summary.predicted) == (2, 3)
    assert out.read_bytes() == whole.read_bytes()
    assert predict_file(predictor, source, out).predicted == 0  # complete: nothing left to do


def test_resume_refuses_another_inputs_output(predictor, source, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"line": 1, "text": "something else"}) + "\n")
    with pytest.raises(DataError, match="out.jsonl:1: its last record is not line 1 of .*another input"):
        predict_file(predictor, source, out)
    out.write_text("not json\n")
    with pytest.raises(DataError, match="not a JSON line written by mtst predict"):
        predict_file(predictor, source, out)
    out.write_text("{}\n" * 9)
    with pytest.raises(DataError, match="holds 9 results but .* has only 5 texts"):
        predict_file(predictor, source, out)


def test_input_is_read_lazily_and_bad_bytes_name_their_line(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"a\nb\n\xff\n")
    lines = input_lines(path)
    assert next(lines) == (1, "a")  # a generator: the file is never read whole
    with pytest.raises(DataError, match=r"in.txt:3: invalid UTF-8 \(byte 0xff\)"):
        list(lines)
    assert completed(tmp_path / "missing.jsonl") == (0, None)


def test_cli_output_streams_logs_progress_and_refuses_arguments_with_it(tiny_checkpoint, source, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["predict", str(tiny_checkpoint), "--file", str(source), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{out}: 5 results (5 new" in result.output and len(records(out)) == 5
    result = runner.invoke(app, ["predict", str(tiny_checkpoint), "hello", "--output", str(out)])
    assert result.exit_code == 2 and "--output streams one --file" in result.output


def fifo_fed_with(path, raw: bytes):
    """A named pipe at `path` whose writer (a thread) sends `raw` once: a pipe can be read only once."""
    os.mkfifo(path)

    def feed():
        with open(path, "wb") as pipe, contextlib.suppress(BrokenPipeError):  # the reader may refuse and stop
            pipe.write(raw)

    threading.Thread(target=feed, daemon=True).start()
    return path


def fifo_drained(path):
    """A named pipe at `path` whose reader (a thread) collects what is written into it; join, then read `.data`."""
    os.mkfifo(path)
    reader = threading.Thread(target=lambda: setattr(reader, "data", open(path, "rb").read()), daemon=True)
    reader.start()
    return reader


def test_a_pipe_as_input_is_predicted_in_one_pass(predictor, source, tmp_path):
    pipe = fifo_fed_with(tmp_path / "pipe", source.read_bytes())
    out = tmp_path / "out.jsonl"
    summary = predict_file(predictor, pipe, out, chunk_lines=2)
    assert summary.predicted == 5 and [r["line"] for r in records(out)] == [1, 3, 5, 6, 7]


def test_a_pipe_as_output_is_written_straight_through(predictor, source, tmp_path):
    reader = fifo_drained(tmp_path / "out.pipe")
    summary = predict_file(predictor, source, tmp_path / "out.pipe")
    reader.join(timeout=30)
    assert summary.predicted == 5 and len(reader.data.decode().splitlines()) == 5


def test_a_resumed_pipe_shorter_than_the_output_is_refused(predictor, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"line": 1, "text": "a"}) + "\n" + json.dumps({"line": 2, "text": "b"}) + "\n")
    with pytest.raises(DataError, match="out.jsonl:2: holds 2 results but .*pipe has fewer texts"):
        predict_file(predictor, fifo_fed_with(tmp_path / "pipe", b"a\n"), out)


def test_a_line_over_the_limit_is_refused_by_number_before_it_is_read_whole(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"short\n" + b"x" * 50 + b"\nlater\n")
    with pytest.raises(DataError, match=r"in.txt:2: line longer than 10 bytes; split it"):
        list(input_lines(path, max_line_bytes=10))
    endless = fifo_fed_with(tmp_path / "endless", b"y" * (stream.MAX_LINE_BYTES + 4 * stream.BLOCK_BYTES))
    with pytest.raises(DataError, match=r"endless:1: line longer than"):
        list(input_lines(endless))


def test_line_breaks_split_across_blocks_are_read_as_one_break(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "BLOCK_BYTES", 3)
    path = tmp_path / "in.txt"
    path.write_bytes(b"ab\r\ncd\r\rx\ny\r")
    assert list(input_lines(path)) == [(1, "ab"), (2, "cd"), (4, "x"), (5, "y")]


def test_plain_predict_refuses_an_overlong_line_by_file_and_line(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "MAX_LINE_BYTES", 40)
    path = tmp_path / "in.txt"
    path.write_text("play queen\n\n" + "weather " * 10 + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(tiny_checkpoint), "--file", str(path)])
    assert result.exit_code == 2 and f"error: {path}:3: line longer than 40 bytes" in result.stderr, result.output
    result = runner.invoke(app, ["predict", str(tiny_checkpoint), "ok", "x" * 41])
    assert result.exit_code == 2 and "error: text 2 is longer than 40 bytes" in result.stderr, result.output
