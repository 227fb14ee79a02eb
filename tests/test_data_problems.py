"""Every bad input a reader can meet: one `file:line: problem`, from the readers and from `mtst data check`."""

import json
import logging
import os

import pytest
from typer.testing import CliRunner

from mtst.cli import app
from mtst.config import DataConfig
from mtst.data import load_splits
from mtst.data.formats import read_path
from mtst.data.formats.conll import read_conll
from mtst.data.formats.jointbert import read_jointbert
from mtst.data.formats.jsonl import read_jsonl
from mtst.errors import DataError

runner = CliRunner()


def jointbert(words: str, tags: str, labels: str | None = None) -> dict[str, bytes]:
    files = {"train/seq.in": words.encode(), "train/seq.out": tags.encode()}
    if labels is not None:
        files["train/label"] = labels.encode()
    return files


def jsonl_line2(record) -> dict[str, bytes]:
    """A valid first line, then the record under test on line 2."""
    return {"train.jsonl": (json.dumps({"text": "fine"}) + "\n" + json.dumps(record) + "\n").encode()}


TEXT = "Elon Musk visited New York"
# (case id, files to write, the file named in the error, its line or None, the problem, extra CLI flags)
CASES = [
    ("jointbert-count", jointbert("a b c\nd e\n", "O O O\nO\n"), "train/seq.out", 2, "1 tags for 2 words", []),
    ("jointbert-lines", jointbert("a\nb\n", "O\nO\n", "x\n"), "train/seq.in", 2, "no matching line in label", []),
    ("jointbert-empty-sentence", jointbert("a\n \nb\n", "O\n\nO\n"), "train/seq.in", 2, "empty sentence", []),
    ("jointbert-empty-label", jointbert("a\nb\n", "O\nO\n", "x\n \n"), "train/label", 2, "empty label", []),
    ("jointbert-not-bio", jointbert("a b\n", "O S-city\n"), "train/seq.out", 1, "tag 'S-city' is not BIO/IOB2", []),
    (
        "jointbert-bom-strict",
        {**jointbert("a\n", "O\n"), "train/seq.in": b"\xef\xbb\xbfa\n"},
        "train/seq.in",
        1,
        "UTF-8 byte-order mark at the start of the file (strict mode: not repaired)",
        ["--strict"],
    ),
    ("conll-count", {"train.txt": b"EU B-ORG\nrejects\n"}, "train.txt", 2, "expected a word and a tag", []),
    (
        "conll-two-words-one-tag",
        {"train.txt": b"EU B-ORG\nrejects O\n\nPeter Blackburn B-PER\n"},
        "train.txt",
        4,
        "3 columns, but line 1 has 2",
        [],
    ),
    (
        "jsonl-tokens-with-entities",
        jsonl_line2({"tokens": ["Elon", "Musk"], "entities": [{"start": 0, "end": 4, "label": "PER"}]}),
        "train.jsonl",
        2,
        "`entities` are character spans into `text`; with `tokens` give `tags`",
        [],
    ),
    (
        "jsonl-tokens-and-text",
        jsonl_line2({"tokens": ["Elon", "Musk"], "text": "Elon Musk", "label": "x"}),
        "train.jsonl",
        2,
        "give `tokens` or `text`, not both",
        [],
    ),
    (
        "jsonl-duplicate-key",
        {"train.jsonl": b'{"text": "fine"}\n{"text": "a b", "label": "x", "label": "y"}\n'},
        "train.jsonl",
        2,
        "key `label` given twice",
        [],
    ),
    (
        "json-array-bad-record",
        {"train.json": b'[\n  {"text": "fine"},\n  {"text": ""}\n]\n'},
        "train.json",
        3,
        "empty text",
        [],
    ),
    (
        "json-array-unclosed",
        {"train.json": b'[{"text": "fine"},\n'},
        "train.json",
        1,
        "not valid JSON (the array has no closing `]`)",
        [],
    ),
    ("conll-empty", {"train.txt": b"\n  \r\n"}, "train.txt", None, "empty file", []),
    ("conll-docstart-only", {"train.txt": b"-DOCSTART- O\n\n"}, "train.txt", None, "no sentences found", []),
    ("conll-utf8", {"train.txt": b"EU B-ORG\r\n\xff O\r\n"}, "train.txt", 2, "invalid UTF-8 (byte 0xff)", []),
    ("conll-utf8-cr", {"train.txt": b"EU B-ORG\r\rx O\r\xc3 O\r"}, "train.txt", 4, "invalid UTF-8 (byte 0xc3)", []),
    (
        "conll-bom-strict",
        {"train.txt": b"\xef\xbb\xbfEU B-ORG\n"},
        "train.txt",
        1,
        "UTF-8 byte-order mark",
        ["--strict"],
    ),
    (
        "conll-mixed-strict",
        {"train.txt": b"EU\tB-ORG\nrejects O\n"},
        "train.txt",
        2,
        "columns separated by spaces, earlier lines by tabs (strict mode: not repaired)",
        ["--strict"],
    ),
    (
        "conll-mixed-line-strict",
        {"train.txt": b"EU NNP\tB-ORG\n"},
        "train.txt",
        1,
        "tabs and spaces mixed as column separators on this line",
        ["--strict"],
    ),
    (
        "conll-not-bio",
        {"train.txt": b"EU B-ORG\nrejects O\n\nPeter B_PER\n"},
        "train.txt",
        4,
        "tag 'B_PER' is not BIO/IOB2: expected O, B-TYPE or I-TYPE",
        [],
    ),
    ("conll-empty-type", {"train.txt": b"EU B-\n"}, "train.txt", 1, "tag 'B-' is not BIO/IOB2", []),
    (
        "conll-dangling-i-strict",
        {"train.txt": b"EU B-ORG\nrejects O\nGerman I-MISC\n"},
        "train.txt",
        3,
        "tag 'I-MISC' must continue a B-MISC or I-MISC tag but follows 'O' (strict mode: not repaired)",
        ["--strict"],
    ),
    ("jsonl-empty", {"train.jsonl": b"\n\n"}, "train.jsonl", None, "empty file", []),
    ("jsonl-json", {"train.jsonl": b'{"text": "a"}\n{"text": \n'}, "train.jsonl", 2, "not valid JSON", []),
    ("jsonl-deep", {"train.jsonl": b"[" * 100_000 + b"\n"}, "train.jsonl", 1, "not valid JSON", []),
    (
        "jsonl-huge-int",
        {"train.jsonl": b'{"text": "a", "label": ' + b"9" * 5000 + b"}\n"},
        "train.jsonl",
        1,
        "not valid JSON",
        [],
    ),
    (
        "jsonl-not-object",
        {"train.jsonl": b'{"text": "a"}\n["a"]\n'},
        "train.jsonl",
        2,
        "expected a JSON object, found list",
        [],
    ),
    ("jsonl-empty-text", jsonl_line2({"text": "  ", "label": "x"}), "train.jsonl", 2, "empty text", []),
    ("jsonl-empty-tokens", jsonl_line2({"tokens": [], "tags": []}), "train.jsonl", 2, "`tokens` must be", []),
    (
        "jsonl-blank-token",
        jsonl_line2({"tokens": ["a", " "]}),
        "train.jsonl",
        2,
        "`tokens` must be a non-empty list of non-blank strings",
        [],
    ),
    (
        "jsonl-count",
        jsonl_line2({"tokens": ["a", "b"], "tags": ["O"]}),
        "train.jsonl",
        2,
        "`tags` has 1 tags for 2 tokens",
        [],
    ),
    (
        "jsonl-not-bio",
        jsonl_line2({"tokens": ["a"], "tags": ["E-PER"]}),
        "train.jsonl",
        2,
        "tag 'E-PER' is not BIO/IOB2",
        [],
    ),
    (
        "jsonl-tag-ids",
        jsonl_line2({"tokens": ["a"], "tags": [3]}),
        "train.jsonl",
        2,
        "`tags` must be a list of BIO tag strings",
        [],
    ),
    (
        "jsonl-bad-label",
        jsonl_line2({"text": "a", "label": 1.5}),
        "train.jsonl",
        2,
        "`label` must be a non-empty string or an integer, found 1.5",
        [],
    ),
    ("jsonl-empty-label", jsonl_line2({"text": "a", "label": ""}), "train.jsonl", 2, "`label` must be", []),
    (
        "jsonl-surrogate",
        {"train.jsonl": b'{"text": "a \\ud800 b"}\n'},
        "train.jsonl",
        1,
        "lone surrogate '\\ud800' is not valid Unicode",
        [],
    ),
    (
        "jsonl-out-of-range",
        jsonl_line2({"text": TEXT, "entities": [{"start": 18, "end": 99, "label": "LOC"}]}),
        "train.jsonl",
        2,
        "entity span 18-99 is out of range for a text of 26 characters",
        [],
    ),
    (
        "jsonl-negative",
        jsonl_line2({"text": TEXT, "entities": [{"start": -1, "end": 4, "label": "PER"}]}),
        "train.jsonl",
        2,
        "entity span -1-4 is out of range",
        [],
    ),
    (
        "jsonl-start-after-end",
        jsonl_line2({"text": TEXT, "entities": [{"start": 9, "end": 5, "label": "PER"}]}),
        "train.jsonl",
        2,
        "entity span 9-5 is empty: start must be below end",
        [],
    ),
    (
        "jsonl-overlap",
        jsonl_line2(
            {"text": TEXT, "entities": [{"start": 5, "end": 9, "label": "X"}, {"start": 0, "end": 9, "label": "PER"}]}
        ),
        "train.jsonl",
        2,
        "entity span 5-9 overlaps entity span 0-9",
        [],
    ),
    (
        "jsonl-inside-word",
        jsonl_line2({"text": TEXT, "entities": [{"start": 0, "end": 3, "label": "PER"}]}),
        "train.jsonl",
        2,
        "entity span 0-3 ('Elo') ends inside the word 'Elon'; entities must cover whole words",
        [],
    ),
    (
        "jsonl-starts-inside",
        jsonl_line2({"text": TEXT, "entities": [{"start": 6, "end": 9, "label": "PER"}]}),
        "train.jsonl",
        2,
        "entity span 6-9 ('usk') starts inside the word 'Musk'",
        [],
    ),
    (
        "jsonl-whitespace-edge",
        jsonl_line2({"text": TEXT, "entities": [{"start": 0, "end": 5, "label": "PER"}]}),
        "train.jsonl",
        2,
        "entity span 0-5 ('Elon ') ends on whitespace",
        [],
    ),
    (
        "jsonl-entity-shape",
        jsonl_line2({"text": TEXT, "entities": [[0, 4, "PER"]]}),
        "train.jsonl",
        2,
        "entity needs integer start, end and a label",
        [],
    ),
    (
        "jsonl-tags-and-entities",
        jsonl_line2({"text": TEXT, "entities": [], "tags": ["O"] * 5}),
        "train.jsonl",
        2,
        "give `entities` or `tags`, not both",
        [],
    ),
    (
        "csv-columns",
        {"train.csv": b'label,text\n1,"multi\nline, cell"\n2,a,b\n'},
        "train.csv",
        4,
        "3 columns, header has 2",
        [],
    ),
    (
        "csv-multiline-row",
        {"train.csv": b'label,text\n1,a\n2,"multi\nline",x\n'},
        "train.csv",
        3,
        "3 columns, header has 2",
        [],
    ),
    (
        "csv-header",
        {"train.csv": b"label,content\n1,a\n"},
        "train.csv",
        1,
        "no column 'text' in the header (columns found: 'label', 'content')",
        [],
    ),
    ("csv-empty-text", {"train.csv": b'label,text\n1,a\n2,"  "\n'}, "train.csv", 3, "empty text", []),
    ("csv-empty-label", {"train.csv": b"label,text\n1,a\n,b\n"}, "train.csv", 3, "empty label", []),
    (
        "csv-quote",
        {"train.csv": b'label,text\n1,a\n2,"never closed\n3,b\n'},
        "train.csv",
        3,
        "not valid CSV (unexpected end of data)",
        [],
    ),
    ("csv-header-only", {"train.csv": b"label,text\n"}, "train.csv", None, "no rows after the header", []),
    (
        "missing-split",
        {"dev.jsonl": b'{"text": "a"}\n'},
        "",
        None,
        "no 'train' split found (looked for train/, train.jsonl, train.json, train.csv, train.txt",
        [],
    ),
    ("unknown-suffix", {"train.parquet": b"x"}, "train.parquet", None, "unknown data format (suffix '.parquet')", []),
]


