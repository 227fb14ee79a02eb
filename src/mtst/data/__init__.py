"""Data: readers → examples → features → batches."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mtst.data.example import Example, split_words
from mtst.data.formats import find_split, read_path
from mtst.data.settings import DataConfig
from mtst.errors import ConfigError, DataError

if TYPE_CHECKING:
    from mtst.config import Config

__all__ = [
    "Corpus",
    "Example",
    "Splits",
    "as_corpora",
    "check_annotations",
    "check_corpora",
    "corpus_data",
    "load_corpora",
    "load_splits",
    "read_split",
    "split_words",
]


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
        return read_split(config, split) if split is not None else []

    train, dev, test = read(config.train), read(config.dev), read(config.test)
    if not test and config.test_from_train:
        # A generator of its own, so that dev_from_train alone draws exactly as before test_from_train existed.
        train, test = hold_out(train, config.test_from_train, random.Random(f"test-{seed}"))
    if not dev and config.dev_from_train:
        train, dev = hold_out(train, config.dev_from_train, random.Random(seed))
    if max_train_examples is not None and max_train_examples < len(train):
        train = random.Random(seed).sample(train, max_train_examples)
    return Splits(train, dev, test)


def hold_out(examples: list[Example], fraction: float, rng: random.Random) -> tuple[list[Example], list[Example]]:
    """(kept, held out): a seeded random `fraction` of the examples held out, both in file order."""
    held = set(rng.sample(range(len(examples)), round(fraction * len(examples))))
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]


def read_split(config: DataConfig, split: str) -> list[Example]:
    """One split of the dataset in `config.dir`, read with the config's format and columns, labels named."""
    path = find_split(config.dir, split)
    examples = read_path(path, config.format, config.text_column, config.label_column, config.strict)
    return name_labels(examples, config.label_names) if config.label_names else examples


def _origin(example: Example) -> tuple[str, int | None]:
    path, _, line = example.origin.rpartition(":")
    return (path, int(line)) if path and line.isdigit() else (example.origin, None)


def check_annotations(examples: Sequence[Example], tasks: Iterable, split: str) -> None:
    """Each task's field is in the split and of the form its kind reads (one label per sentence, a tag per
    word, a set of labels; `Task.annotation_problem`). Read otherwise, a token task would learn a label's
    characters as tags and a split without the field would be scored on the other tasks alone."""
    for task in tasks:
        held = [example for example in examples if task.annotation in example.annotations]
        if examples and not held:
            problem = f"no example of the {split} split holds `{task.annotation}`, which task {task.name!r} reads"
            raise DataError(_origin(examples[0])[0], None, problem)
        for example in held:
            problem = task.annotation_problem(example.annotations[task.annotation])
            if problem is not None:
                raise DataError(*_origin(example), problem)


def check_corpora(tasks: Iterable, corpora: Sequence[Corpus]) -> None:
    """Each task's field is in every split of its corpus, in the form its kind reads (before any training)."""
    for corpus in corpora:
        tasks_here = [task for task in tasks if task.name in corpus.tasks]
        for split in ("train", "dev", "test"):
            check_annotations(getattr(corpus.splits, split), tasks_here, split)


def name_labels(examples: list[Example], names: dict[str, str]) -> list[Example]:
    """Sentence labels (string annotations) replaced by their names; a label without one is an error."""
    named = []
    for example in examples:
        annotations = dict(example.annotations)
        for field, value in annotations.items():
            if isinstance(value, str):
                if value not in names:
                    known = ", ".join(sorted(names))
                    problem = f"label {value!r} has no name in data.label_names (names given for {known})"
                    raise DataError(*_origin(example), problem)
                annotations[field] = names[value]
        named.append(replace(example, annotations=annotations))
    return named


@dataclass
class Corpus:
    """One dataset and the tasks labelled in it; a single-corpus run has one, holding every task."""

    tasks: list[str]
    splits: Splits

    @property
    def name(self) -> str:
        return "+".join(self.tasks)


def corpus_data(config: Config) -> list[tuple[list[str], DataConfig]]:
    """Tasks grouped by dataset: a task's own `data`, else the top-level `data`, in task order."""
    groups: list[tuple[list[str], DataConfig]] = []
    for task in config.tasks:
        data = task.data or config.data
        for names, existing in groups:
            if existing == data:
                names.append(task.name)
                break
        else:
            groups.append(([task.name], data))
    return groups


def as_corpora(config: Config, data: Splits | list[Corpus]) -> list[Corpus]:
    """Splits given for a single-corpus run are one corpus holding every task."""
    return [Corpus([task.name for task in config.tasks], data)] if isinstance(data, Splits) else data


def load_corpora(config: Config) -> list[Corpus]:
    """Every corpus's splits; `train.max_train_examples` applies to each corpus."""
    cfg = config.train
    return [Corpus(names, load_splits(data, cfg.max_train_examples, cfg.seed)) for names, data in corpus_data(config)]
