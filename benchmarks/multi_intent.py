"""Several intents per utterance: MixATIS or MixSNIPS test over several seeds, beside AGIF, GL-GIN and SLIM.

python benchmarks/multi_intent.py mixatis --data-dir ../shared/data/mixatis [--seeds 13 14 15] [--epochs N]

Trains each seed that has no finished run yet (`mtst train --config configs/DATASET.yaml --data-dir DIR
--output-dir runs/multi_intent/CONFIG[-eN]/seed-S --seed S [--epochs N]`, one seed at a time, as
benchmarks/accuracy.py does; a run a stopped session left half done continues with `mtst train --resume`), reads
its best checkpoint's test metrics from its summary.json, and rewrites benchmarks/results/multi_intent_DATASET.json
after every seed with mean ± std of the benchmarks' three numbers over the seeds finished so far and a Markdown
table, each seed's row with its per-epoch dev curve. A seed whose run folder is gone is read back from that file
(same dataset, config and epochs) instead of trained again: a seed takes hours, so each is kept as soon as it ends.
With `--from-grid benchmarks/results/grid_DATASET.json [--variant NAME]` it trains nothing and reads the seeds'
dev and test metrics from an accuracy_grid.py result file instead (the grid's config and budget).

The three numbers, as AGIF's evaluation computes them (github.com/LooperXX/AGIF, utils/process.py:
`Evaluator.intent_acc`, `Evaluator.semantic_acc`, slot F1 from utils/miulab.py's conlleval port), and what mtst
calls them:
- overall accuracy: the exact intent set and every slot tag right = mtst's `sentence_accuracy`;
- intent accuracy: the exact intent set = the multilabel task's `accuracy` (exact match);
- slot F1: entity-level, conlleval style = the token task's `f1` (seqeval's default, conlleval-compatible mode).
Quirks, counted the way the published numbers count them: vocabularies come from train only (AGIF's utils/loader.py
`add_file` fills its alphabets from the train file alone), and gold is read from the files, so an intent train never
showed (MixATIS test's `atis_day_name`, in 108 of 828 utterances) makes those utterances' intent sets wrong, and a
tag train never showed is a missed entity; neither is dropped from the test split nor crashes. `unreachable` in the
result says how many test utterances no model trained on train can get right for that reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from accuracy import run_dir, train_missing_seeds
from machine import mean_std as spread
from machine import started_record, write_result
from mtst.config import load_config
from mtst.data import load_splits
from mtst.tasks import build_labels, build_task

# ../shared/data/README.md, "Published test results" (checked there against the result tables in the READMEs of the
# AGIF, GL-GIN and SLIM repositories; all on the `_clean` sets, test split): overall / intent accuracy / slot F1.
PUBLISHED = {
    "mixatis": {
        "AGIF (Qin et al. 2020)": {"overall": 40.8, "intent": 74.4, "slot_f1": 86.7},
        "GL-GIN (Qin et al. 2021)": {"overall": 43.5, "intent": 76.3, "slot_f1": 88.3},
        "SLIM (Cai et al. 2022, BERT)": {"overall": 47.6, "intent": 78.3, "slot_f1": 88.5},
    },
    "mixsnips": {
        "AGIF (Qin et al. 2020)": {"overall": 74.2, "intent": 95.1, "slot_f1": 94.2},
        "GL-GIN (Qin et al. 2021)": {"overall": 75.4, "intent": 95.6, "slot_f1": 94.9},
        "SLIM (Cai et al. 2022, BERT)": {"overall": 84.0, "intent": 97.2, "slot_f1": 96.5},
    },
}
NUMBERS = ("overall", "intent", "slot_f1")
HEADERS = {"overall": "overall acc", "intent": "intent acc", "slot_f1": "slot F1"}


def benchmark_tasks(config) -> tuple:
    """The config's multilabel intent task and its token task; any other layout is not this benchmark's task."""
    kinds = {task.type: task for task in config.tasks}
    if len(config.tasks) != 2 or set(kinds) != {"multilabel", "token"}:
        found = ", ".join(f"{task.name} ({task.type})" for task in config.tasks)
        sys.exit(f"error: a multi-intent config needs one multilabel task and one token task; {found}")
    return kinds["multilabel"], kinds["token"]


def metric_keys(config) -> dict[str, str]:
    """Each benchmark number's key in a run's flat metrics (summary.json `dev` / `test`)."""
    intent, slots = benchmark_tasks(config)
    return {"overall": "sentence_accuracy", "intent": f"{intent.name}.accuracy", "slot_f1": f"{slots.name}.f1"}


def unreachable(config, splits) -> dict:
    """Test utterances whose gold holds an intent or a tag that train never showed: always wrong, as published."""
    intent_config, slots_config = benchmark_tasks(config)
    intent = build_task(intent_config, splits.train, {})
    known_tags = set(build_labels(slots_config, splits.train))
    test = [ex for ex in splits.test if intent.field in ex.annotations and slots_config.field in ex.annotations]
    new_intent = [not intent.gold(ex.annotations[intent.field]) <= set(intent.labels) for ex in test]
    new_tag = [not set(ex.annotations[slots_config.field]) <= known_tags for ex in test]
    either = sum(a or b for a, b in zip(new_intent, new_tag, strict=True))
    return {
        "test_utterances": len(test),
        "with_an_intent_not_in_train": sum(new_intent),
        "with_a_tag_not_in_train": sum(new_tag),
        "overall_ceiling": 100 * (1 - either / len(test)) if test else 0.0,
        "intent_ceiling": 100 * (1 - sum(new_intent) / len(test)) if test else 0.0,
    }


def seed_row(seed: int, summary: dict, keys: dict[str, str]) -> dict:
    """One seed's numbers from its run's summary.json, or from its row in an accuracy_grid.py result file."""
    return {
        "seed": seed,
        "best_epoch": summary["best_epoch"],
        "epochs_run": summary["epochs_run"],
        "threshold": summary["test"].get(keys["intent"].replace(".accuracy", ".threshold")),  # tuned on dev
        "test": {number: summary["test"][key] for number, key in keys.items()},
        "dev": {number: summary["dev"][key] for number, key in keys.items()},  # the best epoch's dev scores
    }


def dev_curve(run: Path, keys: dict[str, str]) -> list[dict]:
    """Each epoch's wall seconds and dev numbers from the run's metrics.jsonl: kept in the result file, so the
    curve (does a shorter schedule lose anything?) outlives the run folder."""
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [
        {"epoch": e["epoch"], "seconds": round(e["seconds"], 1), **{n: e["dev"][k] for n, k in keys.items()}}
        for e in epochs
    ]


def finished_rows(args) -> dict[int, dict]:
    """Seeds an earlier run of this command already wrote to `--output`, by seed; none when that file is for another
    dataset, config or budget."""
    if not args.output.is_file():
        return {}
    previous = json.loads(args.output.read_text())
    same = (previous.get("dataset"), previous.get("config"), previous.get("epochs"))
    if same != (args.dataset, str(args.config), args.epochs):
        return {}
    return {row["seed"]: row for row in previous.get("per_seed", [])}


def trained_rows(args, keys: dict[str, str], report) -> list[dict]:
    """Each seed's row: from its finished run folder, else read back from `--output`, else trained now (one seed
    at a time); the result file is rewritten after each."""
    rows = []
    done = finished_rows(args)
    for seed in args.seeds:
        run = run_dir(args, seed)
        if seed in done and not (run / "summary.json").is_file():
            print(f"seed {seed}: read back from {args.output}")
            rows.append(done[seed])
            continue
        train_missing_seeds(argparse.Namespace(**{**vars(args), "seeds": [seed]}))
        row = seed_row(seed, json.loads((run / "summary.json").read_text()), keys)
        rows.append({**row, "dev_curve": dev_curve(run, keys)})
        report(rows)
    return rows


def grid_rows(args, keys: dict[str, str]) -> list[dict]:
    """Each seed's row of `--variant` in an accuracy_grid.py result file (its dev and test metrics); trains nothing."""
    runs = {row["seed"]: row for row in args.grid.get("runs", []) if row["variant"] == args.variant}
    missing = [seed for seed in args.seeds if seed not in runs]
    if missing:
        sys.exit(f"error: {args.from_grid} has no finished {args.variant!r} run for seeds {missing}")
    return [seed_row(seed, runs[seed], keys) for seed in args.seeds]


