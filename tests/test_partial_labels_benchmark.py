"""benchmarks/partial_labels.py: the slots-half and half-only corpora it writes, resuming, the `full` row read from
an accuracy grid; a fake launcher stands in for training, and one slow test trains both variants for real."""

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import TOY_SENTENCES, write_joint_yaml

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def partial_labels(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    import partial_labels

    yield partial_labels
    torch.set_num_threads(threads)
    for name in ("partial_labels", "accuracy_grid", "machine", "peer_io"):
        sys.modules.pop(name, None)


@pytest.fixture
def argv(tiny_encoder_dir, toy_data_dir, tmp_path) -> list[str]:
    config = write_joint_yaml(tmp_path / "tiny.yaml", tiny_encoder_dir, epochs=1)
    argv = ["snips", "--data-dir", str(toy_data_dir), "--config", str(config), "--seeds", "1", "--threads", "1"]
    return [*argv, "--runs", str(tmp_path / "runs"), "--output", str(tmp_path / "partial.json")]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def metrics(score: float) -> dict:
    keys = ("intent.accuracy", "slots.precision", "slots.recall", "slots.f1", "sentence_accuracy")
    return {key: score for key in keys}


class FakeLauncher:
    """Notes each command and writes the summary.json a finished run leaves."""

    def __init__(self):
        self.commands = []

    def __call__(self, command: list[str], log, env: dict) -> int:
        assert env["OMP_NUM_THREADS"] == "1" and env["MKL_NUM_THREADS"] == "1"
        self.commands.append(command)
        run = Path(command[command.index("--resume" if "--resume" in command else "--output-dir") + 1])
        run.mkdir(parents=True, exist_ok=True)
        summary = {"best_epoch": 1, "epochs_run": 1, "wall_time_s": 1.0, "dev": metrics(0.5), "test": metrics(0.25)}
        (run / "summary.json").write_text(json.dumps(summary))
        return 0


def test_slots_half_drops_the_tags_of_the_undrawn_half_and_half_only_keeps_just_the_drawn(
    partial_labels, argv, tmp_path, monkeypatch
):
    monkeypatch.setattr(partial_labels, "launch", FakeLauncher())
    partial_labels.main(argv)
    data = tmp_path / "runs" / "snips" / "data"
    slots_half = read_jsonl(data / "slots-half-s1" / "train.jsonl")
    assert len(slots_half) == len(TOY_SENTENCES) and all(row["label"] for row in slots_half)
    tagged = [row for row in slots_half if "tags" in row]
    assert len(tagged) == len(TOY_SENTENCES) // 2
    assert [row["tokens"] for row in slots_half] == [words.split() for words, _, _ in TOY_SENTENCES]
    assert read_jsonl(data / "half-only-s1" / "train.jsonl") == tagged
    for variant in ("slots-half-s1", "half-only-s1"):
        for split in ("dev", "test"):
            rows = read_jsonl(data / variant / f"{split}.jsonl")
            assert [(row["tokens"], row["tags"], row["label"]) for row in rows] == [
                (words.split(), tags.split(), intent) for words, tags, intent in TOY_SENTENCES
            ]
    config = yaml.safe_load((tmp_path / "runs" / "snips" / "slots-half" / "config.yaml").read_text())
    assert config["data"]["format"] == "jsonl" and config["train"]["epochs"] == 1
    result = json.loads((tmp_path / "partial.json").read_text())
    assert result["variants"]["slots-half"]["train_sentences"] == {"with_slots": 4, "with_intents": 8}
    assert result["variants"]["half-only"]["train_sentences"] == {"with_slots": 4, "with_intents": 4}
    assert result["variants"]["half-only"]["test"]["slots.f1"] == {"mean": 25.0, "std": 0.0, "n": 1}


def test_the_draw_is_half_rounded_down_and_set_by_the_seed(partial_labels):
    draw = partial_labels.drawn_half
    assert len(draw(9, 13)) == 4 and draw(9, 13) == draw(9, 13) and draw(100, 13) != draw(100, 14)


def test_an_interrupted_run_resumes_and_a_finished_one_is_read(partial_labels, argv, tmp_path, monkeypatch):
    launcher = FakeLauncher()
    monkeypatch.setattr(partial_labels, "launch", launcher)
    interrupted = tmp_path / "runs" / "snips" / "slots-half-e2" / "seed-1"
    (interrupted / "training_state").mkdir(parents=True)
    (interrupted / "config.yaml").write_text("{}")
    partial_labels.main([*argv, "--epochs", "2"])
    resumed, fresh = launcher.commands
    assert resumed[-4:] == ["mtst", "train", "--resume", str(interrupted)] and "--data-dir" not in resumed
    data = tmp_path / "runs" / "snips" / "data" / "half-only-s1"
    assert fresh[fresh.index("--data-dir") + 1] == str(data) and fresh[fresh.index("--seed") + 1] == "1"
    partial_labels.main([*argv, "--epochs", "2"])
    assert len(launcher.commands) == 2


def write_grid(path: Path) -> Path:
    runs = [
        {"variant": variant, "seed": seed, "dev": metrics(score), "test": metrics(score)}
        for variant, seed, score in (("crf", 1, 0.9), ("crf", 2, 0.1), ("baseline", 1, 0.3))
    ]
    settings = {"config": "configs/tiny.yaml", "epochs": None}
    path.write_text(
        json.dumps({"settings": settings, "runs": runs, "variants": {"crf": {"settings": {"token.crf": True}}}})
    )
    return path


def test_the_full_row_comes_from_the_grid_for_the_same_seeds_and_the_partial_runs_share_its_recipe(
    partial_labels, argv, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(partial_labels, "launch", FakeLauncher())
    grid = write_grid(tmp_path / "grid.json")
    partial_labels.main([*argv, "--full-from", str(grid), "--full-variant", "crf"])
    result = json.loads((tmp_path / "partial.json").read_text())
    full = result["variants"]["full"]
    assert list(result["variants"]) == ["full", "slots-half", "half-only"]
    assert full["seeds_done"] == [1] and full["test"]["slots.f1"]["mean"] == pytest.approx(90.0)
    assert full["train_sentences"] == {"with_slots": 8, "with_intents": 8} and full["grid_differs_in"] == []
    config = yaml.safe_load((tmp_path / "runs" / "snips" / "slots-half-crf" / "config.yaml").read_text())
    assert config["tasks"][1]["crf"] is True and result["recipe"] == {"token.crf": True}
    assert (
        "| full | 1 | 8 of 8 | 90.00 ± 0.00 | 90.00 ± 0.00 | 90.00 ± 0.00 | 90.00 ± 0.00 |" in capsys.readouterr().out
    )
    partial_labels.main([*argv, "--full-from", str(grid), "--full-variant", "crf", "--config-recipe"])
    plain = yaml.safe_load((tmp_path / "runs" / "snips" / "slots-half" / "config.yaml").read_text())
    assert "crf" not in plain["tasks"][1]


@pytest.mark.slow
def test_both_variants_train_report_points_and_a_rerun_trains_nothing(partial_labels, argv, tmp_path, capsys):
    partial_labels.main(argv)
    result = json.loads((tmp_path / "partial.json").read_text())
    assert [(row["variant"], row["seed"]) for row in result["runs"]] == [("slots-half", 1), ("half-only", 1)]
    for variant in ("slots-half", "half-only"):
        for split in ("dev", "test"):
            stats = result["variants"][variant][split]
            for key in ("intent.accuracy", "slots.f1", "sentence_accuracy"):
                assert stats[key]["n"] == 1 and 0 <= stats[key]["mean"] <= 100
    assert "| slots-half | 1 | 4 of 8 |" in capsys.readouterr().out
    log = tmp_path / "runs" / "snips" / "slots-half" / "seed-1.log"
    log.unlink()
    partial_labels.main(argv)
    assert not log.exists()


def test_a_failed_run_ends_the_command_naming_it(partial_labels, argv, monkeypatch):
    monkeypatch.setattr(partial_labels, "launch", lambda command, log, env: 1)
    with pytest.raises(SystemExit, match="(?s)slots-half seed 1: exit 1.*half-only seed 1: exit 1"):
        partial_labels.main(argv)
