"""Property: whatever the bytes, every reader returns well-formed examples or raises the project's DataError."""

import csv
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtst.data.example import Example
from mtst.data.formats.conll import read_conll
from mtst.data.formats.csv_rows import read_csv
from mtst.data.formats.jointbert import read_jointbert
from mtst.data.formats.jsonl import read_jsonl
from mtst.errors import DataError

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces that reach the readers' branches more often than uniform text does.
PIECES = ["O", "B-X", "I-X", "I-Y", "B-", "X", "-DOCSTART-", "\ufeff", "\t", " ", "\r\n", "\n", '"', ",", "é", "\x00"]
text_bits = st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=40).map("".join)
raw_bytes = st.one_of(st.binary(max_size=300), text_bits.map(lambda t: t.encode("utf-8", "surrogatepass")))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.sampled_from(PIECES),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(["text", "tokens", "tags", "label", "entities", "start", "end"]), inner)
    ),
    max_leaves=20,
)
# Structured garbage: mostly well-formed, so that files parse often enough to exercise the happy paths too,
# with a rare bad word, tag, column or span that must fail as a DataError.
words = st.sampled_from(["EU", "new", "york", "é", "a-b"] * 4 + ["-DOCSTART-", "\ufeff"])
tags = st.sampled_from(["O", "O", "B-X", "I-X", "B-Y", "I-Y"] * 4 + ["B-", "S-X", "x", "O O"])
separators = st.sampled_from([" "] * 8 + ["\t"] * 4 + [" \t", "  "])
TEXT = "Elon Musk visited New York."
entity = st.fixed_dictionaries(
    {
        "start": st.sampled_from([0, 5, 18, 22, 0, 5, 18, 22, 3, -1]),
        "end": st.sampled_from([4, 9, 26, 27, 4, 9, 26, 27, 7, 40]),
        "label": st.sampled_from(["PER", "LOC", "PER", "LOC", ""]),
    }
)
pairs = st.lists(st.tuples(words, tags), min_size=1, max_size=4)
records = st.one_of(
    json_values,
    pairs.map(lambda p: {"tokens": [w for w, _ in p], "tags": [t for _, t in p], "label": "L"}),
    st.lists(entity, max_size=2).map(lambda e: {"text": TEXT, "entities": e, "label": 3}),
    st.sampled_from([{"text": TEXT, "label": "L"}, {"text": " "}, {"tokens": ["a"], "tags": ["O", "O"]}]),
)
conll_line = st.one_of(
    st.just(""),
    st.tuples(words, separators, tags).map("".join),
    st.tuples(words, separators, words, separators, tags).map("".join),
    st.sampled_from(["EU", "-DOCSTART- -X- O"]),
)
conll_text = st.lists(conll_line, min_size=1, max_size=12).map("\n".join)
header = st.sampled_from([["label", "text"], ["text", "x", "label"], ["label", "content"]])
cell = st.sampled_from(["a b", "x\ny", 'say "hi"', "1", "2", "é, ok"] * 3 + ["", " "]) | st.text(max_size=5)
csv_rows = header.flatmap(
    lambda names: st.lists(st.lists(cell, min_size=len(names), max_size=len(names)) | st.lists(cell), max_size=5).map(
        lambda rows: [names, *rows]
    )
)


def check(result: list) -> None:
    """Parsed examples are whole: words, offsets into the text, one IOB2 tag per word."""
    assert isinstance(result, list) and result
    for example in result:
        assert isinstance(example, Example) and example.words
        assert all(example.text[s:e] == w for w, (s, e) in zip(example.words, example.offsets, strict=True))
        sequence = example.annotations.get("tags")
        if sequence is not None:
            assert len(sequence) == len(example.words)
            for previous, tag in zip(("O", *sequence), sequence, strict=False):
                assert tag == "O" or (tag[:2] in ("B-", "I-") and tag[2:])
                assert not tag.startswith("I-") or previous[2:] == tag[2:]


def read_or_fail(reader, path, *args) -> None:
    try:
        result = reader(path, *args)
    except DataError as error:
        assert str(error).startswith(str(error.path))
        assert "\n" not in str(error)  # one line
        return
    check(result)


def written(folder: str, name: str, content: bytes) -> Path:
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.mark.slow
@FUZZ
@given(content=raw_bytes, strict=st.booleans())
def test_arbitrary_bytes_in_every_reader(content, strict):
    with tempfile.TemporaryDirectory() as folder:
        read_or_fail(read_conll, written(folder, "d.txt", content), strict)
        read_or_fail(read_jsonl, written(folder, "d.jsonl", content), strict)
        read_or_fail(read_csv, written(folder, "d.csv", content), "text", "label", strict)


@FUZZ
@given(words=raw_bytes, tag_lines=raw_bytes, labels=raw_bytes | st.none(), strict=st.booleans())
def test_arbitrary_bytes_in_jointbert_files(words, tag_lines, labels, strict):
    with tempfile.TemporaryDirectory() as folder:
        written(folder, "train/seq.in", words)
        written(folder, "train/seq.out", tag_lines)
        if labels is not None:
            written(folder, "train/label", labels)
        read_or_fail(read_jointbert, Path(folder) / "train", strict)


@FUZZ
@given(lines=st.lists(records, max_size=5), ascii_only=st.booleans(), strict=st.booleans())
def test_random_json_records(lines, ascii_only, strict):
    content = "".join(json.dumps(line, ensure_ascii=ascii_only) + "\n" for line in lines)
    with tempfile.TemporaryDirectory() as folder:
        read_or_fail(read_jsonl, written(folder, "d.jsonl", content.encode("utf-8", "surrogatepass")), strict)


@FUZZ
@given(text=conll_text, strict=st.booleans())
def test_random_conll_columns(text, strict):
    with tempfile.TemporaryDirectory() as folder:
        read_or_fail(read_conll, written(folder, "d.txt", text.encode()), strict)


@FUZZ
@given(rows=st.lists(pairs, min_size=1, max_size=4), miscount=st.booleans(), strict=st.booleans())
def test_random_jointbert_columns(rows, miscount, strict):
    tag_rows = [[t for _, t in row] for row in rows]
    if miscount:
        tag_rows[-1] = tag_rows[-1][:-1]
    with tempfile.TemporaryDirectory() as folder:
        written(folder, "s/seq.in", "".join(" ".join(w for w, _ in row) + "\n" for row in rows).encode())
        written(folder, "s/seq.out", "".join(" ".join(row) + "\n" for row in tag_rows).encode())
        written(folder, "s/label", "".join("L\n" for _ in rows).encode())
        read_or_fail(read_jointbert, Path(folder) / "s", strict)


@FUZZ
@given(rows=csv_rows, strict=st.booleans())
def test_random_csv_rows(rows, strict):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    with tempfile.TemporaryDirectory() as folder:
        read_or_fail(
            read_csv,
            written(folder, "d.csv", buffer.getvalue().encode("utf-8", "surrogatepass")),
            "text",
            "label",
            strict,
        )
