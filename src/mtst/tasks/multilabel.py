"""`multilabel`: any number of labels per sentence ("book a flight and a hotel"), from the pooled embedding.

One sigmoid per label and binary cross-entropy; a label is predicted when its probability reaches the
decision threshold, which is tuned on dev after every epoch (the value giving the best micro-F1, or with
`tune_for: accuracy` the best exact-set accuracy) and saved with the checkpoint. Metrics: micro and macro F1
over the labels, and exact-match accuracy (the predicted set equals the gold set). A prediction lists the labels
it gives, each with its probability.

Annotations: a list of labels (JSONL `"labels": [...]`), or one string of labels joined by `separator`
(JointBERT label files such as ATIS's `atis_airfare#atis_flight`, a CSV column).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field
from sklearn.metrics import accuracy_score, f1_score
from sklearn.metrics import classification_report as label_report
from sklearn.preprocessing import MultiLabelBinarizer
from torch import nn
from torch.nn import functional as F

from mtst.data.labels import IGNORE_ID
from mtst.tasks.base import Task, TaskConfigBase
from mtst.tasks.metrics import plain
from mtst.tasks.sentence import SentenceHead

# Thresholds tried on dev: 0.05, 0.10, ..., 0.95.
CANDIDATE_THRESHOLDS = tuple(round(0.05 * step, 2) for step in range(1, 20))


@dataclass
class MultilabelPrediction:
    scores: dict[str, float]  # every label's probability; the task's threshold decides which are given


class MultilabelHead(SentenceHead):
    """One logit per label from the pooled sentence embedding; binary cross-entropy against the gold set."""

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        rows = labels[:, 0] != IGNORE_ID
        if not rows.any():
            return None
        targets = labels[rows] * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        # Summed over the labels, averaged over sentences: a scale like a softmax head's cross-entropy,
        # where a mean over labels too would shrink this head's loss (and its gradient) by the label count.
        return F.binary_cross_entropy_with_logits(logits[rows].float(), targets, reduction="sum") / rows.sum()


class MultilabelTaskConfig(TaskConfigBase):
    type: Literal["multilabel"] = "multilabel"
    DEFAULT_FIELD = "labels"
    READS = (frozenset, str)  # a list of labels, or labels joined by `separator`

    # Joins the labels of a string annotation (a JointBERT label file's `a#b`, a CSV column's `a|b`).
    separator: str = Field("#", min_length=1)
    # A fixed decision threshold; when unset it is tuned on dev after every epoch (0.5 until the first).
    threshold: float | None = Field(None, gt=0.0, lt=1.0)
    # Give the most probable label when none reaches the threshold (every utterance has an intent).
    at_least_one: bool = True
    # What the dev-tuned threshold maximises: micro-F1 over (sentence, label) pairs, or exact-set accuracy (the
    # intent accuracy of the multi-intent benchmarks, where one label too many or too few fails the sentence).
    tune_for: Literal["micro_f1", "accuracy"] = "micro_f1"


class MultilabelTask(MultilabelTaskConfig, Task):
    MAIN_METRIC = "micro_f1"

    # The threshold decoding uses: the fixed one, or the one tuned on dev.
    decision_threshold: float = Field(0.5, gt=0.0, lt=1.0)

    @classmethod
    def from_config(cls, config: MultilabelTaskConfig, train, tasks: dict) -> MultilabelTask:
        task = super().from_config(config, train, tasks)
        return task if config.threshold is None else task.model_copy(update={"decision_threshold": config.threshold})

    @classmethod
    def labels_in(cls, config: MultilabelTaskConfig, values) -> list[str]:
        return sorted({label for value in values for label in _label_set(value, config.separator)})

    def gold(self, value) -> frozenset[str]:
        return _label_set(value, self.separator)

    # --- data ---

    def encode(self, value, word_ids) -> list[float]:
        gold = self.gold(value)  # a label unseen in train is scored (as missed), never learned
        return [1.0 if label in gold else 0.0 for label in self.labels]

    def collate(self, encoded: Sequence[list[float] | None], width: int) -> torch.Tensor:
        ignored = [float(IGNORE_ID)] * len(self.labels)
        return torch.tensor([ignored if row is None else row for row in encoded], dtype=torch.float)

    def head(self, encoder_config) -> nn.Module:
        return MultilabelHead(encoder_config.hidden_size, self)

    # --- decoding and metrics ---

    def decode(self, logits: torch.Tensor, word_starts, decoded: dict, head=None) -> MultilabelPrediction:
        probabilities = logits.float().sigmoid().tolist()
        return MultilabelPrediction(dict(zip(self.labels, probabilities, strict=True)))

    def chosen(self, prediction: MultilabelPrediction, threshold: float | None = None) -> list[str]:
        """The labels given, most probable first."""
        threshold = self.decision_threshold if threshold is None else threshold
        ranked = sorted(prediction.scores, key=prediction.scores.__getitem__, reverse=True)
        given = [label for label in ranked if prediction.scores[label] >= threshold]
        return given or (ranked[:1] if self.at_least_one else [])

    def predicted(self, prediction: MultilabelPrediction) -> frozenset[str]:
        return frozenset(self.chosen(prediction))

    def metrics(self, gold: Sequence[frozenset[str]], predicted: Sequence[frozenset[str]]) -> dict:
        # Gold labels that train never showed are columns too, so that missing them counts against recall.
        binarizer = MultiLabelBinarizer(classes=[*self.labels, *sorted(set().union(*gold) - set(self.labels))])
        y_true, y_pred = binarizer.fit_transform(gold), binarizer.transform(predicted)
        names = list(binarizer.classes_)
        return {
            "accuracy": float(accuracy_score(y_true, y_pred)),  # exact match: the whole set right
            "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "threshold": self.decision_threshold,
            "report": plain(label_report(y_true, y_pred, target_names=names, output_dict=True, zero_division=0)),
        }

    def tuned(self, gold: Sequence[frozenset[str]], predictions: Sequence[MultilabelPrediction]) -> MultilabelTask:
        """The threshold with the best dev `tune_for` (ties: the one nearest 0.5), unless the config fixed one."""
        if self.threshold is not None or not gold:
            return self
        measure = TUNING_MEASURES[self.tune_for]

        def score(threshold: float) -> tuple[float, float]:
            return measure(gold, [frozenset(self.chosen(p, threshold)) for p in predictions]), -abs(threshold - 0.5)

        best = max(CANDIDATE_THRESHOLDS, key=score)
        return self.model_copy(update={"decision_threshold": best})

    def as_prediction(self, value) -> MultilabelPrediction:
        gold = self.gold(value)
        return MultilabelPrediction({label: float(label in gold) for label in sorted(gold | set(self.labels))})

    # --- output ---

    def add_to_json(self, result: dict, example, prediction: MultilabelPrediction, first: bool) -> None:
        given = [{"label": label, "score": round(prediction.scores[label], 4)} for label in self.chosen(prediction)]
        result["labels" if first else self.name] = given

    def label_scores(self, result: dict, first: bool) -> dict[str, float]:
        return {
            item["label"]: item["score"] for item in (result.get("labels", []) if first else result.get(self.name, []))
        }

    def describe(self, result: dict, first: bool) -> str:
        given = result.get("labels", []) if first else result.get(self.name, [])
        return ", ".join(f"{item['label']} ({item['score']:.2f})" for item in given) or "—"


def micro_f1(gold: Sequence[frozenset[str]], predicted: Sequence[frozenset[str]]) -> float:
    """2TP / (2TP + FP + FN) over every (sentence, label) pair: sklearn's micro F1, without building matrices."""
    tp = sum(len(g & p) for g, p in zip(gold, predicted, strict=True))
    wrong = sum(len(g ^ p) for g, p in zip(gold, predicted, strict=True))
    return 2 * tp / (2 * tp + wrong) if tp or wrong else 0.0


def exact_match(gold: Sequence[frozenset[str]], predicted: Sequence[frozenset[str]]) -> float:
    """The share of sentences whose predicted set equals the gold set."""
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold) if gold else 0.0


TUNING_MEASURES = {"micro_f1": micro_f1, "accuracy": exact_match}


def _label_set(value, separator: str) -> frozenset[str]:
    """A label set from a string of joined labels, or from a list or set of labels."""
    labels = value.split(separator) if isinstance(value, str) else value
    return frozenset(label.strip() for label in labels if label.strip())
