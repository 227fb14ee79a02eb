"""Load benchmark of `mtst serve` on loopback: latency percentiles, throughput, errors and server memory.

Starts two servers in subprocesses, one with micro-batching (the default settings) and one without it
(--max-batch-sentences 1), and drives each with N requests of a few sentences at 1, 8 and 32 concurrent
clients, one server at a time. Writes benchmarks/results/serve_load.json and prints a markdown table.

    python benchmarks/serve_load.py runs/demo/best --requests 1000 --sentences 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import httpx

MODES = {"micro-batching": [], "batch size 1": ["--max-batch-sentences", "1"]}


def demo_sentences() -> list[str]:
    demo = resources.files("mtst") / "resources" / "demo"
    rows = (demo / "test.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(row)["text"] for row in rows] + (demo / "held_out.txt").read_text().splitlines()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(checkpoint: str, extra: list[str], log: Path, threads: int | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "mtst", "serve", checkpoint, "--port", str(port), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"server did not answer /health within 300 s; see {log}")


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, round(q / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


async def drive(url: str, requests: list[list[str]], concurrency: int) -> dict:
    """Sends every request once, `concurrency` at a time, each client waiting for its answer before the next."""
    latencies, errors, queue = [], 0, iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def client_loop() -> None:
            nonlocal errors
            for texts in queue:
                started = time.perf_counter()
                try:
                    response = await client.post("/predict", json={"texts": texts})
                    ok = response.status_code == 200 and len(response.json()) == len(texts)
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    latencies.sort()
    sentences = sum(len(texts) for texts in requests)
    return {
        "requests": len(requests),
        "sentences": sentences,
        "errors": errors,
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(requests) / wall, 1),
        "sentences_per_s": round(sentences / wall, 1),
        **{f"p{q}_ms": round(percentile(latencies, q) * 1000, 1) for q in (50, 95, 99)},
    }


def measure(url: str, requests: list[list[str]], concurrency: int) -> dict:
    before = httpx.get(f"{url}/health").json()
    row = asyncio.run(drive(url, requests, concurrency))
    after = httpx.get(f"{url}/health").json()
    batches = after["batches"] - before["batches"]
    row["mean_batch_sentences"] = round((after["sentences"] - before["sentences"]) / max(batches, 1), 1)
    return {"concurrency": concurrency, **row}


def run(checkpoint: str, requests: list[list[str]], levels: list[int], logs: Path, threads: int | None) -> dict:
    """Both servers up at once (an idle one costs no CPU) and measured in turn at each level, so a machine
    whose load drifts during the run treats both alike."""
    servers = {
        mode: start_server(checkpoint, extra, logs / f"serve_load.{mode.replace(' ', '_')}.log", threads)
        for mode, extra in MODES.items()
    }
    try:
        results = {}
        for mode, (process, url) in servers.items():
            asyncio.run(drive(url, requests[:20], 4))  # warm-up, not counted
            results[mode] = {"server_args": MODES[mode], "rss_mib_before": rss_mib(process.pid), "runs": []}
        for concurrency in levels:
            for mode, (_, url) in servers.items():
                results[mode]["runs"].append(measure(url, requests, concurrency))
                print(mode, json.dumps(results[mode]["runs"][-1]), flush=True)
        for mode, (process, _) in servers.items():
            results[mode]["rss_mib_after"] = rss_mib(process.pid)
        return results
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)


def machine() -> dict:
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    return {
        "cpu": names[0] if names else platform.processor(),
        "cores": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def table(results: dict) -> str:
    lines = [
        "| server | clients | requests | sentences/s | requests/s | p50 ms | p95 ms | p99 ms | mean batch | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, result in results["modes"].items():
        for row in result["runs"]:
            lines.append(
                f"| {mode} | {row['concurrency']} | {row['requests']} | {row['sentences_per_s']} | "
                f"{row['requests_per_s']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | "
                f"{row['mean_batch_sentences']} | {row['errors']} |"
            )
    lines.append("")
    lines.append("| server | RSS before (MiB) | RSS after (MiB) |")
    lines.append("|---|---|---|")
    for mode, result in results["modes"].items():
        lines.append(f"| {mode} | {result['rss_mib_before']} | {result['rss_mib_after']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", default="runs/demo/best")
    parser.add_argument("--requests", type=int, default=1000, help="requests per concurrency level")
    parser.add_argument("--sentences", type=int, default=4, help="sentences per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the servers (default: torch's choice)")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/serve_load.json"))
    args = parser.parse_args()

    pool = demo_sentences()
    requests = [
        [pool[(i * args.sentences + j) % len(pool)] for j in range(args.sentences)] for i in range(args.requests)
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    results = {
        "command": " ".join(["python", *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "checkpoint": args.checkpoint,
        "server_threads": args.threads or "torch default",
        "load_average_before": os.getloadavg(),
    }
    results["modes"] = run(args.checkpoint, requests, args.concurrency, args.output.parent, args.threads)
    results["load_average_after"] = os.getloadavg()
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
