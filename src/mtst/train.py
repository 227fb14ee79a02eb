"""The joint training loop: one encoder, every task's loss summed, evaluated on dev after each epoch."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, gather_object, set_seed
from torch.utils.data import DataLoader
from transformers import get_cosine_schedule_with_warmup

from mtst.checkpoint import write_text_atomic
from mtst.config import Config, TaskConfig, TrainConfig
from mtst.data import Corpus, Splits, check_annotations, load_corpora
from mtst.data.batching import Collator, LengthGroupedBatchSampler, entity_sampler, token_class_weights
from mtst.data.example import Example
from mtst.data.features import encode_examples
from mtst.data.labels import build_labels, tags_by_sentence_label
from mtst.data.sampling import TaskSampler
from mtst.encoder import load_encoder
from mtst.errors import CheckpointError, ConfigError, TrainingDiverged
from mtst.evaluate import evaluate_corpora, headline
from mtst.inference import TokenPrediction
from mtst.jsonout import dumps, write_json_atomic
from mtst.loss_weighting import LossWeighting, build_loss_weighting
from mtst.model import MultiTaskModel, TaskSpec
from mtst.optim import build_optimizer
from mtst.plots import plot_curves
from mtst.predict import entities, to_json
from mtst.progress_log import EpochProgress
from mtst.strategies import Strategy, build_strategy, trains_encoder
from mtst.train_state import Progress, has_training_state, load_training_state, save_training_state

logger = logging.getLogger(__name__)


def as_corpora(config: Config, data: Splits | list[Corpus]) -> list[Corpus]:
    """Splits given for a single-corpus run are one corpus holding every task."""
    return [Corpus([task.name for task in config.tasks], data)] if isinstance(data, Splits) else data


def build_model(config: Config, data: Splits | list[Corpus]) -> MultiTaskModel:
    """Each task's labels come from the train split of its own corpus."""
    train_of = {name: corpus.splits.train for corpus in as_corpora(config, data) for name in corpus.tasks}
    tokenizer, encoder = load_encoder(config.encoder.name_or_path, config.encoder.max_length)
    specs = [task_spec(config, task, train_of[task.name]) for task in config.tasks]
    return MultiTaskModel(encoder, tokenizer, specs, config.encoder.max_length)


def task_spec(config: Config, task: TaskConfig, train: Sequence[Example]) -> TaskSpec:
    allowed = None
    if task.condition_on is not None:
        condition = next(t for t in config.tasks if t.name == task.condition_on)
        allowed = tags_by_sentence_label(train, condition.annotation, task.annotation)
    return TaskSpec(
        task.name,
        task.type,
        task.annotation,
        tuple(build_labels(task, train)),
        task.dropout,
        label_smoothing=task.label_smoothing,
        crf=task.crf,
        condition_on=task.condition_on,
        allowed_tags=allowed,
        subtoken_pooling=task.subtoken_pooling,
        encoder_layers=task.encoder_layers,
    )


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def _token_fields(config: Config, corpus: Corpus) -> list[str]:
    return [t.annotation for t in config.tasks if t.type == "token" and t.name in corpus.tasks]


def imbalance_settings(config: Config, model: MultiTaskModel, corpora: list[Corpus]) -> dict:
    """How the run counters class imbalance, logged and kept in summary.json (the `O` tag dominates)."""
    token_tasks = [task for task in config.tasks if task.type == "token"]
    with_entities = sum(
        any(ex.has_entities(field) for field in _token_fields(config, corpus))
        for corpus in corpora
        for ex in corpus.splits.train
    )
    settings: dict = {
        "entity_sampler_weight": config.train.entity_sampler_weight,
        "entity_bearing_train_sentences": with_entities,
    }
    for task in token_tasks:
        if task.crf:
            settings[f"{task.name}.class_weights"] = {"scheme": "none: the CRF's likelihood is the loss"}
            continue
        weights = model.heads[task.name].class_weights
        settings[f"{task.name}.class_weights"] = {
            "scheme": task.class_weights,
            "cap": task.class_weight_cap,
            "min": round(float(weights.min()), 4),
            "max": round(float(weights.max()), 4),
            "O": round(float(weights[0]), 4),
        }
    return settings


