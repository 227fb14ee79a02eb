"""What every task kind shares: the options of any task, and the interface a kind fills in.

A task kind (`sentence`, `token`, ...) is one module under `mtst.tasks` holding everything that differs by
kind: how its labels are read, encoded and padded, its head and loss, how its logits are decoded, its
metrics, and what it adds to a prediction's JSON. The rest of mtst calls the methods below and never asks
which kind a task is.

Each kind has two pydantic classes: `XTaskConfig`, the task as a config file states it, and `XTask`, the
same options plus what training learned (the label list, and whatever else the kind keeps), which is what
a checkpoint's config.json stores and what the model, decoding and metrics work from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mtst.data.settings import DataConfig
from mtst.errors import DataError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mtst.data.example import Example


# How each annotation form is named in messages.
ANNOTATION_FORMS = {str: "one label per sentence", tuple: "a tag per word", frozenset: "a set of labels per sentence"}
# The name keys the task's weights (`heads.NAME.*`, where a dot would nest) and its JSON output.
TASK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


class TaskConfigBase(BaseModel):
    """A named task; `field` is the annotation of each example it learns from (the kind's default if unset)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    DEFAULT_FIELD: ClassVar[str] = "label"
    # The annotation forms the kind reads (Example.Annotation: str, tuple of tags, frozenset of labels).
    READS: ClassVar[tuple[type, ...]] = (str,)

    name: str
    type: str
    field: str | None = None
    # Multi-corpus training: this task's own dataset; tasks without one share the top-level `data`.
    data: DataConfig | None = None
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)

    @property
    def annotation(self) -> str:
        return self.field or self.DEFAULT_FIELD

    def annotation_problem(self, value: Any) -> str | None:
        """Why an example's annotation is not of the form this kind reads (None when it is)."""
        if isinstance(value, self.READS):
            return None
        holds = ANNOTATION_FORMS.get(type(value), type(value).__name__)
        return (
            f"{self.type} task {self.name!r} reads `{self.annotation}`, which holds {holds}; "
            f"it needs {ANNOTATION_FORMS[self.READS[0]]}"
        )

    @field_validator("name")
    @classmethod
    def _usable_name(cls, value: str) -> str:
        if not TASK_NAME.fullmatch(value):
            raise ValueError(f"a task name is letters, digits, `_` or `-` (it names weights and keys), got {value!r}")
        return value

    def check_with(self, tasks: dict[str, TaskConfigBase]) -> None:
        """Checks that involve the other tasks of the config (ValueError when one fails)."""


