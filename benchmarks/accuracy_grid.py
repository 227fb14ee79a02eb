"""Accuracy levers x seeds: one `mtst train` process per run, dev and test metrics per run, mean ± std per variant.

python benchmarks/accuracy_grid.py snips --data-dir ../shared/data/snips --epochs 3 --seeds 13 14 15 \\
    --variants baseline crf entity-weight-1 crf+entity-weight-1 --jobs 2 --threads 1

A variant is a named set of settings (VARIANTS below, or one given with `--define NAME:KEY=VALUE,...`); `a+b`
trains the settings of a and b together. `token.KEY` sets KEY on every token task, `sentence.KEY` on every
sentence task, `multilabel.KEY` on every multilabel task, `SECTION.KEY` a top-level setting
(`train.entity_sampler_weight`). Each variant's config (configs/DATASET.yaml with its settings, and with
`--epochs N`: N epochs, patience N, so the budget is fixed and the best epoch is still picked on dev) is written
to RUNS/CONFIG-eN[-nM]/VARIANT/config.yaml and trained once per seed into .../VARIANT/seed-S, `--jobs` runs at a
time, each on `--threads` threads. A run with a summary.json is read, not retrained; an interrupted one
(training_state/, no summary) continues with `mtst train --resume`; so the command can be repeated after an
interruption. A run whose folder is gone but whose row is in the result JSON (same config, epochs, subset,
variant settings and seed) is read from there, so a grid survives losing its runs folder (a new session, another
machine). The result JSON (benchmarks/results/grid_DATASET.json) is rewritten after every finished run: per run
the dev metrics of the best epoch and the test metrics of that checkpoint; per variant mean ± std over seeds; and
the variants ranked by the dev metric `--select-by` (test never chooses). On a GPU the same command trains there
(accelerate picks CUDA); use `--jobs` to share the card.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from machine import mean_std as spread
from machine import report_grid, started_record, write_result
from mtst.config import load_config

# One lever at a time against `baseline` (the dataset's config as it is); combine them with `+`.
VARIANTS: dict[str, dict[str, object]] = {
    "baseline": {},
    "class-weights-none": {"token.class_weights": "none"},
    "class-weights-inverse": {"token.class_weights": "inverse"},
    "class-weight-cap-5": {"token.class_weight_cap": 5.0},
    "entity-weight-1": {"train.entity_sampler_weight": 1.0},
    "crf": {"token.crf": True},
    "pooling-mean": {"token.subtoken_pooling": "mean"},
    "pooling-first-last": {"token.subtoken_pooling": "first_last"},
    "scalar-mix": {"token.encoder_layers": "scalar_mix"},
    "label-smoothing-0.1": {"sentence.label_smoothing": 0.1},
    "llrd-0.8": {"strategy.name": "llrd:0.8"},
    "intent-input": {"token.intent_input": "intent"},
    "condition-on-intent": {"token.condition_on": "intent"},
    "uncertainty": {"loss.weighting": "uncertainty"},
    "intent-weight-2": {"loss.weighting": "static", "loss.weights": {"intent": 2.0}},
}
# The headline keys kept per run (losses dropped); task names come from the config. A multilabel task's
# threshold (tuned on dev) is kept beside its scores.
KEPT = ("accuracy", "precision", "recall", "f1", "threshold")


def parse_definitions(definitions: list[str]) -> dict[str, dict[str, object]]:
    """`--define tapt:encoder.name_or_path=runs/tapt,train.epochs=6` -> {"tapt": {...}}; values are YAML."""
    defined = {}
    for definition in definitions:
        name, _, settings = definition.partition(":")
        if not name or "+" in name or not settings:
            sys.exit(f"error: --define {definition!r}: expected NAME:KEY=VALUE[,KEY=VALUE...] (no '+' in NAME)")
        pairs = [item.partition("=") for item in settings.split(",")]
        if any(not key or not sep for key, sep, _ in pairs):
            sys.exit(f"error: --define {definition!r}: every setting needs KEY=VALUE")
        defined[name] = {key.strip(): yaml.safe_load(value) for key, _, value in pairs}
    return defined


def variant_settings(name: str, known: dict[str, dict[str, object]]) -> dict[str, object]:
    settings: dict[str, object] = {}
    for part in name.split("+"):
        if part not in known:
            sys.exit(f"error: unknown variant {part!r}; known: {', '.join(known)} (or --define your own)")
        settings.update(known[part])
    return settings


def apply_settings(raw: dict, settings: dict[str, object]) -> dict:
    """The config mapping with `token.KEY` / `sentence.KEY` / `multilabel.KEY` set on the tasks of that kind and
    `A.B.KEY` set in place."""
    for dotted, value in settings.items():
        head, _, rest = dotted.partition(".")
        if head in ("token", "sentence", "multilabel"):
            for task in raw["tasks"]:
                if task["type"] == head:
                    task[rest] = value
            continue
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[leaf] = value
    return raw


def grid_dir(args) -> Path:
    budget = f"-e{args.epochs}" if args.epochs else ""
    subset = f"-n{args.max_train_examples}" if args.max_train_examples else ""
    return args.runs / f"{args.config.stem}{budget}{subset}"


def write_variant_config(args, name: str, settings: dict[str, object]) -> Path:
    """The variant's whole config, validated, in its folder; the seed and output folder come per run."""
    raw = load_config(args.config, **{"data.dir": str(args.data_dir)}).model_dump()
    if args.epochs:
        raw["train"].update(epochs=args.epochs, patience=args.epochs)
    if args.max_train_examples:
        raw["train"]["max_train_examples"] = args.max_train_examples
    raw["train"]["num_sample_predictions"] = 0
    raw = apply_settings(raw, settings)
    path = grid_dir(args) / name / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    load_config(path)  # a bad variant setting stops here, before anything trains
    return path


