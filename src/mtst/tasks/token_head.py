"""The token kind's head: a tag score per word from the token states, its loss (class-weighted
cross-entropy or a CRF's likelihood over the words), and how the tag of each word is read off the scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from mtst.data.labels import IGNORE_ID
from mtst.model.crf import CRF
from mtst.model.subtokens import ScalarMix, pool_subtokens, pooled_width

if TYPE_CHECKING:
    from mtst.tasks.base import Task  # a TokenTask; naming it here would tie token.py and this module in a circle


class TokenHead(nn.Module):
    """Tags every token state (the logits are per sub-token emissions either way).

    The states are the last encoder layer's, or a learned mix of all `num_layers` layers
    (`encoder_layers: scalar_mix`), pooled over each word's sub-tokens as `subtoken_pooling` says.
    Without a CRF the loss is class-weighted cross-entropy that skips ignored positions; with one it is
    the CRF's negative log-likelihood over each sentence's labelled (first sub-token) positions.
    """

    def __init__(self, hidden_size: int, task: Task, num_layers: int = 1):
        super().__init__()
        self.pooling = task.subtoken_pooling
        self.layer_mix = ScalarMix(num_layers) if task.encoder_layers == "scalar_mix" else None
        self.dropout = nn.Dropout(task.dropout)
        self.intent_input = task.intent_input
        width = pooled_width(hidden_size, self.pooling) + (task.intent_input_size or 0)
        self.classifier = nn.Linear(width, len(task.labels))
        self.register_buffer("class_weights", torch.ones(len(task.labels)))
        self.label_smoothing = task.label_smoothing
        self.crf = CRF(task.labels) if task.crf else None
        # Set from train before training when the task's loss_divisor is train_words; None: the batch's words.
        self.words_per_sentence: float | None = None

    def fit_to_train(self, encoded: Sequence[list[int] | None], task: Task) -> None:
        """What train's tags set before training: the cross-entropy's class weights and the loss divisor."""
        if task.loss_divisor == "train_words":
            self.words_per_sentence = mean_labelled_words(encoded)
        if not task.crf:  # a CRF's loss is its likelihood: class weights do not apply
            weights = token_class_weights(encoded, len(task.labels), task.class_weights, task.class_weight_cap)
            self.class_weights.copy_(weights)

    def word_vectors(self, features: dict) -> torch.Tensor:
        states = features["token_embeddings"] if self.layer_mix is None else self.layer_mix(features["hidden_states"])
        vectors = pool_subtokens(states, features.get("word_ids"), self.pooling)
        if self.intent_input is None:
            return vectors
        intent = features["outputs"][self.intent_input].softmax(-1).to(vectors.dtype)
        return torch.cat([vectors, intent.unsqueeze(1).expand(-1, vectors.size(1), -1)], dim=-1)

    def forward(self, features: dict, labels: torch.Tensor | None = None):
        logits = self.classifier(self.dropout(self.word_vectors(features)))
        loss = None
        if labels is not None and (labels != IGNORE_ID).any():
            loss = self._crf_loss(logits, labels) if self.crf is not None else self._cross_entropy(logits, labels)
        return logits, loss

    def _cross_entropy(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        losses = F.cross_entropy(
            logits.float().flatten(0, 1),
            labels.flatten(),
            weight=self.class_weights,
            ignore_index=IGNORE_ID,
            label_smoothing=self.label_smoothing,
            reduction="mean" if self.words_per_sentence is None else "sum",
        )
        if self.words_per_sentence is None:
            return losses
        return losses / self._fixed_words(int((labels != IGNORE_ID).any(1).sum()))

    def _crf_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood per word, so its scale matches the per-word cross-entropy."""
        emissions, tags, mask = pack_words(logits.float(), labels)
        # pack_words keeps only the labelled sentences, one row each.
        words = mask.sum() if self.words_per_sentence is None else self._fixed_words(mask.size(0))
        return self.crf.neg_log_likelihood(emissions, tags, mask).sum() / words

    def _fixed_words(self, sentences: int) -> float:
        """The batch's labelled sentences times train's mean words per sentence."""
        return sentences * self.words_per_sentence


