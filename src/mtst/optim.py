"""AdamW parameter groups: encoder and heads at their own learning rates, no decay on bias/LayerNorm."""

from __future__ import annotations

from torch import nn


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
