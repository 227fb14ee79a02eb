"""Scoring a model on examples: each task by its kind's metrics, whole-sentence accuracy and the mean `score`."""

from __future__ import annotations

from collections.abc import Sequence

from mtst.calibration.temperature import calibration_metrics
from mtst.calibration.thresholds import confident_predictions
from mtst.data.example import Example
from mtst.errors import ConfigError
from mtst.inference.runner import Prediction, run_model


def compute_metrics(tasks: dict, examples: Sequence[Example], predictions: Sequence[Prediction]) -> dict:
    """Per-task metrics, `sentence_accuracy` (every task right) and `score` (mean main metric)."""
    metrics: dict = {}
    all_right = [True] * len(examples)
    # A partly labelled example (a task's annotation unknown) is scored on what it holds, but only an
    # example labelled for every scored task counts in sentence accuracy.
    complete = [all(task.field in ex.annotations for task in tasks.values()) for ex in examples]
    for name, task in tasks.items():
        rows = [i for i, ex in enumerate(examples) if task.field in ex.annotations]
        if not rows:
            continue
        gold = [task.gold(examples[i].annotations[task.field]) for i in rows]
        predicted = [task.predicted(predictions[i][name]) for i in rows]
        metrics[name] = task.metrics(gold, predicted)
        for i, g, p in zip(rows, gold, predicted, strict=True):
            all_right[i] &= g == p
    scored = [right for right, full in zip(all_right, complete, strict=True) if full]
    metrics["sentence_accuracy"] = sum(scored) / len(scored) if scored else 0.0
    metrics["score"] = mean_main_metric(tasks, metrics)
    return metrics


def mean_main_metric(tasks: dict, metrics: dict) -> float:
    main = [metrics[name][task.MAIN_METRIC] for name, task in tasks.items() if name in metrics]
    return sum(main) / len(main) if main else 0.0


def tune_decoding(model, scored: dict, examples: Sequence[Example], predictions: Sequence[Prediction]) -> dict:
    """Each task's decoding settings tuned on these (dev) examples, set on the model (and so saved with it)."""
    tuned = {}
    for name, task in scored.items():
        rows = [i for i, ex in enumerate(examples) if task.field in ex.annotations]
        gold = [task.gold(examples[i].annotations[task.field]) for i in rows]
        tuned[name] = task.tuned(gold, [predictions[i][name] for i in rows]) if rows else task
        model.tasks[name] = tuned[name]
    return tuned


def evaluate(
    model,
    examples: Sequence[Example],
    batch_size: int = 128,
    tasks: Sequence[str] | None = None,
    tune: bool = False,
    run=run_model,
    calibration: bool = False,
    entity_thresholds: bool = False,
) -> tuple[dict, list[Prediction]]:
    """Metrics of `tasks` (default: every task of the model) on examples labelled for them; with `tune`,
    the tasks' decoding settings (a multi-label threshold) are first tuned on these examples. `run` predicts
    (`run_model`, or the training loop's version sharded across processes). With `calibration`, each task
    that takes a temperature adds its expected calibration error, untempered and as given (`ece_uncalibrated`,
    `ece`): one more pass of the model over the examples. With `entity_thresholds`, an entity under its type's
    threshold (those the tasks hold) is dropped before scoring, as `mtst predict` drops it; the predictions
    returned are those scored."""
    predictions, losses = run(model, examples, batch_size)
    if entity_thresholds:
        predictions = confident_predictions(model.tasks, predictions)
    scored = {name: task for name, task in model.tasks.items() if tasks is None or name in tasks}
    if tune:
        scored = tune_decoding(model, scored, examples, predictions)
    metrics = compute_metrics(scored, examples, predictions)
    for name, loss in losses.items():
        if name in metrics:
            metrics[name]["loss"] = loss
    if calibration:
        for name, values in calibration_metrics(model, examples, list(scored), batch_size).items():
            metrics[name].update(ece_uncalibrated=values["ece_uncalibrated"], ece=values["ece"])
    return metrics, predictions


def evaluate_corpora(
    model, corpora, split: str, batch_size: int = 128, tune: bool = False, run=run_model, calibration: bool = False
) -> tuple[dict, list]:
    """Each task on its own corpus's `split`; [(examples, predictions)] per corpus evaluated.

    With several corpora, sentence accuracy is per corpus (`sentence_accuracy.<tasks>`) and `score` is the
    mean of every task's main metric.
    """
    merged: dict = {}
    samples = []
    for corpus in corpora:
        examples = getattr(corpus.splits, split)
        if not examples:
            continue
        metrics, predictions = evaluate(model, examples, batch_size, corpus.tasks, tune, run, calibration)
        samples.append((examples, predictions))
        if len(corpora) == 1:
            return metrics, samples
        merged.update({name: value for name, value in metrics.items() if name in corpus.tasks})
        merged[f"sentence_accuracy.{corpus.name}"] = metrics["sentence_accuracy"]
    if any(name in merged for name in model.tasks):
        merged["score"] = mean_main_metric(model.tasks, merged)
    return merged, samples


def headline(metrics: dict) -> dict[str, float]:
    """The flat numbers worth a table column: each task's scores and loss (its kind's metrics, the per-label
    report left out), sentence accuracy, score."""
    flat = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            flat.update({f"{name}.{key}": number for key, number in value.items() if isinstance(number, float | int)})
        else:
            flat[name] = value
    return flat


def early_stopping_score(metric: str, dev: dict[str, float], epoch: int, corpora) -> float:
    """The early-stopping score of an epoch from its dev headline; without any dev split, the latest epoch is best."""
    if not any(corpus.splits.dev for corpus in corpora):
        return float(epoch)
    if metric not in dev:
        raise ConfigError(f"train.early_stopping_metric {metric!r} is not one of {sorted(dev)}")
    return dev[metric]
