"""Batch prediction at scale: `mtst predict --file IN --output OUT` at two file sizes, and Ray Data beside it.

python benchmarks/predict_stream.py CHECKPOINT --lines 10000 100000 [--threads 1] [--ray-lines 10000 --ray-actors 2]

Writes a file of N lines (the bundled demo corpus repeated, each line numbered so that no two are equal), runs
the real CLI under `/usr/bin/time -v` for each N and records its peak RSS, wall time and texts/s: flat
memory means the peak does not grow with N; `rss_profile` samples the peak so far against the results
written during each run (from /proc), so one long run shows it too. With `--ray-lines`, the same checkpoint
runs through Ray Data (`read_text` → `map_batches(BatchPredictor, concurrency=ACTORS)` → `write_json`) on a
local Ray instance with ACTORS CPUs, beside the single process on the same lines.
Writes benchmarks/results/predict_stream.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from machine import started_record, write_result

CORPUS = resources.files("mtst") / "resources" / "demo" / "corpus.txt"


def write_input(path: Path, lines: int) -> None:
    sentences = [s for s in CORPUS.read_text(encoding="utf-8").splitlines() if s.strip()]
    with path.open("w", encoding="utf-8") as sink:
        for index in range(lines):
            sink.write(f"{sentences[index % len(sentences)]} ({index})\n")


def peak_so_far_mib(pid: int) -> int | None:
    """The process's peak resident memory until now (VmHWM), or None once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"VmHWM:\s+(\d+) kB", status)  # absent once the process is a zombie
    return round(int(found.group(1)) / 1024) if found else None


def rss_profile(timer: subprocess.Popen, output: Path, every: float = 2.0) -> list[list[int]]:
    """[results written, peak RSS so far in MiB] every `every` seconds while `/usr/bin/time`'s child runs."""
    profile, predictor_pid = [], None
    while timer.poll() is None:
        time.sleep(every)
        if predictor_pid is None:
            children = Path(f"/proc/{timer.pid}/task/{timer.pid}/children")
            found = children.read_text().split() if children.exists() else []
            predictor_pid = int(found[0]) if found else None
        peak = peak_so_far_mib(predictor_pid) if predictor_pid else None
        if peak is not None and output.exists():
            profile.append([sum(1 for _ in output.open("rb")), peak])
    return profile


def run_cli(checkpoint: Path, source: Path, output: Path, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "mtst", "predict", str(checkpoint)]
    command += ["--file", str(source), "--output", str(output)]
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: a full pipe would stall the child
        timer = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        profile = rss_profile(timer, output)
        log.seek(0)
        stderr = log.read()
    if timer.wait() != 0:
        raise SystemExit(f"mtst predict failed:\n{stderr[-2000:]}")
    seconds = time.monotonic() - started
    peak_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1))
    lines = sum(1 for _ in output.open(encoding="utf-8"))
    return {
        "rss_profile": profile[:: max(1, len(profile) // 20)],  # about 20 [results, peak MiB] points
        "texts": lines,
        "seconds": round(seconds, 1),
        "texts_per_s": round(lines / seconds, 1),
        "peak_rss_mib": round(peak_kib / 1024),
    }


def run_ray(checkpoint: Path, source: Path, output: Path, actors: int, batch_size: int) -> dict:
    import ray

    from mtst.inference.ray_batch import BatchPredictor

    ray.init(num_cpus=actors, include_dashboard=False, log_to_driver=False)
    try:
        started = time.monotonic()
        # The read takes no CPU of its own: the actors hold them all, and a read waiting for one would never run.
        ray.data.read_text(str(source), num_cpus=0).map_batches(
            BatchPredictor,
            fn_constructor_kwargs={"checkpoint": str(checkpoint), "threads": 1},
            concurrency=actors,
            batch_size=batch_size,
            num_cpus=1,
        ).write_json(str(output))
        seconds = time.monotonic() - started
    finally:
        ray.shutdown()
    lines = sum(1 for part in output.glob("*.json") for _ in part.open(encoding="utf-8"))
    return {"texts": lines, "seconds": round(seconds, 1), "texts_per_s": round(lines / seconds, 1), "actors": actors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--lines", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ray-lines", type=int, help="also run Ray Data and the single process on this many lines")
    parser.add_argument("--ray-actors", type=int, default=2)
    parser.add_argument("--ray-batch-size", type=int, default=256)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/predict_stream.json"))
    args = parser.parse_args()
    record = started_record(args)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        record["stream"] = {}
        for lines in args.lines:
            write_input(work / f"in-{lines}.txt", lines)
            record["stream"][str(lines)] = run_cli(
                args.checkpoint, work / f"in-{lines}.txt", work / f"out-{lines}.jsonl", args.threads
            )
            print(lines, record["stream"][str(lines)], flush=True)
        if args.ray_lines:
            source = work / "in-ray.txt"
            write_input(source, args.ray_lines)
            # The single process with one thread, and with as many threads as Ray gets CPUs (the fair pairing).
            record["ray"] = {
                f"single_process_{threads}_threads": run_cli(
                    args.checkpoint, source, work / f"out-single-{threads}.jsonl", threads
                )
                for threads in sorted({args.threads, args.ray_actors})
            }
            record["ray"]["ray_data"] = run_ray(
                args.checkpoint, source, work / "out-ray", args.ray_actors, args.ray_batch_size
            )
            print(json.dumps(record["ray"]), flush=True)
    write_result(record, args.output)


if __name__ == "__main__":
    main()
