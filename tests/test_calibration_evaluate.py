"""`mtst evaluate` scores the entities a user gets: the checkpoint's per-type entity thresholds applied as predict
applies them (`--no-thresholds`: every entity), saying which; the intent ECE with the stored temperature."""

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from mtst.calibration.temperature import collect_logits, expected_calibration_error
from mtst.cli import app
from mtst.data.example import Example
from mtst.evaluation.metrics import evaluate
from mtst.model.multitask import MultiTaskModel
from mtst.tasks import make_task
from mtst.tasks.sentence import SentencePrediction
from mtst.tasks.spans import confident, confident_tags, entities
from mtst.tasks.token import TokenPrediction
from tests.conftest import TOY_SENTENCES, write_own_predictions

runner = CliRunner()
TAGS = ("O", "B-city", "I-city", "B-artist", "I-artist")


@pytest.mark.parametrize(
    "thresholds", [{}, {"city": 0.55}, {"city": 0.56}, {"artist": 1.0}, {"city": 0.2, "artist": 0.9}]
)
def test_the_tags_kept_are_the_entities_predict_gives(thresholds):
    example = Example.from_words(["new", "york", "and", "queen", "berlin"])
    # city "new york" scores 0.55, artist "queen" 0.9, city "berlin" (an I- opening it) 0.2
    prediction = TokenPrediction(["B-city", "I-city", "O", "B-artist", "I-city"], [0.6, 0.5, 1.0, 0.9, 0.2])
    kept = confident_tags(prediction.tags, prediction.scores, thresholds)
    assert entities(example, TokenPrediction(kept, prediction.scores)) == confident(
        entities(example, prediction), thresholds
    )
    assert len(kept) == len(prediction.tags) and set(kept) - set(prediction.tags) <= {"O"}


def test_evaluate_drops_the_entities_under_their_types_threshold_before_scoring():
    tasks = {
        "intent": make_task("intent", "sentence", "label", ("GetWeather", "PlayMusic")),
        "slots": make_task("slots", "token", "tags", TAGS, entity_thresholds={"city": 1.0}),
    }
    examples = [
        Example.from_words(["weather", "in", "paris"], {"label": "GetWeather", "tags": ("O", "O", "B-city")}),
        Example.from_words(["play", "queen"], {"label": "PlayMusic", "tags": ("O", "B-artist")}),
    ]
    predicted = [
        {"intent": SentencePrediction("GetWeather", 0.9), "slots": TokenPrediction(["O", "O", "B-city"], [1, 1, 0.99])},
        {"intent": SentencePrediction("PlayMusic", 0.8), "slots": TokenPrediction(["O", "B-artist"], [1, 0.5])},
    ]
    model = SimpleNamespace(tasks=tasks)

    def run(model, examples, batch_size):
        return predicted, {}

    raw, _ = evaluate(model, examples, run=run)
    scored, returned = evaluate(model, examples, run=run, entity_thresholds=True)
    assert raw["slots"]["f1"] == 1.0 and raw["sentence_accuracy"] == 1.0
    assert scored["slots"]["report"]["city"]["recall"] == 0.0 and scored["slots"]["report"]["artist"]["recall"] == 1.0
    assert (scored["slots"]["precision"], scored["slots"]["recall"]) == (1.0, 0.5)
    assert scored["sentence_accuracy"] == 0.5 and scored["intent"] == raw["intent"]
    assert returned[0]["slots"].tags == ["O", "O", "O"] and predicted[0]["slots"].tags == ["O", "O", "B-city"]


@pytest.fixture
def checkpoint_copy(tiny_checkpoint, tmp_path) -> Path:
    copy = tmp_path / "best"
    shutil.copytree(tiny_checkpoint, copy)
    return copy


def store(checkpoint: Path, task: int, **fields) -> None:
    """Sets fields of one task in the checkpoint's config.json, as `mtst calibrate` stores them."""
    path = checkpoint / "config.json"
    config = json.loads(path.read_text())
    config["tasks"][task].update(fields)
    path.write_text(json.dumps(config))


