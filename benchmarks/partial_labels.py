"""Partial labels: half of train with its slots removed, against the full corpus and against that half alone.

python benchmarks/partial_labels.py snips --data-dir ../shared/data/snips --seeds 13 --threads 1 \\
    --full-from benchmarks/results/grid_snips_full_pooling.json --full-variant crf+entity-weight-1+pooling-first-last

For each seed S, half of the train sentences (rounded down) is drawn with `random.Random(S)` and two corpora are
written as mtst JSONL to RUNS/DATASET/data/ (dev and test whole and fully labelled in both):
- slots-half-sS: every train sentence keeps its intent; the drawn half keeps its tags, the rest has no `tags`
  (slots unknown: the slot loss skips them).
- half-only-sS: only the drawn half, fully labelled.
Each variant is trained once per seed (`mtst train --seed S`, on `--threads` threads) into RUNS/DATASET/VARIANT/,
with configs/DATASET.yaml read as JSONL (`--epochs N`: N epochs, folder VARIANT-eN). With `--full-from GRID
--full-variant NAME` the table gains a `full` row, NAME's runs in that accuracy_grid.py result for the same seeds
(nothing is trained for it), and the partial runs take NAME's settings too (folder VARIANT-NAME), so that the rows
differ only in their labels; `--config-recipe` trains the config as it is instead. A finished run (summary.json)
is read back, an interrupted one continues with `mtst train --resume`, so a rerun of the command resumes; a failed
run ends the command with an exit naming it. The result JSON (benchmarks/results/partial_labels_DATASET.json) is
rewritten after every run: per run the dev metrics of the best epoch and the test metrics of that checkpoint; per
variant mean ± std over seeds (points) and its train sentences with slots and with intents.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from accuracy_grid import VARIANTS as GRID_VARIANTS
from accuracy_grid import apply_settings, mean_std, run_metrics, train_command, variant_settings
from machine import report_grid, started_record, write_result
from mtst.config import load_config

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from peer_io import read_split  # noqa: E402

VARIANTS = ("slots-half", "half-only")
SPLITS = ("train", "dev", "test")


def drawn_half(count: int, seed: int) -> set[int]:
    """The indices of the train sentences that keep their slots: half of them, rounded down."""
    return set(random.Random(seed).sample(range(count), count // 2))


def record(sentence, with_tags: bool = True) -> dict:
    row = {"tokens": sentence.words, "label": sentence.intent}
    if with_tags:
        row["tags"] = sentence.tags
    return row


def train_records(variant: str, train: list, drawn: set[int]) -> list[dict]:
    if variant == "slots-half":
        return [record(sentence, with_tags=index in drawn) for index, sentence in enumerate(train)]
    return [record(sentence) for index, sentence in enumerate(train) if index in drawn]


def data_folder(args, variant: str, seed: int) -> Path:
    return args.runs / args.dataset / "data" / f"{variant}-s{seed}"


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def write_data(args, corpus: dict[str, list], variant: str, seed: int) -> Path:
    """The variant's corpus for this seed; the same draw every time, so rewriting it before a run is harmless."""
    folder = data_folder(args, variant, seed)
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "train.jsonl", train_records(variant, corpus["train"], drawn_half(len(corpus["train"]), seed)))
    for split in ("dev", "test"):
        write_jsonl(folder / f"{split}.jsonl", [record(sentence) for sentence in corpus[split]])
    return folder


def train_counts(variant: str, train_size: int) -> dict[str, int]:
    half = train_size // 2
    slots, intents = {"full": (train_size, train_size), "slots-half": (half, train_size)}.get(variant, (half, half))
    return {"with_slots": slots, "with_intents": intents}


def group_folder(args, variant: str) -> Path:
    """RUNS/DATASET/VARIANT[-eN][-FULL_VARIANT]: runs of another budget or recipe never mix."""
    budget = f"-e{args.epochs}" if args.epochs else ""
    recipe = f"-{args.full_variant}" if args.recipe else ""
    return args.runs / args.dataset / f"{variant}{budget}{recipe}"


def run_folder(args, variant: str, seed: int) -> Path:
    return group_folder(args, variant) / f"seed-{seed}"


def write_config(args, variant: str) -> Path:
    """The dataset's config read as JSONL (and with the full run's settings unless --config-recipe)."""
    raw = yaml.safe_load(args.config.read_text()) or {}
    raw.setdefault("data", {})["format"] = "jsonl"
    if args.epochs:
        raw.setdefault("train", {})["epochs"] = args.epochs
    raw = apply_settings(raw, args.recipe)
    path = group_folder(args, variant) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    load_config(path)  # a bad setting stops here, before anything trains
    return path


def launch(command: list[str], log, env: dict[str, str]) -> int:
    return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode


