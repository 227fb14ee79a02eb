import pytest

from mtst.data.example import Example
from mtst.evaluation.metrics import compute_metrics, headline
from mtst.tasks import make_task
from mtst.tasks.sentence import SentencePrediction
from mtst.tasks.token import TokenPrediction

TASKS = {
    "intent": make_task("intent", "sentence", "label", ("A", "B")),
    "slots": make_task("slots", "token", "tags", ("O", "B-x", "I-x", "B-y")),
}


def _example(tags, label):
    return Example.from_words(["w"] * len(tags), {"tags": tuple(tags), "label": label})


def test_metrics_against_hand_computed_values():
    examples = [
        _example(["B-x", "I-x", "O"], "A"),  # all right
        _example(["B-x", "O", "B-y"], "B"),  # intent wrong, y missed
        _example(["O", "B-y", "O"], "Unseen"),  # gold label not in train: always wrong
    ]
    predictions = [
        {"intent": SentencePrediction("A", 0.9), "slots": TokenPrediction(["B-x", "I-x", "O"], [1] * 3)},
        {"intent": SentencePrediction("A", 0.6), "slots": TokenPrediction(["B-x", "O", "O"], [1] * 3)},
        {"intent": SentencePrediction("B", 0.7), "slots": TokenPrediction(["O", "B-y", "B-x"], [1] * 3)},
    ]
    metrics = compute_metrics(TASKS, examples, predictions)
    # gold entities: x, x, y, y (4); predicted: x, x, y, x (4); correct: x, x, y (3)
    assert metrics["slots"]["precision"] == pytest.approx(3 / 4)
    assert metrics["slots"]["recall"] == pytest.approx(3 / 4)
    assert metrics["slots"]["f1"] == pytest.approx(3 / 4)
    assert metrics["intent"]["accuracy"] == pytest.approx(1 / 3)
    assert metrics["sentence_accuracy"] == pytest.approx(1 / 3)
    assert metrics["score"] == pytest.approx((1 / 3 + 3 / 4) / 2)
    assert metrics["slots"]["report"]["x"]["support"] == 2
    assert metrics["intent"]["report"]["Unseen"]["recall"] == 0
    assert headline(metrics)["slots.f1"] == pytest.approx(0.75)
