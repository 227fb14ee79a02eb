"""Score every peer's test predictions with mtst's own metrics and print the "Against the alternatives" table.

    python benchmarks/peers/score.py runs/peers --corpus atis --data-dir ../shared/data/atis \
        --output benchmarks/results/peers_atis.json

Each run folder RUNS/VARIANT/CORPUS holds predictions.jsonl (one `{"intent", "tags"}` per test sentence, one tag
per corpus word) and run.json (benchmarks/peers/peer_io.py). The scorer is mtst.evaluate.compute_metrics over
the same Example objects `mtst evaluate` reads: intent accuracy (exact label string), seqeval entity F1 on the
corpus's own words, and whole-sentence accuracy (intent and every tag right).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mtst.data.formats.jointbert import read_jointbert
from mtst.errors import MtstError
from mtst.evaluation.metrics import compute_metrics
from mtst.files import write_json_atomic
from mtst.tasks import make_task


def score_run(folder: Path, examples) -> dict:
    """Both tasks; a peer that predicts intents only (no "tags" in its rows) gets intent accuracy alone."""
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    if len(rows) != len(examples):
        raise SystemExit(f"error: {folder}/predictions.jsonl: {len(rows)} lines for {len(examples)} test sentences")
    with_tags = all("tags" in row for row in rows)
    for number, (row, example) in enumerate(zip(rows, examples, strict=True), 1):
        if with_tags and len(row["tags"]) != len(example.words):
            problem = f"{len(row['tags'])} tags for {len(example.words)} words"
            raise SystemExit(f"error: {folder}/predictions.jsonl:{number}: {problem}")
    intents = sorted({r["intent"] for r in rows} | {e.annotations["label"] for e in examples})
    tasks = {"intent": make_task("intent", "sentence", "label", intents)}
    if with_tags:
        tags = sorted({t for r in rows for t in r["tags"]} | {t for e in examples for t in e.annotations["tags"]})
        tasks["slots"] = make_task("slots", "token", "tags", tags)
    fields = {"intent": "intent", "slots": "tags"}
    predictions = [{name: task.as_prediction(r[fields[name]]) for name, task in tasks.items()} for r in rows]
    metrics = compute_metrics(tasks, examples, predictions)
    slots = metrics.get("slots", {})
    return {
        "intent_accuracy": metrics["intent"]["accuracy"],
        "slot_precision": slots.get("precision"),
        "slot_recall": slots.get("recall"),
        "slot_f1": slots.get("f1"),
        "sentence_accuracy": metrics["sentence_accuracy"] if with_tags else None,
    }


def collect(runs: Path, corpus: str, data_dir: Path) -> list[dict]:
    examples = read_jointbert(data_dir / "test")
    results = []
    for folder in sorted(runs.glob(f"*/{corpus}")):
        if not (folder / "predictions.jsonl").exists():
            print(f"skipped {folder}: no predictions.jsonl (training not finished)")
            continue
        record = json.loads((folder / "run.json").read_text())
        results.append({"variant": folder.parent.name, "test": score_run(folder, examples), "run": record})
    return results


def _rate(run: dict, batch: int) -> str:
    entry = run.get("inference", {}).get(f"batch_{batch}")
    return f"{entry['sentences_per_second']:.1f}" if entry else "—"


def _percent(value) -> str:
    return f"{100 * value:.2f}" if value is not None else "—"


def _number(value, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, int | float) else "—"


def table(results: list[dict]) -> str:
    lines = [
        "| peer | intent acc | slot F1 | sentence acc | train wall (min) | train peak RSS (MB) "
        "| sent/s batch 1 | sent/s batch 64 | predict peak RSS (MB) | model on disk (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        test, run = result["test"], result["run"]
        cells = [
            result["variant"],
            _percent(test["intent_accuracy"]),
            _percent(test["slot_f1"]),
            _percent(test["sentence_accuracy"]),
            _number(run["train_seconds"] / 60 if "train_seconds" in run else None, "{:.1f}"),
            _number(run.get("train_peak_rss_mb"), "{:.0f}"),
            _rate(run, 1),
            _rate(run, 64),
            _number(run.get("inference_peak_rss_mb"), "{:.0f}"),
            _number(run.get("model_size_mb"), "{:.0f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, help="the folder holding VARIANT/CORPUS run folders")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    try:
        results = collect(args.runs, args.corpus, args.data_dir)
    except MtstError as error:  # a data folder that is not a JointBERT corpus: one line, as mtst's CLI says it
        raise SystemExit(f"error: {error}") from None
    print(table(results))
    if args.output:
        write_json_atomic(args.output, {"corpus": args.corpus, "results": results}, indent=2)


if __name__ == "__main__":
    main()
