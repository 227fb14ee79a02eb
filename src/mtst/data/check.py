"""`mtst data check`: read every split of a dataset and describe it.

The statistics are pure functions of the examples returning plain dicts (the `--json` output); `render`
turns such a report into aligned text. Reading errors propagate as `DataError`; repairs become warnings.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from mtst.data.example import Example
from mtst.data.formats import FORMATS, detect_format, find_split, read_path
from mtst.errors import DataError

SPLITS = ("train", "dev", "test")
PERCENTILES = (50, 90, 99)
TOP = 10


def locate_splits(path: Path) -> dict[str, Path]:
    """Split name → file or folder. PATH is a dataset folder (train required), a JointBERT split, or one file."""
    if not path.exists():
        raise DataError(path, None, "not found")
    if path.is_file() or (path / "seq.in").exists():
        return {path.stem if path.is_file() else path.name: path}
    splits = {"train": find_split(path, "train")}
    for name in SPLITS[1:]:
        if (path / name).exists() or any(path.glob(f"{name}.*")):
            splits[name] = find_split(path, name)
    return splits


@contextmanager
def collected_warnings() -> Iterator[list[str]]:
    """The warnings the readers log (logger `mtst.data`) while inside, kept instead of printed."""
    logger, messages = logging.getLogger("mtst.data"), []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def check_dataset(
    path: str | Path, fmt: str = "auto", text_column: str = "text", label_column: str = "label", strict: bool = False
) -> dict:
    """Reads every split under `path` and returns its statistics, the labels unseen in train, and warnings."""
    splits = locate_splits(Path(path))
    examples, formats = {}, {}
    with collected_warnings() as warnings:
        for name, split_path in splits.items():
            formats[name] = detect_format(split_path) if fmt == "auto" else fmt
            examples[name] = read_path(split_path, formats[name], text_column, label_column, strict)
    stats = {name: split_stats(split) for name, split in examples.items()}
    return {
        "path": str(path),
        "formats": formats,
        "splits": stats,
        "unseen_in_train": unseen_in_train(stats),
        "warnings": warnings,
    }


def percentiles(values: Sequence[int]) -> dict[str, int]:
    """Nearest-rank percentiles p50/p90/p99 and the maximum."""
    ordered = sorted(values)
    if not ordered:
        return {}
    ranks = {f"p{q}": ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] for q in PERCENTILES}
    return {**ranks, "max": ordered[-1]}


def label_stats(values: Sequence[str]) -> dict:
    counts = Counter(values)
    return {"labelled": len(values), "distinct": len(counts), "counts": dict(counts.most_common())}


def entity_stats(tag_sequences: Sequence[Sequence[str]]) -> dict:
    """Entities per type (readers repair tags to IOB2, so each entity starts with exactly one B-)."""
    types: Counter[str] = Counter()
    bearing = 0
    for tags in tag_sequences:
        opened = [tag[2:] for tag in tags if tag.startswith("B-")]
        types.update(opened)
        bearing += bool(opened)
    return {
        "sentences": len(tag_sequences),
        "entity_bearing": bearing,
        "entity_bearing_share": bearing / len(tag_sequences) if tag_sequences else 0.0,
        "entities": sum(types.values()),
        "types": dict(types.most_common()),
    }


def split_stats(examples: Sequence[Example]) -> dict:
    """Examples, sentence lengths in words, and per annotation field its labels or its entity types."""
    fields: dict[str, list] = {}
    for example in examples:
        for name, value in example.annotations.items():
            fields.setdefault(name, []).append(value)
    return {
        "examples": len(examples),
        "words": percentiles([len(example.words) for example in examples]),
        "labels": {
            name: label_stats(_labels(values)) for name, values in fields.items() if not isinstance(values[0], tuple)
        },
        "entities": {name: entity_stats(values) for name, values in fields.items() if isinstance(values[0], tuple)},
        # A partly labelled corpus: how many examples leave each field unknown (null or left out).
        "unlabelled": {name: len(examples) - len(values) for name, values in fields.items()},
    }


def _labels(values: Sequence[str | frozenset[str]]) -> list[str]:
    """Sentence labels as they are; label sets (`"labels": [...]`) counted label by label."""
    return [label for value in values for label in ([value] if isinstance(value, str) else sorted(value))]


def unseen_in_train(stats: dict[str, dict]) -> dict[str, dict[str, list[str]]]:
    """Per other split and field, the labels and entity types that train never shows."""
    if "train" not in stats:
        return {}
    train = stats["train"]
    unseen: dict[str, dict[str, list[str]]] = {}
    for name, split in stats.items():
        if name == "train":
            continue
        for kind, key in (("labels", "counts"), ("entities", "types")):
            for field, values in split[kind].items():
                known = train[kind].get(field, {}).get(key, {})
                missing = sorted(set(values[key]) - set(known))
                if missing:
                    unseen.setdefault(name, {})[field] = missing
    return unseen


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Aligned text: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append(indent + "  ".join(cells).rstrip())
    return lines


def _distribution(field: str, what: str, per_split: dict[str, dict], key: str, total_key: str) -> list[str]:
    totals: Counter[str] = Counter()
    for stats in per_split.values():
        totals.update(stats[key])
    names = list(per_split)
    rows = [["", *names]]
    for value, _ in totals.most_common(TOP):
        row = [value]
        for stats in per_split.values():
            count, total = stats[key].get(value, 0), stats[total_key]
            row.append(f"{count} ({100 * count / total:.1f}%)" if count else "-")
        rows.append(row)
    more = f"; top {TOP} shown" if len(totals) > TOP else ""
    return [f"{field}: {len(totals)} {what} in all splits{more}", *_table(rows)]


def render(report: dict) -> list[str]:
    """The report as aligned text lines."""
    splits = report["splits"]
    formats = ", ".join(sorted(set(report["formats"].values())))
    lines = [f"{report['path']} ({formats})", ""]
    rows = [["split", "examples", "words p50", "p90", "p99", "max"]]
    for name, stats in splits.items():
        words = stats["words"]
        rows.append([name, str(stats["examples"]), *(str(words[k]) for k in ("p50", "p90", "p99", "max"))])
    lines += _table(rows, indent="")
    fields = {field for stats in splits.values() for field in stats["labels"]}
    for field in sorted(fields):
        per_split = {name: stats["labels"][field] for name, stats in splits.items() if field in stats["labels"]}
        lines += ["", *_distribution(field, "labels", per_split, "counts", "labelled")]
    fields = {field for stats in splits.values() for field in stats["entities"]}
    for field in sorted(fields):
        per_split = {name: stats["entities"][field] for name, stats in splits.items() if field in stats["entities"]}
        bearing = ", ".join(f"{name} {100 * s['entity_bearing_share']:.1f}%" for name, s in per_split.items())
        lines += ["", f"{field}: sentences with an entity: {bearing}"]
        lines += _distribution(field, "entity types", per_split, "types", "entities")
    partly = {name: {f: n for f, n in stats.get("unlabelled", {}).items() if n} for name, stats in splits.items()}
    if any(partly.values()):
        lines += [
            "",
            "partly labelled (examples whose annotation is unknown: skipped by that task's loss and metrics):",
        ]
        lines += [
            f"  {name} {field}: {n} of {splits[name]['examples']}"
            for name, f in partly.items()
            for field, n in f.items()
        ]
    if report["unseen_in_train"]:
        lines += ["", "not in train:"]
        for name, fields in report["unseen_in_train"].items():
            for field, values in fields.items():
                what = "entity types" if field in splits[name]["entities"] else "labels"
                shown = ", ".join(values[:TOP]) + (f" (+{len(values) - TOP} more)" if len(values) > TOP else "")
                lines.append(f"  {name} {field} ({len(values)} {what}): {shown}")
    lines += ["", f"warnings: {len(report['warnings'])}", *(f"  {w}" for w in report["warnings"])]
    return lines


def format_rows() -> list[dict]:
    """The registry of data formats as plain dicts: name, suffixes, what it reads (`data check --formats`)."""
    return [{"name": f.name, "suffixes": list(f.suffixes), "reads": f.reads} for f in FORMATS.values()]


def render_formats() -> list[str]:
    rows = [["format", "suffixes", "reads"]]
    rows += [[row["name"], " ".join(row["suffixes"]) or "(folder)", row["reads"]] for row in format_rows()]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return [f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}" for row in rows]