def evaluated(checkpoint: Path, data_dir: Path, *options: str) -> dict:
    result = runner.invoke(app, ["evaluate", str(checkpoint), "--data-dir", str(data_dir), "--json", *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_evaluate_applies_the_stored_entity_thresholds_and_no_thresholds_restores_the_raw_scores(
    checkpoint_copy, tmp_path
):
    # Gold is the random model's own prediction: every entity right (cities in every sentence, two artists).
    data = write_own_predictions(checkpoint_copy, tmp_path / "own")
    raw = evaluated(checkpoint_copy, data)
    assert raw["entity_thresholds"] == {"applied": False, "stored": {}}
    assert raw["slots"]["f1"] == 1.0 and raw["slots"]["report"]["city"]["support"] > 0

    store(checkpoint_copy, 1, entity_thresholds={"city": 1.0})  # no city entity reaches 1.0
    applied = evaluated(checkpoint_copy, data, "--errors", str(tmp_path / "errors"))
    assert applied["entity_thresholds"] == {"applied": True, "stored": {"slots": {"city": 1.0}}}
    report = applied["slots"]["report"]
    assert report["city"]["recall"] == 0.0 and report["artist"] == raw["slots"]["report"]["artist"]
    assert applied["slots"]["precision"] == 1.0 and applied["slots"]["recall"] < 1.0
    assert applied["intent"] == raw["intent"]
    errors = json.loads((tmp_path / "errors" / "errors.json").read_text())["tasks"]["slots"]["errors"]
    assert errors["counts"]["missed"] == report["city"]["support"]  # the analysis sees the entities scored

    restored = evaluated(checkpoint_copy, data, "--no-thresholds")
    assert restored.pop("entity_thresholds") == {"applied": False, "stored": {"slots": {"city": 1.0}}}
    raw.pop("entity_thresholds")
    assert restored == raw

    text = runner.invoke(app, ["evaluate", str(checkpoint_copy), "--data-dir", str(data)]).output
    assert "entity thresholds: applied, as predict applies them: slots: city 1.0" in text
    text = runner.invoke(app, ["evaluate", str(checkpoint_copy), "--data-dir", str(data), "--no-thresholds"]).output
    assert "entity thresholds: not applied (--no-thresholds): slots: city 1.0" in text


def test_a_checkpoint_without_calibration_is_scored_on_every_entity_and_says_so(tiny_checkpoint, toy_data_dir):
    metrics = evaluated(tiny_checkpoint, toy_data_dir)
    assert metrics["entity_thresholds"] == {"applied": False, "stored": {}}
    assert evaluated(tiny_checkpoint, toy_data_dir, "--no-thresholds") == metrics
    result = runner.invoke(app, ["evaluate", str(tiny_checkpoint), "--data-dir", str(toy_data_dir)])
    assert result.exit_code == 0, result.output
    assert "entity thresholds: none in the checkpoint (`mtst calibrate` picks them on dev); every entity scored" in (
        result.output
    )


def test_evaluate_gives_the_intent_ece_with_the_stored_temperature_beside_the_untempered(checkpoint_copy, toy_data_dir):
    store(checkpoint_copy, 0, temperature=4.0)
    metrics = evaluated(checkpoint_copy, toy_data_dir)
    examples = [
        Example.from_words(words.split(), {"label": label, "tags": tuple(tags.split())})
        for words, tags, label in TOY_SENTENCES
    ]
    logits, gold = collect_logits(MultiTaskModel.from_pretrained(checkpoint_copy), examples, ["intent"])["intent"]
    assert metrics["intent"]["ece"] == pytest.approx(expected_calibration_error(logits, gold, 4.0))
    assert metrics["intent"]["ece_uncalibrated"] == pytest.approx(expected_calibration_error(logits, gold))
    assert metrics["intent"]["ece"] != pytest.approx(metrics["intent"]["ece_uncalibrated"])
