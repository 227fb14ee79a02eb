"""The training batches of each corpus, and the class weights its train split implies."""

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


def corpus_loader(cfg: TrainConfig, model, corpus: Corpus) -> tuple[DataLoader, dict[str, torch.Tensor]]:
    """Batches of one corpus, labelled for its own tasks only, and the loss weights of those tasks that use
    them (token tasks: from train tag frequencies)."""
    tasks = [model.tasks[name] for name in corpus.tasks]
    features = encode_examples(corpus.splits.train, model.tokenizer, tasks, model.max_length)
    class_weights = {}
    for task in tasks:
        weights = task.loss_weights([f.labels[task.name] for f in features if task.name in f.labels])
        if weights is not None:
            class_weights[task.name] = weights
    has_entities = [bears_entities(tasks, ex) for ex in corpus.splits.train]
    sampler = entity_sampler(has_entities, cfg.entity_sampler_weight, cfg.seed)
    if cfg.group_by_length:
        lengths = [len(feature.input_ids) for feature in features]
        batching: dict = {"batch_sampler": LengthGroupedBatchSampler(sampler, lengths, cfg.batch_size)}
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
    return loader, class_weights


def build_loaders(cfg: TrainConfig, model, corpora: list[Corpus]) -> tuple[list[DataLoader], dict[str, torch.Tensor]]:
    """One loader per corpus, and the class weights of every task that uses them."""
    loaders, class_weights = [], {}
    for corpus in corpora:
        loader, weights = corpus_loader(cfg, model, corpus)
        loaders.append(loader)
        class_weights.update(weights)
    return loaders, class_weights


def sampler_generator(loader: DataLoader) -> torch.Generator:
    """The generator that orders a loader's epoch, with or without length grouping: its state is saved
    at each epoch start so that a resumed run redraws the same batches."""
    return loader.batch_sampler.sampler.generator
