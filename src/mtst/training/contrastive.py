"""SetFit's idea for few examples per intent: before the joint heads train, fine-tune the encoder on pairs of
sentences, same sentence label → cosine 1, different labels → cosine 0 (CosineSimilarityLoss on the pooled
embedding), so that eight examples of an intent already sit together when the heads start.

Pairs are drawn as SetFit draws them: for each train sentence and each of `pairs_per_sentence` iterations one
positive (another sentence of its label) and one negative (a sentence of another label), seeded.

SetFit then fits a logistic regression on the warmed-up embeddings; with `head_init: logistic_regression` the
task's classifier starts from that fit (scikit-learn's, SetFit's own head), so the joint training that follows
starts from SetFit's model instead of a random layer that a few dozen steps on eight sentences per intent barely
move.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.nn import functional as F

logger = logging.getLogger(__name__)


class ContrastiveConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    task: str  # the sentence task whose labels make the pairs
    pairs_per_sentence: int = Field(20, ge=1)  # SetFit's num_iterations
    epochs: int = Field(1, ge=1)
    batch_size: int = Field(16, ge=2)
    lr: float = Field(2e-5, gt=0, le=1.0)
    head_init: Literal["random", "logistic_regression"] = "random"


def sentence_pairs(texts: Sequence[str], labels: Sequence[str], per_sentence: int, seed: int):
    """[(a, b, 1.0 | 0.0)]: per sentence and iteration one same-label and one other-label partner."""
    draw, by_label = random.Random(seed), defaultdict(list)
    for text, label in zip(texts, labels, strict=True):
        by_label[label].append(text)
    pairs = []
    for _ in range(per_sentence):
        for text, label in zip(texts, labels, strict=True):
            others = [other for other in by_label if other != label]
            if len(by_label[label]) > 1:
                pairs.append((text, draw.choice([t for t in by_label[label] if t is not text]), 1.0))
            if others:
                pairs.append((text, draw.choice(by_label[draw.choice(others)]), 0.0))
    draw.shuffle(pairs)
    return pairs


def contrastive_warmup(model, examples: Sequence, cfg: ContrastiveConfig, seed: int) -> list[float]:
    """Trains `model.encoder` on the pairs of the examples labelled for `cfg.task`; the mean loss per epoch."""
    field = model.tasks[cfg.task].field
    labelled = [ex for ex in examples if ex.annotations.get(field) is not None]
    pairs = sentence_pairs(
        [ex.text for ex in labelled], [ex.annotations[field] for ex in labelled], cfg.pairs_per_sentence, seed
    )
    optimizer = torch.optim.AdamW(model.encoder.parameters(), lr=cfg.lr)
    device, losses = next(model.parameters()).device, []
    model.train()
    for epoch in range(cfg.epochs):
        total = 0.0
        for start in range(0, len(pairs), cfg.batch_size):
            batch = pairs[start : start + cfg.batch_size]
            first, second = (_embed(model, [pair[i] for pair in batch], device) for i in (0, 1))
            target = torch.tensor([pair[2] for pair in batch], device=device)
            loss = F.mse_loss(F.cosine_similarity(first, second), target)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.item() * len(batch)
        losses.append(total / max(len(pairs), 1))
        logger.info("contrastive warm-up epoch %d: %d pairs, loss %.4f", epoch + 1, len(pairs), losses[-1])
    if cfg.head_init == "logistic_regression":
        fit_head_by_logistic_regression(model, cfg.task, labelled)
    return losses


@torch.no_grad()
def fit_head_by_logistic_regression(model, task_name: str, labelled: Sequence) -> None:
    """The task's classifier set to SetFit's head: a logistic regression on the (frozen) sentence embeddings."""
    from sklearn.linear_model import LogisticRegression

    task, classifier = model.tasks[task_name], model.heads[task_name].classifier
    labels = [task.label_to_id[ex.annotations[task.field]] for ex in labelled]
    if len(set(labels)) < 2:
        return  # one label: nothing to separate, the random layer stays
    model.eval()
    device = next(model.parameters()).device
    embedded = torch.cat(
        [_embed(model, [ex.text for ex in labelled[i : i + 64]], device) for i in range(0, len(labelled), 64)]
    )
    fit = LogisticRegression(max_iter=1000).fit(embedded.float().cpu().numpy(), labels)
    weight, bias = torch.as_tensor(fit.coef_), torch.as_tensor(fit.intercept_)
    if len(fit.classes_) == 2:  # scikit-learn keeps one row for two classes: softmax over (-z/2, z/2) is sigmoid(z)
        weight, bias = torch.cat([-weight / 2, weight / 2]), torch.cat([-bias / 2, bias / 2])
    rows = torch.as_tensor(fit.classes_)
    classifier.weight[rows] = weight.to(classifier.weight)
    classifier.bias[rows] = bias.to(classifier.bias)
    unseen = torch.ones(len(task.labels), dtype=torch.bool)
    unseen[rows] = False
    unseen = unseen.to(classifier.bias.device)  # labels train never showed: a constant logit far below the rest
    classifier.weight[unseen] = 0.0
    classifier.bias[unseen] = bias.min().item() - 10.0
    logger.info("%s head initialised by logistic regression on %d warmed-up embeddings", task_name, len(labelled))


def _embed(model, texts: list[str], device) -> torch.Tensor:
    batch = model.tokenizer(texts, padding=True, truncation=True, max_length=model.max_length, return_tensors="pt")
    return model.embed(batch["input_ids"].to(device), batch["attention_mask"].to(device))["sentence_embedding"]
