"""Every call that crosses processes in a multi-process run (accelerate's gather and reduce), in one place.

With one process each is the plain computation; the loop reads the same either way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

from mtst.data.example import Example
from mtst.inference.runner import run_model

Runner = Callable[..., tuple[list, dict[str, float]]]  # run_model's signature: (model, examples, batch_size)


def sharded_runner(accelerator: Accelerator) -> Runner:
    """`run_model` split across the processes; every process gets all results, in input order."""
    if accelerator.num_processes == 1:
        return run_model

    def run(model, examples: Sequence[Example], batch_size: int):
        share = list(range(accelerator.process_index, len(examples), accelerator.num_processes))
        predictions, losses = run_model(model, [examples[i] for i in share], batch_size)
        ordered: list = [None] * len(examples)
        loss_sums, loss_counts = defaultdict(float), defaultdict(int)
        for indices, shard_predictions, shard_losses in gather_object([(share, predictions, losses)]):
            for index, prediction in zip(indices, shard_predictions, strict=True):
                ordered[index] = prediction
            for name, loss in shard_losses.items():
                loss_sums[name] += loss * len(indices)
                loss_counts[name] += len(indices)
        return ordered, {name: loss_sums[name] / loss_counts[name] for name in loss_sums}

    return run


def mean_over_processes(accelerator: Accelerator, names: list[str], sums: dict, counts: dict) -> dict[str, float]:
    """Each task's mean training loss over the batches of every process."""
    totals = torch.tensor([[sums.get(n, 0.0), float(counts.get(n, 0))] for n in names], device=accelerator.device)
    totals = accelerator.reduce(totals, reduction="sum")
    return {n: float(s / c) for n, (s, c) in zip(names, totals.tolist(), strict=True) if c > 0}
