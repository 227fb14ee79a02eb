"""doccano's JSONL export: the defects of issue 24 (detection past a first record without spans, keys given
twice), each read right or refused in one line naming the file and line."""

import json

import pytest

from mtst.data.formats import detect_format, read_path
from mtst.data.formats.doccano import read_doccano
from mtst.errors import DataError


def written(tmp_path, records, name="all.jsonl"):
    path = tmp_path / name
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


RELATION_EXPORT = [
    {"id": 1, "text": "hello there", "entities": [], "relations": [], "Comments": []},
    {
        "id": 2,
        "text": "fly to Paris",
        "entities": [{"id": 7, "label": "city", "start_offset": 7, "end_offset": 12}],
        "relations": [],
        "Comments": [],
    },
]


def test_a_relation_export_whose_first_record_has_no_entities_is_doccano(tmp_path):
    path = written(tmp_path, RELATION_EXPORT)
    assert detect_format(path) == "doccano"
    first, second = read_path(path)
    assert first.annotations["tags"] == ("O", "O") and second.annotations["tags"] == ("O", "O", "B-city")


def test_a_first_record_with_only_empty_comments_is_doccano(tmp_path):
    path = written(
        tmp_path, [{"text": "hello", "label": [], "Comments": []}, {"text": "to Oslo", "label": [[3, 7, "c"]]}]
    )
    assert detect_format(path) == "doccano"
    assert [e.annotations["tags"] for e in read_path(path)] == [("O",), ("O", "B-c")]


def test_mtst_jsonl_with_empty_entities_stays_jsonl(tmp_path):
    records = [{"text": "hello", "label": "greet", "entities": []}, {"text": "to Oslo", "label": "fly"}]
    assert detect_format(written(tmp_path, records)) == "jsonl"


@pytest.mark.parametrize(
    "line, key",
    [
        ('{"text": "fly to Paris", "label": [[7, 12, "city"]], "label": []}', "label"),
        ('{"text": "fly to Paris", "text": "x", "label": [[7, 12, "city"]]}', "text"),
    ],
)
def test_a_key_given_twice_is_refused(tmp_path, line, key):
    path = written(tmp_path, ['{"text": "hi", "label": [[0, 2, "x"]]}', line])
    with pytest.raises(DataError, match=f"all.jsonl:2: key `{key}` given twice"):
        read_doccano(path)


def test_spans_that_are_not_a_list_are_one_line_not_a_type_error(tmp_path):
    path = written(tmp_path, ['{"text": "hi", "label": [[0, 2, "x"]]}', '{"text": "hi", "entities": null}'])
    with pytest.raises(DataError, match="all.jsonl:2: `entities` must be a list of spans"):
        read_doccano(path)


def test_a_span_ending_inside_a_devanagari_word_is_refused(tmp_path):
    path = written(tmp_path, [{"text": "नमस्ते दुनिया", "label": [[0, 3, "x"]]}])
    with pytest.raises(DataError, match="all.jsonl:1: .*ends inside the word 'नमस्ते'"):
        read_doccano(path)
