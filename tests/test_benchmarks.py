"""The benchmark scripts stay runnable: each runs end to end on the tiny random BERT with minimal sizes.

Only the shape and sanity of the JSON they write is checked, never a timing."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from mtst.config import Config

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def run_script(monkeypatch):
    """Runs benchmarks/NAME.py's main() with these arguments; torch's thread count is put back after."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))

    def run(name: str, *argv: str) -> None:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        script = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, script)  # dataclasses look their module up there
        spec.loader.exec_module(script)
        monkeypatch.setattr(sys, "argv", [f"{name}.py", *argv])
        threads = torch.get_num_threads()
        try:
            script.main()
        finally:
            torch.set_num_threads(threads)

    return run


def _check_record(result: dict) -> None:
    assert {"date", "machine", "load_average_before", "load_average_after", "settings"} <= set(result)
    assert result["machine"]["cores"] >= 1 and result["machine"]["torch"] == torch.__version__
    assert result["machine"]["threads"] == 1 and result["machine"]["cpu"]
    assert len(result["load_average_before"]) == 3


def test_train_throughput_script(run_script, tiny_encoder_dir, toy_data_dir, tmp_path, capsys):
    output = tmp_path / "train.json"
    run_script(
        "train_throughput",
        *("--data-dir", str(toy_data_dir), "--encoder", str(tiny_encoder_dir), "--sentences", "8"),
        *("--batch-size", "2", "--fixed-length", "16", "--repeats", "2", "--warmup-batches", "1", "--threads", "1"),
        *("--rss-train-examples", "4", "--output", str(output)),
    )
    result = json.loads(output.read_text())
    _check_record(result)
    throughput = result["throughput"]
    assert throughput["sentences"] == 8
    rows = {row["variant"]: row for row in throughput["rows"]}
    old, default, grouped, reference = (
        "mtst, defaults before the speed issue",
        "+ fused AdamW = mtst default",
        "+ group_by_length",
        "reference (padded to 16)",
    )
    assert list(rows) == [
        old, default, "+ frozen word embeddings", "+ row-wise word embeddings (instead of frozen)", grouped,
        "+ group_by_length, foreach AdamW", reference
    ]  # fmt: skip
    for row in rows.values():
        assert row["sentences_per_s"] > 0 and len(row["seconds"]) == 2 and row["warmup_s"] > 0
    assert rows[reference]["ratio_vs_reference"] == 1.0 and rows[old]["ratio_vs_old_default"] == 1.0
    assert rows[reference]["padded_tokens_per_sentence"] == 16
    # The row called the default runs the Config defaults (benchmark_config applies its settings on top).
    defaults = Config()
    settings = rows[default]["settings"]
    assert settings["train.adamw_implementation"] == defaults.train.adamw_implementation == "fused"
    assert settings["train.group_by_length"] == defaults.train.group_by_length
    assert settings["strategy.train_word_embeddings"] == defaults.strategy.train_word_embeddings
    # Dynamic padding never pads past the longest sentence; grouping never pads more than drawn order.
    assert rows[grouped]["padded_tokens_per_sentence"] <= rows[old]["padded_tokens_per_sentence"] < 16
    assert isinstance(throughput["target_met"], bool)
    run = result["training_run"]
    assert run["train_examples"] == 4 and 50 < run["peak_rss_mib"] < 16_000
    assert "| + fused AdamW = mtst default |" in capsys.readouterr().out


