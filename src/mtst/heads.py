"""Pooling and the task heads. Every head: `forward(features, labels=None) -> (logits, loss)`."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mtst.data.labels import IGNORE_ID


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over tokens: the pooling all-MiniLM-L6-v2 was trained with."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    return (token_embeddings * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class SentenceHead(nn.Module):
    """Classifies the pooled sentence embedding."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, features: dict, labels: torch.Tensor | None = None):
        logits = self.classifier(self.dropout(features["sentence_embedding"]))
        loss = None
        if labels is not None and (labels != IGNORE_ID).any():
            loss = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_ID)
        return logits, loss


class TokenHead(nn.Module):
    """Tags every token state; the loss is class-weighted and skips ignored positions."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)
        self.register_buffer("class_weights", torch.ones(num_labels))

    def forward(self, features: dict, labels: torch.Tensor | None = None):
        logits = self.classifier(self.dropout(features["token_embeddings"]))
        loss = None
        if labels is not None and (labels != IGNORE_ID).any():
            loss = F.cross_entropy(
                logits.float().flatten(0, 1), labels.flatten(), weight=self.class_weights, ignore_index=IGNORE_ID
            )
        return logits, loss


HEADS: dict[str, type[nn.Module]] = {"sentence": SentenceHead, "token": TokenHead}
