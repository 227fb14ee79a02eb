"""Data: readers → examples → features → batches."""

from __future__ import annotations

import random
from dataclasses import dataclass

from mtst.config import DataConfig
from mtst.data.example import Example, split_words
from mtst.data.readers import find_split, read_path
from mtst.errors import ConfigError

__all__ = ["Example", "Splits", "load_splits", "split_words"]


@dataclass
class Splits:
    train: list[Example]
    dev: list[Example]
    test: list[Example]


def load_splits(config: DataConfig, max_train_examples: int | None = None, seed: int = 13) -> Splits:
    """Reads train/dev/test; `max_train_examples` keeps a seeded random subset of train."""
    if not config.dir:
        raise ConfigError("no data directory: set data.dir in the config, --data-dir, or MTST_DATA_DIR")

    def read(split: str | None) -> list[Example]:
        if split is None:
            return []
        path = find_split(config.dir, split)
        return read_path(path, config.format, config.text_column, config.label_column, config.strict)

    train = read(config.train)
    if max_train_examples is not None and max_train_examples < len(train):
        train = random.Random(seed).sample(train, max_train_examples)
    return Splits(train, read(config.dev), read(config.test))
