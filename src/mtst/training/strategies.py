"""Freezing strategies: which encoder blocks train, at which learning rate, and from which epoch.

The encoder is seen as blocks from the bottom up: depth 0 is the embeddings, depth i+1 transformer layer i.
Encoder parameters outside those blocks (BERT's pooler) never train: mean pooling does not use them, so
counting them as trainable would overstate what a run fine-tunes. Heads always train at `train.head_lr`
(`discriminative` has its own head LR). A strategy answers two questions per block; the loop calls
`on_epoch_start` and the optimizer is built from `parameter_groups`, so adding a strategy edits neither.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Annotated, Literal, Protocol, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from mtst.errors import ConfigError, validation_problem
from mtst.training.param_groups import decay_groups, encoder_blocks

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)
# The short forms (`--strategy llrd:0.8`); in YAML the same as `strategy: {name: llrd, decay: 0.8}`.
STRATEGY_SPECS = ("full", "frozen", "discriminative", "freeze-lower:N", "gradual", "llrd:DECAY")
# AdamW moves each weight by about the learning rate per step: far above 1 nothing can train, and near
# float32's limit the update itself overflows (a RuntimeError inside torch instead of a config error).
MAX_LR = 10.0


class LearningRates(Protocol):
    """What a strategy reads of the training settings (`TrainConfig` has these)."""

    encoder_lr: float
    head_lr: float
    weight_decay: float


class Strategy(BaseModel):
    """`full`: every block trains at `train.encoder_lr`, the heads at `train.head_lr` (as in the core)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    name: Literal["full"] = "full"
    # The 30,522 x 384 word-embedding matrix is half of all-MiniLM-L6-v2's parameters; a batch uses a few
    # hundred of its rows. `frozen` skips its gradient and AdamW update (no measurable time saved at two threads
    # once AdamW was fused, BENCHMARKS.md); `rows` changes only the rows of the batch's words (training/rowwise.py).
    # The rest of the embeddings block trains in every case; `train_word_embeddings: false` still reads as frozen.
    word_embeddings: Literal["full", "rows", "frozen"] = "full"

    @model_validator(mode="before")
    @classmethod
    def _older_spelling(cls, data):
        if not isinstance(data, dict) or "train_word_embeddings" not in data:
            return data
        data = dict(data)
        try:  # pydantic's reading of a bool, as when this was a bool field ("false", 0, "no" ...)
            trains = _BOOL.validate_python(data.pop("train_word_embeddings"))
        except ValidationError:
            raise ValueError("strategy: train_word_embeddings must be true or false") from None
        if not trains:
            if data.get("word_embeddings", "full") == "rows":
                raise ValueError("strategy: `train_word_embeddings: false` freezes what `word_embeddings: rows` trains")
            data["word_embeddings"] = "frozen"
        return data

    @property
    def train_word_embeddings(self) -> bool:
        return self.word_embeddings != "frozen"

    @property
    def spec(self) -> str:
        """The short form, as `--strategy` takes it and run folders are named."""
        return self.name

    def block_lr(self, depth: int, blocks: int, lrs: LearningRates) -> float | None:
        """The block's learning rate, or None when it never trains."""
        return lrs.encoder_lr

    def heads_lr(self, lrs: LearningRates) -> float:
        return lrs.head_lr

    def block_trains(self, depth: int, blocks: int, epoch: int) -> bool:
        """Whether the block trains during `epoch` (1-based); a pure function of the epoch, so resume needs no state."""
        return True

    @property
    def changes_during_training(self) -> bool:
        return False

    def parameter_groups(self, model: nn.Module, lrs: LearningRates) -> list[dict]:
        """AdamW groups for every parameter that trains in some epoch; no decay on bias and LayerNorm."""
        names = {id(p): n for n, p in model.named_parameters()}
        blocks = encoder_blocks(model.encoder)
        frozen = {id(p) for p in self.frozen_parameters(model)}
        groups = []
        for depth, block in enumerate(blocks):
            lr = self.block_lr(depth, len(blocks), lrs)
            if lr is not None:
                label = "encoder.embeddings" if depth == 0 else f"encoder.layer.{depth - 1}"
                named = [(names[id(p)], p) for p in block.parameters() if id(p) not in frozen]
                rows = self._rowwise(model, named) if depth == 0 else []
                named = [(n, p) for n, p in named if all(p is not q for q in rows)]
                groups += decay_groups(label, named, lr, lrs.weight_decay)
                if rows:  # decayed like any weight matrix; mtst.training.optim picks the row-wise AdamW for it
                    groups.append(
                        {
                            "params": rows,
                            "lr": lr,
                            "weight_decay": lrs.weight_decay,
                            "name": "encoder.word_embeddings.rows",
                            "rowwise": True,
                        }
                    )
        heads = [(n, p) for n, p in model.named_parameters() if n.startswith("heads.")]
        return groups + decay_groups("heads", heads, self.heads_lr(lrs), lrs.weight_decay)

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        """Sets requires_grad per block for `epoch`; frozen blocks run in eval mode (no dropout noise)."""
        blocks = encoder_blocks(model.encoder)
        trains = [
            self._ever_trains(depth, len(blocks)) and self.block_trains(depth, len(blocks), epoch)
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

    def _ever_trains(self, depth: int, blocks: int) -> bool:
        return self.block_lr(depth, blocks, _ANY_LR) is not None

    def warn_if_encoder_frozen(self, model: nn.Module, epochs: int) -> None:
        if not self.trains_encoder(model, epochs):
            logger.warning(
                "strategy %s trains no encoder layer: every task is a linear head over frozen features", self.spec
            )

    def trains_encoder(self, model: nn.Module, epochs: int) -> bool:
        """Whether any encoder block trains in some epoch (else every head is a linear probe on frozen features)."""
        blocks = len(encoder_blocks(model.encoder))
        return any(
            self._ever_trains(d, blocks) and self.block_trains(d, blocks, e)
            for d in range(blocks)
            for e in range(1, epochs + 1)
        )

    def frozen_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """Encoder parameters that never train whatever their block does: the word embeddings when
        `word_embeddings` is frozen (a frozen matrix costs no gradient and no AdamW update)."""
        return _word_embeddings(model) if self.word_embeddings == "frozen" else []

    def _rowwise(self, model: nn.Module, named: list) -> list[nn.Parameter]:
        """The word-embedding matrix, when it trains row-wise and is among `named`."""
        trained = {id(p) for _, p in named}
        return [p for p in _word_embeddings(model) if id(p) in trained] if self.word_embeddings == "rows" else []


def _word_embeddings(model: nn.Module) -> list[nn.Parameter]:
    embeddings = model.encoder.get_input_embeddings()
    return [embeddings.weight] if embeddings is not None else []


class _AnyLR:
    """Stands in for the training settings where only "does this block ever train" is asked."""

    encoder_lr = head_lr = 1.0
    weight_decay = 0.0


_ANY_LR = _AnyLR()
_BOOL = TypeAdapter(bool)


class Frozen(Strategy):
    """The encoder never trains; only the heads, at `train.head_lr`."""

    name: Literal["frozen"] = "frozen"

    def block_lr(self, depth, blocks, lrs):
        return None


class Discriminative(Strategy):
    """Every block trains at its own `encoder_lr` (5e-5), the heads at `head_lr` (1e-3)."""

    name: Literal["discriminative"] = "discriminative"
    encoder_lr: float = Field(5e-5, gt=0, le=MAX_LR)
    head_lr: float = Field(1e-3, gt=0, le=MAX_LR)

    def block_lr(self, depth, blocks, lrs):
        return self.encoder_lr

    def heads_lr(self, lrs):
        return self.head_lr


class FreezeLower(Strategy):
    """Embeddings and the lowest `layers` layers never train; the layers above train at `train.encoder_lr`."""

    name: Literal["freeze-lower"] = "freeze-lower"
    layers: int = Field(ge=0)

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.layers}"

    def block_lr(self, depth, blocks, lrs):
        if self.layers > blocks - 1:
            raise ConfigError(f"strategy {self.spec}: the encoder has only {blocks - 1} layers")
        return None if depth <= self.layers else lrs.encoder_lr


