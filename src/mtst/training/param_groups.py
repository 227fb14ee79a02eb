"""The encoder's blocks from the bottom up, and AdamW's parameter groups (weight decay on weights only).

The strategies (strategies.py) decide which block trains at which learning rate; this module only finds the
blocks in an encoder of any family and splits a set of parameters into decayed and undecayed groups.
"""

from __future__ import annotations

from torch import nn

from mtst.errors import ConfigError

# Where the transformer layers sit in the encoder families we know (BERT/RoBERTa/MPNet, DistilBERT, others).
LAYER_PATHS = ("encoder.layer", "transformer.layer", "layers", "encoder.layers")


def encoder_blocks(encoder: nn.Module) -> list[nn.Module]:
    """[embeddings, layer 0, ..., layer L-1]: the encoder's blocks from the bottom up."""
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
