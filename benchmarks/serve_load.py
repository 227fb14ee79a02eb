"""Load benchmark of `mtst serve` on loopback: latency percentiles, throughput, errors and server memory.

Starts two servers in subprocesses, one with micro-batching (the default settings) and one without it
(--max-batch-sentences 1), and drives each with N requests of a few sentences at 1, 8 and 32 concurrent
clients, one server at a time. Writes benchmarks/results/serve_load.json and prints a markdown table.

    python benchmarks/serve_load.py runs/demo/best --requests 1000 --sentences 4

`--scenario abandoned` measures instead what clients that give up cost the next one: one server (default
settings); each round, `--abandoning` clients send a request near the `--max-subtokens` budget and hang up
after `--give-up-s`, then a fresh one-sentence request is timed. The server drops queued work whose client
left, so the fresh request waits for at most the one heavy request already running, not for all of them.
Writes benchmarks/results/serve_abandoned.json.

    python benchmarks/serve_load.py runs/demo/best --scenario abandoned --threads 1

`--scenario burst` measures what oversized requests cost a small one: one server (default settings); a
one-sentence request is timed idle, then while `--oversized` clients at once each send 64 texts of 10,000
characters (over the `--max-subtokens` budget: each ends in 413, or 503 once the queue is full), the same
one-sentence request is timed `--probes` times. Writes benchmarks/results/serve_burst.json.

    python benchmarks/serve_load.py runs/demo/best --scenario burst --oversized 60 --threads 1
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
from collections import Counter
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


def heavy_texts(checkpoint: str, subtokens: int, count: int = 64) -> list[str]:
    """`count` texts of demo sentences holding together just under `subtokens` sub-tokens (the server's count)."""
    from mtst.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    pool, texts = demo_sentences(), []
    per_text = subtokens // count
    for index in range(count):
        text = ""
        for step in range(len(pool)):
            longer = f"{text} {pool[(index + step) % len(pool)]}".strip()
            if predictor.count_subtokens([longer]) > per_text:
                break
            text = longer
        texts.append(text)
    return texts


async def abandon(url: str, texts: list[str], clients: int, give_up_s: float) -> None:
    """`clients` connections each send `texts` and close after `give_up_s`, unanswered (a client timing out)."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"texts": texts}).encode()
    head = f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    writers = []
    for _ in range(clients):
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        writers.append(writer)
        await asyncio.sleep(0.05)
    await asyncio.sleep(give_up_s)
    for writer in writers:
        writer.close()


def timed_post(url: str, texts: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    response = httpx.post(f"{url}/predict", json={"texts": texts}, timeout=600)
    return round(time.perf_counter() - started, 3), response.status_code


def abandoned_scenario(checkpoint: str, args) -> dict:
    texts = heavy_texts(checkpoint, args.max_subtokens * 9 // 10)
    fresh = [demo_sentences()[0]]
    log = args.output.parent / "serve_abandoned.log"
    process, url = start_server(checkpoint, ["--max-subtokens", str(args.max_subtokens)], log, args.threads)
    try:
        idle = sorted(timed_post(url, fresh)[0] for _ in range(10))
        heavy_s, status = timed_post(url, texts)  # what one abandoned request costs when it is computed
        assert status == 200, f"the heavy request got {status}"
        rounds = []
        for _ in range(args.rounds):
            before = httpx.get(f"{url}/health").json()
            asyncio.run(abandon(url, texts, args.abandoning, args.give_up_s))
            latency, status = timed_post(url, fresh)
            after = httpx.get(f"{url}/health").json()
            rounds.append(
                {
                    "fresh_latency_s": latency,
                    "fresh_status": status,
                    "heavy_requests_computed": after["batches"] - before["batches"] - 1,
                    "heavy_requests_dropped": after["dropped"] - before["dropped"],
                }
            )
            print(json.dumps(rounds[-1]), flush=True)
        too_big = timed_post(url, ["word " * 2_000] * 64)  # the 64 x 10,000 characters: refused at once
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {
        "heavy_request": {"texts": len(texts), "characters": sum(map(len, texts)), "latency_s": heavy_s},
        "fresh_request_idle_p50_s": idle[len(idle) // 2],
        "abandoning_clients_per_round": args.abandoning,
        "give_up_s": args.give_up_s,
        "rounds": rounds,
        "if_abandoned_work_were_computed_s": round(args.abandoning * heavy_s, 1),
        "over_budget_request": {"latency_s": too_big[0], "status": too_big[1]},
    }


OVERSIZED = ["word " * 2_000] * 64  # 64 texts of 10,000 characters: the request limits allow it, the budget not


async def burst(http: httpx.AsyncClient, fresh: list[str], oversized: int, probes: int) -> dict:
    """Times `fresh` `probes` times, one after another, while `oversized` requests of OVERSIZED arrive at once."""

    async def post(texts: list[str]) -> tuple[float, int]:
        started = time.perf_counter()
        response = await http.post("/predict", json={"texts": texts})
        return round(time.perf_counter() - started, 3), response.status_code

    heavy = [asyncio.ensure_future(post(OVERSIZED)) for _ in range(oversized)]
    await asyncio.sleep(0)  # the oversized requests go out first
    timed = [await post(fresh) for _ in range(probes)]
    answered = await asyncio.gather(*heavy)
    latencies = sorted(latency for latency, _ in timed)
    return {
        "oversized_requests": oversized,
        "oversized_statuses": dict(Counter(str(status) for _, status in answered)),
        "oversized_slowest_s": max((latency for latency, _ in answered), default=None),
        "probe_statuses": dict(Counter(str(status) for _, status in timed)),
        "probe_p50_s": latencies[len(latencies) // 2],
        "probe_max_s": latencies[-1],
    }


def burst_scenario(checkpoint: str, args) -> dict:
    fresh = [demo_sentences()[0]]
    log = args.output.parent / "serve_burst.log"
    process, url = start_server(checkpoint, ["--max-subtokens", str(args.max_subtokens)], log, args.threads)
    try:
        idle = sorted(timed_post(url, fresh)[0] for _ in range(10))

        async def under_burst() -> dict:
            limits = httpx.Limits(max_connections=args.oversized + 1)
            async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:
                return await burst(http, fresh, args.oversized, args.probes)

        measured = asyncio.run(under_burst())
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {"fresh_request_idle_p50_s": idle[len(idle) // 2], **measured}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", default="runs/demo/best")
    parser.add_argument("--requests", type=int, default=1000, help="requests per concurrency level")
    parser.add_argument("--sentences", type=int, default=4, help="sentences per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the servers (default: torch's choice)")
    parser.add_argument("--output", type=Path, help="default benchmarks/results/serve_{load,abandoned,burst}.json")
    parser.add_argument("--scenario", choices=["load", "abandoned", "burst"], default="load")
    parser.add_argument("--rounds", type=int, default=3, help="abandoned: rounds of clients giving up")
    parser.add_argument("--abandoning", type=int, default=3, help="abandoned: clients giving up per round")
    parser.add_argument("--give-up-s", type=float, default=1.0, help="abandoned: how long each waits")
    parser.add_argument("--max-subtokens", type=int, default=16_384, help="abandoned, burst: the server's budget")
    parser.add_argument("--oversized", type=int, default=60, help="burst: oversized requests sent at once")
    parser.add_argument("--probes", type=int, default=5, help="burst: one-sentence requests timed during it")
    args = parser.parse_args()
    args.output = args.output or Path("benchmarks/results") / f"serve_{args.scenario}.json"

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
    scenarios = {"abandoned": abandoned_scenario, "burst": burst_scenario}
    if args.scenario in scenarios:
        results[args.scenario] = scenarios[args.scenario](args.checkpoint, args)
    else:
        results["modes"] = run(args.checkpoint, requests, args.concurrency, args.output.parent, args.threads)
    results["load_average_after"] = os.getloadavg()
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results) if args.scenario == "load" else json.dumps(results[args.scenario], indent=2))


if __name__ == "__main__":
    main()