def write(root, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)


def expected(root, file: str, line: int | None, problem: str) -> str:
    where = str(root / file) if file else str(root)
    return f"{where}:{line}: {problem}" if line is not None else f"{where}: {problem}"


@pytest.mark.parametrize(
    ("files", "file", "line", "problem", "flags"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_line_naming_file_and_line(tmp_path, files, file, line, problem, flags):
    write(tmp_path, files)
    config = DataConfig(dir=str(tmp_path), dev=None, test=None, strict="--strict" in flags)
    with pytest.raises(DataError) as caught:
        load_splits(config)
    assert str(caught.value).startswith(expected(tmp_path, file, line, problem))

    result = runner.invoke(app, ["data", "check", str(tmp_path), *flags])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    [message] = result.output.strip().splitlines()
    assert message.startswith("error: " + expected(tmp_path, file, line, problem))


def test_missing_dev_split_is_named_when_the_config_asks_for_it(tmp_path):
    write(tmp_path, {"train.jsonl": b'{"text": "a"}\n'})
    with pytest.raises(DataError, match=r"no 'dev' split found \(looked for dev/, dev\.jsonl"):
        load_splits(DataConfig(dir=str(tmp_path)))
    with pytest.raises(DataError, match=r"nowhere: no 'train' split found: the folder does not exist"):
        load_splits(DataConfig(dir=str(tmp_path / "nowhere")))


def test_forced_format_on_the_wrong_kind_of_path(tmp_path):
    write(tmp_path, {"train.txt": b"EU B-ORG\n"})
    with pytest.raises(DataError, match="a JointBERT split is a folder holding seq.in"):
        read_path(tmp_path / "train.txt", "jointbert")
    with pytest.raises(DataError, match="expected a file, found a folder"):
        read_path(tmp_path, "conll")
    with pytest.raises(DataError, match="unknown data format 'xml'; choose one of auto, jointbert, jsonl, csv, conll"):
        read_path(tmp_path / "train.txt", "xml")


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mtst.data" and r.levelno == logging.WARNING]


def test_dangling_i_tags_repaired_to_b_with_one_counted_warning(tmp_path, caplog):
    path = tmp_path / "train.txt"
    path.write_text("EU B-ORG\nrejects O\nGerman I-MISC\nlamb I-MISC\n\nPeter B-PER\nBlackburn I-LOC\n")
    examples = read_conll(path)
    assert examples[0].annotations["tags"] == ("B-ORG", "O", "B-MISC", "I-MISC")
    assert examples[1].annotations["tags"] == ("B-PER", "B-LOC")
    assert warnings_of(caplog) == [
        f"{path}:3: 2 I- tags did not continue an entity of their type; repaired to B- (first here)"
    ]


def test_iob1_file_is_named_as_such(tmp_path, caplog):
    path = tmp_path / "train.txt"
    path.write_text("EU I-ORG\nrejects O\nGerman I-MISC\nBritish B-MISC\n\nPeter I-PER\nBlackburn I-PER\n")
    examples = read_conll(path)
    assert [e.annotations["tags"] for e in examples] == [("B-ORG", "O", "B-MISC", "B-MISC"), ("B-PER", "I-PER")]
    [warning] = warnings_of(caplog)
    assert warning == (
        f"{path}:1: 3 I- tags did not continue an entity of their type; repaired to B- (first here); "
        "the file looks like IOB1 (I- opens entities), read as IOB2"
    )


def test_jointbert_and_jsonl_repair_dangling_i_tags(tmp_path, caplog):
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "seq.in").write_text("a b c\nd e\n")
    (folder / "seq.out").write_text("B-x I-x O\nI-y I-y\n")
    assert read_jointbert(folder)[1].annotations["tags"] == ("B-y", "I-y")
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"tokens": ["a", "b"], "tags": ["B-y", "I-z"]}) + "\n")
    assert read_jsonl(path)[0].annotations["tags"] == ("B-y", "B-z")
    assert warnings_of(caplog) == [
        f"{folder / 'seq.out'}:2: 1 I- tags did not continue an entity of their type; repaired to B- (first here)",
        f"{path}:1: 1 I- tags did not continue an entity of their type; repaired to B- (first here)",
    ]


