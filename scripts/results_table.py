"""Prints a Markdown table of finished runs from their summary.json files.

python scripts/results_table.py runs/atis runs/snips
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = [
    ("intent acc", "intent.accuracy"),
    ("slot P", "slots.precision"),
    ("slot R", "slots.recall"),
    ("slot F1", "slots.f1"),
    ("sentence acc", "sentence_accuracy"),
]


def row(run: Path) -> str:
    summary = json.loads((run / "summary.json").read_text())
    test = summary["test"]
    scores = " | ".join(f"{100 * test[key]:.2f}" for _, key in COLUMNS)
    minutes = summary["wall_time_s"] / 60
    return f"| {run.name} | {scores} | {summary['epochs_run']} | {summary['best_epoch']} | {minutes:.0f} min |"


def main(runs: list[str]) -> None:
    print("| run | " + " | ".join(name for name, _ in COLUMNS) + " | epochs run | best epoch | wall time |")
    print("|---" * (len(COLUMNS) + 4) + "|")
    for run in runs:
        print(row(Path(run)))


if __name__ == "__main__":
    main(sys.argv[1:])
