"""A checkpoint describes itself: a copy of best/ alone evaluates, predicts and serves as the original does."""

from __future__ import annotations

import json
import shutil

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mtst.cli import app
from mtst.errors import CheckpointError
from mtst.model.multitask import MultiTaskModel, read_checkpoint

runner = CliRunner()
TEXTS = ["stocks fell sharply", "the team won the cup", "a quiet day"]


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory, tiny_encoder_dir):
    """A run on a CSV corpus whose settings (text column, label codes with names) only the run knows."""
    root = tmp_path_factory.mktemp("csv-run")
    rows = "code,content\n" + "".join(f"{code},{text}\n" for code, text in [("1", TEXTS[0]), ("2", TEXTS[1])] * 4)
    for split in ("train", "dev", "test"):
        (root / "data").mkdir(exist_ok=True)
        (root / "data" / f"{split}.csv").write_text(rows)
    config = root / "topics.yaml"
    config.write_text(
        f"encoder: {{name_or_path: {tiny_encoder_dir}, max_length: 32}}\n"
        "data: {text_column: content, label_column: code, label_names: {'1': Business, '2': Sports}}\n"
        "tasks: [{name: topic, type: sentence}]\ntrain: {epochs: 1, batch_size: 4}\n"
    )
    args = ["train", "-c", str(config), "--data-dir", str(root / "data"), "-o", str(root / "run")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    copy = tmp_path_factory.mktemp("elsewhere") / "copied"
    shutil.copytree(root / "run" / "best", copy)
    return root, root / "run" / "best", copy


def _evaluate(checkpoint, data) -> dict:
    result = runner.invoke(app, ["evaluate", str(checkpoint), "--data-dir", str(data), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_config_json_holds_encoder_data_settings_and_labels(csv_run, tiny_encoder_dir):
    _, best, _ = csv_run
    config = json.loads((best / "config.json").read_text())
    assert config["format_version"] == 2
    assert config["encoder"] == {"name": str(tiny_encoder_dir), "max_length": 32, "pooling": "mean"}
    assert config["data"]["text_column"] == "content" and config["data"]["label_names"] == {
        "1": "Business",
        "2": "Sports",
    }
    assert config["tasks"][0]["labels"] == ["Business", "Sports"]


def test_a_copied_checkpoint_evaluates_and_predicts_the_same(csv_run):
    root, best, copy = csv_run
    assert _evaluate(copy, root / "data") == _evaluate(best, root / "data")
    predicted = {}
    for checkpoint in (best, copy):
        result = runner.invoke(app, ["predict", str(checkpoint), *TEXTS, "--json"])
        assert result.exit_code == 0, result.output
        predicted[checkpoint] = [json.loads(line) for line in result.output.splitlines()]
    assert predicted[best] == predicted[copy] and {p["label"] for p in predicted[copy]} <= {"Business", "Sports"}


def test_a_copied_checkpoint_serves_the_same_predictions_and_info(csv_run):
    from mtst.serve.app import create_app
    from mtst.serve.loading import describe_checkpoint, load_predictor

    _, best, copy = csv_run
    answers = {}
    for checkpoint in (best, copy):
        with TestClient(create_app(load_predictor(checkpoint).predict, describe_checkpoint(checkpoint))) as client:
            info = client.get("/info").json()
            assert info.pop("model") == checkpoint.name  # the folder, whatever it is called
            answers[checkpoint] = (info, client.post("/predict", json={"texts": TEXTS}).json())
    assert answers[best] == answers[copy]
    assert answers[copy][0]["encoder"]["name"] is not None


def test_an_unknown_format_version_is_one_clear_line(csv_run, tmp_path):
    _, best, _ = csv_run
    folder = tmp_path / "future"
    shutil.copytree(best, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "format_version": 7}))
    with pytest.raises(CheckpointError, match="format_version 7 is not one this mtst reads \\(1, 2\\)"):
        read_checkpoint(folder)
    result = runner.invoke(app, ["predict", str(folder), "hello"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


def test_a_format_1_checkpoint_still_loads(tiny_checkpoint, tmp_path):
    """Format 1 kept max_length and pooling at the top and every kind's options on every task."""
    folder = tmp_path / "old"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    tasks = [{"crf": False, "condition_on": None, "allowed_tags": None, **task} for task in config["tasks"]]
    old = {"format_version": 1, "max_length": 64, "pooling": "mean", "tasks": tasks}
    (folder / "config.json").write_text(json.dumps(old))
    model = MultiTaskModel.from_pretrained(folder)
    assert model.max_length == 64 and model.info.name is None and list(model.tasks) == ["intent", "slots"]
