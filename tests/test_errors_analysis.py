"""The error analysis: span categories counted by hand on made-up gold and predicted tags, and the CLI."""

import json

import pytest
from typer.testing import CliRunner

from mtst.cli import app
from mtst.data.example import Example
from mtst.evaluation.error_analysis import analyze, summary_lines
from mtst.tasks import make_task
from mtst.tasks.sentence import SentencePrediction, sentence_confusions
from mtst.tasks.spans import classify_spans, token_task_errors
from mtst.tasks.token import TokenPrediction
from tests.conftest import TOY_SENTENCES

# (gold tags, predicted tags); the categories of each are worked out by hand in the comments.
SENTENCES = [
    # city exact: correct; date read as time, same words: wrong_type; artist not found: missed
    ("B-city I-city O B-date O B-artist", "B-city I-city O B-time O O"),
    # city shifted one word left: wrong_boundary; a song where gold has nothing: spurious
    ("O B-city I-city O O", "B-city I-city O O B-song"),
    # a song overlapping an artist, other words: wrong_type_and_boundary
    ("B-artist I-artist O", "O B-song I-song"),
    # one gold city split in two predicted cities: two wrong_boundary
    ("B-city I-city", "B-city B-city"),
    # an I- tag opening an entity starts one, as conlleval and `mtst predict` read it: correct
    ("O B-x", "O I-x"),
]
GOLD = [gold.split() for gold, _ in SENTENCES]
PREDICTED = [predicted.split() for _, predicted in SENTENCES]


def test_each_predicted_span_gets_one_category_and_unmatched_gold_is_missed():
    judged = classify_spans([(0, 1, "city"), (3, 3, "date"), (5, 5, "artist")], [(0, 1, "city"), (3, 3, "time")])
    assert judged == [
        ("correct", (0, 1, "city"), (0, 1, "city")),
        ("wrong_type", (3, 3, "date"), (3, 3, "time")),
        ("missed", (5, 5, "artist"), None),
    ]
    # A prediction overlapping gold spans of its own type and another is judged against its own type.
    assert classify_spans([(0, 0, "a"), (1, 2, "b")], [(0, 1, "b")]) == [("wrong_boundary", (1, 2, "b"), (0, 1, "b"))]


def test_hand_counted_taxonomy():
    errors = token_task_errors(GOLD, PREDICTED)
    assert errors["counts"] == {
        "correct": 2,
        "wrong_type": 1,
        "wrong_boundary": 3,
        "wrong_type_and_boundary": 1,
        "spurious": 1,
        "missed": 1,
    }
    assert errors["gold_spans"] == 7 and errors["predicted_spans"] == 8
    assert errors["confused_types"] == [
        {"gold": "date", "predicted": "time", "count": 1},
        {"gold": "artist", "predicted": "song", "count": 1},
    ]
    assert errors["wrong_boundary_by_type"] == {"city": 3}


def test_sentence_confusions_count_only_mistakes_most_frequent_first():
    pairs = sentence_confusions(["a", "a", "b", "b", "c", "c"], ["a", "b", "a", "b", "b", "b"])
    assert pairs[0] == {"gold": "c", "predicted": "b", "count": 2}
    assert sorted((p["gold"], p["predicted"], p["count"]) for p in pairs[1:]) == [("a", "b", 1), ("b", "a", 1)]