def pack_words(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Moves each row's labelled positions to the front, in order: [B', W, T] emissions, [B', W] tags and mask.

    Rows without a labelled position (another corpus's sentences in a multi-corpus batch) are dropped. In
    dev/test a word whose gold tag never occurred in train is unlabelled too, so its row's chain skips it:
    that changes the reported dev loss only, never the decoded tags.
    """
    is_word = labels != IGNORE_ID
    keep = is_word.any(1)
    logits, labels, is_word = logits[keep], labels[keep], is_word[keep]
    counts = is_word.sum(1)
    # A stable sort on "is not a word" lists word positions first, in sentence order.
    positions = torch.sort((~is_word).to(torch.int8), dim=1, stable=True).indices[:, : int(counts.max())]
    mask = torch.arange(positions.size(1), device=labels.device) < counts.unsqueeze(1)
    emissions = logits.gather(1, positions.unsqueeze(-1).expand(-1, -1, logits.size(-1)))
    tags = labels.gather(1, positions).masked_fill(~mask, 0)
    return emissions, tags, mask


def mean_labelled_words(encoded: Sequence[Sequence[int] | None]) -> float:
    """Mean labelled words per sentence over the sentences that have this task's labels."""
    counts = [sum(i != IGNORE_ID for i in ids) for ids in encoded if ids]
    return max(sum(counts) / max(len(counts), 1), 1.0)


def token_class_weights(
    encoded: Sequence[Sequence[int]], num_labels: int, scheme: str, cap: float | None = None
) -> torch.Tensor:
    """Cross-entropy weights from train tag frequencies, scaled so the average labelled token weighs 1.

    `inverse_sqrt` (the default) damps inverse frequency: with ~100 slot tags, some seen a handful of
    times, plain inverse frequency gives weights in the thousands and trades precision for recall.
    `cap` bounds the ratio of the heaviest to the lightest weight (the scaling keeps ratios).
    """
    if scheme == "none":
        return torch.ones(num_labels)
    counts = torch.zeros(num_labels)
    for ids in encoded:
        kept = torch.tensor([i for i in ids if i != IGNORE_ID], dtype=torch.long)
        counts += torch.bincount(kept, minlength=num_labels).float()
    frequency = counts.clamp(min=1) / counts.sum().clamp(min=1)
    weights = (1.0 / (num_labels * frequency)) ** (0.5 if scheme == "inverse_sqrt" else 1.0)
    if cap is not None:
        weights = weights.clamp(max=cap * float(weights.min()))
    return weights / (weights * frequency).sum()


def word_emissions(
    logits: torch.Tensor, word_starts: Sequence[list[int | None]]
) -> tuple[list[list[int]], torch.Tensor, torch.Tensor]:
    """The words each row keeps (those with a sub-token), their first sub-tokens' logits [B, W, T] as float32
    on the CPU, and the word mask [B, W] (a prefix per row)."""
    kept = [[word for word, start in enumerate(starts) if start is not None] for starts in word_starts]
    width = max((len(words) for words in kept), default=0)
    padded = [
        [starts[word] for word in words] + [0] * (width - len(words))
        for starts, words in zip(word_starts, kept, strict=True)
    ]
    positions = torch.tensor(padded, dtype=torch.long).view(len(kept), width)
    mask = torch.arange(width) < torch.tensor([len(words) for words in kept]).unsqueeze(1)
    rows = torch.arange(len(kept), device=logits.device).unsqueeze(1)
    # Decoding is a few small steps per word: cheaper on CPU than one device sync per step.
    return kept, logits[rows, positions.to(logits.device)].float().cpu(), mask


def tag_words(crf: CRF | None, emissions: torch.Tensor, mask: torch.Tensor) -> list[tuple[list[int], list[float]]]:
    """Per row of emissions [B, W, T], over its words (`mask` [B, W], a prefix per row): the tag of each word
    and its probability, by Viterbi + marginals with a CRF, else per-word argmax."""
    if crf is not None:
        return crf.decode_batch(emissions, mask)
    scores, indices = emissions.softmax(-1).max(-1)
    lengths = mask.sum(1).tolist()
    return [
        (row[:n], row_scores[:n]) for row, row_scores, n in zip(indices.tolist(), scores.tolist(), lengths, strict=True)
    ]
