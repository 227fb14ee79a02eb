"""benchmarks/time_to_accuracy.py end to end on the tiny encoder and toy data (plumbing, not a timing)."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import write_joint_yaml

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def tiny_yaml(tiny_encoder_dir, tmp_path) -> Path:
    """Two epochs with patience 2: every run has a curve of two points."""
    return write_joint_yaml(tmp_path / "tiny.yaml", tiny_encoder_dir, epochs=2, patience=2)


@pytest.fixture
def benchmarks_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    for name in ("time_to_accuracy", "accuracy_grid", "machine"):
        sys.modules.pop(name, None)


@pytest.mark.slow
def test_time_to_accuracy_reads_each_runs_curve_and_reruns_nothing_finished(
    tiny_yaml, toy_data_dir, tmp_path, capsys, benchmarks_on_path
):
    import time_to_accuracy

    output, runs = tmp_path / "tta.json", tmp_path / "runs"
    argv = ["toy", "--data-dir", str(toy_data_dir), "--config", str(tiny_yaml), "--seeds", "1", "--threads", "1"]
    argv += ["--variants", "baseline", "small-batch", "--define", "small-batch:train.batch_size=2"]
    argv += ["--runs", str(runs), "--output", str(output)]
    time_to_accuracy.main(argv)
    result = json.loads(output.read_text())
    assert [(row["variant"], row["seed"]) for row in result["runs"]] == [("baseline", 1), ("small-batch", 1)]
    for row in result["runs"]:
        assert row["metric"] == "slots.f1" and [point["epoch"] for point in row["curve"]] == [1, 2]
        minutes = [point["minutes"] for point in row["curve"]]
        assert 0 < minutes[0] < minutes[1] == row["minutes_to_stop"] and row["wall_minutes"] > 0
        assert row["converged_dev"] == max(point["dev"] for point in row["curve"])
        within = next(p for p in row["curve"] if p["dev"] >= row["converged_dev"] - 0.003)
        assert (row["epoch_within"], row["minutes_to_within"]) == (within["epoch"], within["minutes"])
        assert len(row["load_average_before"]) == 3 and len(row["load_average_after"]) == 3
    assert result["variants"]["baseline"]["speedup"] == {"minutes_to_within": 1.0, "minutes_to_stop": 1.0}
    assert result["variants"]["small-batch"]["dev"]["std"] == 0.0 and result["machine"]["threads"] == 1
    run = runs / "tiny" / "small-batch" / "seed-1"
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["batch_size"] == 2
    assert "| small-batch | 1 |" in capsys.readouterr().out
    # Finished runs are read back, not retrained; a lost runs folder is read from the result file.
    (runs / "tiny" / "baseline" / "seed-1.log").unlink()
    time_to_accuracy.main(argv)
    assert not (runs / "tiny" / "baseline" / "seed-1.log").exists()
    recorded = json.loads(output.read_text())["runs"]
    shutil.rmtree(runs)
    time_to_accuracy.main(argv)
    assert json.loads(output.read_text())["runs"] == recorded and not runs.exists()
