"""What a data format declares to the registry: its name, suffixes, how it recognises a file, its reader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mtst.data.example import Example


@dataclass(frozen=True)
class ReadOptions:
    """The data settings a reader may need; each format reads the ones it has a use for."""

    text_column: str = "text"
    label_column: str = "label"
    strict: bool = False


@dataclass(frozen=True)
class DataFormat:
    """One format: `data.format` / `--format` name it, `data check --formats` and the README list it."""

    name: str
    suffixes: tuple[str, ...]  # the file suffixes it is chosen for; a folder format has none
    reads: str  # one line: what it reads, for `data check --formats`
    read: Callable[[Path, ReadOptions], list[Example]]
    # For a format that shares its suffixes with another one (or reads a folder): whether this file is one.
    # Formats without it are chosen by suffix alone.
    recognises: Callable[[Path], bool] | None = None
