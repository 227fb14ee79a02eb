"""Build the bundled demo corpus: src/mtst/resources/demo/corpus.txt -> train.jsonl, dev.jsonl, test.jsonl.

corpus.txt holds hand-written sentences, one per line as ``TOPIC<TAB>text with [entity](TYPE) markup``,
grouped under ``## train`` / ``## dev`` / ``## test`` headers (its header comment gives the details).
This script strips the markup, computes character offsets and checks every rule before writing anything:
known topics and entity types, offsets that slice back to the entity text, spans on whole tokens of
``\\w+|[^\\w\\s]``, no overlaps, 5-30 words, no duplicate sentences (ignoring case and punctuation),
and none of the held-out demo sentences (``held_out.txt`` beside the corpus)
nor a near-copy of one.
Any violation exits with ``corpus.txt:LINE: reason``. Output is deterministic (file order, UTF-8).

Usage: python3 scripts/build_demo_corpus.py
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections import Counter
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "src" / "mtst" / "resources" / "demo"
SPLITS = ("train", "dev", "test")
TOPICS = {"technology", "travel", "politics", "sports", "business"}
ENTITY_TYPES = {"PER", "ORG", "LOC", "MISC"}
MARKUP = re.compile(r"\[([^\[\]]+)\]\(([^()]*)\)")
TOKEN = re.compile(r"\w+|[^\w\s]")
MIN_WORDS, MAX_WORDS = 5, 30
NEAR_COPY = 0.75  # difflib ratio of normalised texts at or above which a sentence counts as a near-copy
# The sentences `mtst demo` predicts after training; they must never appear in the corpus.
HELD_OUT = (DEMO / "held_out.txt").read_text(encoding="utf-8").splitlines()


def normalise(text: str) -> str:
    """Lower-cased words only, so duplicates that differ in case or punctuation still match."""
    return " ".join(re.findall(r"\w+", text.lower()))


def fail(number: int | None, reason: str) -> None:
    sys.exit(f"corpus.txt:{number}: {reason}" if number else f"corpus.txt: {reason}")


def parse_sentence(line: str, number: int) -> dict:
    label, sep, marked = line.partition("\t")
    if not sep or label not in TOPICS:
        fail(number, f"expected TOPIC<TAB>sentence with TOPIC in {sorted(TOPICS)}, got {line[:40]!r}")
    text, entities, cursor = "", [], 0
    for match in MARKUP.finditer(marked):
        surface, kind = match.groups()
        if kind not in ENTITY_TYPES:
            fail(number, f"entity type {kind!r} not in {sorted(ENTITY_TYPES)}")
        text += marked[cursor : match.start()]
        entities.append({"start": len(text), "end": len(text) + len(surface), "label": kind})
        text += surface
        cursor = match.end()
    text += marked[cursor:]
    if any(c in text for c in "[]\t") or text != text.strip() or "  " in text:
        fail(number, f"stray markup, tab or extra whitespace in {text!r}")
    if not MIN_WORDS <= len(text.split()) <= MAX_WORDS:
        fail(number, f"{len(text.split())} words, expected {MIN_WORDS}-{MAX_WORDS}")
    tokens = [m.span() for m in TOKEN.finditer(text)]
    starts, ends = {s for s, _ in tokens}, {e for _, e in tokens}
    previous_end = 0
    for entity, surface in zip(entities, (m.group(1) for m in MARKUP.finditer(marked)), strict=True):
        start, end = entity["start"], entity["end"]
        if text[start:end] != surface:
            fail(number, f"offsets {start}-{end} slice {text[start:end]!r}, not {surface!r}")
        if start not in starts or end not in ends:
            fail(number, f"entity {surface!r} does not cover whole tokens")
        if start < previous_end:
            fail(number, f"entity {surface!r} overlaps the previous one")
        previous_end = end
    return {"text": text, "label": label, "entities": entities}


def parse(path: Path) -> dict[str, list[dict]]:
    splits: dict[str, list[dict]] = {name: [] for name in SPLITS}
    held_out = [normalise(h) for h in HELD_OUT]
    seen: dict[str, int] = {}
    split = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.rstrip("\n")
        if line.startswith("## "):
            split = line[3:].strip()
            if split not in splits:
                fail(number, f"unknown split {split!r}, expected one of {SPLITS}")
            continue
        if not line.strip() or line.startswith("#"):
            continue
        if split is None:
            fail(number, "sentence before the first '## train' / '## dev' / '## test' header")
        record = parse_sentence(line, number)
        key = normalise(record["text"])
        if key in seen:
            fail(number, f"duplicate of the sentence on line {seen[key]}")
        seen[key] = number
        for held in held_out:
            if difflib.SequenceMatcher(None, key, held).ratio() >= NEAR_COPY:
                fail(number, f"held-out demo sentence or a near-copy of it: {record['text']!r}")
        splits[split].append(record)
    for name, records in splits.items():
        if not records:
            fail(None, f"split {name!r} is empty")
    return splits


def main() -> None:
    splits = parse(DEMO / "corpus.txt")
    for name, records in splits.items():
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        (DEMO / f"{name}.jsonl").write_text(lines, encoding="utf-8", newline="\n")
        topics = Counter(r["label"] for r in records)
        types = Counter(e["label"] for r in records for e in r["entities"])
        with_entities = sum(bool(r["entities"]) for r in records)
        print(
            f"{name}: {len(records)} sentences, {with_entities / len(records):.0%} with entities; "
            f"topics {dict(sorted(topics.items()))}; entities {dict(sorted(types.items()))}"
        )


if __name__ == "__main__":
    main()
