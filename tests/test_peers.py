"""The peer comparison's shared parts (benchmarks/peers): the scorer, the mtst row and the Hugging Face peer
run end to end on toy data with the tiny encoder. spaCy and flair need their own virtual environments and are
not run here."""

import json
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import write_joint_yaml, write_jointbert

PEERS = Path(__file__).resolve().parents[1] / "benchmarks" / "peers"
GOLD = [
    ("fly to paris", "O O B-city", "flight"),
    ("fly from new york", "O O B-city I-city", "flight"),
    ("what is the fare", "O O O O", "fare"),
    ("fare to rome", "O O B-city", "fare"),
]


@pytest.fixture
def peers_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PEERS))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    for name in ("score", "peer_io", "hf_peer", "mtst_peer", "paired"):
        sys.modules.pop(name, None)


@pytest.fixture
def corpus(tmp_path) -> Path:
    for split in ("train", "dev", "test"):
        write_jointbert(tmp_path / "data" / split, GOLD)
    return tmp_path / "data"


def write_run(folder: Path, rows: list[tuple[str, str]], **record) -> None:
    folder.mkdir(parents=True)
    lines = [json.dumps({"intent": intent, "tags": tags.split()}) for intent, tags in rows]
    (folder / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "run.json").write_text(json.dumps(record))


def test_scorer_counts_intents_entities_and_whole_sentences(corpus, tmp_path, peers_on_path, monkeypatch, capsys):
    import score

    # One intent wrong (sentence 3), one entity with the wrong boundary (sentence 2: "new" alone).
    rows = [("flight", "O O B-city"), ("flight", "O O B-city O"), ("flight", "O O O O"), ("fare", "O O B-city")]
    write_run(tmp_path / "runs" / "peer-a" / "toy", rows, train_seconds=120.0, model_size_mb=3.5)
    output = tmp_path / "peers.json"
    argv = ["score.py", str(tmp_path / "runs"), "--corpus", "toy", "--data-dir", str(corpus), "--output", str(output)]
    monkeypatch.setattr("sys.argv", argv)
    score.main()
    test = json.loads(output.read_text())["results"][0]["test"]
    # 3 gold entities, 3 predicted, 2 right: P = R = F1 = 2/3; sentences 1 and 4 wholly right.
    assert test["intent_accuracy"] == 0.75
    assert test["slot_precision"] == pytest.approx(2 / 3) and test["slot_recall"] == pytest.approx(2 / 3)
    assert test["sentence_accuracy"] == 0.5
    assert "| peer-a | 75.00 | 66.67 | 50.00 | 2.0 | — | — | — | — | 4 |" in capsys.readouterr().out


def test_scorer_names_the_line_whose_tags_do_not_fit_the_words(corpus, tmp_path, peers_on_path):
    import score

    rows = [("flight", "O O B-city"), ("flight", "O O"), ("fare", "O O O O"), ("fare", "O O B-city")]
    write_run(tmp_path / "runs" / "peer-b" / "toy", rows)
    with pytest.raises(SystemExit, match=r"peer-b/toy/predictions.jsonl:2: 2 tags for 4 words"):
        score.collect(tmp_path / "runs", "toy", corpus)


def test_hf_peer_trains_both_models_predicts_test_and_times_inference(
    tiny_encoder_dir, corpus, tmp_path, peers_on_path, monkeypatch
):
    import hf_peer

    folder = tmp_path / "runs" / "hf-two-models" / "toy"
    argv = ["hf_peer.py", "train", "--corpus", "atis", "--data-dir", str(corpus), "--epochs", "1"]
    argv += ["--encoder", str(tiny_encoder_dir), "--output", str(folder)]
    monkeypatch.setattr("sys.argv", argv)
    hf_peer.main()
    monkeypatch.setattr(
        "sys.argv", ["hf_peer.py", "speed", "--data-dir", str(corpus), "--output", str(folder), "--limit", "2"]
    )
    hf_peer.main()
    record = json.loads((folder / "run.json").read_text())
    assert record["classifier"]["best_epoch"] == 1 and record["tagger"]["best_epoch"] == 1
    assert record["inference"]["batch_1"]["sentences_per_second"] > 0 and record["model_size_mb"] > 0
    predictions = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    assert [len(p["tags"]) for p in predictions] == [3, 4, 4, 3]
    assert {p["intent"] for p in predictions} <= {"flight", "fare"}


def test_first_subtoken_carries_the_word_tag(peers_on_path):
    import hf_peer

    # [CLS] fly pa ##ris [SEP]: the continuation and the special tokens are ignored.
    assert hf_peer.first_subtoken_tags([None, 0, 1, 1, None], [5, 7]) == [-100, 5, 7, -100, -100]


