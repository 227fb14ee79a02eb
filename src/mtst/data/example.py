"""The one example type every reader produces, and the word splitter for raw text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# BERT's basic tokenizer splits on whitespace and punctuation; splitting raw text the same way keeps
# every word a whole number of sub-tokens, so a character span maps onto whole words.
_WORD = re.compile(r"\w+|[^\w\s]")

Annotation = str | tuple[str, ...] | frozenset[str]


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words of `text` with their character offsets: [(word, start, end), ...]."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


@dataclass(frozen=True)
class Example:
    """A sentence as words, with annotations keyed by field name.

    A sentence label is a `str` (field `label` by default); token tags are a tuple with one BIO tag
    per word (field `tags` by default); a set of labels is a frozenset (field `labels`). `offsets` locate
    each word in `text`.
    """

    words: tuple[str, ...]
    text: str
    offsets: tuple[tuple[int, int], ...]
    annotations: dict[str, Annotation] = field(default_factory=dict)
    origin: str = ""

    @classmethod
    def from_words(cls, words, annotations=None, origin: str = "") -> Example:
        offsets, position = [], 0
        for word in words:
            offsets.append((position, position + len(word)))
            position += len(word) + 1
        return cls(tuple(words), " ".join(words), tuple(offsets), dict(annotations or {}), origin)

    @classmethod
    def from_text(cls, text: str, annotations=None, origin: str = "") -> Example:
        spans = [match.span() for match in _WORD.finditer(text)]  # one pass: readers call this per CSV row
        return cls(tuple([text[s:e] for s, e in spans]), text, tuple(spans), dict(annotations or {}), origin)

    def has_entities(self, field_name: str = "tags") -> bool:
        tags = self.annotations.get(field_name)
        return bool(tags) and any(tag != "O" for tag in tags)
