"""Multi-corpus training: which corpus (and so which tasks) supplies each batch of an epoch.

An epoch is as many batches as all corpora's loaders hold together. The order is drawn from the seed and
the epoch number only, so a resumed run redraws it without saved state. A loader that runs out within an
epoch (possible under `temperature` and `round-robin`) starts over, drawing a fresh sample.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, Union

import torch
from accelerate import skip_first_batches
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

# The short forms (`task_sampling: temperature:2`); the mapping form is `{name: temperature, temperature: 2}`.
TASK_SAMPLING_RULES = ("proportional", "temperature:T", "round-robin")


class TaskSampling(BaseModel):
    """`proportional`: every batch of every corpus once per epoch, shuffled."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    name: Literal["proportional"] = "proportional"

    def order(self, lengths: Sequence[int], epoch: int, seed: int) -> list[int]:
        """The corpus index of each batch of `epoch`."""
        steps = sum(lengths)
        if len(lengths) == 1:
            return [0] * steps
        return self._draw(lengths, steps, torch.Generator().manual_seed(seed * 100_003 + epoch))

    def _draw(self, lengths: Sequence[int], steps: int, generator: torch.Generator) -> list[int]:
        pooled = torch.tensor([i for i, n in enumerate(lengths) for _ in range(n)])
        return pooled[torch.randperm(steps, generator=generator)].tolist()


class RoundRobin(TaskSampling):
    """Corpora in turn."""

    name: Literal["round-robin"] = "round-robin"

    def _draw(self, lengths, steps, generator):
        return [step % len(lengths) for step in range(steps)]


class Temperature(TaskSampling):
    """Each batch from corpus i with probability proportional to n_i^(1/T) (T=1 proportional in expectation,
    larger T flatter)."""

    name: Literal["temperature"] = "temperature"
    temperature: float = Field(gt=0)

    def _draw(self, lengths, steps, generator):
        # n_i^(1/T) normalised, in log space: the power itself overflows for a small T.
        logits = torch.tensor(lengths, dtype=torch.double).log() / self.temperature
        weights = (logits - logits.max()).exp()
        return torch.multinomial(weights, steps, replacement=True, generator=generator).tolist()


def short_form(value):
    """`temperature:2` as {"name": "temperature", "temperature": 2.0}; a mapping passes through unchanged."""
    if not isinstance(value, str):
        return value
    if value in ("proportional", "round-robin"):
        return {"name": value}
    match = re.fullmatch(r"temperature:([0-9]*\.?[0-9]+)", value)
    if match and float(match.group(1)) > 0:
        return {"name": "temperature", "temperature": float(match.group(1))}
    raise ValueError(f"unknown task_sampling {value!r}; choose one of {', '.join(TASK_SAMPLING_RULES)} (T > 0)")


TaskSamplingConfig = Annotated[
    Union[TaskSampling, RoundRobin, Temperature],  # noqa: UP007
    Field(discriminator="name"),
    BeforeValidator(short_form),
]


@dataclass(frozen=True)
class TaskSampler:
    """Draws which corpus supplies each batch of an epoch, by `rule` (a short form or a TaskSampling)."""

    rule: TaskSampling | str = "proportional"
    seed: int = 13

    def order(self, lengths: Sequence[int], epoch: int) -> list[int]:
        """The corpus index of each batch of `epoch`."""
        rule = TypeAdapter(TaskSamplingConfig).validate_python(self.rule)
        return rule.order(lengths, epoch, self.seed)

    def batches(self, loaders: Sequence, epoch: int, skip: int = 0) -> Iterator:
        """The epoch's batches, each from the corpus `order` names; the first `skip` (taken before the run was
        interrupted) are passed over without being built."""
        order = self.order([len(loader) for loader in loaders], epoch)
        taken = Counter(order[:skip])
        passes = [_passes(loader, taken[index]) for index, loader in enumerate(loaders)]
        for corpus in order[skip:]:
            yield next(passes[corpus])


def _passes(loader, skip: int) -> Iterator:
    """The loader's batches, pass after pass, less the first `skip`: accelerate's `skip_first_batches` draws
    their samples (so the sampler's generator ends where an uninterrupted run's would) but never collates them."""
    while True:
        now = min(skip, len(loader))
        yield from skip_first_batches(loader, now) if now else loader
        skip -= now
