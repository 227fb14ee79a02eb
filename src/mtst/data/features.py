"""Turning examples into model inputs: sub-word tokenisation and label alignment."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mtst.data.example import Example
from mtst.model.subtokens import NO_WORD

if TYPE_CHECKING:
    from mtst.tasks import Task

logger = logging.getLogger(__name__)


@dataclass
class Features:
    input_ids: list[int]
    # Position of each word's first sub-token, one entry per word; None for a word with no sub-token
    # (cut off by truncation, or made only of characters the tokenizer drops, such as U+FE0F).
    word_starts: list[int | None]
    labels: dict[str, Any]  # per task, the label ids its kind encodes (Task.encode)
    # Per sub-token, the index of its word (NO_WORD for special tokens): sub-token pooling needs it.
    word_ids: list[int] = field(default_factory=list)


def first_subtokens(word_ids: Sequence[int | None], num_words: int) -> list[int | None]:
    """Per word, the position of its first sub-token, or None when the word has none."""
    starts: list[int | None] = [None] * num_words
    for position, word in enumerate(word_ids):
        if word is not None and starts[word] is None:
            starts[word] = position
    return starts


def encode_examples(examples: Sequence[Example], tokenizer, tasks: Sequence[Task], max_length: int) -> list[Features]:
    """Tokenise pre-split words with the fast tokenizer and attach every task's label ids."""
    if not examples:
        return []
    encoded = tokenizer(
        [list(example.words) for example in examples],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
    )
    features, truncated, empty_words = [], 0, 0
    for index, example in enumerate(examples):
        word_ids = encoded.word_ids(index)
        starts = first_subtokens(word_ids, len(example.words))
        last_kept = max((word for word in word_ids if word is not None), default=-1)
        truncated += last_kept < len(example.words) - 1 and len(word_ids) >= max_length
        empty_words += sum(start is None for start in starts[: last_kept + 1])
        labels = {
            task.name: task.encode(example.annotations[task.field], word_ids)
            for task in tasks
            if example.annotations.get(task.field) is not None
        }
        words = [NO_WORD if word is None else word for word in word_ids]
        features.append(Features(encoded["input_ids"][index], starts, labels, words))
    if truncated:
        logger.warning(
            "%d of %d sentences exceed %d sub-tokens and were truncated; their cut-off words get no prediction",
            truncated,
            len(examples),
            max_length,
        )
    if empty_words:
        logger.warning(
            "%d words have no sub-tokens (the tokenizer drops all their characters); they are tagged O", empty_words
        )
    return features
