"""How the task losses of a batch combine into the one loss the optimizer follows."""

from __future__ import annotations

import math

import torch
from torch import nn

from mtst.config import Config
from mtst.errors import TrainingDiverged


class LossWeighting(nn.Module):
    """`sum`: L = sum_t L_t. A batch only holds the losses of the tasks it has labels for."""

    def __init__(self, tasks: list[str], weights: dict[str, float] | None = None):
        super().__init__()
        self.tasks = tasks
        self.static = {name: (weights or {}).get(name, 1.0) for name in tasks}

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.static[name] * loss for name, loss in losses.items())

    def weights(self) -> dict[str, float]:
        """The weight each task's loss gets now, logged per epoch."""
        return dict(self.static)


class UncertaintyWeighting(LossWeighting):
    """Kendall, Gal & Cipolla (2018), classification form: L = sum_t exp(-s_t) * L_t + s_t / 2.

    s_t = log sigma_t^2 is learned. For a softmax scaled by 1/sigma^2 their derivation gives
    L_t / sigma^2 + log sigma, i.e. exp(-s) L + s/2; s starts at 0 (weight 1, the `sum` loss).
    """

    def __init__(self, tasks: list[str]):
        super().__init__(tasks)
        self.log_variances = nn.Parameter(torch.zeros(len(tasks)))

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for name, loss in losses.items():
            s = self.log_variances[self.tasks.index(name)]
            total = total + torch.exp(-s) * loss + 0.5 * s
        return total

    def weights(self) -> dict[str, float]:
        return {name: float(torch.exp(-s)) for name, s in zip(self.tasks, self.log_variances.detach(), strict=True)}


def build_loss_weighting(config: Config) -> LossWeighting:
    tasks = [task.name for task in config.tasks]
    if config.loss.weighting == "uncertainty":
        return UncertaintyWeighting(tasks)
    return LossWeighting(tasks, config.loss.weights if config.loss.weighting == "static" else None)


class WeightedModel(nn.Module):
    """The model and its loss weighting as one module: what accelerate prepares, so that a multi-process
    run averages the gradients of learned loss weights as DDP averages the model's."""

    def __init__(self, model: nn.Module, loss_weighting: LossWeighting):
        super().__init__()
        self.model = model
        self.loss_weighting = loss_weighting

    def forward(self, input_ids, attention_mask, labels: dict | None = None, word_ids=None):
        """The model's output, and the combined loss (None when no example of the batch is labelled)."""
        output = self.model(input_ids, attention_mask, labels, word_ids)
        return output, (self.loss_weighting(output.losses) if output.losses else None)


def check_finite(loss: torch.Tensor, losses: dict[str, torch.Tensor], epoch: int, step: int) -> None:
    """Stops before a NaN/inf loss reaches the weights: the optimizer has not stepped on it yet."""
    value = loss.item()
    if not math.isfinite(value):
        parts = ", ".join(f"{name}={task_loss.item():.4g}" for name, task_loss in losses.items())
        raise TrainingDiverged(
            f"epoch {epoch}, batch {step}: the training loss is {value} ({parts}); stopped before it reached "
            "the weights (lower train.encoder_lr / train.head_lr, or check the data)"
        )