class Gradual(Strategy):
    """ULMFiT-style: epoch 1 trains the heads; every `epochs_per_block` epochs one more block
    (top layer first, embeddings last) starts training at `train.encoder_lr`."""

    name: Literal["gradual"] = "gradual"
    epochs_per_block: int = Field(1, ge=1)

    def block_trains(self, depth, blocks, epoch):
        unfrozen = (epoch - 1) // self.epochs_per_block
        return depth >= blocks - unfrozen

    @property
    def changes_during_training(self) -> bool:
        return True


class LayerwiseDecay(Strategy):
    """Layer-wise LR decay: the top layer at `train.encoder_lr`, each block below at the one above x `decay`."""

    name: Literal["llrd"] = "llrd"
    decay: float = Field(gt=0, le=1)

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.decay:g}"

    def block_lr(self, depth, blocks, lrs):
        return lrs.encoder_lr * self.decay ** (blocks - 1 - depth)


# A run's config.yaml written before strategies were typed: {name: "llrd:0.8", discriminative_encoder_lr: ...}.
_LEGACY_OPTIONS = {
    "discriminative_encoder_lr": ("discriminative", "encoder_lr"),
    "discriminative_head_lr": ("discriminative", "head_lr"),
    "gradual_epochs_per_block": ("gradual", "epochs_per_block"),
}


