"""AdamW kernels: fused, foreach and for-loop make the same update; a wrong name is refused."""

from __future__ import annotations

import pytest
import torch

from mtst.training.optim import ADAMW_IMPLEMENTATIONS, adamw


def _step(implementation: str) -> list[torch.Tensor]:
    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
    groups = [
        {"params": weights[:1], "lr": 1e-2, "weight_decay": 0.01},
        {"params": weights[1:], "lr": 1e-3, "weight_decay": 0.0},
    ]
    optimizer = adamw(groups, implementation)
    for _ in range(3):
        for weight in weights:
            weight.grad = torch.randn_like(weight)
        optimizer.step()
    return [weight.detach() for weight in weights]


def test_every_kernel_makes_the_same_update():
    reference = _step("for-loop")
    for implementation in ADAMW_IMPLEMENTATIONS:
        for got, expected in zip(_step(implementation), reference, strict=True):
            torch.testing.assert_close(got, expected)


def test_an_unknown_kernel_is_refused():
    with pytest.raises(ValueError, match="fused"):
        adamw([{"params": [torch.nn.Parameter(torch.zeros(1))]}], "turbo")
