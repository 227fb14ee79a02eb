"""Every saved checkpoint carries a README.md model card in the Hugging Face layout, written from what is known."""

import json
from pathlib import Path

import pytest
import yaml

from mtst.model.card import CardFacts, render_model_card
from mtst.model.multitask import MultiTaskModel, read_checkpoint
from mtst.training.loop import train


def split_card(text: str) -> tuple[dict, str]:
    """The YAML front matter and the Markdown body, as the Hub reads a card."""
    assert text.startswith("---\n")
    meta, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(meta), body


def sections(body: str) -> list[str]:
    return [line[3:] for line in body.splitlines() if line.startswith("## ")]


CARD_SECTIONS = [
    "Model",
    "Tasks and labels",
    "Training data",
    "Training configuration",
    "Evaluation",
    "Calibration",
    "Intended use",
    "Limitations",
]


def test_a_saved_checkpoint_has_a_card_with_its_tasks_and_labels(tiny_checkpoint):
    meta, body = split_card((tiny_checkpoint / "README.md").read_text(encoding="utf-8"))
    assert meta == {"library_name": "mtst", "tags": ["mtst", "multi-task", "sentence", "token"]}
    assert sections(body) == CARD_SECTIONS
    assert "| intent | sentence | `label` | 2: `GetWeather`, `PlayMusic` |" in body
    assert "| slots | token | `tags` | 5: `O`, `B-city`, `I-city`, `B-artist`, `I-artist` |" in body
    assert "No metrics recorded" in body and "Not recorded with this checkpoint" in body


def test_a_trained_run_card_holds_its_settings_data_and_dev_and_test_metrics(tiny_config):
    summary = train(tiny_config)
    best = Path(tiny_config.output_dir) / "best"
    meta, body = split_card((best / "README.md").read_text(encoding="utf-8"))
    assert "base_model" not in meta  # a local encoder folder is no Hub model
    assert f"the local folder {Path(tiny_config.encoder.name_or_path).name}" in body
    [result_intent, result_slots] = meta["model-index"][0]["results"]
    assert result_intent["task"] == {"type": "text-classification", "name": "intent"}
    assert result_intent["metrics"][0]["value"] == pytest.approx(summary["test"]["intent.accuracy"], abs=1e-4)
    assert result_slots["metrics"][0]["type"] == "f1"
    assert (
        f"| intent.accuracy | {summary['dev']['intent.accuracy']:.4f} | {summary['test']['intent.accuracy']:.4f} |"
        in body
    )
    assert f"saved after epoch {summary['best_epoch']}" in body and "- epochs: 2" in body
    assert "- train examples: 8" in body
    # Temperatures fitted on dev at the end of training: kept in best/, reported before/after on test.
    fitted = summary["calibration_on_dev"]["intent"]
    assert MultiTaskModel.from_pretrained(best).tasks["intent"].temperature == fitted["temperature"]
    assert {"intent.ece", "intent.ece_uncalibrated"} <= set(summary["test"])  # the CRF slot head keeps its scores
    assert f"- intent: temperature {fitted['temperature']}; ECE " in body and "on dev" in body
    # `mtst calibrate` rewrites the card: it keeps what training knew and adds the thresholds it picked.
    from typer.testing import CliRunner

    from mtst.cli import app

    result = CliRunner().invoke(
        app, ["calibrate", str(best), "--data-dir", tiny_config.data.dir, "--intent-threshold", "0.4"]
    )
    assert result.exit_code == 0, result.output
    _, rewritten = split_card((best / "README.md").read_text(encoding="utf-8"))
    assert f"saved after epoch {summary['best_epoch']}" in rewritten and "| intent.accuracy |" in rewritten
    assert "- intent: `nlu_fallback` under confidence 0.4" in rewritten
    # The dataset folder's name only: the card travels, the machine's file layout stays home.
    data_dir = Path(tiny_config.data.dir)
    assert f"`{data_dir.name}`" in body and str(data_dir.parent) not in body


def test_a_card_of_an_old_checkpoint_says_what_is_unknown(tiny_checkpoint):
    config = read_checkpoint(tiny_checkpoint).config.model_copy(update={"data": None})
    _, body = split_card(render_model_card(config, CardFacts()))
    assert "Not recorded (a checkpoint written by an older mtst)" in body


def test_a_long_label_list_is_cut_in_the_card(tiny_checkpoint):
    from mtst.tasks import make_task

    config = read_checkpoint(tiny_checkpoint).config
    many = make_task("topic", "sentence", "label", [f"label{i}" for i in range(50)])
    _, body = split_card(render_model_card(config.model_copy(update={"tasks": [many]}), CardFacts()))
    assert "`label39` and 10 more |" in body and "label40" not in body


def test_the_card_does_not_stop_the_checkpoint_from_loading(tiny_checkpoint):
    assert set(MultiTaskModel.from_pretrained(tiny_checkpoint).tasks) == {"intent", "slots"}


def test_the_packaged_encoder_is_named_by_its_hub_id(tiny_checkpoint):
    config = read_checkpoint(tiny_checkpoint).config
    encoder = config.encoder.model_copy(update={"name": "all-MiniLM-L6-v2"})
    meta, _ = split_card(render_model_card(config.model_copy(update={"encoder": encoder}), CardFacts()))
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_a_label_holding_a_pipe_keeps_the_table_whole(tiny_checkpoint):
    from mtst.tasks import make_task

    config = read_checkpoint(tiny_checkpoint).config
    piped = make_task("topic", "sentence", "label", ["a|b", "c"])
    _, body = split_card(render_model_card(config.model_copy(update={"tasks": [piped]}), CardFacts()))
    assert "| topic | sentence | `label` | 2: `a\\|b`, `c` |" in body


def test_a_damaged_facts_file_costs_the_card_its_history_not_the_checkpoint_its_use(tiny_checkpoint, tmp_path):
    import shutil

    copy = tmp_path / "best"
    shutil.copytree(tiny_checkpoint, copy)
    (copy / "model_card.json").write_text("{not json")
    model = MultiTaskModel.from_pretrained(copy)
    model.save_settings(copy, CardFacts(test={"intent.accuracy": 0.5}))
    _, body = split_card((copy / "README.md").read_text(encoding="utf-8"))
    assert "| intent.accuracy | — | 0.5000 |" in body
    assert json.loads((copy / "model_card.json").read_text())["test"] == {"intent.accuracy": 0.5}


def test_the_facts_file_holds_no_nan(tiny_checkpoint, tmp_path):
    from mtst.model.card import card_files

    config = read_checkpoint(tiny_checkpoint).config
    facts = json.loads(card_files(config, CardFacts(dev={"slots.loss": float("nan")}))["model_card.json"])
    assert facts["dev"] == {"slots.loss": None}
