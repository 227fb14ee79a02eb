"""Runs a model over examples and turns logits into word-level labels with scores.

Evaluation, the Predictor and the server all go through `run_model`, so they decode identically.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mtst.data.batching import Collator
from mtst.data.example import Example
from mtst.data.features import encode_examples

Prediction = dict[str, Any]  # task name -> what its kind's `decode` returns


def decode_order(tasks: dict) -> list[str]:
    """Task names such that every task comes after those its decoding reads (`decoded_after`)."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name not in order:
            for before in tasks[name].decoded_after:
                visit(before)
            order.append(name)

    for name in tasks:
        visit(name)
    return order


def _decode_batch(model, logits: dict[str, torch.Tensor], word_starts: Sequence[list[int | None]]) -> list[Prediction]:
    """The prediction of each row of a batch: task by task in decode order, each over the whole batch."""
    decoded: list[Prediction] = [{} for _ in word_starts]
    for name in decode_order(model.tasks):
        predictions = model.tasks[name].decode_batch(logits[name], word_starts, decoded, model.heads[name])
        for row, prediction in zip(decoded, predictions, strict=True):
            row[name] = prediction
    # Back to the model's task order, which the output JSON follows.
    return [{name: row[name] for name in model.tasks} for row in decoded]


@contextlib.contextmanager
def inference_forward(model):
    """The model's forward for inference: a torch model in eval mode on its own device (restored after);
    an ONNX model (mtst.onnx_backend.OnnxModel) is inference-only already and takes CPU tensors."""
    if not isinstance(model, nn.Module):
        yield model.forward
        return
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device

    def forward(input_ids, attention_mask, labels, word_ids):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            labels = {name: value.to(device) for name, value in labels.items()}
            return model(input_ids.to(device), attention_mask.to(device), labels, word_ids.to(device))

    try:
        yield forward
    finally:
        model.train(was_training)


@torch.inference_mode()  # no autograd bookkeeping at all, cheaper than no_grad
def run_model(model, examples: Sequence[Example], batch_size: int = 64) -> tuple[list[Prediction], dict[str, float]]:
    """Predictions in input order, and the mean loss of each task whose gold labels the examples carry.

    `model` is a MultiTaskModel or an OnnxModel: both have `tasks`, `tokenizer`, `max_length` and
    `forward(input_ids, attention_mask, labels, word_ids) -> ModelOutput` (the ONNX graph returns no losses).
    """
    features = encode_examples(examples, model.tokenizer, list(model.tasks.values()), model.max_length)
    collate = Collator(model.tokenizer.pad_token_id, model.tasks)
    # Length-sorted batches waste no compute on padding; results go back to input order below.
    order = sorted(range(len(features)), key=lambda i: len(features[i].input_ids))
    predictions: list[Prediction | None] = [None] * len(features)
    loss_sums, loss_counts = defaultdict(float), defaultdict(int)
    with inference_forward(model) as forward:
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = collate([features[i] for i in indices])
            output = forward(batch["input_ids"], batch["attention_mask"], batch["labels"], batch["word_ids"])
            for name, loss in output.losses.items():
                loss_sums[name] += float(loss) * len(indices)
                loss_counts[name] += len(indices)
            decoded = _decode_batch(model, output.logits, [features[index].word_starts for index in indices])
            for index, prediction in zip(indices, decoded, strict=True):
                predictions[index] = prediction
    return predictions, {name: loss_sums[name] / loss_counts[name] for name in loss_sums}
