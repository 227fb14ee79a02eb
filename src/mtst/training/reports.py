"""What a training run tells: its start line, per-epoch records (metrics.jsonl, curves.png, sample
predictions) and summary.json. Only the main process of a multi-process run writes files."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import torch
from accelerate.utils import gather_object

from mtst.data.loaders import bears_entities
from mtst.evaluation.metrics import headline
from mtst.evaluation.plots import plot_curves
from mtst.files import dumps, write_json_atomic, write_text_atomic
from mtst.inference.predictor import to_json

logger = logging.getLogger(__name__)


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def weights_checksum(model: torch.nn.Module) -> str:
    """A digest of every weight, to show that the replicas of a multi-process run hold the same model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def imbalance_settings(entity_sampler_weight: float, model, corpora) -> dict:
    """How the run counters class imbalance, logged and kept in summary.json (the `O` tag dominates)."""
    with_entities = sum(
        bears_entities([model.tasks[name] for name in corpus.tasks], ex)
        for corpus in corpora
        for ex in corpus.splits.train
    )
    settings: dict = {
        "entity_sampler_weight": entity_sampler_weight,
        "entity_bearing_train_sentences": with_entities,
    }
    for name, task in model.tasks.items():
        described = task.imbalance(model.heads[name])
        if described is not None:
            settings[f"{name}.imbalance"] = described
    return settings


def log_start(trainer, corpora, parameters: dict, imbalance: dict, resumed_at: tuple[int, int] | None) -> None:
    accelerator = trainer.accelerator
    logger.info(
        "training on %s x%d: %d train / %d dev sentences, strategy %s: %s trainable of %s parameters%s",
        accelerator.device,
        accelerator.num_processes,
        sum(len(corpus.splits.train) for corpus in corpora),
        sum(len(corpus.splits.dev) for corpus in corpora),
        trainer.strategy.spec,
        f"{parameters['trainable']:,}",
        f"{parameters['total']:,}",
        f"; resumed at epoch {resumed_at[0]}, batch {resumed_at[1]}" if resumed_at else "",
    )
    logger.info("class imbalance: %s", json.dumps(imbalance))


def record_epoch(output: Path, history: list[dict], model, dev_samples, samples: int, main: bool) -> None:
    """Logs the epoch's last row and a few dev predictions; writes metrics.jsonl and curves.png."""
    row = history[-1]
    logger.info("epoch %d  train loss %s  dev %s", row["epoch"], fmt(row["train_loss"]), fmt(row["dev"]))
    logger.info(
        "  %s trainable parameters; loss weights %s", f"{row['trainable_parameters']:,}", fmt(row["loss_weights"])
    )
    for examples, predictions in dev_samples:
        log_samples(model, examples, predictions, samples)
    if main:
        write_text_atomic(output / "metrics.jsonl", "".join(dumps(row, "metrics.jsonl") + "\n" for row in history))
        plot_curves(history, model.tasks, output / "curves.png")


def log_samples(model, examples, predictions, count: int) -> None:
    """A few dev sentences, gold next to predicted, so a run can be judged by eye as it goes."""
    for example, prediction in list(zip(examples, predictions, strict=True))[:count]:
        gold = {
            name: task.as_prediction(example.annotations[task.field])
            for name, task in model.tasks.items()
            if example.annotations.get(task.field) is not None
        }
        logger.info("  %s", example.text)
        logger.info("    gold: %s", _without_scores(to_json(model, example, gold)))
        logger.info("    pred: %s", _without_scores(to_json(model, example, prediction)))


def _without_scores(value):
    if isinstance(value, dict):
        return {k: _without_scores(v) for k, v in value.items() if k not in ("text", "score", "start", "end")}
    if isinstance(value, list):
        return [_without_scores(v) for v in value]
    return value


def epoch_row(epoch: int, train_loss: dict, dev: dict, started: float, model, loss_weighting) -> dict:
    """One line of metrics.jsonl."""
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "dev": dev,
        "seconds": time.perf_counter() - started,
        "trainable_parameters": count_parameters(model)["trainable"],
        "loss_weights": loss_weighting.weights(),
    }


def gradient_summary(norms: list[float], clip: float) -> dict:
    """An epoch's gradient norms before clipping: their mean and largest, the share of steps clipped, and how many
    steps they cover (after a resume, those since it)."""
    return {
        "steps": len(norms),
        "norm_mean": sum(norms) / len(norms),
        "norm_max": max(norms),
        "clipped_share": sum(norm > clip for norm in norms) / len(norms),
    }


def summarize(
    config,
    trainer,
    stopper,
    history: list[dict],
    test_metrics: dict,
    corpora,
    wall_time_s: float,
    parameters,
    imbalance,
) -> dict:
    """summary.json: the best epoch's dev scores, the test scores of the best checkpoint, and the run's settings."""
    return {
        "strategy": trainer.strategy.spec,
        "loss_weighting": config.loss.weighting,
        "best_epoch": stopper.best_epoch,
        "epochs_run": len(history),
        "early_stopping_metric": config.train.early_stopping_metric,
        "dev": history[stopper.best_epoch - 1]["dev"],
        "test": headline(test_metrics),
        "test_report": {
            name: value["report"]
            for name, value in test_metrics.items()
            if isinstance(value, dict) and "report" in value
        },
        "parameters": {**parameters, "trainable_by_epoch": [row["trainable_parameters"] for row in history]},
        "loss_weights_by_epoch": [row["loss_weights"] for row in history],
        "imbalance": imbalance,
        "train_examples": sum(len(corpus.splits.train) for corpus in corpora),
        "processes": trainer.accelerator.num_processes,
        "final_weight_checksums": gather_object([weights_checksum(trainer.unwrapped)]),
        "wall_time_s": wall_time_s,
    }


def write_summary(output: Path, summary: dict, main: bool) -> None:
    if main:
        write_json_atomic(output / "summary.json", summary, indent=2)
    logger.info("best epoch %d; test %s; %.0f s", summary["best_epoch"], fmt(summary["test"]), summary["wall_time_s"])


def fmt(values: dict) -> str:
    return "  ".join(f"{k}={v:.4f}" for k, v in values.items())