def test_joint_vs_two_models_script(run_script, tiny_encoder_dir, toy_data_dir, tmp_path, capsys):
    output = tmp_path / "joint.json"
    run_script(
        "joint_vs_two_models",
        *("--data-dir", str(toy_data_dir), "--encoder", str(tiny_encoder_dir), "--batch-sizes", "1,4"),
        *("--repeats", "2", "--warmup-batches", "1", "--threads", "1", "--output", str(output)),
    )
    result = json.loads(output.read_text())
    _check_record(result)
    measured = result["result"]
    assert measured["joint_model"].startswith("untrained MultiTaskModel")
    variants = ["joint Predictor", "joint forward", "two models"]
    assert [(r["batch_size"], r["variant"]) for r in measured["rows"]] == [(b, v) for b in (1, 4) for v in variants]
    for row in measured["rows"]:
        assert row["sentences_per_s"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"] and len(row["pass_seconds"]) == 2
    assert all(r["ratio_vs_two_models"] == 1.0 for r in measured["rows"] if r["variant"] == "two models")
    # Both pipelines run the same joint model, so they decode to the same labels.
    assert measured["predictor_vs_hand_pipeline_agreement"]["4"]["label"] == 1.0
    assert measured["target_met"] == {}  # the target is at batch 64, not run here
    assert "| 4 | two models |" in capsys.readouterr().out


def test_scaling_script(run_script, tiny_encoder_dir, tmp_path, capsys):
    output, plot = tmp_path / "scaling.json", tmp_path / "scaling.png"
    run_script(
        "scaling",
        *("--encoder", str(tiny_encoder_dir), "--lengths", "8,20", "--train-batch-sizes", "2"),
        *("--infer-batch-sizes", "1,3", "--repeats", "2", "--infer-repeats", "2", "--threads", "1"),
        *("--output", str(output), "--plot", str(plot)),
    )
    result = json.loads(output.read_text())
    _check_record(result)
    assert [(r["length"], r["batch_size"]) for r in result["training"]] == [(8, 2), (20, 2)]
    assert [(r["length"], r["batch_size"]) for r in result["inference"]] == [(8, 1), (8, 3), (20, 1), (20, 3)]
    assert all(r["seconds_per_1000_sentences"] > 0 and len(r["pass_seconds"]) == 2 for r in result["training"])
    assert all(r["p50_ms"] > 0 and len(r["latencies_ms"]) == 2 for r in result["inference"])
    assert result["vocabulary_words"] > 100
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "| 20 |" in capsys.readouterr().out


@pytest.mark.slow
def test_task_gradients_script(run_script, tiny_config, toy_data_dir, tmp_path):
    import yaml

    from mtst.training.loop import train

    tiny_config.train.entity_sampler_weight = 2.0  # so the sampler's shift is measured at 1.0 and at 2.0
    train(tiny_config)
    run = Path(tiny_config.output_dir)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_config.model_dump()))
    output = tmp_path / "gradients.json"
    argv = ["--config", str(config), "--data-dir", str(toy_data_dir), "--batches", "2", "--output", str(output)]
    run_script("task_gradients", *argv, "--checkpoint", f"trained={run / 'best'}", "--checkpoint", f"start={config}")
    result = json.loads(output.read_text())["checkpoints"]
    trained, start = result["trained"], result["start"]
    assert set(trained) >= {"at_start", "at_checkpoint", "sampler_intent_shift"} and "at_checkpoint" not in start
    for moment in (trained["at_start"], trained["at_checkpoint"], start["at_start"]):
        assert moment["intent.encoder_grad_norm"] > 0 and moment["slots.encoder_grad_norm"] > 0
        assert -1 <= moment["gradient_cosine"] <= 1 and moment["slots.loss"] > 0
    assert trained["sampler_intent_shift"]["1.0"] == 0.0 and 0 <= trained["sampler_intent_shift"]["2.0"] < 1


def test_serve_burst_scenario_times_a_short_request_while_oversized_ones_arrive(tiny_checkpoint, monkeypatch):
    """The burst scenario's plumbing, in process: a small budget makes every OVERSIZED request a 413."""
    import asyncio

    import httpx

    from mtst.serve.app import create_app
    from mtst.serve.config import ServeConfig
    from mtst.serve.loading import describe_checkpoint

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import serve_load

    config = ServeConfig(max_subtokens=1000, max_wait_ms=0)
    words = lambda texts: sum(len(text.split()) for text in texts)  # noqa: E731 - a stand-in sub-token count
    predict = lambda texts: [{"text": text} for text in texts]  # noqa: E731
    app = create_app(predict, describe_checkpoint(tiny_checkpoint), config, words)

    async def scenario() -> dict:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                return await serve_load.burst(http, ["hi"], oversized=3, probes=2)

    result = asyncio.run(scenario())
    assert result["oversized_requests"] == 3 and sum(result["oversized_statuses"].values()) == 3
    assert result["oversized_statuses"] == {"413": 3} and result["probe_statuses"] == {"200": 2}
    assert 0 <= result["probe_p50_s"] <= result["probe_max_s"]


