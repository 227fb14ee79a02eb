"""`mtst export --format sentence-transformers`: a folder SentenceTransformer loads offline, embedding as mtst does."""

import numpy as np
import pytest
from typer.testing import CliRunner

from mtst.cli import app
from mtst.model.multitask import MultiTaskModel

sentence_transformers = pytest.importorskip("sentence_transformers", reason="the sentence-transformers extra")

TEXTS = ["play the song yesterday by the beatles", "weather in paris", "", "a much longer sentence " * 20]


def test_the_folder_loads_offline_and_encodes_like_the_checkpoint(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "st"
    result = CliRunner().invoke(
        app, ["export", str(tiny_checkpoint), "--format", "sentence-transformers", "--output", str(folder)]
    )
    assert result.exit_code == 0, result.output
    loaded = sentence_transformers.SentenceTransformer(str(folder), device="cpu")
    ours = MultiTaskModel.from_pretrained(tiny_checkpoint).encode(TEXTS).numpy()
    theirs = loaded.encode(TEXTS)
    assert theirs.shape == ours.shape and np.allclose(theirs, ours, atol=1e-6)
    assert loaded.max_seq_length == 64  # the checkpoint's max_length: long texts truncate alike
    hits = sentence_transformers.util.semantic_search(loaded.encode(["weather in paris"]), theirs, top_k=1)
    assert hits[0][0]["corpus_id"] == 1


def test_format_options_are_checked(tiny_checkpoint, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app, ["export", str(tiny_checkpoint), "--format", "sentence-transformers", "--quantize", "int8"]
    )
    assert result.exit_code == 2 and "--quantize and --agreement-data apply to --format onnx only" in result.output
    result = runner.invoke(app, ["export", str(tiny_checkpoint), "--format", "bento"])
    assert result.exit_code == 2 and "choose one of onnx, sentence-transformers" in result.output


def test_what_is_not_an_earlier_export_is_kept_unless_overwrite(tiny_checkpoint, tmp_path):
    runner = CliRunner()
    before = sorted(path.name for path in tiny_checkpoint.iterdir())
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    a_file = tmp_path / "existing_file.txt"
    a_file.write_text("mine")
    for target, problem in [
        (tiny_checkpoint, "writing here would replace"),
        (tiny_checkpoint.parent, "writing here would replace"),
        (notes, "holds files mtst did not write (no modules.json)"),
        (a_file, "a file is there, not a folder"),
    ]:
        argv = ["export", str(tiny_checkpoint), "--format", "sentence-transformers", "-o", str(target)]
        result = runner.invoke(app, argv)
        assert result.exit_code == 2 and problem in result.stderr, (target, result.output)
    assert (notes / "notes.txt").read_text() == "mine" and a_file.read_text() == "mine"
    assert sorted(path.name for path in tiny_checkpoint.iterdir()) == before
    argv = ["export", str(tiny_checkpoint), "--format", "sentence-transformers", "-o", str(notes), "--overwrite"]
    assert runner.invoke(app, argv).exit_code == 0 and (notes / "modules.json").is_file()
    assert runner.invoke(app, argv[:-1]).exit_code == 0  # an earlier export is replaced without asking
    argv = [
        "export",
        str(tiny_checkpoint),
        "--format",
        "sentence-transformers",
        "-o",
        str(tiny_checkpoint),
        "--overwrite",
    ]
    assert runner.invoke(app, argv).exit_code == 2  # never the checkpoint, even with --overwrite
