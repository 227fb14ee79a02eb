"""What every benchmark result records about where and when it ran, and small timing helpers."""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

from mtst.files import write_text_atomic


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def machine(threads: int) -> dict:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def plain(value):
    """A command-line value as JSON writes it: paths (alone or in a list) as strings."""
    if isinstance(value, list):
        return [plain(item) for item in value]
    return str(value) if isinstance(value, Path) else value


def started_record(args: argparse.Namespace) -> dict:
    """The head of a result file, taken before anything is timed: every command-line setting included."""
    settings = {key: plain(value) for key, value in vars(args).items()}
    return {
        "date": datetime.date.today().isoformat(),
        "machine": machine(args.threads),
        "load_average_before": load_average(),
        "settings": settings,
    }


def write_result(record: dict, output: Path) -> None:
    """The record as indented JSON, written to a temporary file and renamed over `output`: a run killed while
    writing leaves the previous file whole, which resumable benchmarks read back."""
    record["load_average_after"] = load_average()
    write_text_atomic(output, json.dumps(record, indent=2) + "\n")


def report_grid(table: str, output: Path, failed: list[str]) -> None:
    """A resumable grid's last words: its table, where it wrote, and, when runs failed, a non-zero exit naming them
    (a rerun of the same command retries just those)."""
    print(table)
    print(f"wrote {output}")
    if failed:
        sys.exit("failed runs (rerun the same command to retry them):\n  " + "\n  ".join(failed))


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation of a non-empty list (0 for one value: one seed has no spread)."""
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def median(values: list[float]) -> float:
    return statistics.median(values)