def _from_legacy(value: dict) -> dict:
    parsed = short_form(value["name"]) if isinstance(value.get("name"), str) else value
    options = {key: option for key, option in value.items() if key not in _LEGACY_OPTIONS and key != "name"}
    for key, (kind, option) in _LEGACY_OPTIONS.items():
        if key in value and parsed.get("name") == kind:
            options[option] = value[key]
    return {**parsed, **options}


def short_form(value):
    """`llrd:0.8` as {"name": "llrd", "decay": 0.8}; a mapping or anything else passes through unchanged."""
    if isinstance(value, dict) and "name" not in value:
        return {"name": "full", **value}  # `strategy: {word_embeddings: rows}`: the default strategy
    if isinstance(value, dict) and (set(value) & set(_LEGACY_OPTIONS) or ":" in str(value.get("name", ""))):
        return _from_legacy(value)
    if not isinstance(value, str):
        return value
    if value in ("full", "frozen", "discriminative", "gradual"):
        return {"name": value}
    lower = re.fullmatch(r"freeze-lower:(\d+)", value)
    if lower:
        return {"name": "freeze-lower", "layers": int(lower.group(1))}
    llrd = re.fullmatch(r"llrd:([0-9]*\.?[0-9]+)", value)
    if llrd and 0 < float(llrd.group(1)) <= 1:
        return {"name": "llrd", "decay": float(llrd.group(1))}
    raise ValueError(f"unknown strategy {value!r}; choose one of {', '.join(STRATEGY_SPECS)} (0 < DECAY <= 1)")


StrategyConfig = Annotated[
    Union[Strategy, Frozen, Discriminative, FreezeLower, Gradual, LayerwiseDecay],  # noqa: UP007
    Field(discriminator="name"),
    BeforeValidator(short_form),
]
_ADAPTER = TypeAdapter(StrategyConfig)


def parse_strategy(value: str | dict) -> Strategy:
    """A strategy from its short form (`llrd:0.8`) or its YAML mapping; ConfigError naming the choices."""
    try:
        return _ADAPTER.validate_python(value)
    except ValidationError as error:
        first = error.errors()[0]
        raise ConfigError(validation_problem(first)) from None
