"""How unsure a head is about one sentence, for choosing what to label next (`mtst suggest`).

Each kind's `uncertainty` calls these: normalised entropy and the top-two margin of a distribution, MNLP
(Shen et al. 2017: the best tag sequence's negative log probability per word), and BALD (Houlsby et al.
2011: the mutual information between prediction and weights, from MC-dropout samples of the head).
"""

from __future__ import annotations

import math

import torch


def entropy(probs: torch.Tensor) -> float:
    """Mean entropy of the distributions on the last dimension."""
    return float(-(probs * probs.clamp(min=1e-12).log()).sum(-1).mean())


def distribution_uncertainty(probs: torch.Tensor) -> dict[str, float]:
    """1 - (p1 - p2) and the entropy over log(labels), both in [0, 1]."""
    top = probs.topk(min(2, probs.numel())).values.tolist() + [0.0]
    return {"margin": 1.0 - (top[0] - top[1]), "entropy": entropy(probs) / math.log(max(probs.numel(), 2))}


def bald(samples: list[torch.Tensor]) -> float:
    """H(mean p) - mean H(p) over MC-dropout samples of the same distributions, averaged over them."""
    if not samples:
        return 0.0
    stacked = torch.stack(samples)
    return entropy(stacked.mean(0)) - sum(entropy(p) for p in stacked) / len(samples)


def mnlp(emissions: torch.Tensor, crf=None) -> float:
    """-log P(best tag sequence) / words: with a CRF its Viterbi path's probability, else the product of each
    word's most likely tag. `emissions` [W, T]."""
    return mnlp_batch(emissions.unsqueeze(0), torch.ones(1, emissions.size(0), dtype=torch.bool), crf)[0]


def mnlp_batch(emissions: torch.Tensor, mask: torch.Tensor, crf=None) -> list[float]:
    """`mnlp` of each row of emissions [B, W, T] over its words (`mask` [B, W], a prefix per row), in one
    Viterbi and one forward pass for the whole batch; a row without words gets 0."""
    lengths = mask.sum(1)
    if crf is None:
        best = -emissions.float().log_softmax(-1).max(-1).values
        total = (best * mask).sum(1)
    else:
        total = torch.zeros(len(lengths))
        some = lengths > 0
        if some.any():
            total[some] = crf.best_path_neg_log_likelihood(emissions[some], mask[some]).float()
    return (total / lengths.clamp(min=1)).tolist()


def word_uncertainties(emissions: torch.Tensor, mask: torch.Tensor, sampled: list[torch.Tensor], crf) -> list[dict]:
    """Per row of emissions [B, W, T] (`mask` [B, W], a prefix per row): MNLP of its best tag path and BALD over
    `sampled` per-word distributions (MC-dropout passes); a row without words has nothing to be unsure about: {}."""
    scores = mnlp_batch(emissions, mask, crf)
    lengths = mask.sum(1).tolist()
    return [{"mnlp": scores[r], "bald": bald([p[r, :n] for p in sampled])} if n else {} for r, n in enumerate(lengths)]