def test_bom_removed_with_a_warning_per_file(tmp_path, caplog):
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "seq.in").write_bytes(b"\xef\xbb\xbfplay jazz\n")
    (folder / "seq.out").write_bytes(b"\xef\xbb\xbfO B-genre\n")
    (folder / "label").write_bytes(b"PlayMusic\n")
    [example] = read_jointbert(folder)
    assert example.words == ("play", "jazz") and example.annotations["tags"] == ("O", "B-genre")
    assert warnings_of(caplog) == [
        f"{folder / name}:1: UTF-8 byte-order mark at the start of the file; removed (first here)"
        for name in ("seq.in", "seq.out")
    ]


def test_mixed_separators_read_as_one_with_a_counted_warning(tmp_path, caplog):
    path = tmp_path / "train.txt"
    path.write_text("EU\tB-ORG\nrejects O\nGerman\t \tB-MISC\nlamb\tO\n")
    [example] = read_conll(path)
    assert example.words == ("EU", "rejects", "German", "lamb")
    assert example.annotations["tags"] == ("B-ORG", "O", "B-MISC", "O")
    assert warnings_of(caplog) == [
        f"{path}:2: 2 lines mix tab and space column separators; each run of tabs and spaces read as one separator"
        " (first here)"
    ]


def test_strict_mode_comes_from_the_config(tmp_path):
    (tmp_path / "train.txt").write_text("EU I-ORG\n")
    assert load_splits(DataConfig(dir=str(tmp_path), dev=None, test=None)).train[0].annotations["tags"] == ("B-ORG",)
    with pytest.raises(
        DataError, match=r"train\.txt:1: tag 'I-ORG' must continue a B-ORG or I-ORG tag but follows the sentence start"
    ):
        load_splits(DataConfig(dir=str(tmp_path), dev=None, test=None, strict=True))


def test_a_json_array_file_is_read_record_by_record(tmp_path):
    path = tmp_path / "train.json"
    records = [{"text": "Elon Musk", "label": "person", "entities": [{"start": 0, "end": 9, "label": "PER"}]}]
    path.write_text(json.dumps(records * 2, indent=2))
    examples = read_path(path)
    assert [e.annotations["tags"] for e in examples] == [("B-PER", "I-PER")] * 2
    assert examples[1].origin == f"{path}:13"  # where the second record starts


def test_a_pipe_named_like_a_split_is_refused_not_read(tmp_path):
    os.mkfifo(tmp_path / "train.jsonl")
    result = runner.invoke(app, ["data", "check", str(tmp_path)])  # reading a pipe would wait forever
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'train.jsonl'}: not a regular file; give a file or a folder"


def test_csv_cells_longer_than_the_csv_modules_default_limit(tmp_path):
    path = tmp_path / "train.csv"
    text = "word " * 40_000  # 200,000 characters: over csv's default 131,072
    path.write_text(f'text,label\n"{text}",long\n')
    [example] = read_path(path)
    assert example.text == text.strip() and len(example.words) == 40_000
