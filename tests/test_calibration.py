"""Confidence a user can act on: temperature scaling, thresholds with a fallback label, `mtst calibrate`."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mtst.calibration.temperature import expected_calibration_error, fit_temperature
from mtst.calibration.thresholds import apply_thresholds, entity_f1, pick_entity_thresholds, threshold_settings
from mtst.cli import app
from mtst.data.example import Example
from mtst.errors import ConfigError
from mtst.inference.predictor import Predictor
from mtst.integrations.rasa import parse_result
from mtst.model.multitask import MultiTaskModel
from mtst.tasks import make_task
from mtst.tasks.sentence import SentencePrediction
from mtst.tasks.token import TokenPrediction

runner = CliRunner()
TAGS = ("O", "B-city", "I-city", "B-artist", "I-artist")


def sampled(temperature: float, n: int = 4000, labels: int = 5):
    """Logits, and gold labels drawn from softmax(logits / temperature): the temperature that fits is known."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(n, labels, generator=generator) * 4
    gold = torch.multinomial((logits / temperature).softmax(-1), 1, generator=generator).squeeze(1)
    return logits, gold


def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with():
    logits, gold = sampled(2.5)
    temperature = fit_temperature(logits, gold)
    assert temperature == pytest.approx(2.5, rel=0.1)
    assert expected_calibration_error(logits, gold, temperature) < expected_calibration_error(logits, gold) / 3


def test_ece_is_zero_when_confidence_matches_accuracy_and_the_gap_otherwise():
    certain = torch.tensor([[10.0, -10.0], [-10.0, 10.0]])
    assert expected_calibration_error(certain, torch.tensor([0, 1])) == pytest.approx(0, abs=1e-6)
    assert expected_calibration_error(certain, torch.tensor([1, 0])) == pytest.approx(1, abs=1e-6)
    assert fit_temperature(torch.empty(0, 2), torch.empty(0, dtype=torch.long)) == 1.0


def test_a_temperature_changes_scores_never_labels_or_tags(tiny_checkpoint):
    texts = ["what is the weather in paris", "play music by queen"]
    plain = Predictor.from_checkpoint(tiny_checkpoint, device="cpu")
    tempered = Predictor.from_checkpoint(tiny_checkpoint, device="cpu")
    for name, task in tempered.model.tasks.items():
        tempered.model.tasks[name] = task.model_copy(update={"temperature": 4.0})
    before, after = plain.predict(texts), tempered.predict(texts)
    assert [r["label"] for r in before] == [r["label"] for r in after]
    assert all(a["score"] < b["score"] for a, b in zip(after, before, strict=True))
    assert [[e["label"] for e in r["entities"]] for r in before] == [[e["label"] for e in r["entities"]] for r in after]


def test_a_checkpoint_without_calibration_loads_with_temperature_1_and_no_thresholds():
    model = MultiTaskModel.from_pretrained(Path(__file__).parent / "data" / "checkpoint_v2")
    assert {task.temperature for task in model.tasks.values()} == {1.0}
    assert model.tasks["intent"].confidence_threshold is None and model.tasks["slots"].entity_thresholds == {}


def intent_task(**options):
    return make_task("intent", "sentence", "label", ("GetWeather", "PlayMusic"), **options)


def prediction(first: float) -> SentencePrediction:
    return SentencePrediction("GetWeather", first, (("GetWeather", first), ("PlayMusic", 1 - first)))


@pytest.mark.parametrize(
    ("options", "score", "label"),
    [
        ({}, 0.51, "GetWeather"),
        ({"confidence_threshold": 0.7}, 0.69, "nlu_fallback"),
        ({"confidence_threshold": 0.7}, 0.7, "GetWeather"),
        ({"ambiguity_margin": 0.2}, 0.59, "nlu_fallback"),  # 0.59 - 0.41 = 0.18 < 0.2
        ({"ambiguity_margin": 0.2}, 0.61, "GetWeather"),
        ({"confidence_threshold": 0.9, "fallback_label": "out_of_scope"}, 0.8, "out_of_scope"),
    ],
)
def test_an_unsure_intent_falls_back_as_rasas_fallback_classifier_does(options, score, label):
    result = {"text": "x"}
    intent_task(**options).add_to_json(result, Example.from_text("x"), prediction(score), first=True)
    assert result["label"] == label and result["score"] == score
    assert result.get("fallback_from") == (None if label == "GetWeather" else "GetWeather")