def mean_std(rows: list[dict], split: str) -> dict:
    """Per number, in percent: mean, sample standard deviation (0 with one seed) and the values."""
    summary = {}
    for number in NUMBERS:
        values = [100 * row[split][number] for row in rows]
        summary[number] = {**spread(values), "values": values}
    return summary


def above(ours: dict, published: dict) -> dict[str, bool]:
    """Per published model: is mtst's test mean above it on all three numbers?"""
    return {
        model: all(ours[number]["mean"] > scores[number] for number in NUMBERS) for model, scores in published.items()
    }


def table(result: dict) -> str:
    columns = " | ".join(HEADERS[number] for number in NUMBERS)
    lines = [
        f"| {result['dataset']} test ({len(result['seeds'])} seeds) | {columns} |",
        "|---|" + "---|" * len(NUMBERS),
    ]
    for model, scores in result["published"].items():
        lines.append(f"| {model}, published | " + " | ".join(f"{scores[number]}" for number in NUMBERS) + " |")
    budget = f", {result['epochs']} epochs" if result["epochs"] else ""
    for label, field in (
        (f"mtst (`{result['config']}`{budget})", "mean_std"),
        ("mtst, dev (best epoch)", "mean_std_dev"),
    ):
        cells = [f"{result[field][n]['mean']:.2f} ± {result[field][n]['std']:.2f}" for n in NUMBERS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    ceiling = result["unreachable"]
    lines += [
        "",
        f"Ceiling from train's vocabulary: {ceiling['overall_ceiling']:.2f} overall, {ceiling['intent_ceiling']:.2f}"
        f" intent ({ceiling['with_an_intent_not_in_train']} test utterances with an intent and"
        f" {ceiling['with_a_tag_not_in_train']} with a tag that train never showed).",
        "",
        "| seed | best epoch | threshold | " + columns + " |",
        "|---|---|---|" + "---|" * len(NUMBERS),
    ]
    for row in result["per_seed"]:
        cells = [f"{100 * row['test'][number]:.2f}" for number in NUMBERS]
        lines.append(
            f"| {row['seed']} | {row['best_epoch']}/{row['epochs_run']} | {row['threshold']} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=sorted(PUBLISHED))
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--config", type=Path, help="default: configs/DATASET.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--epochs", type=int, help="override the config's epochs (runs go to CONFIG-eN/)")
    parser.add_argument("--runs", type=Path, default=Path("runs/multi_intent"))
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained at once")
    parser.add_argument("--threads", type=int, default=1, help="per training job")
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/multi_intent_DATASET.json")
    parser.add_argument("--from-grid", type=Path, help="read the seeds' runs from this accuracy_grid.py result file")
    parser.add_argument("--variant", default="baseline", help="with --from-grid: the grid variant reported")
    args = parser.parse_args(argv)
    args.grid = json.loads(args.from_grid.read_text()) if args.from_grid else None
    if args.grid:  # the grid's own config and budget, unless given
        args.config = args.config or Path(args.grid["settings"]["config"])
        args.epochs = args.epochs or args.grid["settings"].get("epochs")
    args.config = args.config or Path("configs") / f"{args.dataset}.yaml"
    args.output = args.output or Path("benchmarks/results") / f"multi_intent_{args.dataset}.json"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = load_config(args.config, **{"data.dir": str(args.data_dir)})
    keys = metric_keys(config)  # a config without the multilabel + token pair stops here, before any training
    result = started_record(argparse.Namespace(**{key: value for key, value in vars(args).items() if key != "grid"}))
    result.update(
        dataset=args.dataset,
        config=str(args.config),
        source=f"{args.from_grid}, variant {args.variant}" if args.grid else "runs trained by this script",
        epochs=args.epochs,
        seeds_requested=args.seeds,
        metric_keys=keys,
        published=PUBLISHED[args.dataset],
        published_source="../shared/data/README.md (AGIF, GL-GIN and SLIM repository READMEs, `_clean` sets)",
        unreachable=unreachable(config, load_splits(config.data)),
    )

    def report(rows: list[dict]) -> None:
        result.update(
            seeds=[row["seed"] for row in rows],
            mean_std=mean_std(rows, "test"),
            mean_std_dev=mean_std(rows, "dev"),
            per_seed=rows,
        )
        result["above_on_all_three"] = above(result["mean_std"], result["published"])
        write_result(result, args.output)

    rows = grid_rows(args, keys) if args.grid else trained_rows(args, keys, report)
    report(rows)
    print(table(result))


if __name__ == "__main__":
    main()
