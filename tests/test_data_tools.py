"""Annotation tools' exports: the hand-written samples under tests/data, their variants and their errors."""

import json
import logging
from pathlib import Path

import pytest

from mtst.config import DataConfig
from mtst.data import load_splits
from mtst.data.check import check_dataset
from mtst.data.formats import detect_format, read_path
from mtst.data.formats.doccano import read_doccano
from mtst.data.formats.label_studio import read_label_studio
from mtst.data.formats.rasa import read_rasa
from mtst.errors import ConfigError, DataError

SAMPLES = Path(__file__).parent / "data"
RASA, LABEL_STUDIO, DOCCANO = (
    SAMPLES / "rasa/nlu.yml",
    SAMPLES / "label_studio/export.json",
    SAMPLES / "doccano/all.jsonl",
)


def entities(example, field="tags"):
    """(words, type) of each entity in an example's BIO tags."""
    found, tags = [], example.annotations[field]
    for index, tag in enumerate(tags):
        if tag.startswith("B-"):
            end = index + 1
            while end < len(tags) and tags[end] == f"I-{tag[2:]}":
                end += 1
            found.append((" ".join(example.words[index:end]), tag[2:]))
    return found


def test_each_sample_is_detected_by_content_or_suffix():
    assert [detect_format(p) for p in (RASA, LABEL_STUDIO, DOCCANO)] == ["rasa", "label_studio", "doccano"]


def test_rasa_intents_entities_roles_and_the_list_form(caplog):
    with caplog.at_level(logging.WARNING, "mtst.data"):
        examples = read_rasa(RASA)
    by_text = {e.text: e for e in examples}
    assert len(examples) == 30 and {e.annotations["label"] for e in examples} == {
        "book_flight",
        "check_weather",
        "greet",
        "goodbye",
    }
    assert entities(by_text["get me to New York on friday"]) == [("New York", "city")]
    assert entities(by_text["I need a flight from Rome to Oslo"]) == [("Rome", "city.from"), ("Oslo", "city.to")]
    assert entities(by_text["a ticket to NYC please"]) == [("NYC", "city")]  # the synonym value is dropped...
    assert "nlu.yml:11: 1 entity synonym values or groups dropped" in caplog.text  # ...with a counted warning
    assert by_text["hello"].annotations["tags"] == ("O",)
    assert by_text["bye"].origin.endswith("nlu.yml:42")  # `text: |` in the list form: the line after it
    assert by_text["see you later"].origin.endswith("nlu.yml:45")
    assert not any("NYC" == e.text or "big apple" in e.text for e in examples)  # synonym entries are no examples


@pytest.mark.parametrize(
    "body, line, problem",
    [
        ("nlu:\n- intent: a\n  examples: |\n    - hi\n    - fly to [Paris](city\n", 5, "malformed entity annotation"),
        ("nlu:\n- intent: a\n  examples: |\n    - hi\n    fly\n", 5, "expected an example line"),
        ('nlu:\n- intent: a\n  examples: |\n    - to [Paris]{"role": "x"}\n', 4, "names no type"),
        ("nlu:\n- intent: a\n  examples: |\n    - to [Paris]()\n", 4, "names no type"),
        ("nlu:\n- intent: a\n  examples: |\n    - to [Par](city)is\n", 4, "ends inside the word 'Paris'"),
        ("nlu:\n- examples: |\n    - hi\n", 2, "no `intent: NAME`"),
        ("nlu:\n- intent: a\n", 2, "has no `examples:`"),
        ("version: '3.1'\nresponses: {}\n", 1, "no `nlu:` section"),
        ("nlu:\n- intent: a\n  examples: |\n   - hi\n  - x: [\n", 5, "not valid YAML"),
    ],
)
def test_rasa_errors_name_the_line(tmp_path, body, line, problem):
    path = tmp_path / "nlu.yml"
    path.write_text(body)
    with pytest.raises(DataError, match=problem) as error:
        read_rasa(path)
    assert error.value.line == line


def test_rasa_synonym_and_group_refused_in_strict_mode(tmp_path):
    path = tmp_path / "nlu.yml"
    path.write_text('nlu:\n- intent: a\n  examples: |\n    - hi\n    - to [LA]{"entity": "city", "group": "1"}\n')
    assert entities(read_rasa(path)[1]) == [("LA", "city")]
    with pytest.raises(DataError, match=r"nlu.yml:5: group '1' of \[LA\] \(strict mode"):
        read_rasa(path, strict=True)


