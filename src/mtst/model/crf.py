"""A linear-chain CRF over the words of a sentence, with BIO transitions that can never be taken.

Written here rather than taken from `pytorch-crf` (last release 2019, unmaintained): we also need per-word
marginal probabilities (the scores users see) and hard BIO constraints, which it has not, and the whole
thing is the forward algorithm, Viterbi and forward-backward on [batch, words, tags] tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# Added to the score of a forbidden transition: exp(-10000) is 0 in float32, and finite numbers keep the
# forward algorithm free of inf - inf.
FORBIDDEN = -1e4


def bio_constraints(labels: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Penalties for transitions BIO forbids: `I-X` may only follow `B-X` or `I-X`, and cannot start.

    Returns (start [tags], transitions [from, to]); labels that are not B-/I- shaped constrain nothing.
    """
    start = torch.zeros(len(labels))
    transitions = torch.zeros(len(labels), len(labels))
    for to, label in enumerate(labels):
        if not label.startswith("I-"):
            continue
        kind = label[2:]
        start[to] = FORBIDDEN
        for source, previous in enumerate(labels):
            if previous not in (f"B-{kind}", f"I-{kind}"):
                transitions[source, to] = FORBIDDEN
    return start, transitions


class CRF(nn.Module):
    """Scores a tag sequence as emissions + learned transitions; `mask` marks real words (a prefix per row)."""

    def __init__(self, labels: Sequence[str]):
        super().__init__()
        size = len(labels)
        self.start = nn.Parameter(torch.zeros(size))
        self.end = nn.Parameter(torch.zeros(size))
        self.transitions = nn.Parameter(torch.zeros(size, size))
        start_penalty, transition_penalty = bio_constraints(labels)
        # Buffers, not parameters: saved with the weights, never trained.
        self.register_buffer("start_penalty", start_penalty)
        self.register_buffer("transition_penalty", transition_penalty)

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.start + self.start_penalty, self.transitions + self.transition_penalty

    def neg_log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per sentence: log Z - score(gold path). emissions [B, W, T], tags and mask [B, W]; rows need >= 1 word."""
        return self._log_partition(emissions, mask) - self._path_score(emissions, tags, mask)

    def _path_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        start, transitions = self._scores()
        mask = mask.to(emissions.dtype)
        emitted = emissions.gather(-1, tags.unsqueeze(-1)).squeeze(-1)
        score = start[tags[:, 0]] + (emitted * mask).sum(1)
        score = score + (transitions[tags[:, :-1], tags[:, 1:]] * mask[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1).long() - 1).unsqueeze(1)).squeeze(1)
        return score + self.end[last]

    def _log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        start, transitions = self._scores()
        alpha = start + emissions[:, 0]
        for word in range(1, emissions.size(1)):
            step = torch.logsumexp(alpha.unsqueeze(2) + transitions + emissions[:, word].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, word].unsqueeze(1), step, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor) -> tuple[list[int], list[float]]:
        """The best tag path of one sentence (emissions [W, T]) and each word's marginal probability of it."""
        if emissions.size(0) == 0:
            return [], []
        emissions = emissions.float()
        start, transitions = self._scores()
        score, backpointers = start + emissions[0], []
        for word in range(1, emissions.size(0)):
            best, index = (score.unsqueeze(1) + transitions).max(0)
            score = best + emissions[word]
            backpointers.append(index)
        path = [int((score + self.end).argmax())]
        for index in reversed(backpointers):
            path.append(int(index[path[-1]]))
        path.reverse()
        marginals = self._marginals(emissions, start, transitions)
        return path, [float(marginals[word, tag]) for word, tag in enumerate(path)]

    def _marginals(self, emissions: torch.Tensor, start: torch.Tensor, transitions: torch.Tensor) -> torch.Tensor:
        """P(word i has tag t | sentence) by forward-backward, [W, T]."""
        words = emissions.size(0)
        alphas = [start + emissions[0]]
        for word in range(1, words):
            alphas.append(torch.logsumexp(alphas[-1].unsqueeze(1) + transitions, dim=0) + emissions[word])
        betas = [self.end.expand_as(start)]
        for word in range(words - 1, 0, -1):
            betas.append(torch.logsumexp(transitions + (emissions[word] + betas[-1]).unsqueeze(0), dim=1))
        betas.reverse()
        log_marginals = torch.stack(alphas) + torch.stack(betas)
        return (log_marginals - torch.logsumexp(log_marginals[-1], dim=0)).exp()