def full_rows(args) -> tuple[list[dict], dict, list[str]]:
    """The `--full-variant` runs of the `--full-from` grid for our seeds, that variant's settings, and the grid
    settings that differ from ours (then its row is not quite the same recipe)."""
    grid = json.loads(args.full_from.read_text())
    rows = [row for row in grid["runs"] if row["variant"] == args.full_variant and row["seed"] in args.seeds]
    if not rows:
        sys.exit(f"error: {args.full_from}: no runs of {args.full_variant!r} for seeds {args.seeds}")
    known = grid.get("settings", {}).get("known") or GRID_VARIANTS
    settings = grid.get("variants", {}).get(args.full_variant, {}).get("settings")
    ours = {"config": args.config.name, "epochs": args.epochs}
    theirs = {**grid.get("settings", {}), "config": Path(grid.get("settings", {}).get("config", "")).name}
    differs = [key for key, value in ours.items() if theirs.get(key) != value]
    if differs:
        print(f"note: {args.full_from} was run with another {', '.join(differs)}", flush=True)
    return rows, settings if settings is not None else variant_settings(args.full_variant, known), differs


def summary(rows: list[dict], counts: dict[str, int]) -> dict:
    dev, test = mean_std(rows, "dev"), mean_std(rows, "test")
    return {"seeds_done": [row["seed"] for row in rows], "train_sentences": counts, "dev": dev, "test": test}


def collect(args, result: dict) -> None:
    """Every finished run's metrics and each variant's mean ± std; written at once."""
    result["runs"], result["variants"] = [], {}
    if args.full_from:
        result["variants"]["full"] = summary(args.full, train_counts("full", args.train_size))
        result["variants"]["full"].update(grid=str(args.full_from), grid_variant=args.full_variant)
        result["variants"]["full"]["grid_differs_in"] = args.full_differs
    for variant in VARIANTS:
        rows = []
        for seed in args.seeds:
            run = run_folder(args, variant, seed)
            if (run / "summary.json").is_file():
                rows.append({"variant": variant, "seed": seed, "run": str(run), **run_metrics(run)})
        result["runs"] += rows
        if rows:
            result["variants"][variant] = summary(rows, train_counts(variant, args.train_size))
    write_result(result, args.output)


def run_all(args, result: dict, corpus: dict[str, list]) -> list[str]:
    """Trains each (variant, seed) without a summary.json, one at a time; the result is rewritten after each."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    failed = []
    for variant in VARIANTS:
        config = write_config(args, variant)
        for seed in args.seeds:
            run = run_folder(args, variant, seed)
            if (run / "summary.json").is_file():
                continue
            command = train_command(config, run, seed, ["--data-dir", str(write_data(args, corpus, variant, seed))])
            print(f"start {variant} seed {seed}: {shlex.join(command)}", flush=True)
            log_path = run.parent / f"{run.name}.log"
            with open(log_path, "a") as log:
                code = launch(command, log, env)
            if code != 0:
                failed.append(f"{variant} seed {seed}: exit {code}, see {log_path}")
            print(f"{'done' if code == 0 else 'FAILED'}: {variant} seed {seed}", flush=True)
            collect(args, result)
    return failed


def cell(stats: dict, suffix: str) -> str:
    key = next((key for key in stats if key.endswith(suffix)), None)
    return f"{stats[key]['mean']:.2f} ± {stats[key]['std']:.2f}" if key else "–"


def table(result: dict) -> str:
    lines = [
        "| variant | seeds | train sentences with slots | dev slot F1 | test intent | test slot F1 | test sentence |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in result["variants"].items():
        seeds = ", ".join(map(str, row["seeds_done"]))
        counts = row["train_sentences"]
        cells = [name, seeds, f"{counts['with_slots']} of {counts['with_intents']}", cell(row["dev"], ".f1")]
        cells += [cell(row["test"], ".accuracy"), cell(row["test"], ".f1"), cell(row["test"], "sentence_accuracy")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="names the default config (configs/DATASET.yaml) and result file")
    parser.add_argument("--data-dir", type=Path, required=True, help="the whole JointBERT corpus")
    parser.add_argument("--config", type=Path, help="default: configs/DATASET.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13], help="each one draw and training seed")
    parser.add_argument("--epochs", type=int, help="overrides train.epochs (runs go to VARIANT-eN/)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="per run")
    parser.add_argument("--full-from", type=Path, help="an accuracy_grid.py result holding the full-corpus runs")
    parser.add_argument("--full-variant", help="the variant of --full-from reported as `full`")
    parser.add_argument("--config-recipe", action="store_true", help="not the full variant's settings")
    parser.add_argument("--runs", type=Path, default=Path("runs/partial_labels"))
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/partial_labels_DATASET.json")
    args = parser.parse_args(argv)
    if bool(args.full_from) != bool(args.full_variant):
        parser.error("--full-from and --full-variant go together")
    args.config = args.config or Path("configs") / f"{args.dataset}.yaml"
    args.output = args.output or Path("benchmarks/results") / f"partial_labels_{args.dataset}.json"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = started_record(args)
    corpus = {split: read_split(args.data_dir, split) for split in SPLITS}
    args.train_size = result["train_sentences"] = len(corpus["train"])
    args.full, recipe, args.full_differs = full_rows(args) if args.full_from else ([], {}, [])
    args.recipe = result["recipe"] = {} if args.config_recipe else recipe
    failed = run_all(args, result, corpus)
    collect(args, result)
    report_grid(table(result), args.output, failed)


if __name__ == "__main__":
    main()