def test_label_studio_choices_spans_and_skipped_tasks(caplog):
    with caplog.at_level(logging.WARNING, "mtst.data"):
        examples = read_label_studio(LABEL_STUDIO)
    assert len(examples) == 24  # 26 tasks, one unannotated and one cancelled
    assert "2 tasks have no annotation (or only cancelled ones) and were skipped" in caplog.text
    first = examples[0]
    assert first.annotations["label"] == "travel" and first.origin.endswith("export.json:2")
    assert entities(first) == [("Alice", "PER"), ("Paris", "LOC")]
    no_entity = next(e for e in examples if e.text == "Shares fell sharply today.")
    assert set(no_entity.annotations["tags"]) == {"O"}


def label_studio_task(result, data=None, **extra):
    return {"id": 1, "data": data or {"text": "Alice flew to Paris."}, "annotations": [{"result": result}], **extra}


CHOICE = {"type": "choices", "from_name": "topic", "value": {"choices": ["travel"]}}


@pytest.mark.parametrize(
    "task, problem",
    [
        ({"text": "flat", "label": "x"}, "JSON-MIN export: export as JSON instead"),
        (label_studio_task([{**CHOICE, "value": {"choices": ["a", "b"]}}]), "exactly one non-empty string"),
        (label_studio_task([CHOICE, {**CHOICE, "from_name": "other"}]), "several choice results"),
        (label_studio_task([{"type": "labels", "value": {"start": 2, "end": 5, "labels": ["PER"]}}]), "inside"),
        (label_studio_task([CHOICE], data={"title": "x", "body": "y"}), "no 'text' in `data`"),
        (label_studio_task("x"), "needs a `result` list"),
    ],
)
def test_label_studio_errors_name_the_task_line(tmp_path, task, problem):
    path = tmp_path / "export.json"
    path.write_text(json.dumps([label_studio_task([CHOICE]), task], indent=2))
    with pytest.raises(DataError, match=problem) as error:
        read_label_studio(path)
    second_task_line = json.dumps([label_studio_task([CHOICE]), task], indent=2).split("\n").index("  {", 2) + 1
    assert error.value.line == second_task_line


def test_label_studio_text_column_and_first_kept_annotation(tmp_path):
    task = {
        "data": {"body": "Bob went to Rome.", "id": 7},
        "annotations": [
            {"result": [{**CHOICE, "value": {"choices": ["x"]}}], "was_cancelled": True},
            {"result": [CHOICE, {"type": "labels", "value": {"start": 0, "end": 3, "labels": ["PER"]}}]},
            {"result": [{**CHOICE, "value": {"choices": ["y"]}}]},
        ],
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task]))
    (example,) = read_label_studio(path)  # `body` is data's only string: taken as the text
    assert example.annotations["label"] == "travel" and entities(example) == [("Bob", "PER")]
    assert read_path(path, "label_studio", text_column="body")[0].text == "Bob went to Rome."


def test_doccano_sample_and_each_documented_variant(tmp_path):
    examples = read_doccano(DOCCANO)
    assert len(examples) == 24 and examples[0].annotations["label"] == "travel"
    assert entities(examples[2]) == [("Bob", "PER"), ("Rome", "LOC"), ("Carol", "PER")]
    variants = [
        {"text": "Alice flew to Paris.", "label": [[0, 5, "PER"]]},  # sequence labelling
        {"text": "Alice flew to Paris.", "label": ["travel"], "category": "x"},  # text classification
        {
            "text": "Alice flew to Paris.",  # relation extraction
            "entities": [{"id": 1, "label": "LOC", "start_offset": 14, "end_offset": 19}],
            "relations": [],
        },
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(v) + "\n" for v in variants))
    assert detect_format(path) == "doccano"
    spans, category, relation = read_doccano(path)
    assert entities(spans) == [("Alice", "PER")] and "label" not in spans.annotations
    assert category.annotations == {"label": "travel", "category": "x", "tags": ("O",) * 5}
    assert entities(relation) == [("Paris", "LOC")]


