"""How often each run predicts each sentence task's majority class on test, from summary.json's per-label report.

A model that collapses onto the majority class predicts it far more often than it occurs; this shows whether one does.

    python scripts/label_shares.py runs/compare-atis/*/
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SUMMARY_ROWS = ("accuracy", "macro avg", "weighted avg", "micro avg")


def majority_share(report: dict) -> tuple[str, float, float, float]:
    """(majority label, its share of gold, its share of predictions, macro F1) from a sklearn report."""
    labels = {k: v for k, v in report.items() if isinstance(v, dict) and k not in SUMMARY_ROWS}
    total = sum(row["support"] for row in labels.values())
    label, row = max(labels.items(), key=lambda item: item[1]["support"])
    # predicted count = true positives / precision = recall * support / precision
    predicted = row["recall"] * row["support"] / row["precision"] if row["precision"] else 0.0
    return label, row["support"] / total, predicted / total, report["macro avg"]["f1-score"]


def main(runs: list[str]) -> None:
    print("| run | task | majority label | gold share | predicted share | macro F1 |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        summary = json.loads((Path(run) / "summary.json").read_text())
        for task, report in summary["test_report"].items():
            if "macro avg" in report and "accuracy" in report:  # sentence tasks only
                label, gold, predicted, macro_f1 = majority_share(report)
                name = Path(run).name
                print(f"| {name} | {task} | {label} | {gold:.3f} | {predicted:.3f} | {macro_f1:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
