"""Label vocabularies, built from the train split only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mtst.config import TaskConfig
from mtst.data.example import Example
from mtst.errors import DataError

# Padding, special and continuation positions, and labels never seen in train, carry this id:
# the loss skips them, and metrics compare label strings, so an unseen gold label is always wrong.
IGNORE_ID = -100


def build_labels(task: TaskConfig, train: Sequence[Example]) -> list[str]:
    """The task's label list (index = id); for token tasks `O` comes first."""
    counts: Counter[str] = Counter()
    for example in train:
        value = example.annotations.get(task.annotation)
        if value is None:
            continue
        counts.update(value if task.type == "token" else [value])
    if not counts:
        raise DataError(
            train[0].origin.rsplit(":", 1)[0] if train else "train",
            None,
            f"task {task.name!r} found no `{task.annotation}` annotation in the train split",
        )
    labels = sorted(counts)
    if task.type == "token":
        labels = ["O"] + [label for label in labels if label != "O"]
    return labels
