"""`token`: one BIO tag per word (slots, NER) from the per-token states.

The first sub-token of a word carries its tag; loss is class-weighted cross-entropy or a CRF's likelihood;
decoding is per-word argmax or Viterbi, optionally restricted to the tags train showed with the sentence
label another task predicts; metrics are entity-level P/R/F1 (seqeval, CoNLL style); a prediction adds
its entities as character spans into the text, those under their type's threshold left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field, model_validator
from seqeval.metrics import classification_report as entity_report
from seqeval.metrics import f1_score, precision_score, recall_score
from torch import nn

from mtst.data.example import Example
from mtst.data.labels import IGNORE_ID, align_tags, tags_by_sentence_label
from mtst.data.tags import repair_iob2
from mtst.model.crf import FORBIDDEN
from mtst.model.subtokens import ENCODER_LAYERS, SUBTOKEN_POOLINGS
from mtst.tasks import spans
from mtst.tasks.base import Task, TaskConfigBase
from mtst.tasks.metrics import plain
from mtst.tasks.spans import classify_spans, entities, error_json, spans_json, tag_spans, token_task_errors
from mtst.tasks.token_head import TokenHead, tag_words, word_emissions
from mtst.tasks.uncertainty import word_uncertainties


@dataclass
class TokenPrediction:
    tags: list[str]  # one per word; a word without sub-tokens (e.g. cut off by truncation) gets "O", score 0
    scores: list[float]


class TokenTaskConfig(TaskConfigBase):
    type: Literal["token"] = "token"
    DEFAULT_FIELD = "tags"
    READS = (tuple,)

    # How the cross-entropy weights each tag, from train tag frequencies.
    class_weights: Literal["inverse_sqrt", "inverse", "none"] = "inverse_sqrt"
    # No tag weighs more than this many times the lightest tag (usually `O`); None: no cap.
    class_weight_cap: float | None = Field(None, ge=1.0)
    # A word's vector from its sub-tokens: first, mean or first_last (see mtst.model.subtokens). first_last by
    # default: the accuracy grid's dev winner on ATIS and SNIPS at full length (README "Results").
    subtoken_pooling: Literal[SUBTOKEN_POOLINGS] = "first_last"
    # The last encoder layer, or a learned scalar mix of all of them (UDify / MaChAmp).
    encoder_layers: Literal[ENCODER_LAYERS] = "last"
    # A CRF layer over the words (its own loss; class_weights and smoothing do not apply). On by default: the
    # accuracy grid's dev winner on ATIS and SNIPS (with train.entity_sampler_weight 1.0; README "Results").
    crf: bool = True
    # The name of a sentence task; decoding then allows only the tags seen in train together with the
    # sentence label that task predicts (e.g. no `artist` slot in a GetWeather query).
    condition_on: str | None = None
    # The name of a sentence task whose predicted label distribution joins every word vector before tagging
    # (Stack-Propagation's idea: the intent tells an `album` from a `track`).
    intent_input: str | None = None
    # What a batch's summed word loss is divided by: its own word count, or its labelled sentences times train's
    # mean words per sentence, so that a word weighs the same in a batch of short sentences as in one of long
    # ones (which matters when batches are grouped by length).
    loss_divisor: Literal["batch_words", "train_words"] = "batch_words"

    @model_validator(mode="after")
    def _crf_has_its_own_loss(self):
        if self.crf and self.label_smoothing:
            raise ValueError(
                f"task {self.name!r}: label_smoothing does not apply to a crf task (its loss is the CRF's)"
            )
        return self

    def check_with(self, tasks: dict[str, TaskConfigBase]) -> None:
        for option in ("condition_on", "intent_input"):
            name = getattr(self, option)
            if name is None:
                continue
            other = tasks.get(name)
            if other is None or other.type != "sentence":
                raise ValueError(f"task {self.name!r}: {option} must name a sentence task, got {name!r}")
            if self.data is not None or other.data is not None:
                raise ValueError(f"task {self.name!r}: {option} needs both tasks labelled on the same corpus")


class TokenTask(TokenTaskConfig, Task):
    MAIN_METRIC = "f1"
    OUTPUT_SHAPE = "float32 [batch, sequence, labels]"
    OUTPUT_RANK = 3

    # With condition_on: each label of that task mapped to the tags train showed with it.
    allowed_tags: dict[str, tuple[str, ...]] | None = None
    # With intent_input: how many labels that task has (the width its distribution adds to a word vector).
    intent_input_size: int | None = None
    # An entity whose score is under its type's threshold is not given (`mtst calibrate` picks them on dev).
    entity_thresholds: dict[str, float] = {}

    @model_validator(mode="after")
    def _thresholds_name_known_types(self):
        spans.check_entity_thresholds(self.labels, self.entity_thresholds)
        return self

    @property
    def fits_temperature(self) -> bool:
        return not self.crf  # scaling a CRF's emissions (not its transitions) could change the Viterbi path

    def confidence_rules(self) -> list[str]:
        return [f"`{kind}` entities need a score of {value}" for kind, value in sorted(self.entity_thresholds.items())]

    def with_thresholds(self, thresholds: dict) -> TokenTask:
        given = thresholds.get("entity_thresholds")
        return self if given is None else type(self).model_validate({**self.model_dump(), "entity_thresholds": given})

    def found_entities(self, result: dict, first: bool) -> list[dict]:
        return result.get("entities", []) if first else result.get(self.name, [])

    @classmethod
    def from_config(cls, config: TokenTaskConfig, train: Sequence[Example], tasks: dict) -> TokenTask:
        task = super().from_config(config, train, tasks)
        learned = {}
        if config.condition_on is not None:
            condition = tasks[config.condition_on]
            learned["allowed_tags"] = tags_by_sentence_label(train, condition.annotation, config.annotation)
        if config.intent_input is not None:
            field = tasks[config.intent_input].annotation
            learned["intent_input_size"] = len({ex.annotations[field] for ex in train if field in ex.annotations})
        return task.model_copy(update=learned)

    @classmethod
    def labels_in(cls, config, values: Sequence[Sequence[str]]) -> list[str]:
        seen = sorted({tag for tags in values for tag in tags})
        return ["O"] + [tag for tag in seen if tag != "O"] if seen else []

    def check_with_tasks(self, tasks: dict[str, Task]) -> None:
        if self.intent_input is not None:
            source = tasks.get(self.intent_input)
            if source is None or source.type != "sentence" or self.intent_input_size != len(source.labels):
                raise ValueError(f"intent_input of {self.name!r} must name a sentence task of intent_input_size labels")
        if self.condition_on is None:
            return
        condition = tasks.get(self.condition_on)
        if condition is None or condition.type != "sentence":
            raise ValueError(f"token task {self.name!r} must be conditioned on a sentence task")
        if not isinstance(self.allowed_tags, dict):
            raise ValueError(f"task {self.name!r} has condition_on but no allowed_tags map")
        allowed = self.allowed_tags
        if set(allowed) - set(condition.labels) or any(set(tags) - set(self.labels) for tags in allowed.values()):
            raise ValueError(f"allowed_tags of {self.name!r} name unknown labels or tags")

    def tags_allowed_with(self, sentence_label: str) -> frozenset[str]:
        """The tags decoding may give when `condition_on` predicted `sentence_label` (`O` always)."""
        return frozenset((self.allowed_tags or {}).get(sentence_label, ())) | {"O"}

    # --- data ---

    def encode(self, value: Sequence[str], word_ids: Sequence[int | None]) -> list[int]:
        return align_tags(word_ids, [self.label_to_id.get(tag, IGNORE_ID) for tag in value])

    def collate(self, encoded: Sequence[list[int] | None], width: int) -> torch.Tensor:
        padded = torch.full((len(encoded), width), IGNORE_ID, dtype=torch.long)
        for row, ids in enumerate(encoded):
            if ids:
                padded[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return padded

    def bears_entities(self, example: Example) -> bool:
        return example.has_entities(self.field)

    def fit_head(self, head: TokenHead, encoded: Sequence[list[int]]) -> None:
        head.fit_to_train(encoded, self)

    def imbalance(self, head: TokenHead) -> dict:
        if self.crf:
            return {"scheme": "none: the CRF's likelihood is the loss"}
        weights = head.class_weights
        return {
            "scheme": self.class_weights,
            "cap": self.class_weight_cap,
            "min": round(float(weights.min()), 4),
            "max": round(float(weights.max()), 4),
            "O": round(float(weights[0]), 4),
        }

    @property
    def decodes_with_head(self) -> bool:
        return self.crf  # Viterbi needs the trained transitions

    @property
    def reads_outputs_of(self) -> tuple[str, ...]:
        return () if self.intent_input is None else (self.intent_input,)

    @property
    def needs_word_ids(self) -> bool:
        return self.subtoken_pooling != "first"

    @property
    def needs_all_layers(self) -> bool:
        return self.encoder_layers == "scalar_mix"

    def head(self, encoder_config) -> nn.Module:
        # A head may mix every layer: the embeddings' output and each block's.
        return TokenHead(encoder_config.hidden_size, self, num_layers=encoder_config.num_hidden_layers + 1)

    # --- decoding and metrics ---

    @property
    def decoded_after(self) -> tuple[str, ...]:
        return () if self.condition_on is None else (self.condition_on,)

    def decode(self, logits: torch.Tensor, word_starts: list[int | None], decoded: dict, head) -> TokenPrediction:
        return self.decode_batch(logits.unsqueeze(0), [word_starts], [decoded], head)[0]

    def decode_batch(
        self, logits: torch.Tensor, word_starts: Sequence[list[int | None]], decoded: Sequence[dict], head
    ) -> list[TokenPrediction]:
        kept, emissions, mask = word_emissions(logits, word_starts)
        emissions = emissions / self.temperature
        if self.condition_on is not None:
            labels = [before[self.condition_on].label for before in decoded]
            penalties = {label: self._condition_penalty(label) for label in set(labels)}
            emissions = emissions + torch.stack([penalties[label] for label in labels]).unsqueeze(1)
        predictions, tagged = [], tag_words(head.crf, emissions, mask)
        for starts, words, (indices, scores) in zip(word_starts, kept, tagged, strict=True):
            tags, tag_scores = ["O"] * len(starts), [0.0] * len(starts)
            for word, index, score in zip(words, indices, scores, strict=True):
                tags[word], tag_scores[word] = self.labels[index], score
            predictions.append(TokenPrediction(tags, tag_scores))
        return predictions

    def uncertainties(self, logits: torch.Tensor, samples: list[torch.Tensor], word_starts, head) -> list[dict]:
        _, emissions, mask = word_emissions(logits, word_starts)
        sampled = [word_emissions(sample, word_starts)[1].softmax(-1) for sample in samples]
        return word_uncertainties(emissions, mask, sampled, head.crf)

    def _condition_penalty(self, sentence_label: str) -> torch.Tensor:
        """0 for the tags train showed with this sentence label, FORBIDDEN for the rest (`O` always allowed)."""
        allowed = self.tags_allowed_with(sentence_label)
        return torch.tensor([0.0 if tag in allowed else FORBIDDEN for tag in self.labels])

    def merge_windows(self, windows: Sequence, predictions: Sequence[TokenPrediction], merged: dict):
        """Each word tagged from the window where it sits farthest from an edge (most context both sides)."""
        num_words = windows[-1].first_word + len(windows[-1].example.words)
        tags, scores, margins = ["O"] * num_words, [0.0] * num_words, [-1] * num_words
        for window, prediction in zip(windows, predictions, strict=True):
            size = len(window.example.words)
            for position, (tag, score) in enumerate(zip(prediction.tags, prediction.scores, strict=True)):
                word, margin = window.first_word + position, min(position, size - 1 - position)
                if margin > margins[word]:
                    tags[word], scores[word], margins[word] = tag, score, margin
        if self.condition_on is not None:
            # Each window decoded under its own predicted label; the text reports the first window's.
            allowed = self.tags_allowed_with(merged[self.condition_on].label)
            tags = ["O" if tag not in allowed else tag for tag in tags]
        return TokenPrediction(repair_iob2(tags), scores)

    def gold(self, value: Sequence[str]) -> tuple[str, ...]:
        return tuple(value)

    def predicted(self, prediction: TokenPrediction) -> tuple[str, ...]:
        return tuple(prediction.tags)

    def metrics(self, gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
        gold, predicted = [list(g) for g in gold], [list(p) for p in predicted]
        return {
            "precision": float(precision_score(gold, predicted, zero_division=0)),
            "recall": float(recall_score(gold, predicted, zero_division=0)),
            "f1": float(f1_score(gold, predicted, zero_division=0)),
            "report": plain(entity_report(gold, predicted, output_dict=True, zero_division=0)),
        }

    def as_prediction(self, value: Sequence[str]) -> TokenPrediction:
        return TokenPrediction(list(value), [1.0] * len(value))

    def add_to_json(self, result: dict, example: Example, prediction: TokenPrediction, first: bool) -> None:
        found = entities(example, prediction)
        result["entities" if first else self.name] = spans.confident(found, self.entity_thresholds)

    def describe(self, result: dict, first: bool) -> str:
        return ", ".join(f"{e['text']} [{e['label']}]" for e in self.found_entities(result, first)) or "—"

    # --- error analysis ---

    def errors(self, gold: Sequence[Sequence[str]], predictions: Sequence[TokenPrediction]) -> dict:
        return {"errors": token_task_errors(gold, [p.tags for p in predictions])}

    def mispredicted(self, example: Example, value: Sequence[str], prediction: TokenPrediction) -> dict | None:
        if tuple(value) == tuple(prediction.tags):
            return None
        judged = classify_spans(tag_spans(value), tag_spans(prediction.tags))
        return {
            "gold": spans_json(example, value),
            "predicted": spans_json(example, prediction.tags),
            "errors": [error_json(example, *entry) for entry in judged if entry[0] != "correct"],
        }

    @classmethod
    def error_digest(cls, name: str, entry: dict) -> list[str]:
        return spans.error_digest(name, entry)
