"""The one example type every reader produces, and the word splitter for raw text."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# CJK ideographs, the ranges of BERT's BasicTokenizer._is_chinese_char: BERT makes each one a word.
_CJK = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F)]
_CJK += [(0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
# Other scripts written without spaces between words: Hiragana, Katakana (and its extensions and halfwidth
# forms), Thai, Lao, Myanmar, Khmer. Without a word boundary to find, each character is a word too.
_NO_SPACE = [(0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F), (0x0E00, 0x0EFF), (0x1000, 0x109F)]
_NO_SPACE += [(0x1780, 0x17FF)]


def _char_class(ranges, keep=lambda char: True) -> str:
    """The inside of a regex character class holding the kept characters of `ranges`, as runs `a-z`."""
    codes = [code for low, high in ranges for code in range(low, high + 1) if keep(chr(code))]
    runs: list[list[int]] = []
    for code in codes:
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(re.escape(chr(low)) + (f"-{re.escape(chr(high))}" if high > low else "") for low, high in runs)


def _is_mark(char: str) -> bool:
    return unicodedata.category(char) in ("Mn", "Mc", "Me")


# Every combining mark is in these blocks (up to Adlam's, and the variation selectors supplement).
_MARK_BLOCKS = [(0x0300, 0x1FFFF), (0xE0100, 0xE01EF)]
_SINGLE = _char_class(_CJK) + _char_class(_NO_SPACE, lambda char: not _is_mark(char))
_MARKS = _char_class(_MARK_BLOCKS, _is_mark)
# BERT's basic tokenizer splits on whitespace and punctuation and around each CJK ideograph; splitting raw
# text the same way (and per character in the other scripts without spaces) keeps every word a whole number
# of sub-tokens, so a character span maps onto whole words. A combining mark is neither punctuation nor a
# letter to BERT: it stays with the character before it (a grapheme cluster), so decomposed (NFD) text such
# as "Rene\u0301" is one word, as its composed form is.
_WORD = re.compile(
    f"[{_SINGLE}][{_MARKS}]*"  # an ideograph, or a character of a script without spaces, with its marks
    f"|[{_MARKS}]*(?:[^\\W{_SINGLE}{_MARKS}][{_MARKS}]*)+"  # a run of letters and digits with their marks
    f"|[^\\w\\s{_MARKS}][{_MARKS}]*"  # a punctuation mark or symbol, alone
    f"|[{_MARKS}]+"  # marks with nothing to combine with
)

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
