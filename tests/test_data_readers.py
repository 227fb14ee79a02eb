import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtst.data.example import Example, split_words
from mtst.data.formats import detect_format, find_split, read_path
from mtst.data.formats.conll import read_conll
from mtst.data.formats.csv_rows import read_csv
from mtst.data.formats.jointbert import read_jointbert
from mtst.data.formats.jsonl import read_jsonl
from mtst.errors import DataError


def test_split_words_offsets_slice_the_text():
    text = "Tesla's CEO Elon Musk, in São Paulo!"
    for word, start, end in split_words(text):
        assert text[start:end] == word
    assert [w for w, _, _ in split_words(text)][:4] == ["Tesla", "'", "s", "CEO"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("我想从北京飞往上海", list("我想从北京飞往上海")),
        ("去Beijing北京 2024年!", ["去", "Beijing", "北", "京", "2024", "年", "!"]),
        ("東京の天気はカタカナ", list("東京の天気はカタカナ")),
        ("สวัสดี", ["ส", "วั", "ส", "ดี"]),  # Thai: a vowel mark stays with its consonant
        ("서울 날씨", ["서울", "날씨"]),  # Hangul is written with spaces: words as usual
        ("tab\there", ["tab", "here"]),
    ],
)
def test_scripts_without_spaces_are_split_per_character(text, words):
    found = split_words(text)
    assert [word for word, _, _ in found] == words
    assert all(text[start:end] == word for word, start, end in found)


def test_jsonl_span_on_two_cjk_characters_becomes_tags(tmp_path):
    path = tmp_path / "train.jsonl"
    record = {"text": "我想从北京飞往上海", "label": "flight", "entities": [{"start": 3, "end": 5, "label": "city"}]}
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    [example] = read_jsonl(path)
    assert example.annotations["tags"] == ("O", "O", "O", "B-city", "I-city", "O", "O", "O", "O")


def test_jointbert_reads_words_tags_and_labels(toy_data_dir):
    examples = read_jointbert(toy_data_dir / "train")
    assert len(examples) == 8
    first = examples[0]
    assert first.words[-2:] == ("the", "beatles")
    assert first.annotations["tags"][-2:] == ("B-artist", "I-artist")
    assert first.annotations["label"] == "PlayMusic"
    assert first.origin.endswith("seq.in:1")


def test_jointbert_wrong_tag_count_names_file_and_line(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "seq.in").write_text("a b c\nd e\n")
    (folder / "seq.out").write_text("O O O\nO\n")
    with pytest.raises(DataError, match=r"seq\.out:2: 1 tags for 2 words"):
        read_jointbert(folder)


def test_jointbert_line_count_mismatch(tmp_path):
    (tmp_path / "seq.in").write_text("a b\nc\n")
    (tmp_path / "label").write_text("x\n")
    with pytest.raises(DataError, match=r"seq\.in:2: no matching line in label \(label has 1 lines, seq\.in has 2\)"):
        read_jointbert(tmp_path)
    (tmp_path / "label").write_text("x\ny\nz\n")
    with pytest.raises(DataError, match=r"label:3: extra line: seq\.in has only 2 lines"):
        read_jointbert(tmp_path)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_conll_any_line_ending_and_docstart(tmp_path, newline):
    lines = [
        "-DOCSTART- -X- O O",
        "",
        "EU NNP B-ORG",
        "rejects VBZ O",
        "",
        "Peter NNP B-PER",
        "Blackburn NNP I-PER",
        "",
    ]
    path = tmp_path / "train.txt"
    path.write_bytes(newline.join(lines).encode())
    examples = read_conll(path)
    assert [e.words for e in examples] == [("EU", "rejects"), ("Peter", "Blackburn")]
    assert examples[1].annotations["tags"] == ("B-PER", "I-PER")
    assert examples[1].origin.endswith("train.txt:6")


def test_conll_line_without_tag(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("EU B-ORG\nrejects\n")
    with pytest.raises(DataError, match=r"bad\.txt:2: expected a word and a tag"):
        read_conll(path)


def test_jsonl_tokens_and_extra_fields(tmp_path):
    path = tmp_path / "d.jsonl"
    record = {"tokens": ["book", "a", "table"], "tags": ["O", "O", "B-obj"], "label": "Book", "domain": "food"}
    path.write_text(json.dumps(record) + "\n")
    [example] = read_jsonl(path)
    assert example.annotations == {"tags": ("O", "O", "B-obj"), "label": "Book", "domain": "food"}


def test_jsonl_spans_become_bio_tags(tmp_path):
    path = tmp_path / "d.jsonl"
    text = "Elon Musk visited New York."
    entities = [{"start": 18, "end": 26, "label": "LOC"}, {"start": 0, "end": 9, "label": "PER"}]
    path.write_text(json.dumps({"text": text, "label": "travel", "entities": entities}) + "\n")
    [example] = read_jsonl(path)
    assert example.words == ("Elon", "Musk", "visited", "New", "York", ".")
    assert example.annotations["tags"] == ("B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O")
    assert example.text == text


@pytest.mark.parametrize(
    ("entities", "problem"),
    [
        ([{"start": 0, "end": 99, "label": "X"}], "out of range"),
        ([{"start": 0, "end": 3, "label": "X"}], "ends inside the word 'Elon'"),
        ([{"start": 0, "end": 9, "label": "X"}, {"start": 5, "end": 9, "label": "Y"}], "overlaps"),
        ([{"start": 0, "label": "X"}], "integer start, end and a label"),
        ([[0, 4, "PER"]], "integer start, end and a label"),  # spaCy-style triples
        ([{"start": "0", "end": 4, "label": "PER"}, {"start": 5, "end": 9, "label": "PER"}], "integer start"),
        ("PER", "must be a list"),
    ],
)
def test_jsonl_bad_spans(tmp_path, entities, problem):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "ok"}\n' + json.dumps({"text": "Elon Musk visited", "entities": entities}) + "\n")
    with pytest.raises(DataError, match=rf"d\.jsonl:2: .*{problem}"):
        read_jsonl(path)


