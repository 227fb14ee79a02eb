import logging

from transformers import AutoTokenizer

from mtst.data.example import Example
from mtst.data.features import encode_examples, first_subtokens
from mtst.data.labels import IGNORE_ID, align_tags
from mtst.tasks import build_labels, make_task, task_config


def test_align_tags_labels_first_subtoken_only():
    # [CLS] play(0) beat(1) ##les(1) [SEP]
    word_ids = [None, 0, 1, 1, None]
    assert align_tags(word_ids, [5, 7]) == [IGNORE_ID, 5, 7, IGNORE_ID, IGNORE_ID]
    assert first_subtokens(word_ids, 2) == [1, 2]


def test_encode_examples_with_real_tokenizer(tiny_encoder_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    slots = make_task(
        "slots",
        "token",
        "tags",
        (
            "O",
            "B-artist",
        ),
    )
    intent = make_task("intent", "sentence", "label", ("PlayMusic",))
    example = Example.from_words(["play", "westbam"], {"tags": ("O", "B-artist"), "label": "PlayMusic"})
    [features] = encode_examples([example], tokenizer, [slots, intent], max_length=32)
    tokens = tokenizer.convert_ids_to_tokens(features.input_ids)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and len(tokens) > 4  # westbam splits
    assert features.word_starts == [1, 2]
    expected = [IGNORE_ID, 0, 1] + [IGNORE_ID] * (len(tokens) - 3)
    assert features.labels == {"slots": expected, "intent": 0}


def test_unseen_labels_map_to_ignore(tiny_encoder_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    slots = make_task("slots", "token", "tags", ("O",))
    intent = make_task("intent", "sentence", "label", ("A",))
    example = Example.from_words(["hi", "bob"], {"tags": ("O", "B-new"), "label": "unseen"})
    [features] = encode_examples([example], tokenizer, [slots, intent], max_length=16)
    assert features.labels["intent"] == IGNORE_ID
    assert features.labels["slots"][1:3] == [0, IGNORE_ID]


def test_truncation_is_counted_in_a_warning(tiny_encoder_dir, caplog):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    long = Example.from_words(["word"] * 40, {"tags": ("O",) * 40})
    short = Example.from_words(["word"], {"tags": ("O",)})
    slots = make_task("slots", "token", "tags", ("O",))
    with caplog.at_level(logging.WARNING):
        features = encode_examples([long, short, long], tokenizer, [slots], max_length=10)
    assert "2 of 3 sentences exceed 10 sub-tokens" in caplog.text
    assert len(features[0].input_ids) == 10 and len(features[0].word_starts) == 40
    assert features[0].word_starts[:8] == list(range(1, 9)) and set(features[0].word_starts[8:]) == {None}


def test_a_word_without_subtokens_does_not_shift_later_words(tiny_encoder_dir, caplog):
    # U+FE0F (emoji variation selector) is dropped by the tokenizer: the word has no sub-token at all.
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    example = Example.from_words(["I", "\ufe0f", "Paris"], {"tags": ("O", "O", "B-LOC")})
    slots = make_task(
        "slots",
        "token",
        "tags",
        (
            "O",
            "B-LOC",
        ),
    )
    with caplog.at_level(logging.WARNING):
        [features] = encode_examples([example], tokenizer, [slots], max_length=16)
    assert features.word_starts == [1, None, 2]
    assert features.labels["slots"] == [IGNORE_ID, 0, 1, IGNORE_ID]
    assert "1 words have no sub-tokens" in caplog.text and "truncated" not in caplog.text


def test_build_labels_puts_o_first():
    train = [Example.from_words(["a", "b"], {"tags": ("B-x", "O"), "label": "q"})]
    assert build_labels(task_config(name="s", type="token"), train) == ["O", "B-x"]
    assert build_labels(task_config(name="i", type="sentence"), train) == ["q"]
