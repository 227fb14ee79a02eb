"""Long texts at prediction time: overlapping windows find entities past the encoder's window."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from transformers import BertConfig

from mtst.data.example import Example
from mtst.inference.predictor import Predictor
from mtst.inference.windows import Window, merge_windows, split_windows
from mtst.model.multitask import EncoderInfo, MultiTaskModel
from mtst.tasks import make_task
from mtst.tasks.sentence import SentencePrediction
from mtst.tasks.token import TokenPrediction


@pytest.mark.parametrize("counts", [[1] * 100, [1, 3, 2, 1, 4, 1, 1, 2, 5, 1] * 7, [2] * 13])
def test_windows_cover_every_word_within_the_budget(counts):
    example = Example.from_words([f"w{i}" for i in range(len(counts))])
    windows = split_windows(example, counts, budget=10, overlap=3)
    assert len(windows) > 1
    assert windows[0].first_word == 0
    assert windows[-1].first_word + len(windows[-1].example.words) == len(counts)
    for window, following in zip(windows, windows[1:], strict=False):
        end = window.first_word + len(window.example.words)
        assert window.first_word < following.first_word <= end  # moves on, leaves no gap
        assert sum(counts[window.first_word : end]) <= 10
        assert window.example.offsets == example.offsets[window.first_word : end]


def test_a_text_within_the_window_is_one_window():
    example = Example.from_words(["a", "b", "c"])
    assert split_windows(example, [1, 1, 1], budget=10, overlap=3) == [Window(example, 0)]


def test_a_word_longer_than_the_window_still_moves_on():
    example = Example.from_words(["a", "huge", "b"])
    windows = split_windows(example, [1, 50, 1], budget=10, overlap=3)
    assert [w.first_word for w in windows] == [0, 1, 2]


def test_merge_takes_each_word_from_its_most_central_window():
    tasks = {
        "slots": make_task("slots", "token", "tags", ("O", "B-x", "B-y")),
        "intent": make_task("intent", "sentence", "label", ("A", "B")),
    }
    words = Example.from_words([f"w{i}" for i in range(6)])
    first = Window(Example.from_words(["w0", "w1", "w2", "w3"]), 0)
    second = Window(Example.from_words(["w2", "w3", "w4", "w5"]), 2)
    predictions = [
        {"intent": SentencePrediction("A", 0.9), "slots": TokenPrediction(["O", "O", "B-x", "O"], [1, 1, 1, 1])},
        {"intent": SentencePrediction("B", 0.8), "slots": TokenPrediction(["O", "B-y", "O", "O"], [2, 2, 2, 2])},
    ]
    merged = merge_windows(tasks, [first, second], predictions)
    assert len(words.words) == len(merged["slots"].tags)
    # w2 sits at margin 1 in the first window and 0 in the second; w3 at margin 0 and 1.
    assert merged["slots"].tags == ["O", "O", "B-x", "B-y", "O", "O"]
    assert merged["intent"].label == "A"


class KeywordEncoder(nn.Module):
    """A stand-in encoder whose answer is known: dimension 0 is 1.0 exactly at the keyword's sub-token."""

    def __init__(self, keyword_id: int):
        super().__init__()
        self.config = BertConfig(hidden_size=4, max_position_embeddings=32)
        self.keyword_id = keyword_id
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask):
        hidden = torch.zeros(*input_ids.shape, self.config.hidden_size)
        hidden[..., 0] = (input_ids == self.keyword_id).float()
        return SimpleNamespace(last_hidden_state=hidden)


def keyword_tagger(tokenizer, keyword: str = "paris") -> MultiTaskModel:
    """Tags the keyword ("paris") B-city and every other word O, wherever it stands."""
    keyword = tokenizer.convert_tokens_to_ids(keyword)
    tasks = [make_task("intent", "sentence", "label", ("other",)), make_task("slots", "token", "tags", ("O", "B-city"))]
    model = MultiTaskModel(KeywordEncoder(keyword), tokenizer, tasks, EncoderInfo(max_length=32))
    with torch.no_grad():
        head = model.heads["slots"].classifier
        head.weight.zero_()
        head.weight[1, 0] = 10.0
        head.bias.copy_(torch.tensor([1.0, 0.0]))
    return model.eval()


def test_entities_past_the_first_window_are_found(tiny_model):
    predictor = Predictor(keyword_tagger(tiny_model.tokenizer), window_overlap=8)
    text = "we went " * 100 + "to Paris at last"
    [result] = predictor.predict([text])
    assert [(e["text"], e["label"]) for e in result["entities"]] == [("Paris", "city")]
    entity = result["entities"][0]
    assert text[entity["start"] : entity["end"]] == "Paris" and entity["start"] == text.index("Paris")
    assert result["windows"]["count"] > 6 and result["windows"]["sentence_label_from"] == "first window"


def test_short_texts_are_not_windowed(tiny_model):
    [result] = Predictor(keyword_tagger(tiny_model.tokenizer)).predict(["weather in paris"])
    assert "windows" not in result
    assert [(e["text"], e["label"]) for e in result["entities"]] == [("paris", "city")]


def test_windowed_offsets_slice_the_original_text(tiny_model):
    text = "play the song yesterday by the beatles in paris " * 3
    whole = Predictor(tiny_model).predict([text])[0]
    assert "windows" not in whole  # 27 words fit the tiny model's 64 sub-tokens
    tiny_model.max_length = 16
    windowed = Predictor(tiny_model, window_overlap=4).predict([text])[0]
    tiny_model.max_length = 64
    assert windowed["windows"]["count"] > 1
    for entity in windowed["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]


def test_cjk_text_is_read_per_character_like_bert_so_an_entity_inside_a_run_is_found(tiny_model):
    predictor = Predictor(keyword_tagger(tiny_model.tokenizer, "北"), window_overlap=8)
    text = "我想从北京飞往上海的航班"
    [result] = predictor.predict([text])
    assert [(e["text"], e["start"], e["end"]) for e in result["entities"]] == [("北", 3, 4)]


def test_a_long_cjk_text_is_windowed(tiny_model):
    predictor = Predictor(keyword_tagger(tiny_model.tokenizer, "北"), window_overlap=8)
    text = "我想从上海飞往南京的航班" * 160 + "北"  # 1,921 characters, no space
    [result] = predictor.predict([text])
    assert result["windows"]["count"] > 60
    assert [(e["start"], e["end"]) for e in result["entities"]] == [(len(text) - 1, len(text))]
