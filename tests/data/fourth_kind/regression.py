"""`regression`: one number per sentence from the pooled embedding (MSE loss, mean absolute error).

Not shipped: tests/test_fourth_kind.py drops this module into a copy of the package, adds one registry line,
and trains, evaluates and predicts with it, proving a new kind touches only tasks/ and the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from mtst.tasks.base import Task, TaskConfigBase


class RegressionHead(nn.Module):
    def __init__(self, hidden_size: int, task: RegressionTask):
        super().__init__()
        self.dropout = nn.Dropout(task.dropout)
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, features: dict, labels: torch.Tensor | None = None):
        values = self.linear(self.dropout(features["sentence_embedding"]))
        known = None if labels is None else ~labels.isnan()
        loss = F.mse_loss(values[:, 0][known], labels[known]) if known is not None and known.any() else None
        return values, loss


class RegressionTaskConfig(TaskConfigBase):
    DEFAULT_FIELD: ClassVar[str] = "rating"
    type: Literal["regression"] = "regression"


class RegressionTask(RegressionTaskConfig, Task):
    MAIN_METRIC = "neg_mae"  # `score` averages the main metrics, so higher must be better
    OUTPUT_SHAPE = "float32 [batch, 1]"

    @classmethod
    def labels_in(cls, config, values: Sequence[str]) -> list[str]:
        return ["value"]  # one output; a task's label list is never empty

    def encode(self, value: str, word_ids) -> float:
        return float(value)

    def collate(self, encoded: Sequence[float | None], width: int) -> torch.Tensor:
        return torch.tensor([float("nan") if v is None else v for v in encoded])

    def head(self, encoder_config) -> nn.Module:
        return RegressionHead(encoder_config.hidden_size, self)

    def decode(self, logits: torch.Tensor, word_starts, decoded: dict, head=None) -> float:
        return float(logits[0])

    def gold(self, value: str) -> float:
        return float(value)

    def predicted(self, prediction: float) -> float:
        return prediction

    def as_prediction(self, value: str) -> float:
        return float(value)

    def metrics(self, gold: Sequence[str], predicted: Sequence[float]) -> dict:
        error = sum(abs(float(g) - p) for g, p in zip(gold, predicted, strict=True)) / max(len(gold), 1)
        return {"neg_mae": -error, "mae": error}

    def add_to_json(self, result: dict, example, prediction: float, first: bool) -> None:
        result["value" if first else self.name] = round(prediction, 4)

    def describe(self, result: dict, first: bool) -> str:
        return f"{result['value' if first else self.name]:.2f}"