@pytest.mark.parametrize(
    "record, problem",
    [
        ({"text": "Alice flew.", "entities": [[0, 5]]}, "a span must be"),
        ({"text": "Alice flew.", "entities": [[0, 3, "PER"]]}, "ends inside the word 'Alice'"),
        ({"text": "Alice flew.", "cats": ["a", "b"]}, "one category"),
        ({"text": " ", "cats": ["a"]}, "empty text"),
    ],
)
def test_doccano_errors_name_the_line(tmp_path, record, problem):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "ok", "cats": ["a"]}) + "\n\n" + json.dumps(record) + "\n")
    with pytest.raises(DataError, match=problem) as error:
        read_doccano(path)
    assert error.value.line == 3


def test_data_check_reads_a_split_folder_of_tool_files(tmp_path):
    for split in ("train", "dev"):
        (tmp_path / f"{split}.yml").write_text(RASA.read_text())
    report = check_dataset(tmp_path)
    assert report["formats"] == {"train": "rasa", "dev": "rasa"} and report["splits"]["dev"]["examples"] == 30


def test_one_file_split_into_train_dev_test_by_seed():
    config = DataConfig(dir=str(SAMPLES / "rasa"), train="nlu.yml", dev=None, test=None)
    config = config.model_copy(update={"dev_from_train": 0.2, "test_from_train": 0.2})
    splits = load_splits(config, seed=13)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (19, 5, 6)
    texts = [{e.text for e in part} for part in (splits.train, splits.dev, splits.test)]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert [e.text for e in load_splits(config, seed=13).test] == [e.text for e in splits.test]
    assert [e.text for e in load_splits(config, seed=14).test] != [e.text for e in splits.test]


def test_test_from_train_needs_no_named_test_split():
    from mtst.config import load_config

    with pytest.raises(ConfigError, match="set test: null"):
        load_config(None, **{"data.test_from_train": 0.2})


SAMPLE_OF = {"rasa": RASA, "label_studio": LABEL_STUDIO, "doccano": DOCCANO}
CONFIGS = Path(__file__).parents[1] / "configs"


@pytest.mark.parametrize("tool", list(SAMPLE_OF))
def test_each_committed_tool_config_splits_its_sample(tool):
    from mtst.config import load_config
    from mtst.data import load_corpora

    config = load_config(CONFIGS / f"{tool}.yaml", **{"data.dir": str(SAMPLE_OF[tool].parent)})
    ((names, splits),) = [(corpus.tasks, corpus.splits) for corpus in load_corpora(config)]
    total = len(splits.train) + len(splits.dev) + len(splits.test)
    assert total == len(read_path(SAMPLE_OF[tool])) and splits.dev and splits.test
    assert all(example.annotations.keys() == {"label", "tags"} for example in splits.train)


def test_a_committed_tool_config_trains_in_one_command(tmp_path, tiny_encoder_dir):
    """The README's one-command training (here Rasa's), on the tiny encoder for one epoch."""
    from typer.testing import CliRunner

    from mtst.cli import app

    folder, config = RASA.parent, CONFIGS / "rasa.yaml"
    arguments = ["train", "-c", str(config), "--data-dir", str(folder), "-o", str(tmp_path), "--epochs", "1"]
    result = CliRunner().invoke(app, [*arguments, "--encoder", str(tiny_encoder_dir)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test"] and (tmp_path / "best" / "model.safetensors").is_file()


def test_deeply_nested_json_is_a_data_error_in_every_tool_reader(tmp_path):
    deep = "[" * 100_000
    cases = [
        ("d.jsonl", deep + "\n", "doccano", read_doccano),
        ("d.json", "[" + deep + "]\n", "label_studio", read_label_studio),
        ("d.yml", 'nlu:\n- intent: a\n  examples: |\n    - to [x]{"entity": ' + deep + "}\n", "rasa", read_rasa),
    ]
    for name, text, _, reader in cases:
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError, match="not"):
            reader(tmp_path / name)
    assert detect_format(tmp_path / "d.jsonl") == "jsonl"  # not sniffed as doccano: the JSONL reader reports it


def test_a_json_array_of_mtst_records_is_not_taken_for_label_studio(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps([{"text": "Alice flew.", "label": "travel"}]))
    assert detect_format(path) == "jsonl"
    path.write_text(json.dumps([{"data": {"text": "Alice flew."}, "annotations": []}]))
    assert detect_format(path) == "label_studio"
