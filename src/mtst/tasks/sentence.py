"""`sentence`: one label per sentence from the mean-pooled embedding (softmax, cross-entropy, accuracy)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field
from sklearn.metrics import accuracy_score
from sklearn.metrics import classification_report as label_report
from torch import nn
from torch.nn import functional as F

from mtst.data.labels import IGNORE_ID
from mtst.tasks.base import Task, TaskConfigBase
from mtst.tasks.metrics import plain
from mtst.tasks.uncertainty import bald, distribution_uncertainty


@dataclass
class SentencePrediction:
    label: str
    score: float
    # Every label with its probability, most probable first (Rasa's `intent_ranking`, the fallback's margin).
    ranking: tuple[tuple[str, float], ...] = ()


class SentenceHead(nn.Module):
    """Classifies the pooled sentence embedding."""

    def __init__(self, hidden_size: int, task: SentenceTask):
        super().__init__()
        self.dropout = nn.Dropout(task.dropout)
        self.classifier = nn.Linear(hidden_size, len(task.labels))
        self.label_smoothing = task.label_smoothing

    def forward(self, features: dict, labels: torch.Tensor | None = None):
        logits = self.classifier(self.dropout(features["sentence_embedding"]))
        return logits, (self.loss(logits, labels) if labels is not None else None)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        if not (labels != IGNORE_ID).any():
            return None
        return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_ID, label_smoothing=self.label_smoothing)


class SentenceTaskConfig(TaskConfigBase):
    type: Literal["sentence"] = "sentence"


class SentenceTask(SentenceTaskConfig, Task):
    MAIN_METRIC = "accuracy"

    # Rasa's FallbackClassifier: a label scored under `confidence_threshold`, or less than `ambiguity_margin`
    # ahead of the runner-up, is given as `fallback_label` (the model's own label kept as `fallback_from`).
    confidence_threshold: float | None = Field(None, ge=0.0, le=1.0)
    ambiguity_margin: float | None = Field(None, ge=0.0, le=1.0)
    fallback_label: str = Field("nlu_fallback", min_length=1)

    @property
    def fits_temperature(self) -> bool:
        return True

    def with_thresholds(self, thresholds: dict) -> SentenceTask:
        keys = ("confidence_threshold", "ambiguity_margin", "fallback_label")
        given = {key: thresholds[key] for key in keys if thresholds.get(key) is not None}
        return type(self).model_validate({**self.model_dump(), **given}) if given else self

    def confidence_rules(self) -> list[str]:
        rules = []
        if self.confidence_threshold is not None:
            rules.append(f"`{self.fallback_label}` under confidence {self.confidence_threshold}")
        if self.ambiguity_margin is not None:
            rules.append(f"`{self.fallback_label}` when the top two labels are within {self.ambiguity_margin}")
        return rules

    def falls_back(self, prediction: SentencePrediction) -> bool:
        if self.confidence_threshold is not None and prediction.score < self.confidence_threshold:
            return True
        if self.ambiguity_margin is None or len(prediction.ranking) < 2:
            return False
        return prediction.ranking[0][1] - prediction.ranking[1][1] < self.ambiguity_margin

    @classmethod
    def labels_in(cls, config, values: Sequence[str]) -> list[str]:
        return sorted(set(values))

    def encode(self, value: str, word_ids) -> int:
        return self.label_to_id.get(value, IGNORE_ID)  # a label unseen in train is scored, never learned

    def collate(self, encoded: Sequence[int | None], width: int) -> torch.Tensor:
        return torch.tensor([IGNORE_ID if ids is None else ids for ids in encoded], dtype=torch.long)

    def head(self, encoder_config) -> nn.Module:
        return SentenceHead(encoder_config.hidden_size, self)

    def decode(self, logits: torch.Tensor, word_starts, decoded: dict, head=None) -> SentencePrediction:
        probabilities = (logits.float() / self.temperature).softmax(-1)
        scores, indices = probabilities.sort(descending=True)
        ranking = tuple((self.labels[i], s) for i, s in zip(indices.tolist(), scores.tolist(), strict=True))
        return SentencePrediction(ranking[0][0], ranking[0][1], ranking)

    def uncertainty(self, logits: torch.Tensor, samples: list[torch.Tensor], word_starts, head) -> dict[str, float]:
        values = distribution_uncertainty(logits.float().softmax(-1))
        return {**values, "bald": bald([sample.float().softmax(-1) for sample in samples])}

    def predicted(self, prediction: SentencePrediction) -> str:
        return prediction.label

    def metrics(self, gold: Sequence[str], predicted: Sequence[str]) -> dict:
        return {
            "accuracy": float(accuracy_score(gold, predicted)),
            "report": plain(label_report(gold, predicted, output_dict=True, zero_division=0)),
        }

    def as_prediction(self, value: str) -> SentencePrediction:
        return SentencePrediction(value, 1.0)

    def add_to_json(self, result: dict, example, prediction: SentencePrediction, first: bool) -> None:
        given = {"label": prediction.label, "score": round(prediction.score, 4)}
        if self.falls_back(prediction):
            given.update(label=self.fallback_label, fallback_from=prediction.label)
        if first:
            result.update(given)
        else:
            result[self.name] = given

    def add_ranking(self, result: dict, prediction: SentencePrediction, first: bool, top: int) -> None:
        ranked = [{"label": label, "score": round(score, 4)} for label, score in prediction.ranking[:top]]
        (result if first else result[self.name])["ranking"] = ranked

    def label_scores(self, result: dict, first: bool) -> dict[str, float]:
        given = result if first else result[self.name]
        fallback = {given["label"]: given["score"]} if "fallback_from" in given else {}
        return {**fallback, **{item["label"]: item["score"] for item in given.get("ranking", [])}}

    def describe(self, result: dict, first: bool) -> str:
        value = result if first else result[self.name]
        return f"{value['label']} ({value['score']:.2f})"

    def errors(self, gold: Sequence[str], predictions: Sequence[SentencePrediction]) -> dict:
        return {"confusions": sentence_confusions(gold, [p.label for p in predictions])}

    @classmethod
    def error_digest(cls, name: str, entry: dict) -> list[str]:
        pairs = ", ".join(f"{c['gold']} -> {c['predicted']} ({c['count']})" for c in entry["confusions"][:5])
        return [f"{name}: accuracy {100 * entry['accuracy']:.2f}; most confused: {pairs or 'none'}"]


def sentence_confusions(gold: Sequence[str], predicted: Sequence[str], top: int = 10) -> list[dict]:
    """The most frequent (gold label, predicted label) pairs among the mistakes."""
    pairs = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)
    return [{"gold": g, "predicted": p, "count": n} for (g, p), n in pairs.most_common(top)]