class Task(TaskConfigBase):
    """A task as trained: its options, its label list (index = id) and the behaviour of its kind."""

    # Written into each prediction's JSON as the metric names and the main metric used for `score`.
    MAIN_METRIC: ClassVar[str]
    # The ONNX output of the task, as onnx_export.json describes it.
    OUTPUT_SHAPE: ClassVar[str] = "float32 [batch, labels]"
    OUTPUT_RANK: ClassVar[int] = 2

    field: str
    labels: tuple[str, ...]
    # Divides the logits before softmax (temperature scaling, fitted on dev): 1 leaves the scores as trained.
    temperature: float = Field(1.0, gt=0.0)

    @field_validator("labels")
    @classmethod
    def _distinct_names(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        if not labels or not all(isinstance(label, str) and label for label in labels):
            raise ValueError("needs a list of non-empty label strings")
        if len(set(labels)) != len(labels):
            raise ValueError("lists a label twice")
        return labels

    @cached_property
    def label_to_id(self) -> dict[str, int]:
        return {label: index for index, label in enumerate(self.labels)}

    # --- building the task from a config and the train split ---

    @classmethod
    def from_config(cls, config: TaskConfigBase, train: Sequence[Example], tasks: dict[str, TaskConfigBase]) -> Task:
        """The task with its labels taken from the train split (`tasks`: every task of the config, by name)."""
        labels = cls.vocabulary(config, train)
        return cls(**{**config.model_dump(), "field": config.annotation, "labels": tuple(labels)})

    @classmethod
    def vocabulary(cls, config: TaskConfigBase, train: Sequence[Example]) -> list[str]:
        """The label list, from the train split's annotations; DataError when there are none."""
        field = config.annotation
        values = [ex.annotations[field] for ex in train if ex.annotations.get(field) is not None]
        labels = cls.labels_in(config, values)
        if not labels:
            where = train[0].origin.rsplit(":", 1)[0] if train else "train"
            problem = f"task {config.name!r} found no `{field}` annotation in the train split"
            if values:  # e.g. every multilabel record holds `"labels": []`
                empty = f"every `{field}` annotation of the train split is empty"
                problem = f"task {config.name!r}: {empty}, so there is no label to learn"
            raise DataError(where, None, problem)
        return labels

    @classmethod
    def labels_in(cls, config: TaskConfigBase, values: Sequence[Any]) -> list[str]:
        """The label list (index = id) from the train split's annotations of the task."""
        raise NotImplementedError

    def check_with_tasks(self, tasks: dict[str, Task]) -> None:
        """Checks against the other tasks of a checkpoint (ValueError when one fails)."""

    # --- data: label ids per example, padded per batch ---

    def encode(self, value: Any, word_ids: Sequence[int | None]) -> Any:
        """The label ids of one example's annotation; `word_ids` maps each sub-token to its word."""
        raise NotImplementedError

    def collate(self, encoded: Sequence[Any | None], width: int) -> torch.Tensor:
        """One batch's label tensor; rows without this task's labels (None) are ignored by the loss."""
        raise NotImplementedError

    def bears_entities(self, example: Example) -> bool:
        """Whether the entity sampler should up-sample this example for this task."""
        return False

    def fit_head(self, head: nn.Module, encoded: Sequence[Any]) -> None:
        """Sets on the head what the train split's encoded labels imply before training (e.g. loss weights)."""

    def imbalance(self, head: nn.Module) -> dict | None:
        """How the task counters class imbalance, for the run's log and summary.json (None: nothing to say)."""
        return None

    # --- the model ---

    def head(self, encoder_config) -> nn.Module:
        """The head over an encoder of this (Hugging Face) config: `forward(features, labels=None) -> (logits, loss)`.

        `features` holds `token_embeddings` [B, S, H], `sentence_embedding` [B, H], `word_ids` [B, S] and,
        when `needs_all_layers`, every layer's states (`hidden_states`)."""
        raise NotImplementedError

    @property
    def fits_temperature(self) -> bool:
        """Whether temperature scaling applies: the kind's scores are a softmax whose argmax it leaves unchanged."""
        return False

    def with_thresholds(self, thresholds: dict) -> Task:
        """The task with the confidence thresholds of its kind taken from `thresholds` (keys it does not know
        are left to other kinds); ValueError or pydantic's ValidationError naming a bad one."""
        return self

    def confidence_rules(self) -> list[str]:
        """The thresholds the task gives its labels with, in words (for the model card)."""
        return []

    @property
    def needs_word_ids(self) -> bool:
        """Whether the head reads the word index of each sub-token (the ONNX graph then takes `word_ids`)."""
        return False

    @property
    def needs_all_layers(self) -> bool:
        """Whether the head reads every encoder layer, not just the last."""
        return False

    @property
    def reads_outputs_of(self) -> tuple[str, ...]:
        """Tasks whose head outputs (logits) this task's head reads, so their heads run first."""
        return ()

    # --- decoding and metrics ---

    @property
    def decoded_after(self) -> tuple[str, ...]:
        """Tasks whose predictions this task's decoding reads, so they are decoded first."""
        return ()

    @property
    def decodes_with_head(self) -> bool:
        """Whether `decode` reads trained weights of the head (the ONNX backend then loads the head)."""
        return False

    def decode(self, logits: torch.Tensor, word_starts: list[int | None], decoded: dict, head: nn.Module) -> Any:
        """The prediction of one sentence from its logits row (`decoded`: the tasks decoded before it; `head`:
        the trained head, for a kind whose decoding needs more of it than the logits)."""
        raise NotImplementedError

    def decode_batch(
        self, logits: torch.Tensor, word_starts: Sequence[list[int | None]], decoded: Sequence[dict], head: nn.Module
    ) -> list[Any]:
        """`decode` of every row of a batch's logits (`word_starts` and `decoded` per row); by default row by row,
        a kind whose decoding gains from whole-batch tensor ops overrides it."""
        rows = zip(word_starts, decoded, strict=True)
        return [self.decode(logits[row], starts, before, head) for row, (starts, before) in enumerate(rows)]

    def uncertainty(self, logits: torch.Tensor, samples: list[torch.Tensor], word_starts, head) -> dict[str, float]:
        """How unsure the head is about one sentence (`mtst suggest`), by measure name; `samples` are the logits
        row again from MC-dropout passes of the head. By default the row of `uncertainties` of a batch of one, for
        a kind that measures whole batches; a kind without a measure gives none."""
        if type(self).uncertainties is Task.uncertainties:
            return {}
        return self.uncertainties(logits[None], [sample[None] for sample in samples], [word_starts], head)[0]

    def uncertainties(
        self, logits: torch.Tensor, samples: list[torch.Tensor], word_starts: Sequence, head
    ) -> list[dict[str, float]]:
        """`uncertainty` of every row of a batch; a kind that measures faster on the whole batch overrides it."""
        return [
            self.uncertainty(logits[row], [sample[row] for sample in samples], starts, head)
            for row, starts in enumerate(word_starts)
        ]

    def merge_windows(self, windows: Sequence, predictions: Sequence[Any], merged: dict) -> Any:
        """One prediction for a long text read in windows: by default, the first window's."""
        return predictions[0]

    def gold(self, value: Any) -> Any:
        """An annotation in the form `predicted` gives, for metrics and exact-match comparison."""
        return value

    def predicted(self, prediction: Any) -> Any:
        raise NotImplementedError

    def metrics(self, gold: Sequence[Any], predicted: Sequence[Any]) -> dict:
        raise NotImplementedError

    def tuned(self, gold: Sequence[Any], predictions: Sequence[Any]) -> Task:
        """The task with decoding settings tuned on dev (golds and predictions); by default unchanged."""
        return self

    def as_prediction(self, value: Any) -> Any:
        """A gold annotation as a prediction with full confidence (to show gold and predicted side by side)."""
        raise NotImplementedError

    # --- output ---

    def add_to_json(self, result: dict, example: Example, prediction: Any, first: bool) -> None:
        """Writes the prediction into `result`: the first task of its kind under the kind's top-level key
        (`label`, `entities`, `labels`), any other under its own name."""
        raise NotImplementedError

    def add_ranking(self, result: dict, prediction: Any, first: bool, top: int) -> None:
        """Adds the `top` most probable labels with their scores next to what `add_to_json` wrote (a kind that
        gives one label per sentence); by default nothing."""

    def label_scores(self, result: dict, first: bool) -> dict[str, float]:
        """The sentence labels `add_to_json` and `add_ranking` wrote, with their scores (spaCy's `doc.cats`)."""
        return {}

    def found_entities(self, result: dict, first: bool) -> list[dict] | None:
        """The entities `add_to_json` wrote, as character spans; None for a kind that gives none."""
        return None

    def describe(self, result: dict, first: bool) -> str:
        """A short text of what `add_to_json` wrote, for comparison tables."""
        raise NotImplementedError

    # --- error analysis (`mtst evaluate --errors`) ---

    def errors(self, gold: Sequence[Any], predictions: Sequence[Any]) -> dict:
        """What the task's mistakes have in common (confused labels, span error categories), for errors.json."""
        return {}

    def mispredicted(self, example: Example, value: Any, prediction: Any) -> dict | None:
        """Gold beside predicted for one sentence the task got wrong; None when it got it right."""
        gold, predicted = self.gold(value), self.predicted(prediction)
        if gold == predicted:
            return None
        as_json = lambda v: sorted(v) if isinstance(v, frozenset) else v  # noqa: E731
        return {"gold": as_json(gold), "predicted": as_json(predicted)}

    @classmethod
    def error_digest(cls, name: str, entry: dict) -> list[str]:
        """A few lines summing up the task's entry of errors.json."""
        return [f"{name}: {cls.MAIN_METRIC} {100 * entry[cls.MAIN_METRIC]:.2f}"]
