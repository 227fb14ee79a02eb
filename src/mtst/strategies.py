"""Freezing strategies: which encoder blocks train, at which learning rate, and from which epoch.

The encoder is seen as blocks from the bottom up: depth 0 is the embeddings, depth i+1 transformer layer i.
Encoder parameters outside those blocks (BERT's pooler) never train: mean pooling does not use them, so
counting them as trainable would overstate what a run fine-tunes. Heads always train at `train.head_lr`
(`discriminative` has its own head LR). A strategy answers two questions per block; the loop calls
`on_epoch_start` and the optimizer is built from `parameter_groups`, so adding a strategy edits neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mtst.errors import ConfigError
from mtst.optim import decay_groups

if TYPE_CHECKING:
    from torch import nn

    from mtst.config import StrategyConfig, TrainConfig

STRATEGY_SPECS = ("full", "frozen", "discriminative", "freeze-lower:N", "gradual", "llrd:DECAY")
# Where the transformer layers sit in the encoder families we know (BERT/RoBERTa/MPNet, DistilBERT, others).
LAYER_PATHS = ("encoder.layer", "transformer.layer", "layers", "encoder.layers")


def encoder_blocks(encoder: nn.Module) -> list[nn.Module]:
    """[embeddings, layer 0, ..., layer L-1]: the encoder's blocks from the bottom up."""
    from torch import nn

    layers = None
    for path in LAYER_PATHS:
        node = encoder
        for part in path.split("."):
            node = getattr(node, part, None)
        if isinstance(node, nn.ModuleList):
            layers = node
            break
    embeddings = getattr(encoder, "embeddings", None)
    if layers is None or embeddings is None:
        raise ConfigError(
            f"freezing strategies cannot find the embeddings and layers of a {type(encoder).__name__} "
            f"(looked for `embeddings` and one of {', '.join(LAYER_PATHS)})"
        )
    return [embeddings, *layers]


@dataclass(frozen=True)
class Strategy:
    """`full`: every block trains at `train.encoder_lr`, the heads at `train.head_lr` (as in the core)."""

    spec: str
    options: StrategyConfig | None = None

    def block_lr(self, depth: int, blocks: int, cfg: TrainConfig) -> float | None:
        """The block's learning rate, or None when it never trains."""
        return cfg.encoder_lr

    def head_lr(self, cfg: TrainConfig) -> float:
        return cfg.head_lr

    def block_trains(self, depth: int, blocks: int, epoch: int) -> bool:
        """Whether the block trains during `epoch` (1-based); a pure function of the epoch, so resume needs no state."""
        return True

    @property
    def changes_during_training(self) -> bool:
        return False

    def parameter_groups(self, model: nn.Module, cfg: TrainConfig) -> list[dict]:
        """AdamW groups for every parameter that trains in some epoch; no decay on bias and LayerNorm."""
        names = {id(p): n for n, p in model.named_parameters()}
        blocks = encoder_blocks(model.encoder)
        frozen = {id(p) for p in self.frozen_parameters(model)}
        groups = []
        for depth, block in enumerate(blocks):
            lr = self.block_lr(depth, len(blocks), cfg)
            if lr is not None:
                label = "encoder.embeddings" if depth == 0 else f"encoder.layer.{depth - 1}"
                named = [(names[id(p)], p) for p in block.parameters() if id(p) not in frozen]
                groups += decay_groups(label, named, lr, cfg.weight_decay)
        heads = [(n, p) for n, p in model.named_parameters() if n.startswith("heads.")]
        return groups + decay_groups("heads", heads, self.head_lr(cfg), cfg.weight_decay)

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        """Sets requires_grad per block for `epoch`; frozen blocks run in eval mode (no dropout noise)."""
        blocks = encoder_blocks(model.encoder)
        trains = [
            self.block_lr(depth, len(blocks), _ANY_LR) is not None and self.block_trains(depth, len(blocks), epoch)
            for depth in range(len(blocks))
        ]
        # The pooler and anything else outside the blocks stays frozen, and out of training mode.
        model.encoder.requires_grad_(False)
        model.encoder.train(False)
        for block, train in zip(blocks, trains, strict=True):
            block.requires_grad_(train)
            block.train(train and model.training)
        for parameter in self.frozen_parameters(model):
            parameter.requires_grad_(False)
        for parameter in model.heads.parameters():
            parameter.requires_grad_(True)

    def frozen_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """Encoder parameters that never train whatever their block does: the word embeddings when
        `strategy.train_word_embeddings` is false (a frozen matrix costs no gradient and no AdamW update)."""
        if self.options is None or self.options.train_word_embeddings:
            return []
        embeddings = model.encoder.get_input_embeddings()
        return [embeddings.weight] if embeddings is not None else []


