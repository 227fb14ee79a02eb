"""`mtst compare` on the tiny encoder writes every artifact, one run per strategy on the same data."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from mtst.cli import app


@pytest.mark.slow
def test_compare_writes_every_artifact(tiny_config, tmp_path):
    settings = tiny_config.model_dump()
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(settings))
    out = tmp_path / "compare"
    args = ["compare", "--config", str(config), "--strategies", "full,frozen,gradual", "--epochs", "2"]
    result = CliRunner().invoke(app, [*args, "--max-train-examples", "6", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output

    for spec in ("full", "frozen", "gradual"):
        assert (out / spec / "best" / "model.safetensors").is_file()
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["strategies"] == ["full", "frozen", "gradual"]
    runs = comparison["runs"]
    assert {run["summary"]["train_examples"] for run in runs.values()} == {6}
    trainable = {spec: run["summary"]["parameters"]["trainable_by_epoch"] for spec, run in runs.items()}
    assert trainable["frozen"] == [trainable["gradual"][0]] * 2 and trainable["full"][0] > trainable["gradual"][1]
    assert len(comparison["sentences"]) == 5 and all(len(p) == 5 for p in comparison["predictions"].values())

    table = (out / "comparison.md").read_text()
    for column in ("dev intent.accuracy", "test slots.f1", "test sentence_accuracy", "best epoch", "wall time"):
        assert column in table
    assert "| frozen |" in table and "→" in table  # gradual's trainable count grows over its epochs
    assert "**play the song yesterday by the beatles**" in table
    plots = {p.name for p in (out / "plots").iterdir()}
    assert {"dev.intent.accuracy.png", "dev.slots.f1.png", "dev.sentence_accuracy.png"} <= plots
    assert {"train_loss.intent.png", "train_loss.slots.png"} <= plots


def test_compare_refuses_a_bad_strategy_before_training(tiny_config, tmp_path):
    result = CliRunner().invoke(app, ["compare", "--strategies", "full,half", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2 and "unknown strategy 'half'" in result.output
    assert not (tmp_path / "full").exists()


def test_compare_with_no_strategy_says_so_and_names_the_choices(tiny_config, tmp_path):
    for given in ("", " , "):
        result = CliRunner().invoke(app, ["compare", "--strategies", given, "--output-dir", str(tmp_path)])
        assert result.exit_code == 2 and "error: --strategies names no strategy; give them" in result.stderr
        assert "full, frozen, discriminative" in result.stderr
