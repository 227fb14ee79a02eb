"""Thresholds with a fallback: the settings a user gives (`--intent-threshold`, `--ambiguity-margin`,
`--fallback-label`, `--entity-thresholds FILE`), put on the model's tasks, and per-type entity thresholds
picked on dev to maximise entity F1 (`mtst calibrate`).

The intent settings apply to the first sentence task and the entity thresholds to the first token task: the
ones a prediction gives at its top level (`label`, `entities`), which the Rasa endpoint and spaCy read too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import yaml
from pydantic import ValidationError

from mtst.errors import ConfigError, validation_problem
from mtst.tasks.spans import confident_tags, span_score, tag_spans

CANDIDATES = tuple(round(0.05 * step, 2) for step in range(20))  # 0.0 (keep every entity) .. 0.95


def read_entity_thresholds(path: str | Path) -> dict[str, float]:
    """`{entity type: threshold}` from a JSON or YAML file; one line naming the file and the problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the entity thresholds ({error.strerror or error})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not JSON or YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f'{path}: expected a mapping of entity type to threshold, e.g. {{"city": 0.6}}')
    for kind, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: {kind}: the threshold must be a number in 0..1, got {json.dumps(value)}")
    return {str(kind): float(value) for kind, value in raw.items()}


def threshold_settings(
    intent_threshold: float | None = None,
    ambiguity_margin: float | None = None,
    fallback_label: str | None = None,
    entity_thresholds: str | Path | None = None,
) -> dict:
    """The thresholds given on a command line, as `apply_thresholds` takes them (None: keep the checkpoint's)."""
    settings = {
        "confidence_threshold": intent_threshold,
        "ambiguity_margin": ambiguity_margin,
        "fallback_label": fallback_label,
    }
    if entity_thresholds is not None:
        settings["entity_thresholds"] = read_entity_thresholds(entity_thresholds)
        settings["source"] = str(entity_thresholds)
    return settings


def apply_thresholds(tasks: dict, settings: dict) -> None:
    """Puts the settings on the first task of each kind, in place; one ConfigError line for a bad value."""
    kinds_seen: set[str] = set()
    for name, task in list(tasks.items()):
        if task.type in kinds_seen:
            continue
        kinds_seen.add(task.type)
        try:
            tasks[name] = task.with_thresholds(settings)
        except (ValidationError, ValueError) as error:
            raise ConfigError(_message(error, settings.get("source"), name)) from None


CONFIDENCE_FIELDS = {"temperature", "confidence_threshold", "ambiguity_margin", "fallback_label", "entity_thresholds"}


def confidence_settings(tasks: dict) -> dict[str, dict]:
    """By task, the temperature and thresholds its scores and labels are given with (for `/info`)."""
    return {name: task.model_dump(include=CONFIDENCE_FIELDS) for name, task in tasks.items()}


def stored_entity_thresholds(tasks: dict) -> dict[str, dict[str, float]]:
    """By task, the per-type entity thresholds it holds (`mtst calibrate`'s, or given); tasks without any left out."""
    held = {name: getattr(task, "entity_thresholds", {}) for name, task in tasks.items()}
    return {name: dict(thresholds) for name, thresholds in held.items() if thresholds}


def confident_predictions(tasks: dict, predictions: Sequence[dict]) -> list[dict]:
    """The predictions with each task's entities under their type's threshold turned to `O`: the entities
    `mtst predict` gives, which `mtst evaluate` scores unless told `--no-thresholds`."""
    thresholds = stored_entity_thresholds(tasks)

    def confident(name: str, value):
        if name not in thresholds:
            return value
        return replace(value, tags=confident_tags(value.tags, value.scores, thresholds[name]))

    return [{name: confident(name, value) for name, value in prediction.items()} for prediction in predictions]


def _message(error: Exception, source: str | None, task: str) -> str:
    problem = str(error)
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where, message = ".".join(map(str, first["loc"])), validation_problem(first)
        problem = f"{where}: {message}" if where else message
    prefix = f"{source}: " if source and "entity_thresholds" in problem else ""
    return f"{prefix}task {task!r}: {problem}"


def pick_entity_thresholds(gold_tags: Sequence[Sequence[str]], predictions: Sequence) -> dict[str, float]:
    """Per entity type, the threshold on a span's mean tag score that gives the best micro entity F1 on these
    sentences (one pass over the types, each tried at every candidate with the others held; ties keep the
    lower threshold). Types best left at 0 are left out."""
    gold = [set(tag_spans(tags)) for tags in gold_tags]
    scored = [scored_spans(prediction) for prediction in predictions]
    thresholds = {kind: 0.0 for spans in scored for (_, _, kind), _ in spans}
    for kind in sorted(thresholds):
        thresholds[kind] = max(CANDIDATES, key=lambda c: (entity_f1(gold, scored, {**thresholds, kind: c}), -c))
    return {kind: value for kind, value in thresholds.items() if value > 0}


def fit_entity_thresholds(gold_tags: Sequence[Sequence[str]], predictions: Sequence) -> dict:
    """The picked thresholds, and the micro entity F1 on these sentences without and with them."""
    picked = pick_entity_thresholds(gold_tags, predictions)
    gold = [set(tag_spans(tags)) for tags in gold_tags]
    scored = [scored_spans(prediction) for prediction in predictions]
    return {"thresholds": picked, "f1_before": entity_f1(gold, scored, {}), "f1": entity_f1(gold, scored, picked)}


def scored_spans(prediction) -> list[tuple[tuple[int, int, str], float]]:
    """Each predicted span with its mean tag score, rounded as a prediction's JSON gives it."""
    spans = tag_spans(prediction.tags)
    return [((first, last, kind), span_score(prediction.scores, first, last)) for first, last, kind in spans]


def entity_f1(gold: Sequence[set], scored: Sequence[list], thresholds: dict[str, float]) -> float:
    """Micro F1 over exact (first word, last word, type) spans, keeping the spans that reach their threshold."""
    kept = [{span for span, score in spans if score >= thresholds.get(span[2], 0.0)} for spans in scored]
    found = sum(len(spans & truth) for spans, truth in zip(kept, gold, strict=True))
    predicted, expected = sum(map(len, kept)), sum(map(len, gold))
    return 2 * found / (predicted + expected) if predicted + expected else 0.0