def test_analyze_reports_per_type_scores_and_the_mispredicted_sentences():
    intents = ["Weather", "Weather", "Music", "Weather", "Music"]
    predicted_intents = ["Weather", "Music", "Music", "Weather", "Music"]
    examples = [
        Example.from_words([f"w{i}" for i in range(len(tags))], {"label": intent, "tags": tuple(tags)}, f"test:{n + 1}")
        for n, (tags, intent) in enumerate(zip(GOLD, intents, strict=True))
    ]
    predictions = [
        {"intent": SentencePrediction(intent, 0.9), "slots": TokenPrediction(tags, [0.9] * len(tags))}
        for tags, intent in zip(PREDICTED, predicted_intents, strict=True)
    ]
    tasks = {
        "intent": make_task("intent", "sentence", "label", ("Music", "Weather")),
        "slots": make_task("slots", "token", "tags", ("O",)),
    }
    report, records = analyze(tasks, examples, predictions)
    slots = report["tasks"]["slots"]
    # city: 3 gold (sentences 1, 2, 4), 4 predicted (1, 2 and the two halves in 4), 1 right.
    assert slots["report"]["city"]["precision"] == pytest.approx(1 / 4)
    assert slots["report"]["city"]["recall"] == pytest.approx(1 / 3) and slots["report"]["city"]["support"] == 3
    assert slots["errors"]["counts"]["spurious"] == 1
    assert report["tasks"]["intent"]["confusions"] == [{"gold": "Weather", "predicted": "Music", "count": 1}]
    # Sentence accuracy compares tags, so sentence 5 (I-x for B-x, the same span) is wrong, and listed.
    assert report["sentence_accuracy"] == 0.0
    assert [record["origin"] for record in records] == ["test:1", "test:2", "test:3", "test:4", "test:5"]
    assert records[4]["tasks"]["slots"]["errors"] == [] and "intent" not in records[4]["tasks"]
    second = records[1]["tasks"]
    assert second["intent"] == {"gold": "Weather", "predicted": "Music"}
    assert second["slots"]["gold"] == [{"text": "w1 w2", "label": "city", "words": [1, 2]}]
    assert second["slots"]["errors"] == [
        {"category": "wrong_boundary", "gold": "w1 w2 [city]", "predicted": "w0 w1 [city]"},
        {"category": "spurious", "gold": None, "predicted": "w4 [song]"},
    ]
    text = "\n".join(summary_lines(report, records))
    assert "correct 2, wrong_type 1, wrong_boundary 3, wrong_type_and_boundary 1, spurious 1, missed 1" in text
    assert "Weather -> Music (1)" in text and "date -> time (1)" in text


def test_cli_evaluate_writes_the_error_analysis(tiny_checkpoint, toy_data_dir, tmp_path):
    out = tmp_path / "errors"
    result = CliRunner().invoke(
        app,
        ["evaluate", str(tiny_checkpoint), "--data-dir", str(toy_data_dir), "--split", "test", "--errors", str(out)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "errors.json").read_text())
    records = [json.loads(line) for line in (out / "mispredicted.jsonl").read_text().splitlines()]
    errors = report["tasks"]["slots"]["errors"]
    assert errors["gold_spans"] == 8  # the toy test split's entities, counted by hand
    counts = errors["counts"]
    assert errors["predicted_spans"] == sum(v for k, v in counts.items() if k != "missed")
    right = round(report["sentence_accuracy"] * len(TOY_SENTENCES))
    assert len(records) == len(TOY_SENTENCES) - right
    assert all(record["text"] and record["tasks"] for record in records)
    assert f"errors ({out})" in result.output and "spurious" in result.output


def test_cli_evaluate_checks_the_errors_path_before_it_evaluates(tiny_checkpoint, toy_data_dir, tmp_path, monkeypatch):
    import mtst.evaluation.metrics

    def must_not_run(*args, **kwargs):
        raise AssertionError("evaluated before the --errors path was checked")

    monkeypatch.setattr(mtst.evaluation.metrics, "evaluate", must_not_run)
    a_file = tmp_path / "errors.txt"
    a_file.write_text("mine")
    argv = ["evaluate", str(tiny_checkpoint), "--data-dir", str(toy_data_dir), "--errors"]
    for target, problem in [(a_file, "a file is there; --errors names a folder"), (a_file / "sub", "cannot write")]:
        result = CliRunner().invoke(app, [*argv, str(target)])
        assert result.exit_code == 2 and f"error: {target}: {problem}" in result.stderr, result.output
    assert a_file.read_text() == "mine"
