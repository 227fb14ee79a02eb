"""`mtst data check`: the statistics on a hand-made dataset, their text and JSON forms, exit statuses."""

import json

import pytest
from typer.testing import CliRunner

from mtst.cli import app
from mtst.data.check import check_dataset, percentiles, render

runner = CliRunner()

TRAIN = [
    {"tokens": ["play", "jazz"], "tags": ["O", "B-genre"], "label": "Play"},
    {"tokens": ["play", "the", "beatles", "now"], "tags": ["O", "B-artist", "I-artist", "O"], "label": "Play"},
    {
        "tokens": ["weather", "in", "new", "york", "today"],
        "tags": ["O", "O", "B-city", "I-city", "B-date"],
        "label": "Weather",
    },
    {"tokens": ["hi"], "tags": ["O"], "label": "Greet"},
]
DEV = [
    {"tokens": ["rain", "in", "paris"], "tags": ["O", "O", "B-city"], "label": "Weather"},
    {"tokens": ["book", "a", "table"], "tags": ["O", "O", "I-object"], "label": "Book"},  # a dangling I-: repaired
]


@pytest.fixture
def dataset(tmp_path):
    for name, records in (("train", TRAIN), ("dev", DEV)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return tmp_path


def test_percentiles_nearest_rank():
    assert percentiles(range(1, 101)) == {"p50": 50, "p90": 90, "p99": 99, "max": 100}
    assert percentiles([7]) == {"p50": 7, "p90": 7, "p99": 7, "max": 7}
    assert percentiles([]) == {}


def test_statistics_of_a_small_dataset(dataset):
    report = check_dataset(dataset)
    assert report["formats"] == {"train": "jsonl", "dev": "jsonl"}
    train, dev = report["splits"]["train"], report["splits"]["dev"]
    assert train["examples"] == 4 and dev["examples"] == 2
    assert train["words"] == {"p50": 2, "p90": 5, "p99": 5, "max": 5}
    assert dev["words"] == {"p50": 3, "p90": 3, "p99": 3, "max": 3}
    assert train["labels"] == {"label": {"labelled": 4, "distinct": 3, "counts": {"Play": 2, "Weather": 1, "Greet": 1}}}
    assert train["entities"]["tags"] == {
        "sentences": 4,
        "entity_bearing": 3,
        "entity_bearing_share": 0.75,
        "entities": 4,
        "types": {"genre": 1, "artist": 1, "city": 1, "date": 1},
    }
    assert dev["entities"]["tags"]["types"] == {"city": 1, "object": 1}  # the repaired I-object counts as one
    assert dev["entities"]["tags"]["entity_bearing_share"] == 1.0
    assert report["unseen_in_train"] == {"dev": {"label": ["Book"], "tags": ["object"]}}
    assert report["warnings"] == [
        f"{dataset / 'dev.jsonl'}:2: 1 I- tags did not continue an entity of their type; repaired to B- (first here)"
    ]


def test_render_aligns_splits_distributions_and_warnings(dataset):
    lines = render(check_dataset(dataset))
    assert lines[0] == f"{dataset} (jsonl)"
    assert lines[2:5] == [
        "split  examples  words p50  p90  p99  max",
        "train         4          2    5    5    5",
        "dev           2          3    3    3    3",
    ]
    assert "label: 4 labels in all splits" in lines
    assert lines[7:12] == [
        "               train        dev",
        "  Play     2 (50.0%)          -",
        "  Weather  1 (25.0%)  1 (50.0%)",
        "  Greet    1 (25.0%)          -",
        "  Book             -  1 (50.0%)",
    ]
    assert "tags: sentences with an entity: train 75.0%, dev 100.0%" in lines
    assert "  dev label (1 labels): Book" in lines and "  dev tags (1 entity types): object" in lines
    assert lines[-2:] == [
        "warnings: 1",
        f"  {dataset / 'dev.jsonl'}:2: 1 I- tags did not continue an entity of their type; repaired to B- (first here)",
    ]


def test_cli_prints_text_or_json_and_exits_zero_with_warnings(dataset):
    result = runner.invoke(app, ["data", "check", str(dataset)])
    assert result.exit_code == 0, result.output
    assert "warnings: 1" in result.output and "not in train:" in result.output
    result = runner.invoke(app, ["data", "check", str(dataset), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == check_dataset(dataset)


def test_cli_strict_turns_the_repair_into_an_error(dataset):
    result = runner.invoke(app, ["data", "check", str(dataset), "--strict"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {dataset / 'dev.jsonl'}:2: tag 'I-object' must continue a B-object or I-object tag but follows 'O' "
        "(strict mode: not repaired)"
    )


def test_cli_single_file_jointbert_split_and_csv_columns(tmp_path, toy_data_dir):
    result = runner.invoke(app, ["data", "check", str(toy_data_dir / "train"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["splits"]["train"]["examples"] == 8
    path = tmp_path / "news.csv"
    path.write_text('label,content\n1,"Stocks fell, again"\n2,Rain in Paris\n1,More stocks\n')
    result = runner.invoke(app, ["data", "check", str(path), "--text-column", "content", "--json"])
    assert result.exit_code == 0, result.output
    news = json.loads(result.output)["splits"]["news"]
    assert news["labels"]["label"]["counts"] == {"1": 2, "2": 1} and news["entities"] == {}
    result = runner.invoke(app, ["data", "check", str(path), "--format", "xml"])
    assert result.exit_code == 2 and "choose one of auto, jointbert, jsonl, csv, conll" in result.output


def test_cli_missing_path(tmp_path):
    result = runner.invoke(app, ["data", "check", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and result.output.strip() == f"error: {tmp_path / 'nowhere'}: not found"
