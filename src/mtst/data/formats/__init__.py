"""The data formats: one module each, declaring its name, suffixes, how it recognises a file and its reader.

`FORMATS` is the one registry: `data.format` / `--format`, format detection, split lookup, `data check
--formats`, the README's table and the error messages all read it. A new format is a module with a `FORMAT`
and one line here. The order is the order splits are looked up in (`train/`, `train.jsonl`, ...) and the
order formats are listed in.
"""

from __future__ import annotations

from pathlib import Path

from mtst.data.example import Example
from mtst.data.formats import conll, csv_rows, doccano, jointbert, jsonl, label_studio, rasa
from mtst.data.formats.base import DataFormat, ReadOptions
from mtst.errors import DataError

FORMATS: dict[str, DataFormat] = {
    module.FORMAT.name: module.FORMAT for module in (jointbert, jsonl, csv_rows, conll, rasa, label_studio, doccano)
}

__all__ = ["FORMATS", "DataFormat", "ReadOptions", "detect_format", "find_split", "read_path", "split_candidates"]


def known_suffixes() -> list[str]:
    """Every suffix a format is chosen for, in lookup order, each once."""
    return list(dict.fromkeys(suffix for fmt in FORMATS.values() for suffix in fmt.suffixes))


def detect_format(path: Path) -> str:
    """The format of a split: the first format that recognises the file by its content, else by its suffix."""
    for fmt in FORMATS.values():
        if fmt.recognises is not None and fmt.recognises(path):
            return fmt.name
    if path.is_dir():
        raise DataError(path, None, "folder has no seq.in, so it is not a JointBERT split")
    suffix = path.suffix.lower()
    for fmt in FORMATS.values():
        if fmt.recognises is None and suffix in fmt.suffixes:
            return fmt.name
    known = ", ".join(sorted(known_suffixes()))
    raise DataError(path, None, f"unknown data format (suffix {path.suffix!r}); known suffixes: {known}")


def read_path(
    path: str | Path, fmt: str = "auto", text_column: str = "text", label_column: str = "label", strict: bool = False
) -> list[Example]:
    """The examples of one split, read with the format named (or detected, with `auto`)."""
    path = Path(path)
    name = detect_format(path) if fmt == "auto" else fmt
    if name not in FORMATS:
        raise DataError(path, None, f"unknown data format {name!r}; choose one of auto, {', '.join(FORMATS)}")
    examples = FORMATS[name].read(path, ReadOptions(text_column, label_column, strict))
    if not examples:  # e.g. a `.json` holding `[]`
        raise DataError(path, None, "no examples")
    return examples


def split_candidates(split: str) -> list[str]:
    return [f"{split}/", *(f"{split}{suffix}" for suffix in known_suffixes())]


def find_split(data_dir: str | Path, split: str) -> Path:
    """The file or folder holding a split: `DIR/split` as given, or with a known suffix."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        problem = "the folder does not exist" if not data_dir.exists() else "this is a file, not a folder"
        raise DataError(data_dir, None, f"no {split!r} split found: {problem}")
    direct = data_dir / split
    if direct.exists():
        return direct
    for suffix in known_suffixes():
        candidate = data_dir / f"{split}{suffix}"
        if candidate.exists():
            return candidate
    others = sorted(data_dir.glob(f"{split}.*"))
    if others:
        detect_format(others[0])  # names the unknown suffix and the known ones
    raise DataError(data_dir, None, f"no {split!r} split found (looked for {', '.join(split_candidates(split))})")
