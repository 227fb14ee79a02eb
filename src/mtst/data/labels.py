"""Label ids shared by every task kind, and the tag map that conditioned decoding reads from train."""

from __future__ import annotations

from collections.abc import Sequence

from mtst.data.example import Example

# Padding, special and continuation positions, and labels never seen in train, carry this id:
# the loss skips them, and metrics compare label strings, so an unseen gold label is always wrong.
IGNORE_ID = -100


def tags_by_sentence_label(train: Sequence[Example], label_field: str, tag_field: str) -> dict[str, tuple[str, ...]]:
    """For each sentence label, the token tags of the entity types seen with it in train (always `O`)."""
    kinds: dict[str, set[str]] = {}
    all_tags: set[str] = set()
    for example in train:
        label, tags = example.annotations.get(label_field), example.annotations.get(tag_field)
        if label is None or tags is None:
            continue
        all_tags.update(tags)
        kinds.setdefault(label, set()).update(_entity_type(tag) for tag in tags if tag != "O")
    return {
        label: tuple(sorted(tag for tag in all_tags if tag == "O" or _entity_type(tag) in types))
        for label, types in sorted(kinds.items())
    }


def _entity_type(tag: str) -> str:
    """`city` for `B-city` and `I-city`; a tag without a BIO prefix is its own type."""
    return tag[2:] if tag[:2] in ("B-", "I-") else tag


def align_tags(word_ids: Sequence[int | None], tag_ids: Sequence[int]) -> list[int]:
    """Per sub-token label ids: a word's first sub-token carries its tag, every other position is ignored."""
    aligned, previous = [], None
    for word in word_ids:
        aligned.append(IGNORE_ID if word is None or word == previous else tag_ids[word])
        previous = word
    return aligned
