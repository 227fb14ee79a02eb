"""How a token head builds each word's vector: which encoder layers it reads, and how a word's sub-tokens pool.

Both are options of a token task (`encoder_layers`, `subtoken_pooling`) and act inside the model's forward,
so training, evaluation, prediction and the ONNX graph all see the same word vectors. The pooled vector of a
word is placed at every one of its sub-token positions; the labels and the decoder read the first one, as
they do without pooling.
"""

from __future__ import annotations

import torch
from torch import nn

# flair's `subtoken_pooling` choices (minus `last`): the first sub-token's state (BERT's own NER recipe),
# the mean of all the word's sub-token states, or the first and last states side by side.
SUBTOKEN_POOLINGS = ("first", "mean", "first_last")
ENCODER_LAYERS = ("last", "scalar_mix")
NO_WORD = -1  # the word index of special tokens and padding in the `word_ids` input


def word_ids_input(encoded, rows: int) -> torch.Tensor:
    """The `word_ids` input [rows, S] of a fast tokenizer's padded batch (BatchEncoding): each sub-token's word
    index, NO_WORD for specials and padding."""
    words = [[NO_WORD if word is None else word for word in encoded.word_ids(row)] for row in range(rows)]
    return torch.tensor(words, dtype=torch.long)


def pooled_width(hidden_size: int, pooling: str) -> int:
    return 2 * hidden_size if pooling == "first_last" else hidden_size


def pool_subtokens(states: torch.Tensor, word_ids: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """[B, S, H] sub-token states -> [B, S, H'] where each position holds its word's pooled vector.

    `word_ids` is [B, S], the word index of each sub-token (NO_WORD for specials and padding). Positions
    outside any word keep their own state. Written as a [B, S, S] same-word matrix rather than a scatter
    over a ragged word axis so that it exports to ONNX as plain tensor ops; S is at most max_length.
    """
    if pooling == "first":
        return states
    if word_ids is None:
        raise ValueError(f"subtoken_pooling {pooling!r} needs the word index of every sub-token (word_ids)")
    is_word = word_ids != NO_WORD
    same_word = (word_ids.unsqueeze(2) == word_ids.unsqueeze(1)) & is_word.unsqueeze(2)
    same_word = same_word | torch.diag_embed(~is_word)  # a non-word position pools only itself
    if pooling == "mean":
        weights = same_word.to(states.dtype)
        return weights @ states / weights.sum(-1, keepdim=True)
    # A word's sub-tokens are contiguous, so its first and last positions are i minus the word's sub-tokens
    # before i and i plus those after. Counted with sums, not min/max over positions: onnxruntime's symbolic
    # shape inference cannot follow ReduceMin/ReduceMax, and without it its BERT fusions are skipped.
    positions = torch.arange(states.size(1), device=states.device)
    up_to = positions.unsqueeze(1) >= positions.unsqueeze(0)  # [S, S]: column j at or before row i
    first = positions - (same_word & up_to).sum(-1) + 1
    last = positions + (same_word & ~up_to).sum(-1)
    gather = lambda index: states.gather(1, index.unsqueeze(-1).expand_as(states))  # noqa: E731
    return torch.cat([gather(first), gather(last)], dim=-1)


class ScalarMix(nn.Module):
    """A learned weighted sum of every encoder layer (embeddings included): gamma * sum_l softmax(w)_l h_l.

    The layer attention of UDify (Kondratyuk & Straka 2019) and MaChAmp; it starts as the plain average.
    """

    def __init__(self, num_layers: int):
        super().__init__()
        self.layer_weights = nn.Parameter(torch.zeros(num_layers))
        self.gamma = nn.Parameter(torch.ones(1))

    def forward(self, hidden_states: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if len(hidden_states) != self.layer_weights.numel():
            raise ValueError(f"scalar mix of {self.layer_weights.numel()} layers got {len(hidden_states)}")
        weights = self.layer_weights.softmax(0).to(hidden_states[0].dtype)
        stacked = torch.stack(hidden_states, dim=0)
        return self.gamma.to(stacked.dtype) * (weights.view(-1, 1, 1, 1) * stacked).sum(0)
