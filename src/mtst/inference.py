"""Runs a model over examples and turns logits into word-level labels with scores.

Evaluation, the Predictor and the server all go through `run_model`, so they decode identically.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mtst.data.batching import Collator
from mtst.data.example import Example
from mtst.data.features import encode_examples


@dataclass
class SentencePrediction:
    label: str
    score: float


@dataclass
class TokenPrediction:
    tags: list[str]  # one per word; a word without sub-tokens (e.g. cut off by truncation) gets "O", score 0
    scores: list[float]


Prediction = dict[str, SentencePrediction | TokenPrediction]


def _decode(model, logits: dict[str, torch.Tensor], row: int, word_starts: list[int | None]) -> Prediction:
    prediction: Prediction = {}
    for name, task in model.tasks.items():
        if task.type == "sentence":
            probs = logits[name][row].float().softmax(-1)
            score, index = probs.max(-1)
            prediction[name] = SentencePrediction(task.labels[int(index)], float(score))
        else:
            kept = [word for word, start in enumerate(word_starts) if start is not None]
            positions = [word_starts[word] for word in kept]
            scores, indices = logits[name][row, positions].float().softmax(-1).max(-1)
            tags, tag_scores = ["O"] * len(word_starts), [0.0] * len(word_starts)
            for word, index, score in zip(kept, indices.tolist(), scores.tolist(), strict=True):
                tags[word], tag_scores[word] = task.labels[index], score
            prediction[name] = TokenPrediction(tags, tag_scores)
    return prediction


@torch.no_grad()
def run_model(model, examples: Sequence[Example], batch_size: int = 64) -> tuple[list[Prediction], dict[str, float]]:
    """Predictions in input order, and the mean loss of each task whose gold labels the examples carry."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    task_labels = [task.as_labels for task in model.tasks.values()]
    features = encode_examples(examples, model.tokenizer, task_labels, model.max_length)
    collate = Collator(model.tokenizer.pad_token_id, {t.name: t.type for t in model.tasks.values()})
    # Length-sorted batches waste no compute on padding; results go back to input order below.
    order = sorted(range(len(features)), key=lambda i: len(features[i].input_ids))
    predictions: list[Prediction | None] = [None] * len(features)
    loss_sums, loss_counts = defaultdict(float), defaultdict(int)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = collate([features[i] for i in indices])
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            output = model(
                batch["input_ids"].to(device),
                batch["attention_mask"].to(device),
                {name: value.to(device) for name, value in batch["labels"].items()},
            )
        for name, loss in output.losses.items():
            loss_sums[name] += float(loss) * len(indices)
            loss_counts[name] += len(indices)
        for row, index in enumerate(indices):
            predictions[index] = _decode(model, output.logits, row, features[index].word_starts)
    model.train(was_training)
    return predictions, {name: loss_sums[name] / loss_counts[name] for name in loss_sums}
