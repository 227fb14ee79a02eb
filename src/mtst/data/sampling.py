"""Multi-corpus training: which corpus (and so which tasks) supplies each batch of an epoch.

An epoch is as many batches as all corpora's loaders hold together. The order is drawn from the seed and
the epoch number only, so a resumed run redraws it without saved state. A loader that runs out within an
epoch (possible under `temperature` and `round-robin`) starts over, drawing a fresh sample.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

TASK_SAMPLING_RULES = ("proportional", "temperature:T", "round-robin")


def parse_task_sampling(rule: str) -> tuple[str, float | None]:
    """("proportional" | "temperature" | "round-robin", T or None); ValueError naming the choices."""
    if rule in ("proportional", "round-robin"):
        return rule, None
    match = re.fullmatch(r"temperature:([0-9]*\.?[0-9]+)", rule)
    if match and float(match.group(1)) > 0:
        return "temperature", float(match.group(1))
    raise ValueError(f"unknown task_sampling {rule!r}; choose one of {', '.join(TASK_SAMPLING_RULES)} (T > 0)")


@dataclass(frozen=True)
class TaskSampler:
    """`proportional`: every batch of every corpus once, shuffled; `temperature:T`: each batch from corpus i
    with probability proportional to n_i^(1/T) (T=1 proportional in expectation, larger T flatter);
    `round-robin`: corpora in turn."""

    rule: str = "proportional"
    seed: int = 13

    def order(self, lengths: Sequence[int], epoch: int) -> list[int]:
        """The corpus index of each batch of `epoch`."""
        kind, temperature = parse_task_sampling(self.rule)
        steps = sum(lengths)
        if len(lengths) == 1:
            return [0] * steps
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        if kind == "round-robin":
            return [step % len(lengths) for step in range(steps)]
        if kind == "temperature":
            # n_i^(1/T) normalised, in log space: the power itself overflows for a small T.
            logits = torch.tensor(lengths, dtype=torch.double).log() / temperature
            weights = (logits - logits.max()).exp()
            draws = torch.multinomial(weights, steps, replacement=True, generator=generator)
            return draws.tolist()
        pooled = torch.tensor([i for i, n in enumerate(lengths) for _ in range(n)])
        return pooled[torch.randperm(steps, generator=generator)].tolist()

    def batches(self, loaders: Sequence, epoch: int) -> Iterator:
        """The epoch's batches, each from the corpus `order` names."""
        iterators: list = [None] * len(loaders)
        for corpus in self.order([len(loader) for loader in loaders], epoch):
            try:
                if iterators[corpus] is None:
                    raise StopIteration
                yield next(iterators[corpus])
            except StopIteration:
                iterators[corpus] = iter(loaders[corpus])
                yield next(iterators[corpus])
