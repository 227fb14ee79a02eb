"""Texts longer than the encoder's window, at prediction time: overlapping windows of whole words.

The token task tags every word from the window where that word sits farthest from an edge (most
context on both sides); the sentence task reads the first window only, and the result says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from mtst.data.example import Example
from mtst.inference.runner import Prediction, decode_order


@dataclass(frozen=True)
class Window:
    example: Example  # a run of the text's words, offsets still into the whole text
    first_word: int


def subtoken_counts(examples: Sequence[Example], tokenizer) -> list[list[int]]:
    """Sub-tokens per word of each example, from one batched call of the fast tokenizer."""
    if not examples:
        return []
    encoded = tokenizer([list(ex.words) for ex in examples], is_split_into_words=True, add_special_tokens=False)
    counts = []
    for index, example in enumerate(examples):
        per_word = [0] * len(example.words)
        for word in encoded.word_ids(index):
            per_word[word] += 1
        counts.append(per_word)
    return counts


def _window_end(counts: Sequence[int], start: int, budget: int) -> int:
    end, used = start, 0
    while end < len(counts) and used + counts[end] <= budget:
        used += counts[end]
        end += 1
    return max(end, start + 1)  # a single word longer than the window still moves on (and is truncated)


def _next_start(counts: Sequence[int], start: int, end: int, overlap: int) -> int:
    back, shared = end, 0
    while back - 1 > start and shared + counts[back - 1] <= overlap:
        shared += counts[back - 1]
        back -= 1
    return back


def split_windows(example: Example, counts: Sequence[int], budget: int, overlap: int) -> list[Window]:
    """Windows of at most `budget` sub-tokens (`counts` per word) that share up to `overlap` sub-tokens."""
    if sum(counts) <= budget:
        return [Window(example, 0)]
    overlap = min(overlap, budget // 2)  # each window must still move forward by half of itself
    windows, start = [], 0
    while True:
        end = _window_end(counts, start, budget)
        piece = replace(example, words=example.words[start:end], offsets=example.offsets[start:end])
        windows.append(Window(piece, start))
        if end >= len(counts):
            return windows
        start = _next_start(counts, start, end, overlap)


def windows_of(examples: Sequence[Example], tokenizer, max_length: int, overlap: int) -> list[list[Window]]:
    budget = max_length - tokenizer.num_special_tokens_to_add()  # room left by [CLS] and [SEP]
    counts = subtoken_counts(examples, tokenizer)
    return [split_windows(ex, c, budget, overlap) for ex, c in zip(examples, counts, strict=True)]


def merge_windows(tasks: dict, windows: Sequence[Window], predictions: Sequence[Prediction]) -> Prediction:
    """One prediction for the whole text from its windows' predictions, each task merged by its kind."""
    merged: Prediction = {}
    for name in decode_order(tasks):
        merged[name] = tasks[name].merge_windows(windows, [p[name] for p in predictions], merged)
    return {name: merged[name] for name in tasks}
