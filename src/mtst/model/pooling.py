"""How token states become the sentence embedding the sentence heads read: the stage sentence-transformers
calls Pooling, chosen by `encoder.pooling` and recorded in the checkpoint.

mean is the default: all-MiniLM-L6-v2 was trained with it. cls suits encoders trained to summarise into
their first token; max keeps the strongest feature of any token.
"""

from __future__ import annotations

from typing import Literal

import torch

Pooling = Literal["mean", "cls", "max"]


def pool_sentence(token_embeddings: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """[B, S, H] token states and their [B, S] mask -> [B, H]; padding never counts."""
    if pooling == "cls":
        return token_embeddings[:, 0]
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    if pooling == "max":
        lowest = torch.finfo(token_embeddings.dtype).min
        return token_embeddings.masked_fill(mask == 0, lowest).max(dim=1).values
    return (token_embeddings * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
