import pytest

from mtst.data.example import Example
from mtst.evaluation.metrics import compute_metrics, headline
from mtst.tasks import make_task
from mtst.tasks.multilabel import MultilabelPrediction
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


def test_several_intents_are_scored_as_the_multi_intent_benchmarks_score_them():
    """MixATIS / MixSNIPS convention (AGIF's `Evaluator.intent_acc` / `semantic_acc`, conlleval slot F1): intent
    accuracy needs the exact set, overall accuracy the exact set and every tag; an intent or tag train never
    showed stays in gold and counts as an error."""
    tasks = {
        "intent": make_task("intent", "multilabel", "label", ("A", "B")),
        "slots": make_task("slots", "token", "tags", ("O", "B-x", "I-x", "B-y")),
    }
    examples = [
        _example(["B-x", "I-x", "O"], "A#B"),  # all right, the set in another order
        _example(["B-y", "O"], "A#Unseen"),  # an intent train never showed: the set is wrong
        _example(["O", "B-x"], "A"),  # one intent too many
        _example(["B-z", "O"], "B"),  # a tag train never showed: a missed entity
        _example(["B-x", "I-x"], "B"),  # I-x opening a span: conlleval's chunk is right, the tags are not
    ]
    predicted = [
        ({"B": 0.9, "A": 0.8}, ["B-x", "I-x", "O"]),
        ({"A": 0.9, "B": 0.1}, ["B-y", "O"]),
        ({"A": 0.9, "B": 0.7}, ["O", "B-x"]),
        ({"A": 0.1, "B": 0.9}, ["O", "O"]),
        ({"A": 0.2, "B": 0.6}, ["I-x", "I-x"]),
    ]
    predictions = [
        {"intent": MultilabelPrediction(scores), "slots": TokenPrediction(tags, [1.0] * len(tags))}
        for scores, tags in predicted
    ]
    metrics = compute_metrics(tasks, examples, predictions)
    assert metrics["intent"]["accuracy"] == pytest.approx(3 / 5)  # intent acc: examples 1, 4, 5
    assert metrics["sentence_accuracy"] == pytest.approx(1 / 5)  # overall: example 1 only
    # Gold entities x, y, x, z, x (5); predicted x, y, x, x (4), all right: P 1, R 4/5.
    assert metrics["slots"]["precision"] == 1.0 and metrics["slots"]["recall"] == pytest.approx(4 / 5)
    assert metrics["slots"]["f1"] == pytest.approx(8 / 9)
    assert metrics["intent"]["report"]["Unseen"]["support"] == 1 and metrics["slots"]["report"]["z"]["support"] == 1
