"""The training batches of each corpus."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader

from mtst.data.batching import Collator, LengthGroupedBatchSampler, entity_sampler
from mtst.data.features import encode_examples

if TYPE_CHECKING:
    from mtst.config import TrainConfig
    from mtst.data import Corpus


def bears_entities(tasks, example) -> bool:
    """Whether any of the corpus's tasks marks the example for entity up-sampling."""
    return any(task.bears_entities(example) for task in tasks)


def corpus_loader(cfg: TrainConfig, model, corpus: Corpus) -> DataLoader:
    """Batches of one corpus, labelled for its own tasks only; `loader.dataset` is its encoded train split."""
    tasks = [model.tasks[name] for name in corpus.tasks]
    features = encode_examples(corpus.splits.train, model.tokenizer, tasks, model.max_length)
    has_entities = [bears_entities(tasks, ex) for ex in corpus.splits.train]
    sampler = entity_sampler(has_entities, cfg.entity_sampler_weight, cfg.seed)
    if cfg.group_by_length:
        lengths = [len(feature.input_ids) for feature in features]
        batching: dict = {
            "batch_sampler": LengthGroupedBatchSampler(sampler, lengths, cfg.batch_size, cfg.length_group_batches)
        }
    else:
        batching = {"batch_size": cfg.batch_size, "sampler": sampler}
    loader = DataLoader(
        features,
        **batching,
        collate_fn=Collator(model.tokenizer.pad_token_id, {t.name: t for t in tasks}),
        num_workers=cfg.num_workers,
        # Its own generator, so that starting an epoch's iterator draws nothing from the global RNG
        # (which drives dropout): a resumed run then replays the same random stream.
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    return loader


def build_loaders(cfg: TrainConfig, model, corpora: list[Corpus]) -> list[DataLoader]:
    """One loader per corpus."""
    return [corpus_loader(cfg, model, corpus) for corpus in corpora]


def sampler_generator(loader: DataLoader) -> torch.Generator:
    """The generator that orders a loader's epoch, with or without length grouping: its state is saved
    at each epoch start so that a resumed run redraws the same batches."""
    return loader.batch_sampler.sampler.generator
