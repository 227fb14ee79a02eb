"""What the training loop tells the rest of a run, after each step and at the end of each epoch.

The loop calls every callback in turn; the trackers (tracking.py), the run's records (metrics.jsonl, curves,
logged samples) and its checkpoints (best/ and training_state/) each listen, so the loop itself only trains.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from mtst.config import TrainConfig
from mtst.model.card import CardFacts
from mtst.training import reports

logger = logging.getLogger(__name__)


@dataclass
class StepEnd:
    global_step: int  # optimizer steps so far
    step_in_epoch: int  # batches of the epoch so far, a batch no task is labelled in included
    loss: torch.Tensor | None  # None: no example of the batch is labelled, so no step was taken
    losses: dict[str, torch.Tensor]
    learning_rates: dict[str, float]  # those the step used, by parameter group
    grad_norm: float | None = None  # the gradient's total L2 norm before clipping; None: no step, or not known


@dataclass
class EpochEnd:
    epoch: int
    global_step: int
    train_loss: dict[str, float]
    dev: dict[str, float]  # the headline dev metrics
    dev_samples: list  # [(examples, predictions)] per corpus, for the logged samples
    started: float  # perf_counter() when the epoch began
    score: float  # the early-stopping metric on dev
    improved: bool  # the best score so far


class Callback:
    def on_step(self, step: StepEnd) -> None:
        """After every batch of the epoch."""

    def on_epoch_end(self, end: EpochEnd) -> None:
        """After the epoch's dev evaluation and early-stopping update."""


class RunRecords(Callback):
    """The epoch's row in the run's history, its log lines and sample predictions, metrics.jsonl and curves.png."""

    def __init__(self, output: Path, history: list[dict], model, loss_weighting, samples: int, main: bool, clip: float):
        self.output, self.history, self.model, self.loss_weighting = output, history, model, loss_weighting
        self.samples, self.main = samples, main
        self.clip, self.grad_norms = clip, []  # this epoch's norms (a resumed epoch's: those since the resume)

    def on_step(self, step: StepEnd) -> None:
        if step.grad_norm is not None and math.isfinite(step.grad_norm):  # metrics.jsonl holds no infinity
            self.grad_norms.append(step.grad_norm)

    def on_epoch_end(self, end: EpochEnd) -> None:
        row = reports.epoch_row(end.epoch, end.train_loss, end.dev, end.started, self.model, self.loss_weighting)
        if self.grad_norms:
            row["gradients"] = reports.gradient_summary(self.grad_norms, self.clip)
            self.grad_norms = []
        self.history.append(row)
        reports.record_epoch(self.output, self.history, self.model, end.dev_samples, self.samples, self.main)


class Checkpoints(Callback):
    """best/ whenever dev improves; the whole training state after each epoch and every `every_steps` batches.
    Only the main process writes (`save_state` knows it too)."""

    def __init__(
        self, output: Path, model, save_state: Callable[[], None], cfg: TrainConfig, main: bool, card: CardFacts
    ):
        self.output, self.model, self.save_state, self.main = output, model, save_state, main
        self.metric, self.every_steps = cfg.early_stopping_metric, cfg.checkpoint_every_steps
        self.card = card  # what the model card says beyond config.json; each save adds its epoch and dev scores

    def on_step(self, step: StepEnd) -> None:
        if self.every_steps and step.step_in_epoch % self.every_steps == 0:
            self.save_state()

    def on_epoch_end(self, end: EpochEnd) -> None:
        if end.improved and self.main:
            self.model.save_pretrained(self.output / "best", replace(self.card, epoch=end.epoch, dev=end.dev))
            logger.info("new best %s = %.4f, saved %s", self.metric, end.score, self.output / "best")
        self.save_state()


def learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    return {str(group.get("name", index)): float(group["lr"]) for index, group in enumerate(optimizer.param_groups)}
