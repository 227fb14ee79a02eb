"""What every peer script shares: reading a JointBERT split, writing test predictions, timing inference,
peak memory and the run record. Standard library only: each peer runs in its own virtual environment
(benchmarks/peers/setup.sh), so this module cannot import mtst or anything the peer does not install.

A peer's run folder holds `predictions.jsonl` (one `{"intent": ..., "tags": [...]}` per test sentence, in
file order, one tag per corpus word) and `run.json`; `benchmarks/peers/score.py` scores the predictions with
mtst's own metrics, so every peer is measured by the same scorer.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sentence:
    words: list[str]
    intent: str
    tags: list[str]


def read_split(data_dir: str | Path, split: str) -> list[Sentence]:
    """A JointBERT folder's split: seq.in (words), seq.out (BIO tags), label (intent), line by line."""
    folder = Path(data_dir) / split
    words = (folder / "seq.in").read_text(encoding="utf-8").splitlines()
    tags = (folder / "seq.out").read_text(encoding="utf-8").splitlines()
    intents = (folder / "label").read_text(encoding="utf-8").splitlines()
    if not len(words) == len(tags) == len(intents):
        raise SystemExit(f"error: {folder}: seq.in, seq.out and label differ in line count")
    sentences = [Sentence(w.split(), i.strip(), t.split()) for w, t, i in zip(words, tags, intents, strict=True)]
    for number, sentence in enumerate(sentences, 1):
        if len(sentence.words) != len(sentence.tags):
            counts = f"{len(sentence.tags)} tags for {len(sentence.words)} words"
            raise SystemExit(f"error: {folder}/seq.out:{number}: {counts}")
    return sentences


def write_predictions(path: str | Path, intents: Sequence[str], tags: Sequence[Sequence[str]]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for intent, sentence_tags in zip(intents, tags, strict=True):
            out.write(json.dumps({"intent": intent, "tags": list(sentence_tags)}) + "\n")


def peak_rss_mb() -> float:
    """The largest resident set of this process or any child it waited for (a `spacy train` subprocess)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # Linux reports KiB


def folder_size_mb(path: str | Path) -> float:
    files = [p for p in Path(path).rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def time_inference(
    predict: Callable[[list[list[str]]], object],
    sentences: Sequence[Sentence],
    batch_sizes: Sequence[int] = (1, 64),
    limit: int = 256,
    passes: int = 3,
) -> dict:
    """Sentences per second of `predict(list of word lists)` at each batch size: the first `limit` test
    sentences cut into batches in file order, one warm-up batch, then the median of `passes` full passes."""
    words = [s.words for s in sentences[:limit]]
    result = {}
    for size in batch_sizes:
        batches = [words[i : i + size] for i in range(0, len(words), size)]
        predict(batches[0])
        rates = []
        for _ in range(passes):
            start = time.perf_counter()
            for batch in batches:
                predict(batch)
            rates.append(len(words) / (time.perf_counter() - start))
        result[f"batch_{size}"] = {"sentences_per_second": statistics.median(rates), "passes": rates}
    return result


def machine() -> dict:
    return {
        "load_average": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def update_record(folder: str | Path, **fields) -> dict:
    """Merge `fields` into the run folder's run.json (train and speed write their parts separately)."""
    path = Path(folder) / "run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update(fields)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def few_shot(sentences: Sequence[Sentence], shots: int, seed: int) -> list[Sentence]:
    """`shots` sentences of each intent (all of an intent with fewer), drawn with `seed`, in file order."""
    import random

    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    taken: dict[str, int] = {}
    chosen = []
    for index in order:
        intent = sentences[index].intent
        if taken.get(intent, 0) < shots:
            taken[intent] = taken.get(intent, 0) + 1
            chosen.append(index)
    return [sentences[i] for i in sorted(chosen)]


def write_split(folder: str | Path, sentences: Sequence[Sentence]) -> None:
    """A JointBERT split folder (seq.in, seq.out, label) holding `sentences`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seq.in").write_text("".join(" ".join(s.words) + "\n" for s in sentences), encoding="utf-8")
    (folder / "seq.out").write_text("".join(" ".join(s.tags) + "\n" for s in sentences), encoding="utf-8")
    (folder / "label").write_text("".join(s.intent + "\n" for s in sentences), encoding="utf-8")


def record_speed(
    folder: str | Path, predict: Callable, data_dir: str | Path, limit: int, threads: int, **extra
) -> None:
    """Time `predict` (list of word lists -> both tasks' predictions) on the test split into FOLDER/run.json."""
    rates = time_inference(predict, read_split(data_dir, "test"), limit=limit)
    update_record(
        folder,
        inference=rates,
        inference_threads=threads,
        inference_peak_rss_mb=peak_rss_mb(),
        machine_at_speed=machine(),
        **extra,
    )


def command_line(description: str):
    """The `train` / `speed` command line every peer script has: returns (parser, train, speed) so that a
    script adds its own options; both subcommands take --data-dir, --output, --threads and --limit."""
    import argparse

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train, speed = commands.add_parser("train"), commands.add_parser("speed")
    for sub in (train, speed):
        sub.add_argument("--data-dir", required=True)
        sub.add_argument("--output", required=True)
        sub.add_argument("--threads", type=int, default=1)
        sub.add_argument("--limit", type=int, default=256, help="speed: the first N test sentences")
    return parser, train, speed
