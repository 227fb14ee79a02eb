"""Runs a model over examples and turns logits into word-level labels with scores.

Evaluation, the Predictor and the server all go through `run_model`, so they decode identically.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from mtst.crf import FORBIDDEN
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
    # Sentence tasks first: a token task conditioned on one needs its predicted label.
    for name, task in sorted(model.tasks.items(), key=lambda item: item[1].type != "sentence"):
        if task.type == "sentence":
            probs = logits[name][row].float().softmax(-1)
            score, index = probs.max(-1)
            prediction[name] = SentencePrediction(task.labels[int(index)], float(score))
        else:
            kept = [word for word, start in enumerate(word_starts) if start is not None]
            # Decoding is a few small steps per word: cheaper on CPU than one device sync per step.
            emissions = logits[name][row, [word_starts[word] for word in kept]].float().cpu()
            if task.condition_on is not None:
                emissions = emissions + _condition_penalty(task, prediction[task.condition_on].label)
            indices, scores = _tag_words(model.crfs.get(name), emissions)
            tags, tag_scores = ["O"] * len(word_starts), [0.0] * len(word_starts)
            for word, index, score in zip(kept, indices, scores, strict=True):
                tags[word], tag_scores[word] = task.labels[index], score
            prediction[name] = TokenPrediction(tags, tag_scores)
    # Back to the model's task order, which the output JSON follows.
    return {name: prediction[name] for name in model.tasks}


def _tag_words(crf, emissions: torch.Tensor) -> tuple[list[int], list[float]]:
    """The tag of each word and its probability: Viterbi + marginals with a CRF, else per-word argmax."""
    if crf is not None:
        return crf.decode(emissions)
    scores, indices = emissions.softmax(-1).max(-1)
    return indices.tolist(), scores.tolist()


def _condition_penalty(task, sentence_label: str) -> torch.Tensor:
    """0 for the tags train showed with this sentence label, FORBIDDEN for the rest (`O` always allowed)."""
    allowed = task.tags_allowed_with(sentence_label)
    return torch.tensor([0.0 if tag in allowed else FORBIDDEN for tag in task.labels])


@contextlib.contextmanager
def _inference_forward(model):
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
    task_labels = [task.as_labels for task in model.tasks.values()]
    features = encode_examples(examples, model.tokenizer, task_labels, model.max_length)
    collate = Collator(model.tokenizer.pad_token_id, {t.name: t.type for t in model.tasks.values()})
    # Length-sorted batches waste no compute on padding; results go back to input order below.
    order = sorted(range(len(features)), key=lambda i: len(features[i].input_ids))
    predictions: list[Prediction | None] = [None] * len(features)
    loss_sums, loss_counts = defaultdict(float), defaultdict(int)
    with _inference_forward(model) as forward:
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = collate([features[i] for i in indices])
            output = forward(batch["input_ids"], batch["attention_mask"], batch["labels"], batch["word_ids"])
            for name, loss in output.losses.items():
                loss_sums[name] += float(loss) * len(indices)
                loss_counts[name] += len(indices)
            for row, index in enumerate(indices):
                predictions[index] = _decode(model, output.logits, row, features[index].word_starts)
    return predictions, {name: loss_sums[name] / loss_counts[name] for name in loss_sums}