def train_command(config: Path, run: Path, seed: int, fresh_flags: Sequence[str] = ()) -> list[str]:
    """A fresh run (with `fresh_flags`, e.g. `--data-dir D`), or `--resume` of an interrupted one: that keeps its
    own config.yaml, which already holds what those flags set."""
    mtst_train = [sys.executable, "-m", "mtst", "train"]
    if (run / "training_state").is_dir() and (run / "config.yaml").is_file():
        return [*mtst_train, "--resume", str(run)]
    return [*mtst_train, "--config", str(config), "--output-dir", str(run), "--seed", str(seed), *fresh_flags]


def _kept(metrics: dict) -> dict:
    """Accuracy, P/R/F1 per task, sentence accuracy and score; no losses."""
    return {key: value for key, value in metrics.items() if "." not in key or key.rsplit(".", 1)[1] in KEPT}


def run_metrics(run: Path) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    return {
        "best_epoch": summary["best_epoch"],
        "epochs_run": summary["epochs_run"],
        "wall_time_s": summary["wall_time_s"],
        "dev": _kept(summary["dev"]),
        "test": _kept(summary["test"]),
    }


def mean_std(rows: list[dict], split: str) -> dict:
    keys = [key for key in rows[0][split] if all(key in row[split] for row in rows)]
    stats = {}
    for key in keys:
        values = [100 * row[split][key] for row in rows]
        stats[key] = {**spread(values), "n": len(values)}
    return stats


RECORD_KEYS = ("dataset", "config", "epochs", "max_train_examples")


def recorded_runs(args, keys: tuple[str, ...] = RECORD_KEYS) -> dict[tuple[str, int], dict]:
    """Rows of an earlier result file written by the same command, by (variant, seed): its settings `keys` and
    the variant's settings unchanged."""
    if not args.output.is_file():
        return {}
    earlier = json.loads(args.output.read_text())
    settings = earlier.get("settings", {})
    if any(settings.get(key) != (str(v) if isinstance(v := getattr(args, key), Path) else v) for key in keys):
        return {}
    known = settings.get("known", {})
    rows = {}
    for row in earlier.get("runs", []):
        name = row["variant"]
        if name in args.variants and variant_settings(name, known) == variant_settings(name, args.known):
            rows[(name, row["seed"])] = row
    return rows


def finished_row(args, name: str, seed: int) -> dict | None:
    run = grid_dir(args) / name / f"seed-{seed}"
    if (run / "summary.json").is_file():
        return {"variant": name, "seed": seed, "run": str(run), **run_metrics(run)}
    return args.recorded.get((name, seed))


