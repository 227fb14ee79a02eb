"""Parity and speed of the ONNX exports against PyTorch eager on CPU, measured in one run.

python benchmarks/onnx_parity.py CHECKPOINT --data-dir ../shared/data/snips [--split test] [--threads N]

Exports model.onnx and model.int8.onnx first when the checkpoint has none. For each batch size, every
backend runs the whole split through `run_model` (tokenization, batching and decoding included, as a
user gets it) `--repeats` times, interleaved so a noisy neighbour slows all backends alike; the best
time counts. Writes benchmarks/results/onnx_parity.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import onnxruntime
import torch

from machine import started_record, write_result
from mtst.data.formats import find_split, read_path
from mtst.evaluation.metrics import compute_metrics
from mtst.export.onnx import export_onnx
from mtst.inference.onnx import OnnxModel, onnx_path
from mtst.inference.runner import run_model
from mtst.model.multitask import MultiTaskModel

TARGET = {"speedup": 2.5, "agreement": 0.995, "f1_points": 0.3}  # int8 vs eager: issue 27 (speed round two)


def load_backends(checkpoint: Path, threads: int) -> dict:
    if not (onnx_path(checkpoint).is_file() and onnx_path(checkpoint, quantized=True).is_file()):
        print(f"exporting {checkpoint} to ONNX (fp32 and int8) first")
        export_onnx(checkpoint, quantize="int8")
    torch.set_num_threads(threads)
    return {
        "torch": MultiTaskModel.from_pretrained(checkpoint, device="cpu"),
        "onnx-fp32": OnnxModel.from_checkpoint(checkpoint, threads=threads),
        "onnx-int8": OnnxModel.from_checkpoint(checkpoint, quantized=True, threads=threads),
    }


def time_backends(backends: dict, examples: list, batch_size: int, repeats: int) -> tuple[dict, dict]:
    """Best wall time of `repeats` full passes per backend, and each backend's predictions."""
    times = {name: [] for name in backends}
    predictions = {}
    for model in backends.values():  # warm-up: first-call allocations, thread pools, caches
        run_model(model, examples[: 2 * batch_size], batch_size)
    for _ in range(repeats):
        for name, model in backends.items():
            started = time.perf_counter()
            predictions[name], _ = run_model(model, examples, batch_size)
            times[name].append(time.perf_counter() - started)
    return times, predictions


def parity(tasks: dict, examples: list, predictions: list, reference: list) -> dict:
    """Test metrics, plus per sentence task the share of labels equal to PyTorch's, per token task the share of
    identical tag sequences and the entity F1 of the tags against PyTorch's."""
    metrics = compute_metrics(tasks, examples, predictions)
    result = {}
    for name, task in tasks.items():
        if task.type == "sentence":
            same = sum(p[name].label == r[name].label for p, r in zip(predictions, reference, strict=True))
            result[name] = {"accuracy": metrics[name]["accuracy"], "agreement": same / len(examples)}
        else:
            same = sum(p[name].tags == r[name].tags for p, r in zip(predictions, reference, strict=True))
            # Entity F1 of this backend's tags scored against eager's, as `mtst export --agreement-data` measures.
            tags = [[list(p[name].tags) for p in rows] for rows in (reference, predictions)]
            f1_vs_eager = 1.0 if tags[0] == tags[1] else task.metrics(*tags)["f1"]
            result[name] = {
                "f1": metrics[name]["f1"],
                "identical_sentences": same / len(examples),
                "f1_vs_eager": f1_vs_eager,
            }
    return result


def measure(args) -> dict:
    examples = read_path(find_split(args.data_dir, args.split))
    backends = load_backends(args.checkpoint, args.threads)
    tasks = backends["torch"].tasks
    rows = []
    for batch_size in args.batch_sizes:
        times, predictions = time_backends(backends, examples, batch_size, args.repeats)
        for name in backends:
            best = min(times[name])
            rows.append(
                {
                    "backend": name,
                    "batch_size": batch_size,
                    "sentences_per_s": len(examples) / best,
                    "speedup_vs_torch": min(times["torch"]) / best,
                    "seconds": times[name],
                    "tasks": parity(tasks, examples, predictions[name], predictions["torch"]),
                }
            )
            print(f"batch {batch_size:>3} {name:<10} {len(examples) / best:7.1f} sentences/s", flush=True)
    return {
        "checkpoint": str(args.checkpoint),
        "data": f"{args.data_dir} ({args.split}, {len(examples)} sentences)",
        "onnxruntime": onnxruntime.__version__,
        "repeats": args.repeats,
        "rows": rows,
        "target": TARGET,
    }


def target_met(result: dict, row: dict) -> bool:
    reference = next(r for r in result["rows"] if r["backend"] == "torch" and r["batch_size"] == row["batch_size"])
    for name, scores in row["tasks"].items():
        if "agreement" in scores and scores["agreement"] < TARGET["agreement"]:
            return False
        if "f1" in scores and abs(scores["f1"] - reference["tasks"][name]["f1"]) * 100 > TARGET["f1_points"]:
            return False
    return row["speedup_vs_torch"] >= TARGET["speedup"]


def table(result: dict) -> str:
    lines = [
        "| backend | batch | sentences/s | speed vs eager | task | agreement with eager | accuracy / F1 "
        "| Δ vs eager (points) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        reference = next(r for r in result["rows"] if r["backend"] == "torch" and r["batch_size"] == row["batch_size"])
        for name, scores in row["tasks"].items():
            metric = "accuracy" if "accuracy" in scores else "f1"
            same = scores.get("agreement", scores.get("identical_sentences"))
            delta = 100 * (scores[metric] - reference["tasks"][name][metric])
            lines.append(
                f"| {row['backend']} | {row['batch_size']} | {row['sentences_per_s']:.1f} | "
                f"{row['speedup_vs_torch']:.2f}x | {name} ({metric}) | {100 * same:.2f}% | "
                f"{100 * scores[metric]:.2f} | {delta:+.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("MTST_DATA_DIR"), required=False)
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 64])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch and onnxruntime intra-op threads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "onnx_parity.json")
    args = parser.parse_args()
    if args.data_dir is None:
        parser.error("no data directory: pass --data-dir or set MTST_DATA_DIR")
    result = started_record(args)
    result.update(measure(args))
    int8 = [row for row in result["rows"] if row["backend"] == "onnx-int8"]
    result["target_met"] = {str(row["batch_size"]): target_met(result, row) for row in int8}
    write_result(result, args.output)
    print(table(result))
    print(
        f"\nint8 target (>= {TARGET['speedup']}x eager, intent agreement >= {100 * TARGET['agreement']}%, "
        f"slot F1 within {TARGET['f1_points']} points) met per batch size: {result['target_met']}"
    )


if __name__ == "__main__":
    main()
