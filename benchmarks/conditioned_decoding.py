"""Slots that know the intent, at decoding only: each checkpoint scored on dev and test as trained, and again with
its slot decoding restricted to the tags train showed with the predicted intent (`condition_on: intent`).

    python benchmarks/conditioned_decoding.py runs/grid/snips/crf+entity-weight-1/seed-{13,14,15}/best \
        --data-dir ../shared/data/snips --output benchmarks/results/conditioned_decoding_snips.json

No training: the checkpoints are read, never written. With a CRF slot head the restriction is a penalty on the
forbidden tags' emissions before Viterbi, so a path never passes through them. Dev decides whether it helps;
test is reported beside it. A JointBERT corpus folder (train/dev/test) with tasks `intent` and `slots`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from machine import mean_std as spread
from machine import started_record, write_result
from mtst.data.formats.jointbert import read_jointbert
from mtst.data.labels import tags_by_sentence_label
from mtst.evaluation.metrics import evaluate
from mtst.model.multitask import MultiTaskModel

KEYS = {"intent": ("intent", "accuracy"), "slot_precision": ("slots", "precision"), "slot_recall": ("slots", "recall")}
KEYS |= {"slot_f1": ("slots", "f1")}


def headline(metrics: dict) -> dict[str, float]:
    scores = {name: 100 * metrics[task][key] for name, (task, key) in KEYS.items()}
    return scores | {"sentence": 100 * metrics["sentence_accuracy"]}


def conditioned(model: MultiTaskModel, train) -> MultiTaskModel:
    """`model` with slot decoding restricted to the tags train showed with each intent."""
    intent, slots = model.tasks["intent"], model.tasks["slots"]
    allowed = tags_by_sentence_label(train, intent.field, slots.field)
    model.tasks["slots"] = slots.model_copy(update={"condition_on": "intent", "allowed_tags": allowed})
    return model


def score_checkpoint(checkpoint: Path, splits: dict) -> dict:
    model = MultiTaskModel.from_pretrained(checkpoint)
    plain = {split: headline(evaluate(model, splits[split])[0]) for split in ("dev", "test")}
    model = conditioned(model, splits["train"])
    return {
        "checkpoint": str(checkpoint),
        "plain": plain,
        "conditioned": {split: headline(evaluate(model, splits[split])[0]) for split in ("dev", "test")},
    }


def mean_std(rows: list[dict], way: str, split: str) -> dict[str, dict[str, float]]:
    summary = {}
    for key in rows[0][way][split]:
        values = [row[way][split][key] for row in rows]
        summary[key] = spread(values)
    return summary


def table(result: dict) -> str:
    lines = ["| decoding | split | intent | slot P | slot R | slot F1 | sentence |", "|---|---|---|---|---|---|---|"]
    for way in ("plain", "conditioned"):
        for split in ("dev", "test"):
            stats = result["mean_std"][way][split]
            cells = [f"{stats[key]['mean']:.2f} ± {stats[key]['std']:.2f}" for key in stats]
            lines.append(f"| {way} | {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="checkpoint folders (config.json + weights)")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--output", type=Path, help="default benchmarks/results/conditioned_decoding_CORPUS.json")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    missing = [path for path in args.checkpoints if not (Path(path) / "config.json").is_file()]
    if missing:
        sys.exit(f"error: not a checkpoint (no config.json): {', '.join(missing)}")
    torch.set_num_threads(args.threads)
    output = args.output or Path(__file__).parent / "results" / f"conditioned_decoding_{args.data_dir.name}.json"
    result = {**started_record(args), "runs": []}
    splits = {split: read_jointbert(args.data_dir / split) for split in ("train", "dev", "test")}
    for checkpoint in args.checkpoints:
        result["runs"].append(score_checkpoint(Path(checkpoint), splits))
        print(f"scored {checkpoint}")
    ways, split_names = ("plain", "conditioned"), ("dev", "test")
    result["mean_std"] = {way: {split: mean_std(result["runs"], way, split) for split in split_names} for way in ways}
    write_result(result, output)
    print(table(result))


if __name__ == "__main__":
    main()
