"""A checkpoint written before the package was regrouped still loads and predicts what it predicted then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtst import MultiTaskModel, Predictor

DATA = Path(__file__).parent / "data"
CHECKPOINT = DATA / "checkpoint_v2"
TEXTS = ["play music by queen", "what is the weather in new york tomorrow", "will it rain in paris", "play"]


def without_scores(value):
    if isinstance(value, dict):
        return {key: without_scores(item) for key, item in value.items() if key != "score"}
    if isinstance(value, list):
        return [without_scores(item) for item in value]
    return value


def scores(value) -> list[float]:
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in ([item] if key == "score" else scores(item))]
    if isinstance(value, list):
        return [s for item in value for s in scores(item)]
    return []


def test_the_committed_format_2_checkpoint_predicts_as_it_did_when_written():
    expected = json.loads((DATA / "checkpoint_v2_predictions.json").read_text())
    predictions = Predictor.from_checkpoint(CHECKPOINT).predict(TEXTS)
    assert without_scores(predictions) == without_scores(expected)
    assert scores(predictions) == pytest.approx(scores(expected), abs=2e-4)


def test_the_committed_checkpoint_keeps_every_weight_name():
    from safetensors import safe_open

    model = MultiTaskModel.from_pretrained(CHECKPOINT)
    with safe_open(str(CHECKPOINT / "model.safetensors"), framework="pt") as handle:
        assert set(handle.keys()) == set(model.state_dict())
    assert model.tasks["slots"].crf and model.tasks["topics"].decision_threshold == 0.45


def test_a_checkpoint_from_before_subtoken_pooling_keeps_the_first_subtoken(tmp_path):
    """subtoken_pooling's default became first_last; a config.json written before the option existed was
    trained reading each word's first sub-token, and must load (and predict) as it did."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(CHECKPOINT, old)
    config = json.loads((old / "config.json").read_text())
    unset = [task for task in config["tasks"] if task.get("subtoken_pooling") == "first"]
    assert unset  # the committed checkpoint has a token task that reads the first sub-token
    for task in unset:
        del task["subtoken_pooling"], task["encoder_layers"]
    (old / "config.json").write_text(json.dumps(config))

    model = MultiTaskModel.from_pretrained(old)
    assert {model.tasks[task["name"]].subtoken_pooling for task in unset} == {"first"}
    expected = json.loads((DATA / "checkpoint_v2_predictions.json").read_text())
    assert without_scores(Predictor.from_checkpoint(old).predict(TEXTS)) == without_scores(expected)


def test_a_new_token_task_pools_first_and_last_subtokens_by_default():
    from mtst.tasks.token import TokenTask

    assert TokenTask(name="slots", labels=("O", "B-x", "I-x")).subtoken_pooling == "first_last"
