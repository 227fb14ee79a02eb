"""ONNX export and the onnx backend, on the tiny random encoder (a round trip, not an accuracy test)."""

import json
import pickle
import shutil

import pytest
import torch
from typer.testing import CliRunner

from mtst.cli import app
from mtst.errors import CheckpointError, MtstError
from mtst.inference.onnx import EXPORT_NOTE, INT8_FILE, ONNX_FILE, OnnxModel
from mtst.inference.predictor import Predictor
from mtst.model.multitask import MultiTaskModel
from mtst.model.subtokens import word_ids_input
from mtst.tasks import make_task
from tests.conftest import TOY_SENTENCES

runner = CliRunner()
TEXTS = [words for words, _, _ in TOY_SENTENCES] + ["", "Play Queen’s “Bohemian Rhapsody” in São Paulo 🎵"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_encoder_dir):
    """A tiny random model with a sentence and a token task, saved and exported (fp32 and int8) by the CLI."""
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(1)
    intents = tuple(sorted({label for _, _, label in TOY_SENTENCES}))
    tags = tuple(sorted({tag for _, seq, _ in TOY_SENTENCES for tag in seq.split()}))
    tasks = [make_task("intent", "sentence", "label", intents), make_task("slots", "token", "tags", tags)]
    encoder, tokenizer = AutoModel.from_pretrained(tiny_encoder_dir), AutoTokenizer.from_pretrained(tiny_encoder_dir)
    model = MultiTaskModel(encoder, tokenizer, tasks)
    folder = tmp_path_factory.mktemp("export") / "best"
    model.save_pretrained(folder)
    result = runner.invoke(app, ["export", str(folder), "--format", "onnx", "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    assert f"{folder / ONNX_FILE}" in result.output and f"{folder / INT8_FILE}" in result.output
    return folder


@pytest.fixture(scope="module")
def unexported(checkpoint, tmp_path_factory):
    folder = tmp_path_factory.mktemp("plain") / "best"
    shutil.copytree(checkpoint, folder, ignore=shutil.ignore_patterns("*.onnx", "onnx_heads.safetensors", EXPORT_NOTE))
    return folder


def test_fp32_graph_matches_torch_for_other_batch_sizes_and_lengths(checkpoint):
    torch_model = MultiTaskModel.from_pretrained(checkpoint)
    onnx_model = OnnxModel.from_checkpoint(checkpoint)
    for texts in (TEXTS, TEXTS[:1], [" ".join(TEXTS)]):  # padded batch, one sentence, longer than traced
        batch = torch_model.tokenizer(texts, padding=True, return_tensors="pt")
        word_ids = word_ids_input(batch, len(texts))  # the default slot head pools first and last sub-tokens
        with torch.no_grad():
            expected = torch_model(batch["input_ids"], batch["attention_mask"], word_ids=word_ids).logits
        got = onnx_model.forward(batch["input_ids"], batch["attention_mask"], word_ids=word_ids).logits
        assert set(got) == {"intent", "slots"}
        for name in expected:
            assert got[name].shape == expected[name].shape
            torch.testing.assert_close(got[name], expected[name], atol=1e-4, rtol=1e-4)


def test_export_note_names_inputs_outputs_and_files(checkpoint):
    note = json.loads((checkpoint / EXPORT_NOTE).read_text())
    assert note["format"] == "onnx" and note["opset"] == 18
    assert list(note["inputs"]) == ["input_ids", "attention_mask", "word_ids"]  # word_ids: first_last pooling
    assert list(note["outputs"]) == ["intent", "slots"]
    assert note["files"][ONNX_FILE]["quantization"] is None
    # onnxruntime's BERT optimizer ran: each of the 2 layers' two residual LayerNorms became a SkipLayerNorm (it
    # needs symbolic shape inference to follow the first_last pooling, the default), and both GELUs fused.
    fused = note["files"][ONNX_FILE]["fused_operators"]
    assert fused["SkipLayerNormalization"] == 4 and fused["BiasGelu"] == 2
    assert "int8" in note["files"][INT8_FILE]["quantization"]
    # The intent head's Gemm, and the slot head's MatMul and bias Add: the MatMul reads a folded `val_N` weight,
    # found through the node's module path (before, only nodes reading `model.heads.*` stayed float32).
    assert len(note["files"][INT8_FILE]["float32_nodes"]) == 3
    assert note["files"][INT8_FILE]["float32_groups"] == ["heads"] and "agreement" not in note["files"][INT8_FILE]
    assert max(note["files"][ONNX_FILE]["max_abs_logit_difference"].values()) < 1e-3
    assert (checkpoint / INT8_FILE).stat().st_size < (checkpoint / ONNX_FILE).stat().st_size / 2


def _without_scores(results):
    return [
        {**result, "score": None, "entities": [{**e, "score": None} for e in result["entities"]]} for result in results
    ]


def test_onnx_predictor_gives_torch_labels_and_entities(checkpoint):
    expected = Predictor.from_checkpoint(checkpoint, device="cpu").predict(TEXTS)
    got = Predictor.from_checkpoint(checkpoint, backend="onnx", batch_size=3).predict(TEXTS)
    assert _without_scores(got) == _without_scores(expected)
    for a, b in zip(got, expected, strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=1e-3)


def test_int8_predictor_predicts_known_labels_and_valid_spans(checkpoint):
    predictor = Predictor.from_checkpoint(checkpoint, backend="onnx", quantized=True)
    results = predictor.predict(TEXTS)
    assert [r["text"] for r in results] == TEXTS
    intents, tags = predictor.model.tasks["intent"].labels, predictor.model.tasks["slots"].labels
    for result in results:
        assert result["label"] in intents and 0 <= result["score"] <= 1
        for entity in result["entities"]:
            assert result["text"][entity["start"] : entity["end"]] == entity["text"]
            assert f"B-{entity['label']}" in tags or f"I-{entity['label']}" in tags


def test_onnx_backend_needs_neither_torch_weights_nor_unpickling(checkpoint, tmp_path, monkeypatch):
    folder = tmp_path / "onnx-only"
    shutil.copytree(checkpoint, folder, ignore=shutil.ignore_patterns("model.safetensors"))

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle or torch.load used")

    for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads")):
        monkeypatch.setattr(module, name, forbidden)
    [result] = Predictor.from_checkpoint(folder, backend="onnx").predict(["play music by queen"])
    assert result["label"] in {"GetWeather", "PlayMusic"}
    assert (folder / "onnx_heads.safetensors").is_file()  # the CRF's transitions, beside the graph


def test_missing_export_and_bad_options_are_clear_errors(unexported, checkpoint):
    with pytest.raises(CheckpointError, match=r"model\.onnx: no ONNX export; run `mtst export .* --format onnx` first"):
        Predictor.from_checkpoint(unexported, backend="onnx")
    with pytest.raises(CheckpointError, match="--quantize int8"):
        Predictor.from_checkpoint(unexported, backend="onnx", quantized=True)
    with pytest.raises(MtstError, match="unknown backend 'tensorrt'; choose one of torch, onnx"):
        Predictor.from_checkpoint(checkpoint, backend="tensorrt")
    with pytest.raises(MtstError, match="needs the onnx backend"):
        Predictor.from_checkpoint(checkpoint, quantized=True)
    with pytest.raises(MtstError, match="CPU only"):
        Predictor.from_checkpoint(checkpoint, device="cuda", backend="onnx")


def test_corrupt_onnx_file_is_a_checkpoint_error(checkpoint, tmp_path):
    folder = tmp_path / "corrupt"
    shutil.copytree(checkpoint, folder)
    (folder / ONNX_FILE).write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match=r"model\.onnx: cannot load ONNX model"):
        OnnxModel.from_checkpoint(folder)


def test_export_that_fails_its_check_writes_nothing(checkpoint, unexported, monkeypatch):
    from mtst.export import onnx as export

    # The real graph (copied, to spare a second export) checked against an impossible tolerance.
    monkeypatch.setattr(export, "_export_fp32", lambda model, path: shutil.copy(checkpoint / ONNX_FILE, path))
    monkeypatch.setattr(export, "FP32_TOLERANCE", -1.0)
    with pytest.raises(MtstError, match="ONNX logits differ from PyTorch"):
        export.export_onnx(unexported)
    assert sorted(p.name for p in unexported.iterdir() if "onnx" in p.name) == []


def test_cli_predict_with_onnx_backends(checkpoint):
    for flags in (["--backend", "onnx"], ["--backend", "onnx", "--quantized"]):
        args = ["predict", str(checkpoint), "play music by queen", "is it sunny", "--json", *flags]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in result.output.splitlines()]
        assert [r["text"] for r in rows] == ["play music by queen", "is it sunny"]
        assert all({"label", "score", "entities"} <= set(r) for r in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "{plain}", "hi", "--backend", "onnx"], "no ONNX export; run `mtst export"),
        (["predict", "{plain}", "hi", "--backend", "jax"], "unknown backend 'jax'"),
        (["export", "{plain}", "--format", "tflite"], "unknown export format 'tflite'; choose one of onnx"),
        (["export", "{plain}", "--quantize", "int4"], "unknown quantization 'int4'; choose one of int8"),
        (["export", "{plain}/missing"], "not an mtst checkpoint"),
    ],
)
def test_cli_errors_are_one_line(unexported, args, message):
    result = runner.invoke(app, [arg.format(plain=unexported) for arg in args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_unwritable_checkpoint_is_one_clear_error(unexported, monkeypatch):
    from mtst.export import onnx as export

    def read_only(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(export, "_write_files", read_only)  # root ignores chmod, so fake the refusal
    with pytest.raises(MtstError, match="cannot write the ONNX export \\(Permission denied\\)"):
        export.export_onnx(unexported)


def test_parity_benchmark_script_runs_and_fp32_agrees(checkpoint, toy_data_dir, tmp_path, monkeypatch, capsys):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "onnx_parity.py"
    monkeypatch.syspath_prepend(str(script.parent))  # its `machine` helper module
    spec = importlib.util.spec_from_file_location("onnx_parity", script)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    output = tmp_path / "parity.json"
    argv = [str(checkpoint), "--data-dir", str(toy_data_dir), "--batch-sizes", "1,4", "--threads", "1"]
    monkeypatch.setattr("sys.argv", ["onnx_parity.py", *argv, "--repeats", "1", "--output", str(output)])
    threads = torch.get_num_threads()
    try:
        benchmark.main()
    finally:
        torch.set_num_threads(threads)
    result = json.loads(output.read_text())
    assert [(r["backend"], r["batch_size"]) for r in result["rows"]] == [
        (backend, size) for size in (1, 4) for backend in ("torch", "onnx-fp32", "onnx-int8")
    ]
    for row in result["rows"]:
        assert row["sentences_per_s"] > 0 and set(row["tasks"]) == {"intent", "slots"}
        if row["backend"] != "onnx-int8":
            assert row["tasks"]["intent"]["agreement"] == 1.0 and row["tasks"]["slots"]["identical_sentences"] == 1.0
            assert row["tasks"]["slots"]["f1_vs_eager"] == 1.0
        assert 0 <= row["tasks"]["slots"]["f1_vs_eager"] <= 1
    assert set(result["target_met"]) == {"1", "4"}
    assert result["load_average_before"] and result["settings"]["threads"] == 1
    assert "| onnx-int8 | 4 |" in capsys.readouterr().out


def test_cli_evaluate_with_the_onnx_backend_scores_like_torch(checkpoint, toy_data_dir):
    scores = {}
    for backend in ("torch", "onnx"):
        args = ["evaluate", str(checkpoint), "--data-dir", str(toy_data_dir), "--json", "--backend", backend]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        metrics = json.loads(result.output)
        scores[backend] = (metrics["intent"]["accuracy"], metrics["slots"]["f1"], metrics["sentence_accuracy"])
    assert scores["onnx"] == scores["torch"]
    quantized = runner.invoke(app, ["evaluate", str(checkpoint), "--data-dir", str(toy_data_dir), "--quantized"])
    assert quantized.exit_code == 2 and "needs the onnx backend" in quantized.output
