"""Prediction on raw text: labels with scores, entities as character spans into the original text."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from pathlib import Path

import torch

from mtst.data.example import Example
from mtst.errors import MtstError
from mtst.inference import Prediction, SentencePrediction, TokenPrediction, run_model
from mtst.model import MultiTaskModel
from mtst.windows import merge_windows, windows_of


def tag_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(first word, last word, type) for each entity; an I- tag that opens an entity starts one, as conlleval does."""
    spans: list[tuple[int, int, str]] = []
    for index, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        continues = prefix == "I" and spans and spans[-1][1] == index - 1 and spans[-1][2] == kind
        if continues:
            spans[-1] = (spans[-1][0], index, kind)
        elif prefix in ("B", "I") and kind:
            spans.append((index, index, kind))
    return spans


def entities(example: Example, tokens: TokenPrediction) -> list[dict]:
    found = []
    for first, last, kind in tag_spans(tokens.tags):
        start, end = example.offsets[first][0], example.offsets[last][1]
        score = sum(tokens.scores[first : last + 1]) / (last - first + 1)
        found.append(
            {"text": example.text[start:end], "label": kind, "start": start, "end": end, "score": round(score, 4)}
        )
    return found


def to_json(model, example: Example, prediction: Prediction) -> dict:
    """One sentence's result; the first sentence task fills `label`/`score`, the first token task `entities`."""
    result: dict = {"text": example.text}
    sentence_tasks = [n for n, t in model.tasks.items() if t.type == "sentence"]
    token_tasks = [n for n, t in model.tasks.items() if t.type == "token"]
    for position, name in enumerate(sentence_tasks):
        outcome: SentencePrediction = prediction[name]
        if position == 0:
            result["label"], result["score"] = outcome.label, round(outcome.score, 4)
        else:
            result[name] = {"label": outcome.label, "score": round(outcome.score, 4)}
    for position, name in enumerate(token_tasks):
        found = entities(example, prediction[name])
        if position == 0:
            result["entities"] = found
        else:
            result[name] = found
    return result


BACKENDS = ("torch", "onnx")


class Predictor:
    """Loads a checkpoint once and predicts raw sentences of any length.

    A text longer than the model's window (`max_length` sub-tokens) is read in windows that overlap by
    `window_overlap` sub-tokens: every word gets a tag, and the sentence label comes from the first window.
    """

    def __init__(self, model, batch_size: int = 64, window_overlap: int = 32):
        self.model = model  # a MultiTaskModel or an mtst.onnx_backend.OnnxModel; run_model takes either
        self.batch_size = batch_size
        self.window_overlap = window_overlap
        # A fast tokenizer changes its own truncation settings per call and raises "Already borrowed" when two
        # threads do so at once: counting (in a server's request threads) uses its own copy, one call at a time.
        self._counting_tokenizer = copy.deepcopy(model.tokenizer)
        self._counting = threading.Lock()

    def count_subtokens(self, texts: Sequence[str]) -> int:
        """The sub-tokens the texts hold (without special tokens): the work predicting them costs."""
        words = [list(Example.from_text(text).words) for text in texts]
        with self._counting:
            encoded = self._counting_tokenizer(words, is_split_into_words=True, add_special_tokens=False)
        return sum(len(ids) for ids in encoded["input_ids"])

    @classmethod
    def from_checkpoint(
        cls,
        directory: str | Path,
        device: str | None = None,
        batch_size: int = 64,
        backend: str = "torch",
        quantized: bool = False,
    ) -> Predictor:
        """`backend="torch"` loads model.safetensors on `device` (default: CUDA when available);
        `backend="onnx"` runs model.onnx from `mtst export` on CPU with onnxruntime, or model.int8.onnx
        with `quantized=True`."""
        if backend not in BACKENDS:
            raise MtstError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend == "onnx":
            if device not in (None, "cpu"):
                raise MtstError(f"the onnx backend runs on CPU only, not {device!r}")
            from mtst.onnx_backend import OnnxModel

            return cls(OnnxModel.from_checkpoint(directory, quantized), batch_size)
        if quantized:
            raise MtstError("a quantized model needs the onnx backend (made by `mtst export --quantize int8`)")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(MultiTaskModel.from_pretrained(directory, device=device), batch_size)

    def predict(self, texts: Sequence[str]) -> list[dict]:
        examples = [Example.from_text(text) for text in texts]
        windows = windows_of(examples, self.model.tokenizer, self.model.max_length, self.window_overlap)
        # A text with no word at all (empty, only spaces) still gets a sentence label, from [CLS] [SEP].
        flat = [window.example for group in windows for window in group]
        predictions, _ = run_model(self.model, flat, self.batch_size)
        results, position = [], 0
        for example, group in zip(examples, windows, strict=True):
            merged = merge_windows(self.model.tasks, group, predictions[position : position + len(group)])
            position += len(group)
            result = to_json(self.model, example, merged)
            if len(group) > 1:
                result["windows"] = {"count": len(group), "sentence_label_from": "first window"}
            results.append(result)
        return results