class EarlyStopping:
    """Tracks the best dev score; `should_stop` once `patience` epochs pass without improvement."""

    def __init__(self, patience: int, best: float | None = None, best_epoch: int = 0, bad_epochs: int = 0):
        # None (saved before any epoch ended) is no score yet: JSON has no -inf.
        self.best = float("-inf") if best is None else best
        self.patience, self.best_epoch, self.bad_epochs = patience, best_epoch, bad_epochs

    def update(self, score: float, epoch: int) -> bool:
        if score > self.best:
            self.best, self.best_epoch, self.bad_epochs = score, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    @property
    def state(self) -> dict:
        best = self.best if math.isfinite(self.best) else None
        return {"best": best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}


def weights_checksum(model: torch.nn.Module) -> str:
    """A digest of every weight, to show that the replicas of a multi-process run hold the same model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def corpus_loader(config: Config, model: MultiTaskModel, corpus: Corpus) -> DataLoader:
    """Batches of one corpus, labelled for its own tasks only; token tasks' class weights set from it."""
    cfg = config.train
    tasks = [model.tasks[name] for name in corpus.tasks]
    features = encode_examples(corpus.splits.train, model.tokenizer, [t.as_labels for t in tasks], model.max_length)
    for task in tasks:
        if task.type == "token":
            scheme, cap = _class_scheme(config, task.name)
            weights = token_class_weights(features, task.name, len(task.labels), scheme, cap)
            model.heads[task.name].class_weights.copy_(weights)
    fields = _token_fields(config, corpus)
    has_entities = [any(ex.has_entities(f) for f in fields) for ex in corpus.splits.train]
    sampler = entity_sampler(has_entities, cfg.entity_sampler_weight, cfg.seed)
    if cfg.group_by_length:
        lengths = [len(feature.input_ids) for feature in features]
        batching: dict = {"batch_sampler": LengthGroupedBatchSampler(sampler, lengths, cfg.batch_size)}
    else:
        batching = {"batch_size": cfg.batch_size, "sampler": sampler}
    return DataLoader(
        features,
        **batching,
        collate_fn=Collator(model.tokenizer.pad_token_id, {t.name: t.type for t in tasks}),
        num_workers=cfg.num_workers,
        # Its own generator, so that starting an epoch's iterator draws nothing from the global RNG
        # (which drives dropout): a resumed run then replays the same random stream.
        generator=torch.Generator().manual_seed(cfg.seed),
    )


def sampler_generator(loader: DataLoader) -> torch.Generator:
    """The generator that orders a loader's epoch, with or without length grouping: its state is saved
    at each epoch start so that a resumed run redraws the same batches."""
    return loader.batch_sampler.sampler.generator


def _class_scheme(config: Config, task_name: str) -> tuple[str, float | None]:
    task = next(task for task in config.tasks if task.name == task_name)
    return task.class_weights, task.class_weight_cap


