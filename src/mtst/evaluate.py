"""Metrics: label accuracy, entity-level P/R/F1 (seqeval, CoNLL style), whole-sentence accuracy."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from seqeval.metrics import classification_report as entity_report
from seqeval.metrics import f1_score, precision_score, recall_score
from sklearn.metrics import accuracy_score
from sklearn.metrics import classification_report as label_report

from mtst.data.example import Example
from mtst.inference import Prediction, run_model


def _plain(value):
    """Reports from sklearn/seqeval hold numpy scalars; JSON wants Python numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value.item() if hasattr(value, "item") else value


def sentence_task_metrics(gold: Sequence[str], predicted: Sequence[str]) -> dict:
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "report": _plain(label_report(gold, predicted, output_dict=True, zero_division=0)),
    }


def token_task_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    gold, predicted = [list(g) for g in gold], [list(p) for p in predicted]
    return {
        "precision": float(precision_score(gold, predicted, zero_division=0)),
        "recall": float(recall_score(gold, predicted, zero_division=0)),
        "f1": float(f1_score(gold, predicted, zero_division=0)),
        "report": _plain(entity_report(gold, predicted, output_dict=True, zero_division=0)),
    }


MAIN_METRIC = {"sentence": "accuracy", "token": "f1"}


def compute_metrics(tasks: dict, examples: Sequence[Example], predictions: Sequence[Prediction]) -> dict:
    """Per-task metrics, `sentence_accuracy` (every task right) and `score` (mean main metric)."""
    metrics: dict = {}
    all_right = [True] * len(examples)
    for name, task in tasks.items():
        rows = [i for i, ex in enumerate(examples) if task.field in ex.annotations]
        if not rows:
            continue
        gold = [examples[i].annotations[task.field] for i in rows]
        if task.type == "sentence":
            predicted = [predictions[i][name].label for i in rows]
            metrics[name] = sentence_task_metrics(gold, predicted)
        else:
            predicted = [predictions[i][name].tags for i in rows]
            metrics[name] = token_task_metrics(gold, predicted)
        for i, g, p in zip(rows, gold, predicted, strict=True):
            all_right[i] &= tuple(g) == tuple(p) if task.type == "token" else g == p
    metrics["sentence_accuracy"] = sum(all_right) / len(all_right) if all_right else 0.0
    main = [metrics[n][MAIN_METRIC[t.type]] for n, t in tasks.items() if n in metrics]
    metrics["score"] = sum(main) / len(main) if main else 0.0
    return metrics


def run_sharded(model, examples: Sequence[Example], batch_size: int, accelerator=None):
    """`run_model` split across the processes of a multi-process run; every process gets all results, in order."""
    if accelerator is None or accelerator.num_processes == 1:
        return run_model(model, examples, batch_size)
    from accelerate.utils import gather_object

    share = list(range(accelerator.process_index, len(examples), accelerator.num_processes))
    predictions, losses = run_model(model, [examples[i] for i in share], batch_size)
    ordered: list = [None] * len(examples)
    loss_sums, loss_counts = defaultdict(float), defaultdict(int)
    for indices, shard_predictions, shard_losses in gather_object([(share, predictions, losses)]):
        for index, prediction in zip(indices, shard_predictions, strict=True):
            ordered[index] = prediction
        for name, loss in shard_losses.items():
            loss_sums[name] += loss * len(indices)
            loss_counts[name] += len(indices)
    return ordered, {name: loss_sums[name] / loss_counts[name] for name in loss_sums}


def evaluate(
    model, examples: Sequence[Example], batch_size: int = 128, accelerator=None, tasks: Sequence[str] | None = None
) -> tuple[dict, list[Prediction]]:
    """Metrics of `tasks` (default: every task of the model) on examples labelled for them."""
    predictions, losses = run_sharded(model, examples, batch_size, accelerator)
    scored = {name: task for name, task in model.tasks.items() if tasks is None or name in tasks}
    metrics = compute_metrics(scored, examples, predictions)
    for name, loss in losses.items():
        if name in metrics:
            metrics[name]["loss"] = loss
    return metrics, predictions


def evaluate_corpora(model, corpora, split: str, batch_size: int = 128, accelerator=None) -> tuple[dict, list]:
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
        metrics, predictions = evaluate(model, examples, batch_size, accelerator, corpus.tasks)
        samples.append((examples, predictions))
        if len(corpora) == 1:
            return metrics, samples
        merged.update({name: value for name, value in metrics.items() if name in corpus.tasks})
        merged[f"sentence_accuracy.{corpus.name}"] = metrics["sentence_accuracy"]
    main = [merged[n][MAIN_METRIC[t.type]] for n, t in model.tasks.items() if n in merged]
    if main:
        merged["score"] = sum(main) / len(main)
    return merged, samples


def headline(metrics: dict) -> dict[str, float]:
    """The flat numbers worth a table column: main metric per task, sentence accuracy, score."""
    flat = {}
    for name, value in metrics.items():
        if isinstance(value, dict):
            for key in ("accuracy", "precision", "recall", "f1", "loss"):
                if key in value:
                    flat[f"{name}.{key}"] = value[key]
        else:
            flat[name] = value
    return flat
