"""Property: whatever an annotation tool's export holds, its reader returns whole examples or a DataError."""

import json
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mtst.data.formats.doccano import read_doccano
from mtst.data.formats.label_studio import read_label_studio
from mtst.data.formats.rasa import read_rasa
from tests.test_data_fuzz import FUZZ, json_values, raw_bytes, read_or_fail, written

TEXT = "Elon Musk visited New York."
starts, ends = st.sampled_from([0, 5, 18, 22, 3, -1, 0]), st.sampled_from([4, 9, 26, 27, 7, 40, 4])
types = st.sampled_from(["PER", "LOC", "", 3])
doccano_span = st.one_of(
    st.tuples(starts, ends, types).map(list),
    st.fixed_dictionaries({"start_offset": starts, "end_offset": ends, "label": types}),
    json_values,
)
doccano_record = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"text": st.sampled_from([TEXT, TEXT, " ", 5])},
        optional={
            "entities": st.lists(doccano_span, max_size=3),
            "label": st.lists(doccano_span, max_size=2) | st.lists(st.sampled_from(["a", "b", ""]), max_size=2),
            "cats": st.lists(st.sampled_from(["a", "b", ""]), max_size=2) | json_values,
        },
    ),
)
ls_result = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("labels"),
            "value": st.fixed_dictionaries({"start": starts, "end": ends, "labels": st.lists(types, max_size=2)}),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("choices"),
            "from_name": st.sampled_from(["a", "b"]),
            "value": st.fixed_dictionaries({"choices": st.lists(st.sampled_from(["x", "y", ""]), max_size=2)}),
        }
    ),
    json_values,
)
ls_task = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "data": st.sampled_from([{"text": TEXT}, {"body": TEXT}, {"a": TEXT, "b": "c"}, {"text": ""}])
            | json_values,
            "annotations": st.lists(
                st.fixed_dictionaries(
                    {"result": st.lists(ls_result, max_size=3)}, optional={"was_cancelled": st.booleans()}
                ),
                max_size=2,
            )
            | json_values,
        }
    ),
)
rasa_word = st.sampled_from(
    [
        "fly",
        "to",
        "[Paris](city)",
        "[NYC](city:New York)",
        '[Rome]{"entity": "city", "role": "from"}',
        "[x]()",
        '[y]{"entity": 3}',
        "[z]{oops}",
        "[",
        "](",
        "é",
        "-",
        ":",
        "#",
        "'",
        '"',
        "{",
        "}",
    ]
)
rasa_line = st.lists(rasa_word, max_size=5).map(" ".join).map(lambda s: "    - " + s)
rasa_block = st.lists(rasa_line | st.sampled_from(["", "    plain", "  - intent: b", "  examples: |"]), max_size=6)
rasa_file = st.tuples(
    st.sampled_from(
        ["nlu:\n", "nlu:\n- intent: a\n  examples: |\n", "nlu: 3\n", "- intent: a\n", "nlu:\n- synonym: a\n"]
    ),
    rasa_block.map("\n".join),
).map("".join)


@FUZZ
@given(content=raw_bytes, strict=st.booleans())
def test_arbitrary_bytes_in_each_tool_reader(content, strict):
    with tempfile.TemporaryDirectory() as folder:
        read_or_fail(read_rasa, written(folder, "d.yml", content), strict)
        read_or_fail(read_label_studio, written(folder, "d.json", content), "text", strict)
        read_or_fail(read_doccano, written(folder, "d.jsonl", content), strict)


@FUZZ
@given(records=st.lists(doccano_record, max_size=4), strict=st.booleans())
def test_random_doccano_records(records, strict):
    content = "".join(json.dumps(record) + "\n" for record in records)
    with tempfile.TemporaryDirectory() as folder:
        read_or_fail(read_doccano, written(folder, "d.jsonl", content.encode()), strict)


@FUZZ
@given(tasks=st.lists(ls_task, max_size=3) | json_values, indent=st.sampled_from([None, 2]), strict=st.booleans())
def test_random_label_studio_tasks(tasks, indent, strict):
    content = json.dumps(tasks, indent=indent)
    with tempfile.TemporaryDirectory() as folder:
        read_or_fail(read_label_studio, written(folder, "d.json", content.encode()), "text", strict)


@FUZZ
@given(text=rasa_file, strict=st.booleans())
def test_random_rasa_files(text, strict):
    with tempfile.TemporaryDirectory() as folder:
        read_or_fail(read_rasa, Path(written(folder, "d.yml", text.encode())), strict)
