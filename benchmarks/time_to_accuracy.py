"""Time to accuracy: wall minutes until a recipe's dev slot F1 is as good as it gets, and until early stopping ends.

../shared/bin/cpu-slot --slots 2 python benchmarks/time_to_accuracy.py snips --data-dir ../shared/data/snips \\
    --seeds 13 14 15 --variants baseline grouped --define grouped:train.group_by_length=true --threads 2

Each variant (a name from accuracy_grid.VARIANTS, one given with `--define NAME:KEY=VALUE,...`, or `a+b`) is
the dataset's config (configs/DATASET.yaml) with its settings, trained as the recipe says (its epochs and
early-stopping patience) once per seed into RUNS/CONFIG/VARIANT/seed-S, one run at a time on `--threads`
threads: a timing is honest only on otherwise idle cores (run it inside `cpu-slot` with the other slots
idle), so the load average is recorded before and after every run.

Per run, from its metrics.jsonl: each epoch's wall seconds (training and the dev pass; `seconds`) summed into
minutes since the first epoch began, and its dev slot F1 (`--metric`, default the first `*.f1` key). The run's
converged dev F1 is its best epoch's; `minutes_to_within` is the time until dev F1 first comes within
`--within` points (0.3) of it, `minutes_to_stop` the time until early stopping ended the run (every epoch).
Per variant: the median over seeds of both, the dev/test F1 mean ± std, and the speed-up of each median
against the `--baseline` variant's. A run with a summary.json is read, not retrained; an interrupted one
resumes (`mtst train --resume`); a run whose folder is gone but whose row is in the result JSON (same config,
variant settings and seed) is read from there. Writes benchmarks/results/time_to_accuracy_DATASET.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from accuracy_grid import (
    VARIANTS,
    apply_settings,
    parse_definitions,
    recorded_runs,
    train_command,
    variant_settings,
)
from machine import load_average, mean_std, started_record, write_result
from mtst.config import load_config

RECORD_KEYS = ("dataset", "config", "within", "metric")


def variant_config(args, name: str) -> Path:
    """The variant's whole config in its folder (the recipe's own epochs and patience); validated."""
    raw = load_config(args.config, **{"data.dir": str(args.data_dir)}).model_dump()
    raw["train"]["num_sample_predictions"] = 0
    raw = apply_settings(raw, variant_settings(name, args.known))
    path = args.runs / args.config.stem / name / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    load_config(path)  # a bad variant setting stops here, before anything trains
    return path


def curve(run: Path, metric: str | None) -> tuple[str, list[dict]]:
    """The metric's name and, per epoch, its dev value and the minutes since the first epoch began."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    metric = metric or next(key for key in rows[0]["dev"] if key.endswith(".f1"))
    points, elapsed = [], 0.0
    for row in rows:
        elapsed += row["seconds"]
        points.append({"epoch": row["epoch"], "minutes": elapsed / 60, "dev": row["dev"][metric]})
    return metric, points


def run_row(args, name: str, seed: int, run: Path, loads: dict) -> dict:
    """What one finished run says about time to accuracy."""
    metric, points = curve(run, args.metric)
    summary = json.loads((run / "summary.json").read_text())
    best = max(point["dev"] for point in points)
    within = next(point for point in points if point["dev"] >= best - args.within / 100)
    return {
        "variant": name,
        "seed": seed,
        "run": str(run),
        "metric": metric,
        "curve": points,
        "converged_dev": best,
        "epoch_within": within["epoch"],
        "minutes_to_within": within["minutes"],
        "minutes_to_stop": points[-1]["minutes"],
        "wall_minutes": summary["wall_time_s"] / 60,  # also model loading and the final test pass
        "test": summary["test"].get(metric),
        **loads,
    }