@dataclass
class Trainer:
    """The pieces a training run needs, prepared for the accelerator's device(s)."""

    model: MultiTaskModel
    loaders: list[DataLoader]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    accelerator: Accelerator
    sampler_generators: list[torch.Generator]
    epoch_start_sampler_states: list[torch.Tensor]
    strategy: Strategy
    loss_weighting: LossWeighting
    task_sampler: TaskSampler

    @classmethod
    def setup(
        cls, config: Config, data: Splits | list[Corpus], resume_from: Path | None = None
    ) -> tuple[Trainer, Progress]:
        cfg = config.train
        corpora = as_corpora(config, data)
        several_cpu_processes = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
        accelerator = Accelerator(
            mixed_precision="bf16" if cfg.amp and torch.cuda.is_available() else "no",
            # torchrun on CPU: accelerate must be told, or each process trains alone (gloo backend otherwise).
            cpu=several_cpu_processes,
            # The encoder's pooler (and a head whose task is absent from a batch) gets no gradient.
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        )
        strategy = build_strategy(config.strategy)
        if accelerator.num_processes > 1 and (len(corpora) > 1 or strategy.changes_during_training):
            what = "multi-corpus training" if len(corpora) > 1 else f"strategy {strategy.spec}"
            raise ConfigError(f"{what} runs in one process only (not yet supported with several processes)")
        model = build_model(config, corpora)
        loaders = [corpus_loader(config, model, corpus) for corpus in corpora]
        generators = [sampler_generator(loader) for loader in loaders]
        loss_weighting = build_loss_weighting(config).to(accelerator.device)
        groups = strategy.parameter_groups(model, cfg)
        if list(loss_weighting.parameters()):
            groups.append(
                {
                    "params": list(loss_weighting.parameters()),
                    "lr": cfg.head_lr,
                    "weight_decay": 0.0,
                    "name": "loss_weighting",
                }
            )
        optimizer = build_optimizer(groups, cfg.adamw_implementation)
        total_steps = cfg.epochs * sum(len(loader) for loader in loaders)
        scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
        progress = Progress()
        if resume_from is not None:
            progress = load_training_state(resume_from, model, optimizer, scheduler, generators, loss_weighting)
        if not trains_encoder(strategy, model, cfg.epochs):
            logger.warning(
                "strategy %s trains no encoder layer: every task is a linear head over frozen features", strategy.spec
            )
        # Before `prepare`: a multi-process wrapper registers only the parameters that train at that point.
        strategy.on_epoch_start(model, progress.epoch)
        model, optimizer, scheduler, *loaders = accelerator.prepare(model, optimizer, scheduler, *loaders)
        sampler = TaskSampler(config.task_sampling, cfg.seed)
        trainer = cls(
            model, loaders, optimizer, scheduler, accelerator, generators, [], strategy, loss_weighting, sampler
        )
        return trainer, progress

    @property
    def loader(self) -> DataLoader:
        return self.loaders[0]

    @property
    def unwrapped(self) -> MultiTaskModel:
        return self.accelerator.unwrap_model(self.model)

    def train_epoch(self, cfg: TrainConfig, progress: Progress, save_state: Callable[[], None]) -> dict[str, float]:
        """One pass over the sampled train set (the rest of it, when resumed); each task's mean training loss."""
        self.model.train()
        self.strategy.on_epoch_start(self.unwrapped, progress.epoch)
        self.epoch_start_sampler_states = [generator.get_state() for generator in self.sampler_generators]
        sums, counts = defaultdict(float, progress.epoch_loss_sums), defaultdict(int, progress.epoch_loss_counts)
        done = progress.step_in_epoch
        batches = self.task_sampler.batches(self.loaders, progress.epoch)
        steps = sum(len(loader) for loader in self.loaders)
        # A bar on a terminal, a log line every cfg.log_every_seconds elsewhere; from the main process only.
        shown = EpochProgress(f"epoch {progress.epoch}", steps, cfg.log_every_seconds, self.accelerator.is_main_process)
        for step, batch in enumerate(shown.wrap(batches), start=1):
            if step <= done:
                continue  # taken before the run was interrupted
            shown.start()
            output = self.model(**batch)
            loss = None
            if output.losses:  # else no example in this batch is labelled for any task
                loss = self.loss_weighting(output.losses)
                _check_finite(loss, output.losses, progress.epoch, step)
                self.accelerator.backward(loss)
                self._average_across_processes(self.loss_weighting)
                self.accelerator.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                progress.global_step += 1
                for name, task_loss in output.losses.items():
                    sums[name] += task_loss.item()
                    counts[name] += 1
            shown.record(step, len(batch["input_ids"]), None if loss is None else loss.item())
            progress.step_in_epoch = step
            progress.epoch_loss_sums, progress.epoch_loss_counts = dict(sums), dict(counts)
            if cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0:
                save_state()
        shown.close()
        return self._mean_over_processes(sums, counts)

    def _average_across_processes(self, module: torch.nn.Module) -> None:
        """Gradients of parameters outside the wrapped model (learned loss weights), averaged like DDP does."""
        if self.accelerator.num_processes > 1:
            for parameter in module.parameters():
                if parameter.grad is not None:
                    parameter.grad = self.accelerator.reduce(parameter.grad, reduction="mean")

    def _mean_over_processes(self, sums: dict[str, float], counts: dict[str, int]) -> dict[str, float]:
        names = list(self.unwrapped.tasks)
        totals = torch.tensor(
            [[sums.get(n, 0.0), float(counts.get(n, 0))] for n in names], device=self.accelerator.device
        )
        totals = self.accelerator.reduce(totals, reduction="sum")
        return {n: float(s / c) for n, (s, c) in zip(names, totals.tolist(), strict=True) if c > 0}

    def save_state(self, output: Path, progress: Progress) -> None:
        """The whole training state, written by the main process only."""
        if self.accelerator.is_main_process:
            save_training_state(
                output,
                self.unwrapped,
                self.optimizer,
                self.scheduler,
                self.epoch_start_sampler_states,
                progress,
                self.loss_weighting,
            )


