"""Label Studio's JSON export: the defects of issue 24 (value.text and UTF-16 offsets, JSON-MIN under
auto-detection, keys given twice, an empty export), each a one-line error naming the file and task."""

import json

import pytest
from typer.testing import CliRunner

from mtst.cli import app
from mtst.data.formats import detect_format, read_path
from mtst.data.formats.label_studio import read_label_studio
from mtst.errors import DataError

runner = CliRunner()


def task(text: str, *spans: dict) -> dict:
    results = [{"type": "labels", "from_name": "l", "to_name": "t", "value": span} for span in spans]
    return {"id": 1, "data": {"text": text}, "annotations": [{"result": results}]}


def written(tmp_path, body, name="export.json"):
    path = tmp_path / name
    path.write_text(body if isinstance(body, str) else json.dumps(body, ensure_ascii=False), encoding="utf-8")
    return path


def entities(example) -> list[tuple[str, str]]:
    return [(word, tag) for word, tag in zip(example.words, example.annotations["tags"], strict=True) if tag != "O"]


def test_value_text_that_agrees_with_the_offsets_is_read(tmp_path):
    span = {"start": 7, "end": 12, "text": "Paris", "labels": ["city"]}
    (example,) = read_label_studio(written(tmp_path, [task("fly to Paris or Rome", span)]))
    assert entities(example) == [("Paris", "B-city")]


def test_offsets_that_point_at_another_word_are_refused_naming_the_task(tmp_path):
    span = {"start": 16, "end": 20, "text": "Paris", "labels": ["city"]}
    path = written(tmp_path, [task("fly to Paris or Rome", span)])
    with pytest.raises(DataError, match=r"export.json:1: .*16-20 covers 'Rome', but its `text` is 'Paris'"):
        read_label_studio(path)
    result = runner.invoke(app, ["data", "check", str(path)])
    assert result.exit_code == 2 and "covers 'Rome'" in result.output


def test_utf16_offsets_are_converted_when_value_text_says_so(tmp_path):
    span = {"start": 7, "end": 8, "text": "B", "labels": ["x"]}  # UTF-16: each emoji is two code units
    (example,) = read_label_studio(written(tmp_path, [task("😀😀 A B C", span)]))
    assert entities(example) == [("B", "B-x")]


def test_a_task_that_disagrees_in_every_reading_is_refused(tmp_path):
    span = {"start": 7, "end": 8, "text": "Q", "labels": ["x"]}
    with pytest.raises(DataError, match=r"export.json:1: .*covers 'C', but its `text` is 'Q'"):
        read_label_studio(written(tmp_path, [task("😀😀 A B C", span)]))


def test_a_span_without_value_text_is_read_by_its_offsets(tmp_path):
    (example,) = read_label_studio(written(tmp_path, [task("fly to Paris", {"start": 7, "end": 12, "labels": ["c"]})]))
    assert entities(example) == [("Paris", "B-c")]


def test_json_min_is_detected_and_refused_with_the_export_note(tmp_path):
    body = [{"id": 1, "text": "fly to Paris", "label": [{"start": 7, "end": 12, "text": "Paris", "labels": ["city"]}]}]
    path = written(tmp_path, body)
    assert detect_format(path) == "label_studio"
    with pytest.raises(DataError, match="JSON-MIN export: export as JSON instead"):
        read_path(path)


@pytest.mark.parametrize(
    "body, key",
    [
        ('[{"data": {"text": "a b"}, "annotations": [], "annotations": [{"result": []}]}]', "annotations"),
        ('[{"data": {"text": "a b", "text": "c"}, "annotations": [{"result": []}]}]', "text"),
    ],
)
def test_a_key_given_twice_is_refused(tmp_path, body, key):
    with pytest.raises(DataError, match=f"export.json:1: key `{key}` given twice"):
        read_label_studio(written(tmp_path, body))


def test_data_check_on_an_empty_export_is_one_line(tmp_path):
    result = runner.invoke(app, ["data", "check", str(written(tmp_path, "[]"))])
    assert result.exit_code == 2, result.output
    assert "export.json: no examples" in result.output and "Traceback" not in result.output