class _AnyLR:
    """Stands in for TrainConfig where only "does this block ever train" is asked."""

    encoder_lr = head_lr = 1.0


_ANY_LR = _AnyLR()


@dataclass(frozen=True)
class Frozen(Strategy):
    """The encoder never trains; only the heads, at `train.head_lr`."""

    def block_lr(self, depth, blocks, cfg):
        return None


@dataclass(frozen=True)
class Discriminative(Strategy):
    """Every block trains at `strategy.discriminative_encoder_lr` (5e-5), heads at `..._head_lr` (1e-3)."""

    def block_lr(self, depth, blocks, cfg):
        return self.options.discriminative_encoder_lr

    def head_lr(self, cfg):
        return self.options.discriminative_head_lr


@dataclass(frozen=True)
class FreezeLower(Strategy):
    """Embeddings and the lowest N layers never train; the layers above train at `train.encoder_lr`."""

    layers: int = 0

    def block_lr(self, depth, blocks, cfg):
        if self.layers > blocks - 1:
            raise ConfigError(f"strategy {self.spec}: the encoder has only {blocks - 1} layers")
        return None if depth <= self.layers else cfg.encoder_lr


@dataclass(frozen=True)
class Gradual(Strategy):
    """ULMFiT-style: epoch 1 trains the heads; every `gradual_epochs_per_block` epochs one more block
    (top layer first, embeddings last) starts training at `train.encoder_lr`."""

    def block_trains(self, depth, blocks, epoch):
        unfrozen = (epoch - 1) // self.options.gradual_epochs_per_block
        return depth >= blocks - unfrozen

    @property
    def changes_during_training(self) -> bool:
        return True


@dataclass(frozen=True)
class LayerwiseDecay(Strategy):
    """Layer-wise LR decay: the top layer at `train.encoder_lr`, each block below at the one above x DECAY."""

    decay: float = 1.0

    def block_lr(self, depth, blocks, cfg):
        return cfg.encoder_lr * self.decay ** (blocks - 1 - depth)


def parse_strategy(spec: str, options: StrategyConfig | None = None) -> Strategy:
    """`full`, `frozen`, `discriminative`, `freeze-lower:N`, `gradual` or `llrd:DECAY` as an object."""
    simple = {"full": Strategy, "frozen": Frozen, "discriminative": Discriminative, "gradual": Gradual}
    if spec in simple:
        return simple[spec](spec, options)
    lower = re.fullmatch(r"freeze-lower:(\d+)", spec)
    if lower:
        return FreezeLower(spec, options, int(lower.group(1)))
    llrd = re.fullmatch(r"llrd:([0-9]*\.?[0-9]+)", spec)
    if llrd and 0 < float(llrd.group(1)) <= 1:
        return LayerwiseDecay(spec, options, float(llrd.group(1)))
    raise ValueError(f"unknown strategy {spec!r}; choose one of {', '.join(STRATEGY_SPECS)} (0 < DECAY <= 1)")


def build_strategy(options: StrategyConfig) -> Strategy:
    try:
        return parse_strategy(options.name, options)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def trains_encoder(strategy: Strategy, model: nn.Module, epochs: int) -> bool:
    """Whether any encoder block trains in some epoch (else every head is a linear probe on frozen features)."""
    blocks = len(encoder_blocks(model.encoder))
    return any(
        strategy.block_lr(d, blocks, _ANY_LR) is not None and strategy.block_trains(d, blocks, e)
        for d in range(blocks)
        for e in range(1, epochs + 1)
    )
