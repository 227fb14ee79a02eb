"""Two CPU processes (torchrun, gloo): data sharded per rank, replicas in sync, one writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml


@pytest.mark.slow
@pytest.mark.parametrize("group_by_length", [False, True], ids=["drawn-order", "length-grouped"])
def test_two_processes_train_one_model(tmp_path, tiny_config, group_by_length):
    settings = tiny_config.model_dump()
    settings["output_dir"] = str(tmp_path / "run")
    settings["train"].update(
        {"epochs": 2, "batch_size": 2, "num_sample_predictions": 0, "group_by_length": group_by_length}
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(
        [*launch, "-m", "mtst", "train", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["processes"] == 2
    first, second = summary["final_weight_checksums"]
    assert first == second  # both replicas hold the same weights after the last step
    # One process wrote: one checkpoint, one state, nothing half-written left beside them.
    assert sorted(p.name for p in run.iterdir()) == [
        "best",
        "config.yaml",
        "curves.png",
        "metrics.jsonl",
        "summary.json",
        "training_state",
    ]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    # Sharded: 8 sentences in batches of 2 are 4 batches an epoch, 2 for each process.
    progress = json.loads((run / "training_state" / "state.json").read_text())["progress"]
    assert progress["global_step"] == 2 * 2
    assert result.stdout.count('"best_epoch"') == 1  # only the main process reports