def train(args, name: str, seed: int) -> dict | None:
    """The run's row: read back when finished, else trained (or resumed) now; None when training failed."""
    run = args.runs / args.config.stem / name / f"seed-{seed}"
    if (run / "summary.json").is_file():
        return run_row(args, name, seed, run, {})
    if (name, seed) in args.recorded:
        return args.recorded[(name, seed)]
    command = train_command(variant_config(args, name), run, seed)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    before, started = load_average(), time.time()
    print(f"start {name} seed {seed}: {' '.join(command)}", flush=True)
    with open(run.parent / f"seed-{seed}.log", "a") as log:
        code = subprocess.run(command, stdout=log, stderr=log, env=env).returncode
    print(f"{'done' if code == 0 else f'FAILED (exit {code})'}: {name} seed {seed} in {time.time() - started:.0f} s")
    if code != 0:
        return None
    return run_row(args, name, seed, run, {"load_average_before": before, "load_average_after": load_average()})


def summarize(args, rows: list[dict]) -> dict:
    """Per variant: medians over seeds, dev/test mean ± std, and the speed-up against the baseline's medians."""
    variants = {}
    for name in args.variants:
        mine = [row for row in rows if row["variant"] == name]
        if not mine:
            continue
        variants[name] = {"seeds_done": [row["seed"] for row in mine]}
        for key in ("minutes_to_within", "minutes_to_stop", "wall_minutes"):
            variants[name][key] = statistics.median(row[key] for row in mine)
        for key, split in (("converged_dev", "dev"), ("test", "test")):
            values = [100 * row[key] for row in mine if row[key] is not None]
            variants[name][split] = mean_std(values) if values else None
    base = variants.get(args.baseline)
    for entry in variants.values():
        entry["speedup"] = {
            key: base[key] / entry[key] if base and entry[key] else None
            for key in ("minutes_to_within", "minutes_to_stop")
        }
    return variants


def table(result: dict) -> str:
    lines = [
        f"| variant | seeds | min to within {result['settings']['within']} of converged (median) | speed-up "
        "| min to early stop (median) | speed-up | dev F1 (converged) | test F1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["variants"].items():
        speed = row["speedup"]
        cells = [
            f"{row['minutes_to_within']:.1f}",
            f"{speed['minutes_to_within']:.2f}x" if speed["minutes_to_within"] else "–",
            f"{row['minutes_to_stop']:.1f}",
            f"{speed['minutes_to_stop']:.2f}x" if speed["minutes_to_stop"] else "–",
            *(f"{row[s]['mean']:.2f} ± {row[s]['std']:.2f}" if row[s] else "–" for s in ("dev", "test")),
        ]
        lines.append(f"| {name} | {len(row['seeds_done'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="names the default config (configs/DATASET.yaml) and result file")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, help="default: configs/DATASET.yaml")
    parser.add_argument("--variants", nargs="+", default=["baseline"], help="names from VARIANTS or --define; a+b")
    parser.add_argument("--define", nargs="*", default=[], help="NAME:KEY=VALUE[,KEY=VALUE...] extra variants")
    parser.add_argument("--baseline", default="baseline", help="the variant every speed-up is measured against")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--within", type=float, default=0.3, help="points of dev F1 below the converged value")
    parser.add_argument("--metric", help="dev metric key (default: the first ending in .f1, the slot task's)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads of each run")
    parser.add_argument("--runs", type=Path, default=Path("runs/time_to_accuracy"))
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/time_to_accuracy_DATASET.json")
    args = parser.parse_args(argv)
    args.config = args.config or Path("configs") / f"{args.dataset}.yaml"
    args.output = args.output or Path("benchmarks/results") / f"time_to_accuracy_{args.dataset}.json"
    args.known = {**VARIANTS, **parse_definitions(args.define)}
    for name in args.variants:
        variant_settings(name, args.known)  # an unknown name stops here
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = started_record(args)
    args.recorded = recorded_runs(args, RECORD_KEYS)  # after the record: the settings written are the command line's
    rows, failed = [], []
    for name in args.variants:
        for seed in args.seeds:
            row = train(args, name, seed)
            if row is None:
                failed.append(f"{name} seed {seed}")
                continue
            rows.append(row)
            result["runs"], result["variants"] = rows, summarize(args, rows)
            write_result(result, args.output)  # after every run: an interruption loses nothing finished
    result["runs"], result["variants"] = rows, summarize(args, rows)
    write_result(result, args.output)
    print(table(result))
    print(f"wrote {args.output}")
    if failed:
        sys.exit("failed runs (rerun the same command to retry them): " + ", ".join(failed))


if __name__ == "__main__":
    main()