def collect(args, result: dict) -> None:
    """Every finished run's metrics and each variant's mean ± std, ranked on dev; written at once."""
    result["runs"], result["variants"] = [], {}
    for name in args.variants:
        rows = [row for seed in args.seeds if (row := finished_row(args, name, seed))]
        result["runs"] += rows
        if rows:
            result["variants"][name] = {
                "settings": variant_settings(name, args.known),
                "seeds_done": [row["seed"] for row in rows],
                "dev": mean_std(rows, "dev"),
                "test": mean_std(rows, "test"),
            }
    ranked = [n for n in result["variants"] if args.select_by in result["variants"][n]["dev"]]
    ranked.sort(key=lambda n: result["variants"][n]["dev"][args.select_by]["mean"], reverse=True)
    result["ranked_on_dev"] = {"metric": args.select_by, "variants": ranked}
    write_result(result, args.output)


def pending_runs(args) -> list[tuple[str, int, list[str]]]:
    pending = []
    for name in args.variants:
        config = write_variant_config(args, name, variant_settings(name, args.known))
        for seed in args.seeds:
            run = grid_dir(args) / name / f"seed-{seed}"
            if finished_row(args, name, seed) is None:
                pending.append((name, seed, train_command(config, run, seed)))
    return pending


def run_all(args, result: dict) -> list[str]:
    """Trains the pending runs, `--jobs` at a time; the result file is rewritten as each one ends."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    queue, running, failed = pending_runs(args), [], []
    print(f"{len(queue)} runs to train in {grid_dir(args)}", flush=True)
    while queue or running:
        while queue and len(running) < args.jobs:
            name, seed, command = queue.pop(0)
            log_path = grid_dir(args) / name / f"seed-{seed}.log"
            log = open(log_path, "a")  # noqa: SIM115 - closed when the process ends
            print(f"start {name} seed {seed}: {' '.join(command)}", flush=True)
            running.append((name, seed, subprocess.Popen(command, stdout=log, stderr=log, env=env), log, time.time()))
        time.sleep(args.poll_seconds)
        for entry in [entry for entry in running if entry[2].poll() is not None]:
            name, seed, process, log, started = entry
            running.remove(entry)
            log.close()
            status = "done" if process.returncode == 0 else f"FAILED (exit {process.returncode}, see {log.name})"
            print(f"{status}: {name} seed {seed} in {time.time() - started:.0f} s", flush=True)
            if process.returncode != 0:
                failed.append(f"{name} seed {seed}: {log.name}")
            collect(args, result)
    return failed


def table(result: dict) -> str:
    variants = result["variants"]
    lines = [
        "| variant | seeds | dev: intent | slot P | slot R | slot F1 | sentence | test: intent | slot P | slot R"
        " | slot F1 | sentence |",
        "|---|---|" + "---|" * 10,
    ]
    for name in result["ranked_on_dev"]["variants"]:
        row = variants[name]
        cells = []
        for split in ("dev", "test"):
            stats = row[split]
            for suffix in ("accuracy", "precision", "recall", "f1"):
                key = next((k for k in stats if k.endswith(f".{suffix}")), None)
                cells.append(f"{stats[key]['mean']:.2f} ± {stats[key]['std']:.2f}" if key else "–")
            sentence = stats.get("sentence_accuracy")
            cells.append(f"{sentence['mean']:.2f} ± {sentence['std']:.2f}" if sentence else "–")
        lines.append(f"| {name} | {len(row['seeds_done'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="names the default config (configs/DATASET.yaml) and result file")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, help="default: configs/DATASET.yaml")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help="names from VARIANTS or --define; a+b")
    parser.add_argument("--define", nargs="*", default=[], help="NAME:KEY=VALUE[,KEY=VALUE...] extra variants")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--epochs", type=int, help="fixed budget: N epochs, patience N (runs go to CONFIG-eN/)")
    parser.add_argument("--max-train-examples", type=int, help="a seeded subset of train (runs go to ...-nM/)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    parser.add_argument("--threads", type=int, help="per run; default: the cores shared among the jobs")
    parser.add_argument("--select-by", default="sentence_accuracy", help="dev metric that ranks the variants")
    parser.add_argument("--runs", type=Path, default=Path("runs/grid"))
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/grid_DATASET.json")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    args.config = args.config or Path("configs") / f"{args.dataset}.yaml"
    args.output = args.output or Path("benchmarks/results") / f"grid_{args.dataset}.json"
    args.known = {**VARIANTS, **parse_definitions(args.define)}
    for name in args.variants:
        variant_settings(name, args.known)  # an unknown name stops here
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = started_record(args)
    args.recorded = recorded_runs(args)  # after the record: the settings written are the command line's
    failed = run_all(args, result)
    collect(args, result)
    report_grid(table(result), args.output, failed)


if __name__ == "__main__":
    main()
