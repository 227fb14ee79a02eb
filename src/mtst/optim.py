"""AdamW: parameter groups (encoder and heads at their own learning rates, no decay on bias/LayerNorm) and
the optimizer built over them."""

from __future__ import annotations

import torch
from torch import nn

# torch's AdamW kernels: "fused" (one kernel per parameter group, CPU and CUDA since torch 2.4), "foreach"
# (batched tensor ops, torch's default on CUDA) and "for-loop" (one parameter at a time, torch's default on
# CPU). On our 2-core CPU a step over all-MiniLM-L6-v2's 22.7M parameters took 0.026 s fused, 0.19 s
# for-loop and 0.28 s foreach (BENCHMARKS.md, training throughput): fused is the default.
ADAMW_IMPLEMENTATIONS = ("fused", "foreach", "for-loop")


def _no_decay(name: str, parameter: nn.Parameter) -> bool:
    return parameter.ndim < 2 or "LayerNorm" in name or "layer_norm" in name


def decay_groups(name: str, named: list[tuple[str, nn.Parameter]], lr: float, weight_decay: float) -> list[dict]:
    """`name` (decayed weights) and `name.no_decay` (bias, LayerNorm) at one learning rate; empty ones left out."""
    groups = []
    for decay in (True, False):
        params = [p for n, p in named if _no_decay(n, p) != decay]
        if params:
            groups.append(
                {
                    "params": params,
                    "lr": lr,
                    "weight_decay": weight_decay if decay else 0.0,
                    "name": f"{name}{'' if decay else '.no_decay'}",
                }
            )
    return groups


def parameter_groups(model: nn.Module, encoder_lr: float, head_lr: float, weight_decay: float) -> list[dict]:
    groups = []
    for prefix, lr in (("encoder.", encoder_lr), ("heads.", head_lr)):
        named = [(n, p) for n, p in model.named_parameters() if n.startswith(prefix) and p.requires_grad]
        groups += decay_groups(prefix.rstrip("."), named, lr, weight_decay)
    return groups


def build_optimizer(groups: list[dict], implementation: str = "fused") -> torch.optim.AdamW:
    """AdamW over `groups` with the chosen kernel (one of ADAMW_IMPLEMENTATIONS); the update is the same."""
    if implementation not in ADAMW_IMPLEMENTATIONS:
        raise ValueError(f"unknown AdamW implementation {implementation!r}; choose one of {ADAMW_IMPLEMENTATIONS}")
    flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False}}
    return torch.optim.AdamW(groups, **flags[implementation])
