"""Prediction on raw text: labels with scores, entities as character spans into the original text."""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from pathlib import Path

import torch

from mtst.data.example import Example
from mtst.errors import MtstError
from mtst.inference.backends import BACKENDS
from mtst.inference.runner import Prediction, run_model
from mtst.inference.windows import merge_windows, windows_of
from mtst.model.multitask import MultiTaskModel


def to_json(model, example: Example, prediction: Prediction, ranking: int = 0) -> dict:
    """One sentence's result: each task predicted adds its part, the first task of each kind at the top level;
    with `ranking`, a sentence task lists its `ranking` most probable labels too."""
    result: dict = {"text": example.text}
    kinds_seen: set[str] = set()
    for name, task in model.tasks.items():
        if name in prediction:
            first = task.type not in kinds_seen
            task.add_to_json(result, example, prediction[name], first=first)
            if ranking:
                task.add_ranking(result, prediction[name], first, ranking)
        kinds_seen.add(task.type)
    return result


def describe(tasks: dict, result: dict) -> dict[str, str]:
    """Each task's part of a result as short text (`label (0.97)`, `Paris [LOC]`), by task name."""
    described, kinds_seen = {}, set()
    for name, task in tasks.items():
        described[name] = task.describe(result, first=task.type not in kinds_seen)
        kinds_seen.add(task.type)
    return described


class Predictor:
    """Loads a checkpoint once and predicts raw sentences of any length.

    A text longer than the model's window (`max_length` sub-tokens) is read in windows that overlap by
    `window_overlap` sub-tokens: every word gets a tag, and the sentence label comes from the first window.
    `ranking` > 0 lists that many most probable labels of each sentence task (`"ranking"`) beside its label.
    """

    def __init__(self, model, batch_size: int = 64, window_overlap: int = 32, ranking: int = 0):
        self.model = model  # a MultiTaskModel or an mtst.onnx_backend.OnnxModel; run_model takes either
        self.batch_size = batch_size
        self.window_overlap = window_overlap
        self.ranking = ranking
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
        ranking: int = 0,
    ) -> Predictor:
        """`backend="torch"` loads model.safetensors on `device` (default: CUDA when available);
        `backend="onnx"` runs model.onnx from `mtst export` on CPU with onnxruntime, or model.int8.onnx
        with `quantized=True`."""
        if backend not in BACKENDS:
            raise MtstError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if backend == "onnx":
            if device not in (None, "cpu"):
                raise MtstError(f"the onnx backend runs on CPU only, not {device!r}")
            from mtst.inference.onnx import OnnxModel

            return cls(OnnxModel.from_checkpoint(directory, quantized), batch_size, ranking=ranking)
        if quantized:
            raise MtstError("a quantized model needs the onnx backend (made by `mtst export --quantize int8`)")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(MultiTaskModel.from_pretrained(directory, device=device), batch_size, ranking=ranking)

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
            result = to_json(self.model, example, merged, self.ranking)
            if len(group) > 1:
                result["windows"] = {"count": len(group), "sentence_label_from": "first window"}
            results.append(result)
        return results
