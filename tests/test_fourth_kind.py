"""A fourth task kind touches only tasks/ and one registry line: trained, evaluated and predicted end to end.

tests/data/fourth_kind/regression.py (a number per sentence) goes into a copy of the package with one import
and one KINDS entry added to tasks/__init__.py, and nothing else changed; the CLI then trains on a JSONL corpus
with an intent and a rating per sentence, evaluates the checkpoint and predicts with it.
"""

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import mtst

KIND = Path(__file__).parent / "data" / "fourth_kind" / "regression.py"
SENTENCES = [
    ("play some jazz by miles davis", "PlayMusic", "4.5"),
    ("what is the weather in paris", "GetWeather", "1.0"),
    ("put on a song by queen", "PlayMusic", "4.0"),
    ("will it rain in london tomorrow", "GetWeather", "1.5"),
]


def package_with_the_kind(root: Path) -> Path:
    package = root / "mtst"
    shutil.copytree(Path(mtst.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(KIND, package / "tasks" / "regression.py")
    registry = package / "tasks" / "__init__.py"
    text = registry.read_text()
    text = text.replace(
        "from mtst.tasks.multilabel import",
        "from mtst.tasks.regression import RegressionTask, RegressionTaskConfig\nfrom mtst.tasks.multilabel import",
    )
    text = text.replace(
        '    "sentence": (', '    "regression": (RegressionTaskConfig, RegressionTask),\n    "sentence": ('
    )
    registry.write_text(text)
    return package


def changed_files(original: Path, copy: Path) -> set[str]:
    changed = set()

    def walk(comparison: filecmp.dircmp, prefix: str) -> None:
        changed.update(prefix + name for name in comparison.diff_files + comparison.left_only + comparison.right_only)
        for name, sub in comparison.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(original, copy, ignore=["__pycache__"]), "")
    return changed


def write_corpus(folder: Path) -> None:
    folder.mkdir()
    for split in ("train", "dev", "test"):
        rows = [{"text": text, "label": label, "rating": rating} for text, label, rating in SENTENCES * 2]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def mtst_cli(root: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "mtst", *args], capture_output=True, text=True, env=env, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_a_regression_kind_trains_evaluates_and_predicts_with_only_tasks_touched(tiny_encoder_dir, tmp_path):
    package = package_with_the_kind(tmp_path)
    assert changed_files(Path(mtst.__file__).parent, package) == {"tasks/__init__.py", "tasks/regression.py"}
    write_corpus(tmp_path / "data")
    config = {
        "encoder": {"name_or_path": str(tiny_encoder_dir), "max_length": 64},
        "data": {"dir": str(tmp_path / "data"), "format": "jsonl"},
        "tasks": [{"name": "intent", "type": "sentence"}, {"name": "rating", "type": "regression"}],
        "train": {"epochs": 2, "batch_size": 4, "num_sample_predictions": 1},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    mtst_cli(tmp_path, "train", "--config", "config.yaml", "--output-dir", "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test"]["rating.mae"] >= 0 and "intent.accuracy" in summary["test"]
    saved = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
    assert [task["type"] for task in saved["tasks"]] == ["sentence", "regression"]
    metrics = json.loads(mtst_cli(tmp_path, "evaluate", "run/best", "--data-dir", "data", "--json"))
    assert metrics["rating"]["mae"] == pytest.approx(summary["test"]["rating.mae"], abs=1e-6)
    [prediction] = [
        json.loads(line) for line in mtst_cli(tmp_path, "predict", "run/best", "play jazz", "--json").splitlines()
    ]
    assert isinstance(prediction["value"], float) and prediction["label"] in {"PlayMusic", "GetWeather"}