def _files(folder: Path) -> dict:
    """Every file and folder under `folder` with its bytes and modification time: what 'unchanged' means."""
    return {
        str(path.relative_to(folder)): (path.read_bytes() if path.is_file() else None, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
    }


def test_calibration_script_calibrates_a_copy_scores_it_as_evaluate_does_and_leaves_the_checkpoint_alone(
    run_script, tiny_checkpoint, tmp_path, capsys
):
    import shutil

    from typer.testing import CliRunner

    from mtst.cli import app
    from tests.conftest import write_own_predictions

    checkpoint = tmp_path / "grid" / "seed-13" / "best"
    shutil.copytree(tiny_checkpoint, checkpoint)
    # Gold is the random model's own prediction with every city left out: its cities are all spurious, so
    # calibration has a threshold worth picking.
    data = write_own_predictions(checkpoint, tmp_path / "corpus", drop=("city",))
    before, work, output = _files(checkpoint), tmp_path / "work", tmp_path / "calibration.json"
    work.mkdir()
    run_script(
        "calibration", str(checkpoint), str(checkpoint), "--data-dir", str(data),
        "--output", str(output), "--work-dir", str(work), "--threads", "1", "--device", "cpu",
    )  # fmt: skip
    assert _files(checkpoint) == before and list(work.iterdir()) == []
    result = json.loads(output.read_text())
    _check_record(result)
    assert result["corpus"] == "corpus" and len(result["checkpoints"]) == 2
    first, second = result["checkpoints"]
    assert first["checkpoint"] == str(checkpoint) and first["dev"] == second["dev"] and first["test"] == second["test"]
    dev, test = first["dev"], first["test"]
    assert test["temperature"]["intent"] == dev["temperature"]["intent"]["temperature"]
    assert "city" in test["entity_thresholds"]["slots"] == dev["entity_thresholds"]["slots"]["thresholds"]
    without, with_thresholds = test["without_thresholds"], test["with_thresholds"]
    assert with_thresholds["slots.f1"] == 1.0 > without["slots.f1"] and with_thresholds["slots.recall"] == 1.0

    # The same numbers as `mtst calibrate` then `mtst evaluate` with and without the thresholds on another copy.
    copy = tmp_path / "by-hand" / "best"
    shutil.copytree(checkpoint, copy)
    runner = CliRunner()
    assert runner.invoke(app, ["calibrate", str(copy), "--data-dir", str(data)]).exit_code == 0
    for options, numbers in (([], with_thresholds), (["--no-thresholds"], without)):
        evaluated = runner.invoke(app, ["evaluate", str(copy), "--data-dir", str(data), "--json", *options])
        metrics = json.loads(evaluated.stdout)
        assert metrics["slots"]["f1"] == numbers["slots.f1"] and metrics["slots"]["recall"] == numbers["slots.recall"]
        assert metrics["sentence_accuracy"] == numbers["sentence_accuracy"]
        assert metrics["intent"]["ece"] == pytest.approx(without["intent.ece"])

    summary = result["summary"]
    assert summary["slot F1, test"]["before"]["n"] == 2 and summary["slot F1, test"]["delta"]["std"] == 0.0
    assert summary["slot F1, test"]["after"]["mean"] == 100.0
    assert summary["entity types thresholded"]["mean"] >= 1
    printed = capsys.readouterr().out
    assert "| slot F1, test |" in printed and f"| {checkpoint} |" in printed and f"wrote {output}" in printed


def test_calibration_script_refuses_a_folder_that_is_no_checkpoint_before_doing_anything(
    run_script, tiny_checkpoint, toy_data_dir, tmp_path
):
    output = tmp_path / "calibration.json"
    with pytest.raises(SystemExit) as stopped:
        run_script("calibration", str(tiny_checkpoint), str(tmp_path / "nothing"), "--data-dir", str(toy_data_dir),
                   "--output", str(output))  # fmt: skip
    assert str(stopped.value) == f"error: not an mtst checkpoint (no config.json): {tmp_path / 'nothing'}"
    assert not output.exists()