def _check_finite(loss: torch.Tensor, losses: dict[str, torch.Tensor], epoch: int, step: int) -> None:
    """Stops before a NaN/inf loss reaches the weights: the optimizer has not stepped on it yet."""
    value = loss.item()
    if not math.isfinite(value):
        parts = ", ".join(f"{name}={task_loss.item():.4g}" for name, task_loss in losses.items())
        raise TrainingDiverged(
            f"epoch {epoch}, batch {step}: the training loss is {value} ({parts}); stopped before it reached "
            "the weights (lower train.encoder_lr / train.head_lr, or check the data)"
        )


def log_samples(model: MultiTaskModel, examples, predictions, count: int) -> None:
    """A few dev sentences, gold next to predicted, so a run can be judged by eye as it goes."""
    for example, prediction in list(zip(examples, predictions, strict=True))[:count]:
        gold_as_prediction = {}
        for name, task in model.tasks.items():
            value = example.annotations.get(task.field)
            if task.type == "token" and value is not None:
                gold_as_prediction[name] = [
                    (e["text"], e["label"]) for e in entities(example, TokenPrediction(list(value), [1.0] * len(value)))
                ]
            elif value is not None:
                gold_as_prediction[name] = value
        predicted = to_json(model, example, prediction)
        logger.info("  %s", example.text)
        logger.info("    gold: %s", gold_as_prediction)
        logger.info(
            "    pred: %s %s",
            predicted.get("label", ""),
            [(e["text"], e["label"]) for e in predicted.get("entities", [])],
        )


