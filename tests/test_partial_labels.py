"""Partly labelled examples (issue 26): `"label": null` or no `entities` means unknown, `[]` means none; each
task's loss and metrics skip what is unknown; `data check` counts it; a run on such a corpus trains both heads."""

import json

import pytest

from mtst.data.check import check_dataset, render
from mtst.data.example import Example
from mtst.data.formats.jsonl import read_jsonl
from mtst.evaluation.metrics import compute_metrics
from mtst.tasks import make_task
from mtst.tasks.sentence import SentencePrediction
from mtst.tasks.token import TokenPrediction
from tests.conftest import TOY_SENTENCES


def record(words: str, tags: str, intent: str | None, slots: bool) -> dict:
    row = {"tokens": words.split(), "label": intent}
    if slots:
        row["tags"] = tags.split()
    return row


def write_partly_labelled(folder):
    """Train: intent only for the first three, slots only for the next three, both for the rest."""
    folder.mkdir(exist_ok=True)
    for split in ("train", "dev", "test"):
        rows = []
        for index, (words, tags, intent) in enumerate(TOY_SENTENCES * 2):
            known_intent = split != "train" or not 3 <= index < 6
            known_slots = split != "train" or index >= 3
            rows.append(record(words, tags, intent if known_intent else None, known_slots))
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def test_null_and_missing_annotations_are_unknown_and_an_empty_list_is_none(tmp_path):
    path = tmp_path / "t.jsonl"
    rows = [
        {"text": "fly to paris", "label": None, "entities": [{"start": 7, "end": 12, "label": "city"}]},
        {"text": "hello there", "label": "greet"},
        {"text": "hello again", "label": "greet", "entities": []},
        {"text": "fly to rome", "label": "flight", "entities": None},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    unknown_intent, no_entities_key, no_entities, null_entities = read_jsonl(path)
    assert "label" not in unknown_intent.annotations and unknown_intent.annotations["tags"] == ("O", "O", "B-city")
    assert "tags" not in no_entities_key.annotations and "tags" not in null_entities.annotations
    assert no_entities.annotations["tags"] == ("O", "O")


def test_data_check_counts_what_each_split_leaves_unknown(tmp_path):
    report = check_dataset(write_partly_labelled(tmp_path / "data"))
    assert report["splits"]["train"]["unlabelled"] == {"label": 3, "tags": 3}
    assert report["splits"]["dev"]["unlabelled"] == {"label": 0, "tags": 0}
    assert "  train label: 3 of 16" in render(report)


def test_metrics_score_each_task_on_its_labelled_examples_and_sentences_only_when_complete():
    intent = make_task("intent", "sentence", "label", ("a", "b"))
    slots = make_task("slots", "token", "tags", ("O", "B-x"))
    full = Example.from_words(["x", "y"], annotations={"label": "a", "tags": ("B-x", "O")})
    intent_only = Example.from_words(["x"], annotations={"label": "b"})
    predictions = [
        {"intent": SentencePrediction("a", 1.0), "slots": TokenPrediction(["B-x", "O"], [1.0, 1.0])},
        {"intent": SentencePrediction("a", 1.0), "slots": TokenPrediction(["B-x"], [1.0])},  # slots unknown
    ]
    metrics = compute_metrics({"intent": intent, "slots": slots}, [full, intent_only], predictions)
    assert metrics["intent"]["accuracy"] == 0.5 and metrics["slots"]["f1"] == 1.0
    assert metrics["sentence_accuracy"] == 1.0  # the intent-only example is not a whole sentence to judge


@pytest.mark.slow
def test_a_partly_labelled_corpus_trains_both_heads(tiny_config, tmp_path):
    from mtst.data import load_splits
    from mtst.data.batching import Collator
    from mtst.data.features import encode_examples
    from mtst.model.multitask import MultiTaskModel
    from mtst.training.loop import train

    config = tiny_config.model_copy(deep=True)
    config.data.dir, config.data.format = str(write_partly_labelled(tmp_path / "data")), "jsonl"
    splits = load_splits(config.data)
    model = MultiTaskModel.from_config(config, splits)
    intent_only = [ex for ex in splits.train if "tags" not in ex.annotations]
    features = encode_examples(intent_only, model.tokenizer, list(model.tasks.values()), 64)
    batch = Collator(model.tokenizer.pad_token_id, model.tasks)(features)
    assert set(model(**batch).losses) == {"intent"}  # no slot loss from sentences whose slots are unknown
    summary = train(config)
    first_epoch = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert set(first_epoch["train_loss"]) == {"intent", "slots"}  # both heads learned from their own examples
    assert summary["test"]["slots.f1"] >= 0 and summary["test"]["intent.accuracy"] >= 0