def test_jsonl_integer_labels_kept_and_text_without_entities_has_no_tags(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = [
        {"tokens": ["a", "b"], "tags": ["O", "B-x"], "label": 3, "ids": [0, 1]},
        {"text": "just a topic", "label": 2},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    first, second = read_jsonl(path)
    assert first.annotations == {"tags": ("O", "B-x"), "label": "3", "ids": ("0", "1")}
    assert second.annotations == {"label": "2"}
    # Integer tag ids name no entity type, so `tags` (BIO by definition) refuses them.
    path.write_text(json.dumps({"tokens": ["a", "b"], "tags": [0, 1]}) + "\n")
    with pytest.raises(DataError, match=r"d\.jsonl:1: `tags` must be a list of BIO tag strings"):
        read_jsonl(path)


def test_only_cr_and_lf_end_lines_and_no_break_space_stays_in_its_word(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "para\u2028graph \x85 ok", "label": "x"}, ensure_ascii=False) + "\r\n")
    [example] = read_jsonl(path)
    assert example.text == "para\u2028graph \x85 ok"
    conll = tmp_path / "train.txt"
    conll.write_text("New\xa0York B-LOC\nis O\n", encoding="utf-8")
    [sentence] = read_conll(conll)
    assert sentence.words == ("New\xa0York", "is") and sentence.annotations["tags"] == ("B-LOC", "O")


def test_jsonl_invalid_json_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "fine"}\n{"text": \n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: not valid JSON"):
        read_jsonl(path)


def test_csv_named_columns_and_wrong_column_count(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('label,content\n1,"Stocks fell, again"\n2,"multi\nline cell"\n3,a,b\n')
    with pytest.raises(DataError, match=r"t\.csv:5: 3 columns, header has 2"):
        read_csv(path, text_column="content", label_column="label")
    path.write_text('label,content\n1,"Stocks fell, again"\n')
    [example] = read_csv(path, text_column="content", label_column="label")
    assert example.annotations["label"] == "1" and example.text == "Stocks fell, again"


def test_empty_file_and_invalid_utf8(tmp_path):
    empty = tmp_path / "e.txt"
    empty.write_text("\n  \n")
    with pytest.raises(DataError, match=r"e\.txt: empty file"):
        read_conll(empty)
    broken = tmp_path / "b.txt"
    broken.write_bytes(b"ok O\n\xff\xfe O\n")
    with pytest.raises(DataError, match=r"b\.txt:2: invalid UTF-8"):
        read_conll(broken)


def test_unknown_format_and_missing_split(tmp_path):
    odd = tmp_path / "train.parquet"
    odd.write_text("x")
    with pytest.raises(DataError, match="unknown data format"):
        detect_format(odd)
    with pytest.raises(DataError, match="no 'dev' split found"):
        find_split(tmp_path, "dev")


def test_read_path_detects_each_format(tmp_path, toy_data_dir):
    assert len(read_path(toy_data_dir / "train")) == 8
    (tmp_path / "x.jsonl").write_text('{"text": "hello world", "label": "greet"}\n')
    assert read_path(tmp_path / "x.jsonl")[0].annotations["label"] == "greet"


def test_example_from_words_offsets():
    example = Example.from_words(["new", "york"])
    assert example.text == "new york" and example.offsets == ((0, 3), (4, 8))


def test_label_names_rename_coded_labels_and_refuse_unnamed_ones(tmp_path):
    from mtst.config import DataConfig
    from mtst.data import load_splits
    from mtst.errors import DataError

    (tmp_path / "train.csv").write_text("label,content\n1,stocks fell\n2,the match ended\n")
    (tmp_path / "test.csv").write_text("label,content\n2,a goal\n5,unknown\n")
    config = DataConfig(
        dir=str(tmp_path), format="csv", text_column="content", dev=None, label_names={"1": "World", "2": "Sports"}
    )
    with pytest.raises(DataError, match=r"test\.csv:3: label '5' has no name in data.label_names"):
        load_splits(config)
    (tmp_path / "test.csv").write_text("label,content\n2,a goal\n")
    splits = load_splits(config)
    assert [ex.annotations["label"] for ex in splits.train + splits.test] == ["World", "Sports", "Sports"]


_MIXED = st.text(st.sampled_from(list("北京上海我想飞abcXYZ019 .,!'-") + ["の", "カ"]), max_size=30)


@settings(max_examples=60, deadline=None)
@given(text=_MIXED)
def test_every_word_starts_a_new_bert_piece_and_continues_none(tiny_tokenizer, text):
    """BERT splits what raw-text words hold into pieces: each word's first sub-token opens a word, the rest are
    `##` continuations. A word holding two pieces (a CJK run kept whole) would get one tag for both."""
    words = split_words(text)
    encoded = tiny_tokenizer([w for w, _, _ in words], is_split_into_words=True, add_special_tokens=False)
    pieces = tiny_tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    previous = None
    for piece, word in zip(pieces, encoded.word_ids(), strict=True):
        assert piece.startswith("##") == (word == previous) or piece == "[UNK]", (text, words, pieces)
        previous = word
