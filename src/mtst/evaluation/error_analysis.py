"""Where a model loses: per task its metrics and what its mistakes have in common (each kind says what:
confused labels for a sentence task, the span error taxonomy of `mtst.tasks.spans` for a token task), and
every mispredicted sentence with gold beside predicted. `mtst evaluate --errors DIR` writes them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mtst.data.example import Example
from mtst.evaluation.metrics import compute_metrics
from mtst.files import dumps, write_text_atomic
from mtst.inference.runner import Prediction
from mtst.tasks import KINDS

ERRORS_FILE, SENTENCES_FILE = "errors.json", "mispredicted.jsonl"


def mispredicted(tasks: dict, examples: Sequence[Example], predictions: Sequence[Prediction]) -> list[dict]:
    """One record per sentence with any task wrong: gold beside predicted (a token task names each span error)."""
    records = []
    for example, prediction in zip(examples, predictions, strict=True):
        record: dict = {"origin": example.origin, "text": example.text, "tasks": {}}
        for name, task in tasks.items():
            gold = example.annotations.get(task.field)
            wrong = task.mispredicted(example, gold, prediction[name]) if gold is not None else None
            if wrong is not None:
                record["tasks"][name] = wrong
        if record["tasks"]:
            records.append(record)
    return records


def analyze(tasks: dict, examples: Sequence[Example], predictions: Sequence[Prediction]) -> tuple[dict, list[dict]]:
    """(report, mispredicted sentences): per task its metrics, per-label report and errors, plus the errors."""
    metrics = compute_metrics(tasks, examples, predictions)
    report: dict = {"sentences": len(examples), "sentence_accuracy": metrics["sentence_accuracy"], "tasks": {}}
    for name, task in tasks.items():
        rows = [i for i, example in enumerate(examples) if task.field in example.annotations]
        if not rows:
            continue
        gold = [task.gold(examples[i].annotations[task.field]) for i in rows]
        entry = {"type": task.type, **{k: v for k, v in metrics[name].items() if k != "loss"}}
        report["tasks"][name] = {**entry, **task.errors(gold, [predictions[i][name] for i in rows])}
    return report, mispredicted(tasks, examples, predictions)


def write_analysis(report: dict, records: Sequence[dict], directory: str | Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(directory / ERRORS_FILE, dumps(report, ERRORS_FILE, indent=2, ensure_ascii=False) + "\n")
    lines = "".join(dumps(record, SENTENCES_FILE, ensure_ascii=False) + "\n" for record in records)
    write_text_atomic(directory / SENTENCES_FILE, lines)


def summary_lines(report: dict, records: Sequence[dict]) -> list[str]:
    """A short human-readable digest of the report, each task's lines written by its kind."""
    lines = [f"{report['sentences']} sentences, {len(records)} with an error; sentence accuracy "
             f"{100 * report['sentence_accuracy']:.2f}"]  # fmt: skip
    for name, entry in report["tasks"].items():
        lines += KINDS[entry["type"]][1].error_digest(name, entry)
    return lines
