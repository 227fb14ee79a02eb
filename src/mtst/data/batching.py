"""Dynamic-padding collate and the entity-up-sampling sampler."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import WeightedRandomSampler

from mtst.data.features import Features
from mtst.data.labels import IGNORE_ID


class Collator:
    """Pads a batch to its own longest sentence (not to a fixed length): ids, mask, labels."""

    def __init__(self, pad_token_id: int, task_types: dict[str, str]):
        self.pad_token_id = pad_token_id
        self.task_types = task_types

    def __call__(self, batch: Sequence[Features]) -> dict:
        width = max(len(f.input_ids) for f in batch)
        input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, feature in enumerate(batch):
            input_ids[row, : len(feature.input_ids)] = torch.tensor(feature.input_ids)
            attention_mask[row, : len(feature.input_ids)] = 1
        labels = {}
        for name, kind in self.task_types.items():
            if not any(name in f.labels for f in batch):
                continue  # a task without labels in this batch contributes no loss
            # Rows that lack this task's labels are ignored rather than dropping the task for the whole batch.
            if kind == "sentence":
                labels[name] = torch.tensor([f.labels.get(name, IGNORE_ID) for f in batch], dtype=torch.long)
            else:
                padded = torch.full((len(batch), width), IGNORE_ID, dtype=torch.long)
                for row, feature in enumerate(batch):
                    tags = feature.labels.get(name, [])
                    padded[row, : len(tags)] = torch.tensor(tags, dtype=torch.long)
                labels[name] = padded
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def entity_sampling_weights(has_entities: Sequence[bool], entity_weight: float) -> torch.Tensor:
    return torch.tensor([entity_weight if flag else 1.0 for flag in has_entities], dtype=torch.double)


def entity_sampler(has_entities: Sequence[bool], entity_weight: float, seed: int) -> WeightedRandomSampler:
    """Draws an epoch's worth of sentences, entity-bearing ones `entity_weight` times as often."""
    generator = torch.Generator().manual_seed(seed)
    weights = entity_sampling_weights(has_entities, entity_weight)
    return WeightedRandomSampler(weights, num_samples=len(weights), replacement=True, generator=generator)


def token_class_weights(features: Sequence[Features], task: str, num_labels: int, scheme: str) -> torch.Tensor:
    """Cross-entropy weights from train tag frequencies, scaled so the average labelled token weighs 1.

    `inverse_sqrt` (the default) damps inverse frequency: with ~100 slot tags, some seen a handful of
    times, plain inverse frequency gives weights in the thousands and trades precision for recall.
    """
    if scheme == "none":
        return torch.ones(num_labels)
    counts = torch.zeros(num_labels)
    for feature in features:
        ids = torch.tensor([i for i in feature.labels.get(task, []) if i != IGNORE_ID], dtype=torch.long)
        counts += torch.bincount(ids, minlength=num_labels).float()
    frequency = counts.clamp(min=1) / counts.sum().clamp(min=1)
    weights = (1.0 / (num_labels * frequency)) ** (0.5 if scheme == "inverse_sqrt" else 1.0)
    return weights / (weights * frequency).sum()
