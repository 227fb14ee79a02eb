"""One modelling option at a time against the same baseline: same data, seed and epoch budget.

python benchmarks/ablations.py atis --data-dir ../shared/data/atis --epochs 4 [--variants baseline crf ...]

Each variant is the dataset's config (configs/DATASET.yaml) with one change, trained with `mtst.training.loop`
into runs/ablations/CONFIG-eEPOCHS[-nN]-sSEED/VARIANT (a finished variant is read, not retrained, so several
invocations with different `--variants` can share the cores). Every checkpoint is also scored with
intent-conditioned slot decoding, which changes decoding only. Writes
benchmarks/results/ablations_DATASET.json and prints a Markdown table of test metrics and their change
against `baseline`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from accuracy import METRICS, conditioned_test_metrics, percent_cells
from machine import started_record, write_result
from mtst.config import Config, load_config
from mtst.tasks import KINDS
from mtst.training.loop import train


def _with_tasks(config: Config, **options) -> Config:
    """Sets `options` on every task whose kind has them (crf and class_weights only exist for token tasks)."""
    raw = config.model_dump()
    for task in raw["tasks"]:
        known = KINDS[task["type"]][0].model_fields
        task.update({key: value for key, value in options.items() if key in known})
    return Config.model_validate(raw)


def _with(config: Config, section: str, **values) -> Config:
    raw = config.model_dump()
    raw[section].update(values)
    return Config.model_validate(raw)


def _with_strategy(config: Config, strategy: str) -> Config:
    return Config.model_validate({**config.model_dump(), "strategy": strategy})


VARIANTS: dict[str, tuple[str, Callable[[Config], Config]]] = {
    "baseline": ("the dataset config as it is", lambda c: c),
    "crf": ("CRF layer on the slot head", lambda c: _with_tasks(c, crf=True)),
    "label-smoothing-0.1": ("label smoothing 0.1 on both heads", lambda c: _with_tasks(c, label_smoothing=0.1)),
    "entity-weight-1": ("no entity up-sampling (weight 1)", lambda c: _with(c, "train", entity_sampler_weight=1.0)),
    "entity-weight-4": (
        "entity up-sampling weight 4 (default 2)",
        lambda c: _with(c, "train", entity_sampler_weight=4.0),
    ),
    "llrd-0.8": ("layer-wise LR decay 0.8 per layer", lambda c: _with_strategy(c, "llrd:0.8")),
    "class-weights-none": ("unweighted slot cross-entropy", lambda c: _with_tasks(c, class_weights="none")),
    "crf-entity-weight-1": (
        "CRF on the slot head, no entity up-sampling",
        lambda c: _with(_with_tasks(c, crf=True), "train", entity_sampler_weight=1.0),
    ),
    "unweighted-entity-weight-1": (
        "unweighted slot cross-entropy, no entity up-sampling",
        lambda c: _with(_with_tasks(c, class_weights="none"), "train", entity_sampler_weight=1.0),
    ),
}


def run_variant(args, name: str) -> dict:
    subset = f"-n{args.max_train_examples}" if args.max_train_examples else ""
    output = args.runs / f"{args.config.stem}-e{args.epochs}{subset}-s{args.seed}" / name
    if not (output / "summary.json").is_file():
        base = load_config(args.config, **{"data.dir": str(args.data_dir), "output_dir": str(output)})
        budget = {"epochs": args.epochs, "patience": args.epochs, "max_train_examples": args.max_train_examples}
        config = VARIANTS[name][1](_with(base, "train", seed=args.seed, **budget))
        started = time.perf_counter()
        train(config)
        (output / "wall_seconds.txt").write_text(f"{time.perf_counter() - started:.0f}\n")
    summary = json.loads((output / "summary.json").read_text())
    return {
        "variant": name,
        "what": VARIANTS[name][0],
        "best_epoch": summary["best_epoch"],
        "dev": {key: summary["dev"][metric] for key, metric in METRICS.items()},
        "test": {key: summary["test"][metric] for key, metric in METRICS.items()},
        "test_conditioned": conditioned_test_metrics(output / "best", args, args.max_train_examples, args.seed),
    }


def table(result: dict) -> str:
    rows = {row["variant"]: row for row in result["variants"]}
    base = rows.get("baseline")
    lines = [
        "| variant | what | dev: intent | slot F1 | sentence | test: intent | slot F1 | sentence"
        " | Δ slot F1 | Δ sentence | + conditioned: slot F1 | sentence |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        test = row["test"]
        delta = [f"{100 * (test[key] - base['test'][key]):+.2f}" if base else "" for key in ("slot_f1", "sentence")]
        cells = percent_cells(row)
        dev = [f"{100 * row['dev'][key]:.2f}" if "dev" in row else "–" for key in METRICS]
        lines.append(f"| {name} | {row['what']} | " + " | ".join(dev + cells[:3] + delta + cells[3:]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=("atis", "snips"))
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, help="default: configs/DATASET.yaml")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--max-train-examples", type=int, help="a seeded subset of train (runs go to ...-nN/)")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=Path, default=Path("runs/ablations"))
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/ablations_DATASET.json")
    args = parser.parse_args()
    args.config = args.config or Path("configs") / f"{args.dataset}.yaml"
    args.output = args.output or Path("benchmarks/results") / f"ablations_{args.dataset}.json"
    torch.set_num_threads(args.threads)
    result = started_record(args)
    result.update(dataset=args.dataset, variants=[run_variant(args, name) for name in args.variants])
    write_result(result, args.output)
    print(table(result))


if __name__ == "__main__":
    main()