@pytest.mark.slow
def test_mtst_row_trains_through_the_cli_and_writes_test_predictions(
    tiny_encoder_dir, corpus, tmp_path, peers_on_path, monkeypatch
):
    import mtst_peer

    config = write_joint_yaml(tmp_path / "tiny.yaml", tiny_encoder_dir)
    folder = tmp_path / "runs" / "mtst" / "toy"
    argv = ["mtst_peer.py", "train", "--corpus", "atis", "--data-dir", str(corpus), "--epochs", "1"]
    argv += ["--config", str(config), "--output", str(folder)]
    monkeypatch.setattr("sys.argv", argv)
    mtst_peer.main()
    record = json.loads((folder / "run.json").read_text())
    assert record["epochs"] == 1 and record["train_seconds"] > 0 and record["model_size_mb"] > 0
    predictions = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    assert [len(p["tags"]) for p in predictions] == [3, 4, 4, 3]


def test_scorer_gives_an_intent_only_peer_intent_accuracy_alone(corpus, tmp_path, peers_on_path):
    import score

    folder = tmp_path / "runs" / "setfit-8" / "toy"
    folder.mkdir(parents=True)
    lines = [json.dumps({"intent": intent}) for intent in ("flight", "fare", "fare", "fare")]
    (folder / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "run.json").write_text("{}")
    [result] = score.collect(tmp_path / "runs", "toy", corpus)
    assert result["test"]["intent_accuracy"] == 0.75
    assert result["test"]["slot_f1"] is None and result["test"]["sentence_accuracy"] is None
    assert "| setfit-8 | 75.00 | — | — |" in score.table([result])


def test_few_shot_subset_takes_k_of_each_intent_the_same_way_every_time(corpus, tmp_path, peers_on_path):
    import peer_io

    sentences = peer_io.read_split(corpus, "train")
    chosen = peer_io.few_shot(sentences, 1, seed=13)
    assert sorted(s.intent for s in chosen) == ["fare", "flight"]
    assert chosen == peer_io.few_shot(sentences, 1, seed=13)
    assert len(peer_io.few_shot(sentences, 5, seed=13)) == 4  # an intent with fewer than k gives all it has
    peer_io.write_split(tmp_path / "cut" / "train", chosen)
    assert peer_io.read_split(tmp_path / "cut", "train") == chosen


def test_scorer_refuses_a_data_folder_that_is_no_corpus_in_one_line(tmp_path, peers_on_path, monkeypatch):
    import score

    argv = ["score.py", str(tmp_path), "--corpus", "toy", "--data-dir", str(tmp_path / "nope")]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit, match=r"^error: .*nope/test: a JointBERT split is a folder"):
        score.main()


def _score_file(path: Path, variant: str, seed: int, f1: float, in_recipe: bool = False) -> Path:
    run = {"recipe": {"seed": seed}} if in_recipe else {"seed": seed, "recipe": "a sentence"}
    test = {"intent_accuracy": 0.98, "slot_precision": f1, "slot_recall": f1, "slot_f1": f1, "sentence_accuracy": 0.9}
    path.write_text(json.dumps({"corpus": "toy", "results": [{"variant": variant, "test": test, "run": run}]}))
    return path


def test_paired_comparison_differences_only_the_seeds_both_systems_ran(tmp_path, peers_on_path, capsys):
    import paired

    peers = [
        _score_file(tmp_path / "s13.json", "peer", 13, 0.90, in_recipe=True),  # the seed kept in the recipe
        _score_file(tmp_path / "s14.json", "peer", 14, 0.92),
        _score_file(tmp_path / "other.json", "left-out", 14, 0.10),
    ]
    metrics = lambda f1: {  # noqa: E731
        "intent.accuracy": 0.99,
        "slots.precision": f1,
        "slots.recall": f1,
        "slots.f1": f1,
        "sentence_accuracy": 0.9,
    }
    grid = tmp_path / "grid.json"
    rows = [{"variant": "recipe", "seed": s, "test": metrics(f1)} for s, f1 in ((13, 0.95), (14, 0.96), (15, 0.97))]
    grid.write_text(json.dumps({"runs": rows + [{"variant": "other", "seed": 13, "test": metrics(0.5)}]}))
    output = tmp_path / "paired.json"
    paired.main(
        f"--corpus toy --peers {' '.join(map(str, peers))} --peer-variants peer --mtst mtst={grid}:recipe"
        f" --output {output}".split()
    )
    result = json.loads(output.read_text())
    assert set(result["systems"]) == {"mtst", "peer"}
    assert result["systems"]["mtst"]["slot_f1"]["mean"] == pytest.approx(96.0)
    assert result["systems"]["peer"]["seeds"] == [13, 14]
    [pair] = result["paired"]
    assert pair["seeds"] == [13, 14] and pair["deltas"]["slot_f1"] == [5.0, 4.0]
    assert pair["deltas"]["intent_accuracy"] == [1.0, 1.0]
    assert "| mtst − peer | 13, 14 |" in capsys.readouterr().out


def test_paired_comparison_refuses_a_variant_the_grid_did_not_run(tmp_path, peers_on_path):
    import paired

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"runs": []}))
    with pytest.raises(SystemExit, match="no runs of variant 'recipe'"):
        peers = _score_file(tmp_path / "p.json", "peer", 13, 0.9)
        paired.main(f"--corpus toy --peers {peers} --mtst mtst={grid}:recipe".split())
