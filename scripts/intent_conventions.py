"""Intent scores of ATIS runs under each convention for multi-intent golds (`atis_airfare#atis_flight`).

python scripts/intent_conventions.py ../shared/data/atis runs/atis-e3-s13 runs/atis-multilabel-e3-s13 \
    --output benchmarks/results/atis_multilabel.json

For each run's best checkpoint, on the test split, the intent task's predictions (a single-label task's label,
split at `#` when it predicted a joined label; a multilabel task's label set) against the gold set:
- `exact`: the predicted set equals the gold set (a single-label task must predict the joined label itself);
- `any_of`: the predicted set shares a label with the gold set (many ATIS papers count a multi-intent gold as
  matched by either intent);
- `micro_f1` / `macro_f1` over (sentence, intent) pairs, every gold intent a column;
- the same three on the multi-intent test sentences alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from machine import started_record, write_result  # noqa: E402
from mtst.data import read_split  # noqa: E402
from mtst.inference.runner import run_model  # noqa: E402
from mtst.model.multitask import MultiTaskModel  # noqa: E402


def intent_sets(model, examples, task_name: str) -> list[frozenset[str]]:
    """Each example's predicted intents as a set, whatever the task's kind."""
    task = model.tasks[task_name]
    predictions, _ = run_model(model, examples, batch_size=64)
    predicted = [task.predicted(prediction[task_name]) for prediction in predictions]
    return [p if isinstance(p, frozenset) else frozenset(p.split("#")) for p in predicted]


def scores(gold: list[frozenset[str]], predicted: list[frozenset[str]]) -> dict:
    binarizer = MultiLabelBinarizer().fit(gold + predicted)
    y_true, y_pred = binarizer.transform(gold), binarizer.transform(predicted)
    return {
        "sentences": len(gold),
        "exact": sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold),
        "any_of": sum(bool(g & p) for g, p in zip(gold, predicted, strict=True)) / len(gold),
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def measure(run: Path, data_dir: Path, split: str) -> dict:
    model = MultiTaskModel.from_pretrained(run / "best")
    examples = read_split(model.data.model_copy(update={"dir": str(data_dir)}), split)
    gold = [frozenset(ex.annotations["label"].split("#")) for ex in examples]
    predicted = intent_sets(model, examples, "intent")
    several = [i for i, g in enumerate(gold) if len(g) > 1]
    summary = json.loads((run / "summary.json").read_text())
    return {
        "run": str(run),
        "intent_kind": model.tasks["intent"].type,
        "best_epoch": summary["best_epoch"],
        "test_summary": summary["test"],
        "all": scores(gold, predicted),
        "multi_intent_gold": scores([gold[i] for i in several], [predicted[i] for i in several]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("runs", nargs="+", help="run folders (each with best/ and summary.json)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    record = started_record(args)
    record["runs"] = [measure(Path(run), args.data_dir, args.split) for run in args.runs]
    for row in record["runs"]:
        print(f"{row['run']} ({row['intent_kind']}): all {json.dumps(row['all'])}")
        print(f"  multi-intent golds {json.dumps(row['multi_intent_gold'])}")
    if args.output:
        write_result(record, args.output)


if __name__ == "__main__":
    main()
