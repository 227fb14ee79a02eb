"""Confidence a user can act on (issue 25): each checkpoint calibrated on dev, then scored on test with and without
the per-type entity thresholds calibration picked.

python benchmarks/calibration.py runs/grid/atis/crf+entity-weight-1/seed-{13,14,15}/best \\
    --data-dir ../shared/data/atis [--output benchmarks/results/calibration_atis.json] [--threads N]

Each checkpoint is first copied to a temporary folder (under `--work-dir`, default the system's) and only that copy
is calibrated: the folders given, the accuracy grid's checkpoints, are read and never written. On the copy, as
`mtst calibrate COPY --data-dir DIR` does: each head's temperature fitted on dev and the entity thresholds picked
on dev's tempered scores, stored in its config.json. The copy is then loaded back and scored on test as
`mtst evaluate COPY --data-dir DIR --json` scores it, once with `--no-thresholds` and once with the thresholds
(one pass of the model serves both). Per checkpoint the result keeps what calibrate reports on dev (temperature,
ECE before / after, entity F1 before / after: tuned on that same split, so optimistic) and test's metrics both
ways (intent ECE untempered and with the stored temperature, slot P/R/F1, sentence accuracy); then mean ± std
over the checkpoints. The result JSON (default benchmarks/results/calibration_CORPUS.json, CORPUS the data
folder's name) is rewritten atomically after every checkpoint.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from machine import load_average, mean_std, started_record
from mtst.calibration.fitting import calibrate_checkpoint
from mtst.calibration.thresholds import stored_entity_thresholds, threshold_settings
from mtst.data import check_annotations, read_split
from mtst.errors import MtstError
from mtst.evaluation.metrics import evaluate, headline
from mtst.files import write_json_atomic
from mtst.inference.runner import run_model
from mtst.model.multitask import MultiTaskModel

INTENT, SLOTS = "intent", "slots"  # the task names of the JointBERT configs (configs/atis.yaml, snips.yaml)
RAW, THRESHOLDED = ("test", "without_thresholds"), ("test", "with_thresholds")
# (row label, value before, value after): paths into a checkpoint's row, shown in points. The ECE does not
# depend on the thresholds: test's is kept with the scores without them.
SUMMARY = (
    ("intent ECE, dev", ("dev", "temperature", INTENT, "ece_uncalibrated"), ("dev", "temperature", INTENT, "ece")),
    ("intent ECE, test", (*RAW, f"{INTENT}.ece_uncalibrated"), (*RAW, f"{INTENT}.ece")),
    ("slot precision, test", (*RAW, f"{SLOTS}.precision"), (*THRESHOLDED, f"{SLOTS}.precision")),
    ("slot recall, test", (*RAW, f"{SLOTS}.recall"), (*THRESHOLDED, f"{SLOTS}.recall")),
    ("slot F1, test", (*RAW, f"{SLOTS}.f1"), (*THRESHOLDED, f"{SLOTS}.f1")),
    ("slot F1, dev (thresholds picked there)", ("dev", "entity_thresholds", SLOTS, "f1_before"),
     ("dev", "entity_thresholds", SLOTS, "f1")),
    ("sentence accuracy, test", (*RAW, "sentence_accuracy"), (*THRESHOLDED, "sentence_accuracy")),
)  # fmt: skip


def read_examples(model, data_dir: Path, split: str) -> list:
    """A split of the corpus as the checkpoint reads it (its data settings, this folder), as the CLI reads it."""
    data = model.checkpoint_config().data_for(data_dir).model_copy(update={"dir": str(data_dir)})
    examples = read_split(data, split)
    check_annotations(examples, model.tasks.values(), split)
    return examples


def calibrate_copy(copy: Path, data_dir: Path, device: str) -> dict:
    """`mtst calibrate COPY --data-dir DATA_DIR`: fits on dev, stores in the copy; returns what it reports."""
    model = MultiTaskModel.from_pretrained(copy, device=device)
    report = calibrate_checkpoint(model, read_examples(model, data_dir, "dev"), threshold_settings(), "dev")
    model.save_settings(copy, report.card)
    return report.as_json()


def scored_both_ways(copy: Path, data_dir: Path, device: str) -> dict:
    """`mtst evaluate COPY --json` on test with `--no-thresholds` and with the thresholds, from one model pass."""
    model = MultiTaskModel.from_pretrained(copy, device=device)
    test = read_examples(model, data_dir, "test")
    predictions, losses = run_model(model, test)

    def predicted(model, examples, batch_size):  # the one pass, for both scorings
        return predictions, losses

    without, _ = evaluate(model, test, run=predicted, calibration=True)  # ECE: one more pass, thresholds aside
    with_thresholds, _ = evaluate(model, test, run=predicted, entity_thresholds=True)
    return {
        "temperature": {name: task.temperature for name, task in model.tasks.items() if task.fits_temperature},
        "entity_thresholds": stored_entity_thresholds(model.tasks),
        "without_thresholds": _numbers(without),
        "with_thresholds": _numbers(with_thresholds),
    }


def _numbers(metrics: dict) -> dict:
    return {key: value for key, value in headline(metrics).items() if not key.endswith(".loss")}


def checkpoint_row(checkpoint: Path, args) -> dict:
    """One checkpoint calibrated and scored; only a copy of it is ever written."""
    with tempfile.TemporaryDirectory(prefix="mtst-calibration-", dir=args.work_dir) as work:
        copy = Path(work) / "best"
        shutil.copytree(checkpoint, copy, ignore=shutil.ignore_patterns("*.onnx"))  # the torch weights suffice
        dev = calibrate_copy(copy, args.data_dir, args.device)
        test = scored_both_ways(copy, args.data_dir, args.device)
    return {"checkpoint": str(checkpoint), "dev": dev, "test": test}


def _value(row: dict, path: tuple[str, ...]) -> float | None:
    node = row
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node)


def _stats(values: list[float]) -> dict:
    return {**mean_std(values), "n": len(values)}


def summary(rows: list[dict]) -> dict:
    """Mean ± std over checkpoints: each SUMMARY row before, after and the paired difference (points); the
    intent temperature; how many entity types got a threshold."""
    result = {}
    for label, before_path, after_path in SUMMARY:
        pairs = [(_value(row, before_path), _value(row, after_path)) for row in rows]
        pairs = [(100 * before, 100 * after) for before, after in pairs if before is not None and after is not None]
        if pairs:
            result[label] = {
                "before": _stats([before for before, _ in pairs]),
                "after": _stats([after for _, after in pairs]),
                "delta": _stats([after - before for before, after in pairs]),
            }
    temperatures = [t for row in rows if (t := _value(row, ("test", "temperature", INTENT))) is not None]
    if temperatures:
        result["intent temperature"] = _stats(temperatures)
    result["entity types thresholded"] = _stats([len(_thresholds(row)) for row in rows])
    return result


def _thresholds(row: dict) -> dict[str, float]:
    return row["test"]["entity_thresholds"].get(SLOTS, {})


def _cell(stats: dict | None, digits: int = 2) -> str:
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}" if stats else "–"


def table(result: dict) -> str:
    stats, rows = result["summary"], result["checkpoints"]
    lines = [
        f"| {result['corpus']}: mean ± std over {len(rows)} checkpoint(s), in % | uncalibrated / no thresholds | "
        "calibrated / thresholds | Δ (points) |",
        "|---|---|---|---|",
    ]
    for label, *_ in SUMMARY:
        if label in stats:
            entry = stats[label]
            lines.append(f"| {label} | {_cell(entry['before'])} | {_cell(entry['after'])} | {_cell(entry['delta'])} |")
    lines += [
        "",
        f"intent temperature {_cell(stats.get('intent temperature'), 3)}; entity types given a threshold "
        f"{_cell(stats['entity types thresholded'], 1)}",
        "",
        "| checkpoint | temperature | types thresholded | test intent ECE | slot P / R / F1, no thresholds | with |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        test = row["test"]
        ece = [_value(row, (*RAW, f"{INTENT}.{key}")) for key in ("ece_uncalibrated", "ece")]
        temperature = test["temperature"].get(INTENT)
        lines.append(
            f"| {row['checkpoint']} | {temperature if temperature is not None else '–'} | {len(_thresholds(row))} | "
            + (f"{100 * ece[0]:.2f} → {100 * ece[1]:.2f}" if None not in ece else "–")
            + f" | {_prf(test['without_thresholds'])} | {_prf(test['with_thresholds'])} |"
        )
    return "\n".join(lines)


def _prf(numbers: dict) -> str:
    values = [numbers.get(f"{SLOTS}.{key}") for key in ("precision", "recall", "f1")]
    return " / ".join("–" if value is None else f"{100 * value:.2f}" for value in values)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="checkpoint folders (RUN/best); only read")
    parser.add_argument("--data-dir", type=Path, required=True, help="the corpus: train/, dev/, test/")
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/calibration_CORPUS.json")
    parser.add_argument("--work-dir", type=Path, help="where the copies are calibrated; default: the system's temp")
    parser.add_argument("--threads", type=int, help="torch CPU threads; default: torch's")
    parser.add_argument("--device", help="default: cuda when available, else cpu")
    args = parser.parse_args(argv)
    args.corpus = args.data_dir.resolve().name
    args.output = args.output or Path("benchmarks/results") / f"calibration_{args.corpus}.json"
    args.threads = args.threads or torch.get_num_threads()
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    missing = [path for path in args.checkpoints if not (Path(path) / "config.json").is_file()]
    if missing:  # before anything is copied or run: a typo in the last path costs nothing
        sys.exit(f"error: not an mtst checkpoint (no config.json): {', '.join(missing)}")
    if not args.data_dir.is_dir():
        sys.exit(f"error: {args.data_dir}: no such data directory")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    result = started_record(args)
    result.update(corpus=args.corpus, checkpoints=[], summary={})
    for checkpoint in args.checkpoints:
        print(f"calibrating a copy of {checkpoint} on dev, scoring it on test", flush=True)
        try:
            result["checkpoints"].append(checkpoint_row(Path(checkpoint), args))
        except MtstError as error:
            sys.exit(f"error: {checkpoint}: {error}")
        result["summary"] = summary(result["checkpoints"])
        result["load_average_after"] = load_average()
        write_json_atomic(args.output, result, indent=2)
    print(table(result))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
