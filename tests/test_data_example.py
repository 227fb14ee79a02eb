"""The word splitter every raw text goes through (readers' `text` records, training, predict): a combining
mark stays with its base character, so decomposed (NFD) text splits into the same words as composed text."""

import json
import unicodedata

import pytest

from mtst.data.example import Example, split_words
from mtst.data.formats import read_path
from mtst.errors import DataError
from mtst.tasks.spans import entities
from mtst.tasks.token import TokenPrediction

NFD = "Rene\u0301 Mu\u0308ller flew to Zu\u0308rich"


def words(text: str) -> list[str]:
    return [word for word, _, _ in split_words(text)]


def test_decomposed_text_splits_into_the_words_of_composed_text():
    assert words(NFD) == ["Rene\u0301", "Mu\u0308ller", "flew", "to", "Zu\u0308rich"]
    assert [unicodedata.normalize("NFC", w) for w in words(NFD)] == words(unicodedata.normalize("NFC", NFD))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("नमस्ते दुनिया", ["नमस्ते", "दुनिया"]),  # Devanagari: virama and vowel signs are marks
        ("a\u20dd b", ["a\u20dd", "b"]),  # an enclosing mark
        ("x.\u0301 y", ["x", ".\u0301", "y"]),  # a mark on punctuation stays with it
        ("\u0301a", ["\u0301a"]),  # a mark with no base before it starts the word
        ("ที่นี่", ["ที่", "นี่"]),  # Thai: one character with its marks per word, as before
        ("東京へ", ["東", "京", "へ"]),
    ],
)
def test_marks_stay_with_their_base_character(text, expected):
    assert words(text) == expected
    assert "".join(expected) == "".join(text.split())


def test_a_span_ending_inside_a_devanagari_word_is_refused(tmp_path):
    path = tmp_path / "train.jsonl"
    record = {"text": "नमस्ते दुनिया", "label": "greet", "entities": [{"start": 0, "end": 3, "label": "x"}]}
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="train.jsonl:1: .*ends inside the word 'नमस्ते'"):
        read_path(path)


def test_predicted_entities_on_decomposed_text_cover_whole_words():
    example = Example.from_text(NFD)
    tags = ["B-person", "I-person", "O", "O", "B-city"]
    found = entities(example, TokenPrediction(tags, [1.0] * len(tags)))
    assert [(e["text"], e["label"]) for e in found] == [("Rene\u0301 Mu\u0308ller", "person"), ("Zu\u0308rich", "city")]
