"""Temperature scaling (Guo et al. 2017): one scalar per head divides its logits so that the softmax scores
match how often the model is right on dev. The argmax, so every label and tag, is unchanged; only the scores
move. Measured by the expected calibration error (ECE): the gap between confidence and accuracy, averaged over
equal-width confidence bins, weighted by how many predictions fall in each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F

from mtst.data.batching import Collator
from mtst.data.example import Example
from mtst.data.features import encode_examples
from mtst.data.labels import IGNORE_ID
from mtst.inference.runner import inference_forward

ECE_BINS = 15
SEARCH_RANGE = (0.05, 20.0)  # temperatures tried; past these the scores are near one-hot or near uniform


@torch.inference_mode()
def collect_logits(model, examples: Sequence[Example], names: Sequence[str], batch_size: int = 64) -> dict:
    """By task: [N, labels] logits and [N] gold ids at every labelled position (a sentence, or a word's first
    sub-token), from the untempered heads, all tasks from one pass of the encoder. Examples without a task's
    annotation add nothing to it."""
    features = encode_examples(examples, model.tokenizer, list(model.tasks.values()), model.max_length)
    collate = Collator(model.tokenizer.pad_token_id, model.tasks)
    logits, gold = {name: [] for name in names}, {name: [] for name in names}
    with inference_forward(model) as forward:
        for start in range(0, len(features), batch_size):
            batch = collate(features[start : start + batch_size])
            output = forward(batch["input_ids"], batch["attention_mask"], batch["labels"], batch["word_ids"])
            for name in names:
                labels = batch["labels"][name]
                kept = labels != IGNORE_ID
                logits[name].append(torch.as_tensor(output.logits[name]).float().cpu()[kept])
                gold[name].append(labels[kept])
    return {name: _joined(logits[name], gold[name], len(model.tasks[name].labels)) for name in names}


def _joined(logits: list, gold: list, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not gold:
        return torch.empty(0, width), torch.empty(0, dtype=torch.long)
    return torch.cat(logits), torch.cat(gold)


def expected_calibration_error(logits: torch.Tensor, gold: torch.Tensor, temperature: float = 1.0) -> float:
    if not len(gold):
        return 0.0
    confidence, predicted = (logits / temperature).softmax(-1).max(-1)
    correct = (predicted == gold).float()
    bins = (confidence * ECE_BINS).long().clamp(max=ECE_BINS - 1)
    error = 0.0
    for index in range(ECE_BINS):
        inside = bins == index
        if inside.any():
            error += inside.float().mean().item() * abs(
                confidence[inside].mean().item() - correct[inside].mean().item()
            )
    return error


def fit_temperature(logits: torch.Tensor, gold: torch.Tensor, steps: int = 60) -> float:
    """The temperature of least negative log-likelihood on these positions (golden-section search over log T;
    the likelihood is convex in 1/T). 1.0 when there is nothing to fit on."""
    if not len(gold):
        return 1.0

    def loss(log_t: float) -> float:
        return F.cross_entropy(logits / math.exp(log_t), gold).item()

    low, high = math.log(SEARCH_RANGE[0]), math.log(SEARCH_RANGE[1])
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(steps):
        left, right = high - ratio * (high - low), low + ratio * (high - low)
        if loss(left) < loss(right):
            high = right
        else:
            low = left
    return round(math.exp((low + high) / 2), 4)


def fit_temperatures(model, corpora, split: str = "dev", batch_size: int = 64) -> dict[str, dict]:
    """Fits each task's temperature on its corpus's `split` and sets it on the model's task; returns, by task,
    the temperature and the ECE before and after on that split."""
    report = {}
    for corpus in corpora:
        examples = getattr(corpus.splits, split) or []
        names = [name for name in corpus.tasks if model.tasks[name].fits_temperature]
        if not examples or not names:
            continue
        for name, (logits, gold) in collect_logits(model, examples, names, batch_size).items():
            temperature = fit_temperature(logits, gold)
            model.tasks[name] = model.tasks[name].model_copy(update={"temperature": temperature})
            before, after = (
                expected_calibration_error(logits, gold),
                expected_calibration_error(logits, gold, temperature),
            )
            report[name] = {"temperature": temperature, "ece_uncalibrated": before, "ece": after}
    return report


def calibration_metrics(model, examples: Sequence[Example], names: Sequence[str], batch_size: int = 64) -> dict:
    """By task: its temperature and the ECE of its scores on these examples, untempered and as the model gives them."""
    names = [name for name in names if model.tasks[name].fits_temperature]
    collected = collect_logits(model, examples, names, batch_size) if names and examples else {}
    return {
        name: {
            "temperature": model.tasks[name].temperature,
            "ece_uncalibrated": expected_calibration_error(logits, gold),
            "ece": expected_calibration_error(logits, gold, model.tasks[name].temperature),
        }
        for name, (logits, gold) in collected.items()
        if len(gold)
    }
