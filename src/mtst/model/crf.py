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

    def _scores(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Start, transition and end scores with the BIO penalties, on `device`: the emissions' device, which is
        the CPU when inference decodes there while the weights stay on an accelerator."""
        start = (self.start + self.start_penalty).to(device)
        return start, (self.transitions + self.transition_penalty).to(device), self.end.to(device)

    def neg_log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per sentence: log Z - score(gold path). emissions [B, W, T], tags and mask [B, W]; rows need >= 1 word."""
        return self._log_partition(emissions, mask) - self._path_score(emissions, tags, mask)

    def _path_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        start, transitions, end = self._scores(emissions.device)
        mask = mask.to(emissions.dtype)
        emitted = emissions.gather(-1, tags.unsqueeze(-1)).squeeze(-1)
        score = start[tags[:, 0]] + (emitted * mask).sum(1)
        score = score + (transitions[tags[:, :-1], tags[:, 1:]] * mask[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1).long() - 1).unsqueeze(1)).squeeze(1)
        return score + end[last]

    def _log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        start, transitions, end = self._scores(emissions.device)
        alpha = start + emissions[:, 0]
        for word in range(1, emissions.size(1)):
            step = torch.logsumexp(alpha.unsqueeze(2) + transitions + emissions[:, word].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, word].unsqueeze(1), step, alpha)
        return torch.logsumexp(alpha + end, dim=1)

    @torch.no_grad()
    def best_path_neg_log_likelihood(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """-log P(Viterbi path) per row of emissions [B, W, T] (`mask` [B, W], a prefix per row, >= 1 word)."""
        emissions = emissions.float()
        paths = self._viterbi(emissions, mask, *self._scores(emissions.device))
        return self.neg_log_likelihood(emissions, paths, mask)

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor) -> tuple[list[int], list[float]]:
        """The best tag path of one sentence (emissions [W, T]) and each word's marginal probability of it."""
        mask = torch.ones(1, emissions.size(0), dtype=torch.bool, device=emissions.device)
        return self.decode_batch(emissions.unsqueeze(0), mask)[0]

    @torch.no_grad()
    def decode_batch(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[tuple[list[int], list[float]]]:
        """`decode` of every sentence of emissions [B, W, T] at once, each over its own words (`mask` [B, W], a
        prefix per row); a sentence without words gets ([], [])."""
        lengths = mask.sum(1).tolist()
        if emissions.size(1) == 0:
            return [([], []) for _ in lengths]
        emissions = emissions.float()
        scores = self._scores(emissions.device)
        paths = self._viterbi(emissions, mask, *scores)
        log_marginals = self._log_marginals(emissions, mask, *scores)
        marginals = log_marginals.gather(2, paths.unsqueeze(2)).squeeze(2).exp().float()
        return [
            (path[:length], scores[:length])
            for path, scores, length in zip(paths.tolist(), marginals.tolist(), lengths, strict=True)
        ]

    @staticmethod
    def _viterbi(
        emissions: torch.Tensor, mask: torch.Tensor, start: torch.Tensor, transitions: torch.Tensor, end: torch.Tensor
    ) -> torch.Tensor:
        """The best tag path of each row, [B, W]; past a row's last word it repeats that word's tag."""
        score, backpointers = start + emissions[:, 0], []
        # Past a row's last word its score stays put and its pointers are the identity, so the end transition
        # applies at that word and backtracking carries its tag through the padding unchanged.
        identity = torch.arange(emissions.size(2), device=emissions.device).expand_as(score)
        for word in range(1, emissions.size(1)):
            best, index = (score.unsqueeze(2) + transitions).max(1)
            real = mask[:, word].unsqueeze(1)
            score = torch.where(real, best + emissions[:, word], score)
            backpointers.append(torch.where(real, index, identity))
        path = [(score + end).argmax(1)]
        for index in reversed(backpointers):
            path.append(index.gather(1, path[-1].unsqueeze(1)).squeeze(1))
        path.reverse()
        return torch.stack(path, dim=1)

    @staticmethod
    def _log_marginals(
        emissions: torch.Tensor, mask: torch.Tensor, start: torch.Tensor, transitions: torch.Tensor, end: torch.Tensor
    ) -> torch.Tensor:
        """log P(word i has tag t | sentence) by forward-backward, [B, W, T] float64 (rows past their last word:
        padding)."""
        # Each step is a [B, T] x [T, T] product in probability space, where a logsumexp would take an exp of
        # every [B, T, T] term (most of the time at 72 tags). Scaled by the step's best score, in float64 a
        # term is lost only some 700 below it: logits are nowhere near that far apart; FORBIDDEN ones are, and
        # mean 0 anyway. (float64 is also more exact than the float32 logsumexp this replaces.)
        emissions, start, end, transitions = emissions.double(), start.double(), end.double(), transitions.double()
        column = transitions.amax(0)
        scaled = (transitions - column).exp()  # [from, to]
        alphas = [start + emissions[:, 0]]
        for word in range(1, emissions.size(1)):
            top = alphas[-1].amax(1, keepdim=True)
            step = ((alphas[-1] - top).exp() @ scaled).log() + top + column + emissions[:, word]
            alphas.append(torch.where(mask[:, word].unsqueeze(1), step, alphas[-1]))
        # Carried the same way backwards, beta is `end` from each row's last word on.
        betas = [end.expand_as(alphas[0])]
        for word in range(emissions.size(1) - 1, 0, -1):
            following = emissions[:, word] + betas[-1] + column
            top = following.amax(1, keepdim=True)
            step = ((following - top).exp() @ scaled.T).log() + top
            betas.append(torch.where(mask[:, word].unsqueeze(1), step, betas[-1]))
        betas.reverse()
        log_marginals = torch.stack(alphas, dim=1) + torch.stack(betas, dim=1)
        # The last column holds alpha + end of each row's last word: its logsumexp is the row's log Z.
        return log_marginals - torch.logsumexp(log_marginals[:, -1], dim=1)[:, None, None]