def test_the_rasa_parse_of_a_fallback_leads_with_the_fallback_intent():
    result = {"text": "x"}
    task = intent_task(confidence_threshold=0.9)
    task.add_to_json(result, Example.from_text("x"), prediction(0.6), first=True)
    task.add_ranking(result, prediction(0.6), True, 10)
    parsed = parse_result(result)
    assert parsed["intent"] == {"name": "nlu_fallback", "confidence": 0.6}
    assert [entry["name"] for entry in parsed["intent_ranking"]] == ["nlu_fallback", "GetWeather", "PlayMusic"]


def test_an_entity_under_its_types_threshold_is_not_given():
    task = make_task("slots", "token", "tags", TAGS, entity_thresholds={"city": 0.8})
    example = Example.from_text("queen in paris")
    tokens = TokenPrediction(["B-artist", "O", "B-city"], [0.5, 0.9, 0.7])
    result = {}
    task.add_to_json(result, example, tokens, first=True)
    assert [e["text"] for e in result["entities"]] == ["queen"]  # artist has no threshold; paris 0.7 < 0.8


def test_thresholds_from_the_command_line_go_on_the_first_task_of_each_kind(tmp_path):
    tasks = {"intent": intent_task(), "slots": make_task("slots", "token", "tags", TAGS)}
    (tmp_path / "t.yaml").write_text("city: 0.6\n")
    apply_thresholds(tasks, threshold_settings(0.5, 0.1, "fallback", tmp_path / "t.yaml"))
    intent = tasks["intent"]
    assert (intent.confidence_threshold, intent.ambiguity_margin, intent.fallback_label) == (0.5, 0.1, "fallback")
    assert tasks["slots"].entity_thresholds == {"city": 0.6}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "town: 0.6\n",
            "t.yaml: task 'slots': entity_thresholds: unknown entity type 'town'; the types are artist, city",
        ),
        ("city: 1.6\n", "t.yaml: task 'slots': entity_thresholds: 'city' is 1.6; a threshold lies in 0..1"),
        ("city: high\n", 't.yaml: city: the threshold must be a number in 0..1, got "high"'),
        ("- city\n", "t.yaml: expected a mapping of entity type to threshold"),
        ("{city: [\n", "t.yaml: not JSON or YAML"),
    ],
)
def test_a_bad_threshold_file_is_one_line_naming_the_file_and_the_problem(tmp_path, content, message):
    (tmp_path / "t.yaml").write_text(content)
    tasks = {"slots": make_task("slots", "token", "tags", TAGS)}
    with pytest.raises(ConfigError) as caught:
        apply_thresholds(tasks, threshold_settings(entity_thresholds=tmp_path / "t.yaml"))
    assert str(caught.value).startswith(str(tmp_path / message.split(":")[0]))
    assert message.split(": ", 1)[1] in str(caught.value) and "\n" not in str(caught.value)


def test_per_type_thresholds_are_picked_where_they_raise_f1():
    # city spans scored under 0.5 are wrong, over it right; artist spans are all right.
    gold = [["B-city", "O", "B-artist"], ["O", "O", "B-artist"], ["B-city", "O", "O"]]
    predicted = [
        TokenPrediction(["B-city", "O", "B-artist"], [0.9, 1.0, 0.3]),
        TokenPrediction(["B-city", "O", "B-artist"], [0.3, 1.0, 0.35]),  # a spurious city, scored low
        TokenPrediction(["B-city", "O", "O"], [0.8, 1.0, 1.0]),
    ]
    thresholds = pick_entity_thresholds(gold, predicted)
    assert thresholds == {"city": 0.35}  # the lowest candidate above the spurious 0.3; artist keeps all
    spans = [{(0, 0, "city"), (2, 2, "artist")}, {(2, 2, "artist")}, {(0, 0, "city")}]
    scored = [
        [((0, 0, "city"), 0.9), ((2, 2, "artist"), 0.3)],
        [((0, 0, "city"), 0.3), ((2, 2, "artist"), 0.35)],
        [((0, 0, "city"), 0.8)],
    ]
    assert entity_f1(spans, scored, thresholds) == 1.0 > entity_f1(spans, scored, {})


