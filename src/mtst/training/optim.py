"""The optimizer and its schedule: AdamW (the kernel chosen by `train.adamw_implementation`) over the
strategy's parameter groups and the learned loss weights, with warm-up and cosine decay."""

from __future__ import annotations

import logging

import torch
from torch import nn
from transformers import get_cosine_schedule_with_warmup

from mtst.config import TrainConfig
from mtst.training.loss_weighting import WeightedModel
from mtst.training.param_groups import decay_groups
from mtst.training.rowwise import RowwiseAdamW
from mtst.training.strategies import Strategy

logger = logging.getLogger(__name__)
# A whole run under this many optimizer steps is few-shot territory: with 8 SNIPS sentences per intent an epoch is
# two steps, and 20 epochs (40 steps) left the heads far from trained while 60 did much better on dev
# (BENCHMARKS.md, "Few-shot intents").
FEW_STEPS = 100

# torch's AdamW kernels: "fused" (one kernel per parameter group, CPU and CUDA since torch 2.4), "foreach"
# (batched tensor ops, torch's default on CUDA) and "for-loop" (one parameter at a time, torch's default on
# CPU). On our 2-core CPU a step over all-MiniLM-L6-v2's 22.7M parameters took 0.026 s fused, 0.19 s
# for-loop and 0.28 s foreach (BENCHMARKS.md, training throughput): fused is the default.
ADAMW_IMPLEMENTATIONS = ("fused", "foreach", "for-loop")


def parameter_groups(model: nn.Module, encoder_lr: float, head_lr: float, weight_decay: float) -> list[dict]:
    """Encoder and heads at their own learning rates (the trainable parameters only), no decay on bias/LayerNorm."""
    groups = []
    for prefix, lr in (("encoder.", encoder_lr), ("heads.", head_lr)):
        named = [(n, p) for n, p in model.named_parameters() if n.startswith(prefix) and p.requires_grad]
        groups += decay_groups(prefix.rstrip("."), named, lr, weight_decay)
    return groups


def adamw(groups: list[dict], implementation: str = "fused") -> torch.optim.AdamW:
    """AdamW over `groups` with the chosen kernel (one of ADAMW_IMPLEMENTATIONS); the update is the same."""
    if implementation not in ADAMW_IMPLEMENTATIONS:
        raise ValueError(f"unknown AdamW implementation {implementation!r}; choose one of {ADAMW_IMPLEMENTATIONS}")
    flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False}}
    # A `rowwise` group (strategy.word_embeddings: rows) changes only the rows its gradient reaches.
    kind = RowwiseAdamW if any(group.get("rowwise") for group in groups) else torch.optim.AdamW
    return kind(groups, **flags[implementation])


def build_optimizer(
    module: WeightedModel, strategy: Strategy, cfg: TrainConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over every parameter that trains in some epoch (the strategy's groups, then the learned loss
    weights at the head LR without decay), with linear warm-up and cosine decay over `total_steps`."""
    if total_steps < FEW_STEPS:
        logger.warning(
            "the whole run is %d optimizer steps (%d epochs of %d): too few to train the heads; with few examples "
            "per label raise train.epochs (and train.patience) to take %d or more (README, 'Few examples per intent')",
            total_steps,
            cfg.epochs,
            total_steps // max(cfg.epochs, 1),
            FEW_STEPS,
        )
    groups = strategy.parameter_groups(module.model, cfg)
    loss_weights = list(module.loss_weighting.parameters())
    if loss_weights:
        groups.append({"params": loss_weights, "lr": cfg.head_lr, "weight_decay": 0.0, "name": "loss_weighting"})
    optimizer = adamw(groups, cfg.adamw_implementation)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    return optimizer, scheduler
