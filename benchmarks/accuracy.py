"""Test accuracy on SNIPS or ATIS over several seeds, beside the published BERT-base numbers.

python benchmarks/accuracy.py atis --data-dir ../shared/data/atis [--seeds 13 14 15] [--config configs/atis.yaml]

Trains each seed that has no finished run yet (`mtst train --config CONFIG --data-dir DIR --output-dir
runs/accuracy/CONFIG[-eN]/seed-S --seed S [--epochs N]`, one process per seed, `--jobs` at a time),
reads the test metrics of each best checkpoint from its summary.json, and scores each checkpoint a second time with
intent-conditioned slot decoding (the slot tags seen with the predicted intent in train; decoding only,
no training). Writes benchmarks/results/accuracy_DATASET.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from accuracy_grid import train_command as grid_train_command
from conditioned_decoding import conditioned
from machine import mean_std as spread
from machine import started_record, write_result
from mtst.config import load_config
from mtst.data import load_splits
from mtst.evaluation.metrics import evaluate
from mtst.model.multitask import MultiTaskModel

# Chen et al. 2019, "BERT for Joint Intent Classification and Slot Filling", BERT-base (110M parameters).
PUBLISHED = {
    "snips": {"intent": 98.6, "slot_f1": 97.0, "sentence": 92.8},
    "atis": {"intent": 97.5, "slot_f1": 96.1, "sentence": 88.2},
}
METRICS = {"intent": "intent.accuracy", "slot_f1": "slots.f1", "sentence": "sentence_accuracy"}


def train_command(args, seed: int) -> list[str]:
    """accuracy_grid's command (a fresh run, or `--resume` of one a stopped session left half done)."""
    budget = ["--epochs", str(args.epochs)] if args.epochs else []
    return grid_train_command(args.config, run_dir(args, seed), seed, ["--data-dir", str(args.data_dir), *budget])


def run_dir(args, seed: int) -> Path:
    budget = f"-e{args.epochs}" if args.epochs else ""
    return args.runs / f"{args.config.stem}{budget}" / f"seed-{seed}"


def train_missing_seeds(args) -> None:
    """Seeds without a summary.json train now, `--jobs` processes at a time, each on `--threads` threads."""
    missing = [seed for seed in args.seeds if not (run_dir(args, seed) / "summary.json").is_file()]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    for start in range(0, len(missing), args.jobs):
        running = []
        for seed in missing[start : start + args.jobs]:
            run_dir(args, seed).parent.mkdir(parents=True, exist_ok=True)
            log = open(run_dir(args, seed).with_suffix(".log"), "w")  # noqa: SIM115 - closed below
            print(f"training seed {seed}: {' '.join(train_command(args, seed))}")
            running.append((subprocess.Popen(train_command(args, seed), stdout=log, stderr=log, env=env), log))
        for process, log in running:
            if process.wait() != 0:
                sys.exit(f"training failed; see {log.name}")
            log.close()


def conditioned_test_metrics(checkpoint: Path, args, max_train_examples: int | None = None, seed: int = 13) -> dict:
    """Test metrics with slot decoding restricted to the tags train showed with the predicted intent
    (train as the run saw it: the same seeded subset when it trained on one)."""
    data = load_config(args.config, **{"data.dir": str(args.data_dir)}).data
    splits = load_splits(data, max_train_examples, seed)
    model = conditioned(MultiTaskModel.from_pretrained(checkpoint), splits.train)
    metrics, _ = evaluate(model, splits.test)
    return {
        "intent": metrics["intent"]["accuracy"],
        "slot_f1": metrics["slots"]["f1"],
        "sentence": metrics["sentence_accuracy"],
    }


def seed_result(args, seed: int) -> dict:
    summary = json.loads((run_dir(args, seed) / "summary.json").read_text())
    test = summary["test"]
    return {
        "seed": seed,
        "best_epoch": summary["best_epoch"],
        "epochs_run": summary["epochs_run"],
        "test": {key: test[name] for key, name in METRICS.items()},
        "dev": {key: summary["dev"][name] for key, name in METRICS.items()},  # the best epoch's dev scores
        "test_conditioned": conditioned_test_metrics(run_dir(args, seed) / "best", args),
    }


def mean_std(rows: list[dict], field: str) -> dict:
    summary = {}
    for key in METRICS:
        values = [100 * row[field][key] for row in rows]
        summary[key] = {**spread(values), "values": values}
    return summary


def table(result: dict) -> str:
    published = result["published"]
    lines = [
        f"| {result['dataset'].upper()} test ({len(result['seeds'])} seeds) | intent acc | slot F1 | sentence acc |",
        "|---|---|---|---|",
        f"| BERT-base, published (Chen et al. 2019) | {published['intent']} | {published['slot_f1']} | "
        f"{published['sentence']} |",
    ]
    rows = (
        ("mtst", "mean_std"),
        ("mtst + intent-conditioned slots", "mean_std_conditioned"),
        ("mtst, dev split (best epoch)", "mean_std_dev"),
    )
    for label, field in rows:
        cells = [f"{result[field][key]['mean']:.2f} ± {result[field][key]['std']:.2f}" for key in METRICS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| seed | best epoch | intent | slot F1 | sentence | conditioned slot F1 | conditioned sentence |")
    lines.append("|---|---|---|---|---|---|---|")
    for row in result["per_seed"]:
        lines.append(
            f"| {row['seed']} | {row['best_epoch']}/{row['epochs_run']} | " + " | ".join(percent_cells(row)) + " |"
        )
    return "\n".join(lines)


def percent_cells(row: dict) -> list[str]:
    """Test intent, slot F1, sentence accuracy, then slot F1 and sentence accuracy with conditioned slots."""
    test, conditioned = row["test"], row["test_conditioned"]
    values = [test["intent"], test["slot_f1"], test["sentence"], conditioned["slot_f1"], conditioned["sentence"]]
    return [f"{100 * value:.2f}" for value in values]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=sorted(PUBLISHED))
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, help="default: configs/DATASET.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--epochs", type=int, help="override the config's epochs (runs go to DATASET-eN/)")
    parser.add_argument("--runs", type=Path, default=Path("runs/accuracy"))
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained at once")
    parser.add_argument("--threads", type=int, help="per training job; default: the cores shared among the jobs")
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/accuracy_DATASET.json")
    args = parser.parse_args()
    args.threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    args.config = args.config or Path("configs") / f"{args.dataset}.yaml"
    args.output = args.output or Path("benchmarks/results") / f"accuracy_{args.dataset}.json"
    result = started_record(args)
    train_missing_seeds(args)
    rows = [seed_result(args, seed) for seed in args.seeds]
    result.update(
        dataset=args.dataset,
        seeds=args.seeds,
        published=PUBLISHED[args.dataset],
        mean_std=mean_std(rows, "test"),
        mean_std_dev=mean_std(rows, "dev"),
        mean_std_conditioned=mean_std(rows, "test_conditioned"),
        per_seed=rows,
    )
    write_result(result, args.output)
    print(table(result))


if __name__ == "__main__":
    main()