@pytest.fixture
def checkpoint_copy(tiny_checkpoint, tmp_path) -> Path:
    copy = tmp_path / "best"
    shutil.copytree(tiny_checkpoint, copy)
    return copy


def test_mtst_calibrate_writes_temperatures_and_thresholds_into_the_checkpoint(checkpoint_copy, toy_data_dir):
    result = runner.invoke(
        app, ["calibrate", str(checkpoint_copy), "--data-dir", str(toy_data_dir), "--intent-threshold", "0.6", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    config = json.loads((checkpoint_copy / "config.json").read_text())
    intent, slots = config["tasks"]
    assert intent["temperature"] == report["temperature"]["intent"]["temperature"] != 1.0
    assert slots["temperature"] == report["temperature"]["slots"]["temperature"]
    assert intent["confidence_threshold"] == 0.6
    assert slots["entity_thresholds"] == report["entity_thresholds"]["slots"]["thresholds"]
    fitted = report["temperature"]["intent"]
    assert fitted["ece"] <= fitted["ece_uncalibrated"]
    assert report["entity_thresholds"]["slots"]["f1"] >= report["entity_thresholds"]["slots"]["f1_before"]
    assert f"intent: temperature {intent['temperature']}" in (checkpoint_copy / "README.md").read_text()
    # The same checkpoint, read back by every path: predict gives what the Predictor gives.
    predicted = runner.invoke(app, ["predict", str(checkpoint_copy), "weather in paris", "--json"])
    assert json.loads(predicted.stdout) == Predictor.from_checkpoint(checkpoint_copy).predict(["weather in paris"])[0]
    model = MultiTaskModel.from_pretrained(checkpoint_copy)
    assert model.tasks["intent"].temperature == intent["temperature"]


def test_mtst_evaluate_reports_ece_before_and_after(checkpoint_copy, toy_data_dir):
    runner.invoke(app, ["calibrate", str(checkpoint_copy), "--data-dir", str(toy_data_dir)])
    result = runner.invoke(app, ["evaluate", str(checkpoint_copy), "--data-dir", str(toy_data_dir), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["intent"]["ece"] <= metrics["intent"]["ece_uncalibrated"]
    assert {"ece", "ece_uncalibrated"} <= set(metrics["slots"])


def test_predict_takes_an_intent_threshold_and_refuses_a_bad_one(tiny_checkpoint, tmp_path):
    result = runner.invoke(
        app, ["predict", str(tiny_checkpoint), "weather in paris", "--json", "--intent-threshold", "1"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["label"] == "nlu_fallback"
    bad = runner.invoke(app, ["predict", str(tiny_checkpoint), "x", "--intent-threshold", "1.5"])
    assert bad.exit_code == 2 and "Invalid value for '--intent-threshold'" in bad.output


def test_serve_refuses_a_threshold_file_naming_an_unknown_type(tiny_checkpoint, tmp_path):
    (tmp_path / "t.json").write_text('{"town": 0.5}')
    result = runner.invoke(app, ["serve", str(tiny_checkpoint), "--entity-thresholds", str(tmp_path / "t.json")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {tmp_path / 't.json'}: task 'slots': entity_thresholds: unknown entity type 'town'; "
        "the types are artist, city"
    )


def test_serve_reports_the_thresholds_in_effect_in_info(tiny_checkpoint, monkeypatch):
    import uvicorn
    from fastapi.testclient import TestClient

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda server, **options: started.update(app=server))
    result = runner.invoke(
        app, ["serve", str(tiny_checkpoint), "--intent-threshold", "0.9", "--ambiguity-margin", "0.1"]
    )
    assert result.exit_code == 0, result.output
    with TestClient(started["app"]) as client:
        confidence = client.get("/info").json()["confidence"]
        parsed = client.post("/model/parse", json={"text": "weather in paris"}).json()
    assert confidence["intent"] == {
        "temperature": 1.0,
        "confidence_threshold": 0.9,
        "ambiguity_margin": 0.1,
        "fallback_label": "nlu_fallback",
    }
    assert confidence["slots"] == {"temperature": 1.0, "entity_thresholds": {}}
    assert parsed["intent"]["name"] == "nlu_fallback"  # the random model is never 90% sure


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["calibrate", "{checkpoint}"], "error: no data directory: pass --data-dir or set MTST_DATA_DIR"),
        (
            ["calibrate", "{missing}", "--data-dir", "{data}"],
            "error: {missing}: not an mtst checkpoint (no config.json)",
        ),
    ],
)
def test_calibrate_refuses_with_one_line(arguments, message, tiny_checkpoint, toy_data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("MTST_DATA_DIR", raising=False)
    places = {"checkpoint": tiny_checkpoint, "missing": tmp_path / "nothing", "data": toy_data_dir}
    result = runner.invoke(app, [argument.format(**places) for argument in arguments])
    assert result.exit_code == 2 and result.output.strip() == message.format(**places)


def test_every_tasks_logits_come_from_one_pass_of_the_encoder(tiny_checkpoint):
    from mtst.calibration.temperature import collect_logits

    model = MultiTaskModel.from_pretrained(tiny_checkpoint)
    calls, forward = [], model.forward
    model.forward = lambda *args, **kwargs: calls.append(1) or forward(*args, **kwargs)
    examples = [Example.from_words(["weather", "in", "paris"], {"label": "GetWeather", "tags": ("O", "O", "B-city")})]
    collected = collect_logits(model, examples * 3, ["intent", "slots"])
    assert len(calls) == 1
    assert collected["intent"][0].shape == (3, 2) and collected["intent"][1].tolist() == [0, 0, 0]
    assert collected["slots"][0].shape == (9, 5) and collected["slots"][1].tolist() == [0, 0, 1] * 3


@pytest.mark.parametrize(
    ("task", "field", "value", "problem"),
    [
        (0, "confidence_threshold", 2, "task 'intent': confidence_threshold: Input should be less than or equal to 1"),
        (0, "temperature", 0, "task 'intent': temperature: Input should be greater than 0"),
        (1, "entity_thresholds", {"town": 0.5}, "task 'slots': entity_thresholds: unknown entity type 'town'"),
    ],
)
def test_a_checkpoint_with_a_bad_calibration_is_refused_with_one_line(checkpoint_copy, task, field, value, problem):
    from mtst.errors import CheckpointError

    path = checkpoint_copy / "config.json"
    config = json.loads(path.read_text())
    config["tasks"][task][field] = value
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as caught:
        MultiTaskModel.from_pretrained(checkpoint_copy)
    assert str(caught.value).startswith(f"{path}: {problem}") and "\n" not in str(caught.value)


@pytest.mark.slow
def test_the_onnx_backend_gives_the_calibrated_scores_and_thresholds_too(checkpoint_copy, toy_data_dir):
    pytest.importorskip("onnxruntime", reason="the onnx backend needs the export extra")
    calibrated = runner.invoke(app, ["calibrate", str(checkpoint_copy), "--data-dir", str(toy_data_dir)])
    assert calibrated.exit_code == 0, calibrated.output
    assert runner.invoke(app, ["export", str(checkpoint_copy), "--format", "onnx"]).exit_code == 0
    texts = ["what is the weather in paris", "play music by queen"]
    torch_results = Predictor.from_checkpoint(checkpoint_copy, device="cpu", ranking=2).predict(texts)
    onnx_results = Predictor.from_checkpoint(checkpoint_copy, backend="onnx", ranking=2).predict(texts)
    for ours, theirs in zip(onnx_results, torch_results, strict=True):
        assert ours["label"] == theirs["label"] and ours["score"] == pytest.approx(theirs["score"], abs=1e-3)
        assert [e["label"] for e in ours["entities"]] == [e["label"] for e in theirs["entities"]]
