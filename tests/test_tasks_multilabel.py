"""The `multilabel` kind: label sets read from three formats, sigmoid + BCE, a threshold tuned on dev, set
metrics, and the kind through train, compare, evaluate, predict, serve and ONNX export."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mtst.cli import app
from mtst.config import load_config
from mtst.data import load_splits
from mtst.data.example import Example
from mtst.data.formats.csv_rows import read_csv
from mtst.data.formats.jointbert import read_jointbert
from mtst.data.formats.jsonl import read_jsonl
from mtst.data.labels import IGNORE_ID
from mtst.errors import ConfigError, DataError
from mtst.tasks import build_labels, make_task, task_config
from mtst.tasks.multilabel import MultilabelPrediction, micro_f1
from tests.conftest import SHARED_DATA, TOY_SENTENCES, write_jointbert

runner = CliRunner()
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# The toy corpus with two utterances that carry two intents each, joined by `#` as ATIS writes them.
MULTI_SENTENCES = [
    *TOY_SENTENCES,
    ("play queen and what is the weather", "O B-artist O O O O O", "GetWeather#PlayMusic"),
    ("weather in paris then play jazz", "O O B-city O O B-genre", "PlayMusic#GetWeather"),
]
TASK = make_task("intent", "multilabel", "label", ("GetWeather", "PlayMusic", "SearchFlight"))


def test_label_sets_from_jointbert_jsonl_and_csv(tmp_path):
    write_jointbert(tmp_path / "jb", MULTI_SENTENCES)
    joined = read_jointbert(tmp_path / "jb")[-1].annotations["label"]
    assert TASK.gold(joined) == {"GetWeather", "PlayMusic"}
    (tmp_path / "a.jsonl").write_text('{"text": "book a flight and a hotel", "labels": ["flight", "hotel"]}\n')
    [record] = read_jsonl(tmp_path / "a.jsonl")
    assert record.annotations["labels"] == frozenset({"flight", "hotel"})
    (tmp_path / "a.csv").write_text('text,label\nbook a flight and a hotel,"flight|hotel"\nhi,greet\n')
    csv_task = task_config(name="intents", type="multilabel", field="label", separator="|")
    assert build_labels(csv_task, read_csv(tmp_path / "a.csv")) == ["flight", "greet", "hotel"]
    (tmp_path / "b.jsonl").write_text('{"text": "hi", "labels": "greet"}\n')
    with pytest.raises(DataError, match=r"b\.jsonl:1: `labels` must be a list of non-empty labels"):
        read_jsonl(tmp_path / "b.jsonl")


def test_a_train_split_whose_label_sets_are_all_empty_says_so(tmp_path):
    (tmp_path / "t.jsonl").write_text('{"text": "hi", "labels": []}\n{"text": "yo", "labels": []}\n')
    config = task_config(name="intents", type="multilabel")
    with pytest.raises(DataError, match=r"t\.jsonl: task 'intents': every `labels` annotation of the train split is"):
        build_labels(config, read_jsonl(tmp_path / "t.jsonl"))
    (tmp_path / "u.jsonl").write_text('{"text": "hi"}\n')
    with pytest.raises(DataError, match="task 'intents' found no `labels` annotation in the train split"):
        build_labels(config, read_jsonl(tmp_path / "u.jsonl"))


def test_config_takes_the_kind_and_refuses_other_kinds_options():
    config = load_config(None, tasks=[{"name": "intent", "type": "multilabel", "threshold": 0.4}])
    assert config.tasks[0].threshold == 0.4 and config.tasks[0].annotation == "labels"
    with pytest.raises(ConfigError, match="`crf` is not an option of multilabel tasks; it applies to token tasks"):
        load_config(None, tasks=[{"name": "intent", "type": "multilabel", "crf": True}])


def test_labels_encode_as_multi_hot_rows_and_unlabelled_rows_are_ignored_by_the_loss():
    encoded = TASK.encode("PlayMusic#GetWeather#Unseen", word_ids=[])
    assert encoded == [1.0, 1.0, 0.0]
    batch = TASK.collate([encoded, None], width=5)
    assert batch.tolist() == [[1.0, 1.0, 0.0], [IGNORE_ID] * 3]
    head = TASK.head(SimpleNamespace(hidden_size=4, num_hidden_layers=1)).eval()
    features = {"sentence_embedding": torch.randn(2, 4)}
    logits, loss = head(features, batch)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[:1], batch[:1], reduction="sum")
    assert logits.shape == (2, 3) and torch.allclose(loss, expected)
    assert head(features, torch.full((2, 3), float(IGNORE_ID)))[1] is None


def test_decoding_gives_the_labels_over_the_threshold_or_the_best_one():
    prediction = MultilabelPrediction({"GetWeather": 0.9, "PlayMusic": 0.6, "SearchFlight": 0.1})
    assert TASK.chosen(prediction) == ["GetWeather", "PlayMusic"]
    assert TASK.chosen(prediction, threshold=0.95) == ["GetWeather"]  # at least one
    strict = TASK.model_copy(update={"at_least_one": False})
    assert strict.chosen(prediction, threshold=0.95) == []
    result = {}
    TASK.add_to_json(result, Example.from_text("x"), prediction, first=True)
    assert result == {"labels": [{"label": "GetWeather", "score": 0.9}, {"label": "PlayMusic", "score": 0.6}]}
    assert TASK.describe(result, first=True) == "GetWeather (0.90), PlayMusic (0.60)"


def test_metrics_by_hand():
    gold = [frozenset({"GetWeather"}), frozenset({"GetWeather", "PlayMusic"}), frozenset({"Unseen"})]
    predicted = [frozenset({"GetWeather"}), frozenset({"GetWeather"}), frozenset({"PlayMusic"})]
    metrics = TASK.metrics(gold, predicted)
    # TP 2 (GetWeather twice), FP 1 (PlayMusic), FN 2 (PlayMusic, Unseen): micro F1 = 4 / (4 + 3).
    assert metrics["micro_f1"] == pytest.approx(4 / 7) == micro_f1(gold, predicted)
    assert metrics["accuracy"] == pytest.approx(1 / 3)  # exact match
    # Per label F1: GetWeather 1, PlayMusic 0, SearchFlight 0 (never seen), Unseen 0.
    assert metrics["macro_f1"] == pytest.approx(1 / 4)
    assert metrics["report"]["Unseen"]["support"] == 1 and metrics["threshold"] == 0.5


def test_the_threshold_is_tuned_on_dev_unless_fixed():
    gold = [frozenset({"GetWeather", "PlayMusic"}), frozenset({"GetWeather"})]
    predictions = [
        MultilabelPrediction({"GetWeather": 0.8, "PlayMusic": 0.32, "SearchFlight": 0.1}),
        MultilabelPrediction({"GetWeather": 0.7, "PlayMusic": 0.2, "SearchFlight": 0.1}),
    ]
    tuned = TASK.tuned(gold, predictions)
    # 0.25 and 0.3 both admit PlayMusic at 0.32 and not at 0.2 (micro F1 1.0); the tie goes to the one nearer 0.5.
    assert tuned.decision_threshold == 0.3
    fixed = make_task("intent", "multilabel", "label", TASK.labels, threshold=0.5, decision_threshold=0.5)
    assert fixed.tuned(gold, predictions) is fixed


def test_the_threshold_can_be_tuned_for_exact_sets_instead_of_micro_f1():
    # PlayMusic at 0.4 everywhere: right in the first sentence only. Admitting it (threshold <= 0.4) gets 5 labels
    # right for 2 wrong (micro F1 10/12) but 1 set of 3; leaving it out misses 2 labels (micro F1 6/8), 2 sets of 3.
    gold = [
        frozenset({"GetWeather", "PlayMusic", "SearchFlight"}),
        frozenset({"GetWeather"}),
        frozenset({"GetWeather"}),
    ]
    predictions = [
        MultilabelPrediction({"GetWeather": 0.9, "PlayMusic": 0.4, "SearchFlight": 0.4}),
        MultilabelPrediction({"GetWeather": 0.9, "PlayMusic": 0.4, "SearchFlight": 0.1}),
        MultilabelPrediction({"GetWeather": 0.9, "PlayMusic": 0.4, "SearchFlight": 0.1}),
    ]
    assert TASK.tuned(gold, predictions).decision_threshold == 0.4
    exact = TASK.model_copy(update={"tune_for": "accuracy"})
    assert exact.tuned(gold, predictions).decision_threshold == 0.5
    with pytest.raises(ValueError, match="tune_for"):
        task_config(name="intent", type="multilabel", tune_for="macro_f1")


@pytest.fixture(scope="module")
def compared(tmp_path_factory, tiny_encoder_dir):
    """`mtst compare` of two strategies on a multilabel intent task beside a token task; each run is a
    normal training run whose best/ the other tests use."""
    root = tmp_path_factory.mktemp("multilabel")
    for split in ("train", "dev", "test"):
        write_jointbert(root / "data" / split, MULTI_SENTENCES)
    config = {
        "encoder": {"name_or_path": str(tiny_encoder_dir), "max_length": 32},
        "tasks": [{"name": "intent", "type": "multilabel", "field": "label"}, {"name": "slots", "type": "token"}],
        "train": {"epochs": 2, "batch_size": 4, "num_sample_predictions": 1},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    args = ["compare", "-c", str(root / "config.yaml"), "--data-dir", str(root / "data"), "--strategies", "full,frozen"]
    result = runner.invoke(app, [*args, "--output-dir", str(root / "compare")])
    assert result.exit_code == 0, result.output
    return root


def test_training_tunes_and_saves_the_threshold_and_compare_tabulates_the_kind(compared):
    best = compared / "compare" / "full" / "best"
    saved = json.loads((best / "config.json").read_text())["tasks"][0]
    summary = json.loads((compared / "compare" / "full" / "summary.json").read_text())
    assert saved["type"] == "multilabel" and saved["labels"] == ["GetWeather", "PlayMusic"]
    assert summary["dev"]["intent.threshold"] == saved["decision_threshold"]
    assert {"intent.accuracy", "intent.micro_f1", "intent.macro_f1"} <= set(summary["test"])
    table = (compared / "compare" / "comparison.md").read_text()
    assert "| strategy | intent | slots |" in table and "intent.micro_f1" in table


def test_evaluate_predict_and_serve_agree(compared):
    from mtst.inference.predictor import Predictor
    from mtst.serve.app import create_app
    from mtst.serve.loading import describe_checkpoint

    best = compared / "compare" / "full" / "best"
    result = runner.invoke(app, ["evaluate", str(best), "--data-dir", str(compared / "data"), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)["intent"]
    assert {"accuracy", "micro_f1", "macro_f1"} <= set(metrics) and "GetWeather" in metrics["report"]
    texts = ["play queen and what is the weather", "is it sunny"]
    result = runner.invoke(app, ["predict", str(best), *texts, "--json"])
    assert result.exit_code == 0, result.output
    predicted = [json.loads(line) for line in result.output.splitlines()]
    for row in predicted:
        assert row["labels"] and all(item["label"] in {"GetWeather", "PlayMusic"} for item in row["labels"])
        assert [item["score"] for item in row["labels"]] == sorted(
            (item["score"] for item in row["labels"]), reverse=True
        )
    predictor = Predictor.from_checkpoint(best, device="cpu")
    with TestClient(create_app(predictor.predict, describe_checkpoint(best))) as client:
        assert client.post("/predict", json={"texts": texts}).json() == predicted
        assert client.get("/info").json()["tasks"][0]["type"] == "multilabel"


@pytest.mark.slow
def test_onnx_export_matches_torch(compared, tmp_path):
    import shutil

    from mtst.inference.onnx import OnnxModel
    from mtst.inference.predictor import Predictor
    from mtst.model.multitask import MultiTaskModel
    from mtst.model.subtokens import word_ids_input

    best = tmp_path / "best"
    shutil.copytree(compared / "compare" / "full" / "best", best)
    result = runner.invoke(app, ["export", str(best), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    assert json.loads((best / "onnx_export.json").read_text())["outputs"]["intent"] == "float32 [batch, labels]"
    texts = [words for words, _, _ in MULTI_SENTENCES] + [""]
    torch_model, onnx_model = MultiTaskModel.from_pretrained(best), OnnxModel.from_checkpoint(best)
    batch = torch_model.tokenizer(texts, padding=True, return_tensors="pt")
    word_ids = word_ids_input(batch, len(texts))  # the default slot head pools first and last sub-tokens
    with torch.no_grad():
        expected = torch_model(batch["input_ids"], batch["attention_mask"], word_ids=word_ids).logits["intent"]
    got = onnx_model.forward(batch["input_ids"], batch["attention_mask"], word_ids=word_ids).logits["intent"]
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    onnx_labels = [[item["label"] for item in row["labels"]] for row in Predictor(onnx_model).predict(texts)]
    torch_labels = [[item["label"] for item in row["labels"]] for row in Predictor(torch_model).predict(texts)]
    assert onnx_labels == torch_labels


@pytest.mark.slow
@pytest.mark.parametrize(("name", "intents", "tags"), [("mixatis", 17, 111), ("mixsnips", 7, 72)])
def test_the_committed_multi_intent_configs_read_each_utterances_intents_as_a_set(name, intents, tags):
    if not (SHARED_DATA / name).is_dir():
        pytest.skip(f"../shared/data/{name} is not beside the checkout")
    config = load_config(CONFIGS / f"{name}.yaml", **{"data.dir": str(SHARED_DATA / name)})
    intent_config, slots_config = config.tasks
    assert (intent_config.type, slots_config.type, slots_config.crf) == ("multilabel", "token", True)
    splits = load_splits(config.data)
    labels = build_labels(intent_config, splits.train)
    # The counts of the data README: single intents, never their `#`-joined sets; tags with O.
    assert len(labels) == intents and not any("#" in label for label in labels)
    assert len(build_labels(slots_config, splits.train)) == tags
    if name == "mixatis":  # the test-only intent is gold in 108 test utterances, and outside the vocabulary
        task = make_task("intent", "multilabel", "label", labels)
        assert sum("atis_day_name" in task.gold(ex.annotations["label"]) for ex in splits.test) == 108
        assert "atis_day_name" not in labels
