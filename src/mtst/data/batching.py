"""Dynamic-padding collate, the entity-up-sampling sampler and length-grouped batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch.utils.data import RandomSampler, Sampler, WeightedRandomSampler

from mtst.data.features import Features
from mtst.model.subtokens import NO_WORD

if TYPE_CHECKING:
    from mtst.tasks import Task


class Collator:
    """Pads a batch to its own longest sentence (not to a fixed length): ids, mask, word ids, labels."""

    def __init__(self, pad_token_id: int, tasks: dict[str, Task]):
        self.pad_token_id = pad_token_id
        self.tasks = tasks

    def __call__(self, batch: Sequence[Features]) -> dict:
        width = max(len(f.input_ids) for f in batch)
        input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        word_ids = torch.full((len(batch), width), NO_WORD, dtype=torch.long)
        for row, feature in enumerate(batch):
            input_ids[row, : len(feature.input_ids)] = torch.tensor(feature.input_ids)
            attention_mask[row, : len(feature.input_ids)] = 1
            word_ids[row, : len(feature.word_ids)] = torch.tensor(feature.word_ids, dtype=torch.long)
        labels = {}
        for name, task in self.tasks.items():
            if not any(name in f.labels for f in batch):
                continue  # a task without labels in this batch contributes no loss
            # Rows that lack this task's labels are ignored rather than dropping the task for the whole batch.
            labels[name] = task.collate([f.labels.get(name) for f in batch], width)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "word_ids": word_ids, "labels": labels}


def entity_sampling_weights(has_entities: Sequence[bool], entity_weight: float) -> torch.Tensor:
    return torch.tensor([entity_weight if flag else 1.0 for flag in has_entities], dtype=torch.double)


def entity_sampler(has_entities: Sequence[bool], entity_weight: float, seed: int) -> WeightedRandomSampler:
    """Draws an epoch's worth of sentences, entity-bearing ones `entity_weight` times as often."""
    generator = torch.Generator().manual_seed(seed)
    weights = entity_sampling_weights(has_entities, entity_weight)
    return WeightedRandomSampler(weights, num_samples=len(weights), replacement=True, generator=generator)


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Batches of similar-length sentences from the indices `sampler` draws (as HF's `LengthGroupedSampler`).

    The epoch's indices come from `sampler` as they would without grouping (so entity up-sampling is
    unchanged); each run of `mega_batch_factor * batch_size` of them is sorted by length and cut into
    batches, and the batch order is shuffled with the sampler's own generator. Drawing everything from
    that one generator keeps an epoch reproducible from the generator state saved at its start, which is
    what a resumed run restores.
    """

    def __init__(
        self,
        sampler: WeightedRandomSampler | RandomSampler,
        lengths: Sequence[int],
        batch_size: int,
        mega_batch_factor: int = 50,
    ):
        self.sampler = sampler
        self.lengths = lengths
        self.batch_size = batch_size
        self.mega_batch_size = mega_batch_factor * batch_size
        self.drop_last = False  # read by accelerate when it shards batches across processes

    @property
    def generator(self) -> torch.Generator:
        return self.sampler.generator

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        drawn = list(self.sampler)
        batches = []
        for start in range(0, len(drawn), self.mega_batch_size):
            # A stable sort: equal lengths keep their drawn order, so the batches depend on the seed alone.
            mega_batch = sorted(drawn[start : start + self.mega_batch_size], key=self.lengths.__getitem__)
            batches += [mega_batch[i : i + self.batch_size] for i in range(0, len(mega_batch), self.batch_size)]
        for position in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[position]