def train(config: Config, splits: Splits | list[Corpus] | None = None, resume: bool = False) -> dict:
    """Trains, keeps the best checkpoint by dev score in OUTPUT/best, and writes the run's records.

    With `resume`, continues from OUTPUT/training_state exactly where the interrupted run stood.
    """
    cfg = config.train
    started = time.perf_counter()
    set_seed(cfg.seed)
    output = Path(config.output_dir)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"{output}: output_dir is a file, not a folder")
    if resume and not has_training_state(output):
        raise CheckpointError(f"{output}: nothing to resume (no {output / 'training_state'})")
    corpora = as_corpora(config, splits) if splits is not None else load_corpora(config)
    for corpus in corpora:
        tasks = [(task.name, task.type, task.annotation) for task in config.tasks if task.name in corpus.tasks]
        for split in ("train", "dev", "test"):
            check_annotations(getattr(corpus.splits, split), tasks, split)
    has_dev = any(corpus.splits.dev for corpus in corpora)
    trainer, progress = Trainer.setup(config, corpora, output if resume else None)
    accelerator, elapsed_before = trainer.accelerator, progress.elapsed_s
    main = accelerator.is_main_process
    if not main:
        logging.getLogger("mtst").setLevel(logging.WARNING)  # one process reports
    if main:
        write_text_atomic(output / "config.yaml", yaml.safe_dump(config.model_dump(), sort_keys=False))
    parameters = count_parameters(trainer.unwrapped)
    imbalance = imbalance_settings(config, trainer.unwrapped, corpora)
    logger.info(
        "training on %s x%d: %d train / %d dev sentences, strategy %s: %s trainable of %s parameters%s",
        accelerator.device,
        accelerator.num_processes,
        sum(len(corpus.splits.train) for corpus in corpora),
        sum(len(corpus.splits.dev) for corpus in corpora),
        trainer.strategy.spec,
        f"{parameters['trainable']:,}",
        f"{parameters['total']:,}",
        f"; resumed at epoch {progress.epoch}, batch {progress.step_in_epoch}" if resume else "",
    )
    logger.info("class imbalance: %s", json.dumps(imbalance))
    stopper, history = EarlyStopping(cfg.patience, **progress.early_stopping), progress.history

    def save_state() -> None:
        progress.elapsed_s = elapsed_before + time.perf_counter() - started
        progress.early_stopping = stopper.state
        trainer.save_state(output, progress)

    for epoch in range(progress.epoch, cfg.epochs + 1):
        if stopper.should_stop:
            break
        epoch_started = time.perf_counter()
        progress.epoch = epoch
        try:
            train_loss = trainer.train_epoch(cfg, progress, save_state)
        except TrainingDiverged as error:
            kept = f"{output / 'best'}/ holds epoch {stopper.best_epoch}" if stopper.best_epoch else "nothing saved"
            raise TrainingDiverged(f"{error}; {kept}") from None
        trainable = count_parameters(trainer.unwrapped)["trainable"]
        dev_metrics, dev_samples = evaluate_corpora(trainer.unwrapped, corpora, "dev", cfg.eval_batch_size, accelerator)
        dev = headline(dev_metrics)
        if has_dev and cfg.early_stopping_metric not in dev:
            raise ConfigError(f"train.early_stopping_metric {cfg.early_stopping_metric!r} is not one of {sorted(dev)}")
        score = dev[cfg.early_stopping_metric] if has_dev else float(epoch)  # no dev: the latest is best
        loss_weights = trainer.loss_weighting.weights()
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "dev": dev,
                "seconds": time.perf_counter() - epoch_started,
                "trainable_parameters": trainable,
                "loss_weights": loss_weights,
            }
        )
        logger.info("epoch %d  train loss %s  dev %s", epoch, _fmt(train_loss), _fmt(dev))
        logger.info("  %s trainable parameters; loss weights %s", f"{trainable:,}", _fmt(loss_weights))
        for examples, predictions in dev_samples:
            log_samples(trainer.unwrapped, examples, predictions, cfg.num_sample_predictions)
        if main:
            write_text_atomic(output / "metrics.jsonl", "".join(dumps(row, "metrics.jsonl") + "\n" for row in history))
            plot_curves(history, trainer.unwrapped.tasks, output / "curves.png")
        if stopper.update(score, epoch) and main:
            trainer.unwrapped.save_pretrained(output / "best")
            logger.info("new best %s = %.4f, saved %s", cfg.early_stopping_metric, score, output / "best")
        progress.epoch, progress.step_in_epoch = epoch + 1, 0
        progress.epoch_loss_sums, progress.epoch_loss_counts = {}, {}
        trainer.epoch_start_sampler_states = [generator.get_state() for generator in trainer.sampler_generators]
        save_state()
        if stopper.should_stop:
            logger.info("no dev improvement for %d epochs: stopping early", cfg.patience)
    accelerator.wait_for_everyone()
    best = MultiTaskModel.from_pretrained(output / "best", device=accelerator.device)
    test_metrics = evaluate_corpora(best, corpora, "test", cfg.eval_batch_size, accelerator)[0]
    summary = {
        "strategy": trainer.strategy.spec,
        "loss_weighting": config.loss.weighting,
        "best_epoch": stopper.best_epoch,
        "epochs_run": len(history),
        "early_stopping_metric": cfg.early_stopping_metric,
        "dev": history[stopper.best_epoch - 1]["dev"],
        "test": headline(test_metrics),
        "test_report": {name: value["report"] for name, value in test_metrics.items() if isinstance(value, dict)},
        "parameters": {**parameters, "trainable_by_epoch": [row["trainable_parameters"] for row in history]},
        "loss_weights_by_epoch": [row["loss_weights"] for row in history],
        "imbalance": imbalance,
        "train_examples": sum(len(corpus.splits.train) for corpus in corpora),
        "processes": accelerator.num_processes,
        "final_weight_checksums": gather_object([weights_checksum(trainer.unwrapped)]),
        "wall_time_s": round(elapsed_before + time.perf_counter() - started, 1),
    }
    if main:
        write_json_atomic(output / "summary.json", summary, indent=2)
    logger.info("best epoch %d; test %s; %.0f s", stopper.best_epoch, _fmt(summary["test"]), summary["wall_time_s"])
    accelerator.wait_for_everyone()
    return summary


def _fmt(values: dict) -> str:
    return "  ".join(f"{k}={v:.4f}" for k, v in values.items())
