"""The joint training loop: one encoder, every task's loss combined, evaluated on dev after each epoch."""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from torch.utils.data import DataLoader

from mtst.calibration.temperature import fit_temperatures
from mtst.config import Config, TrainConfig
from mtst.data import Corpus, Splits, as_corpora, check_corpora, load_corpora
from mtst.data.loaders import build_loaders, sampler_generator
from mtst.data.sampling import TaskSampler
from mtst.errors import CheckpointError, ConfigError
from mtst.evaluation.metrics import early_stopping_score, evaluate_corpora, headline
from mtst.files import write_text_atomic
from mtst.model.card import CardFacts
from mtst.model.multitask import MultiTaskModel
from mtst.training import reports
from mtst.training.callbacks import Callback, Checkpoints, EpochEnd, RunRecords, StepEnd, learning_rates
from mtst.training.contrastive import contrastive_warmup
from mtst.training.distributed import mean_over_processes, sharded_runner
from mtst.training.loss_weighting import WeightedModel, build_loss_weighting, check_finite
from mtst.training.optim import build_optimizer
from mtst.training.progress import EpochProgress
from mtst.training.state import (
    EarlyStopping,
    Progress,
    diverged_note,
    has_training_state,
    load_training_state,
    save_training_state,
)
from mtst.training.strategies import Strategy
from mtst.training.tracking import RunTracking, trackers

logger = logging.getLogger(__name__)


def make_accelerator(cfg: TrainConfig, output_dir: str | Path, resume: bool = False) -> Accelerator:
    several_cpu_processes = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(
        mixed_precision="bf16" if cfg.amp and torch.cuda.is_available() else "no",
        log_with=trackers(cfg.report_to, output_dir, resume),  # train.report_to, writing under the run's folder
        # torchrun on CPU: accelerate must be told, or each process trains alone (gloo backend otherwise).
        cpu=several_cpu_processes,
        # The encoder's pooler (and a head whose task is absent from a batch) gets no gradient.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


@dataclass
class Trainer:
    """The pieces a training run needs, prepared for the accelerator's device(s)."""

    module: WeightedModel  # the model and its loss weighting, as accelerate prepared them
    loaders: list[DataLoader]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    accelerator: Accelerator
    sampler_generators: list[torch.Generator]
    strategy: Strategy
    task_sampler: TaskSampler
    epoch_start_sampler_states: list[torch.Tensor]
    tracking: RunTracking = field(default_factory=RunTracking)  # off until `train` starts the run's trackers

    @classmethod
    def setup(cls, config: Config, data: Splits | list[Corpus], resume_from: Path | None = None):
        """(trainer, progress): the run's pieces, restored from `resume_from`'s training state when given."""
        cfg, corpora, strategy = config.train, as_corpora(config, data), config.strategy
        accelerator = make_accelerator(cfg, config.output_dir, resume_from is not None)
        if accelerator.num_processes > 1 and (len(corpora) > 1 or strategy.changes_during_training):
            what = "multi-corpus training" if len(corpora) > 1 else f"strategy {strategy.spec}"
            raise ConfigError(f"{what} runs in one process only (not yet supported with several processes)")
        model = MultiTaskModel.from_config(config, corpora)
        if cfg.contrastive is not None and resume_from is None:  # a resumed run restores the warmed-up encoder
            warm_up_encoder(model.to(accelerator.device), corpora, cfg, accelerator.num_processes)
        loaders = build_loaders(cfg, model, corpora)
        for loader in loaders:
            model.fit_heads(loader.dataset)
        module = WeightedModel(model, build_loss_weighting(config))
        optimizer, scheduler = build_optimizer(module, strategy, cfg, cfg.epochs * sum(len(ld) for ld in loaders))
        generators = [sampler_generator(loader) for loader in loaders]
        progress = Progress()
        if resume_from is not None:
            progress = load_training_state(resume_from, model, optimizer, scheduler, generators, module.loss_weighting)
        strategy.warn_if_encoder_frozen(model, cfg.epochs)
        # Before `prepare`: a multi-process wrapper registers only the parameters that train at that point.
        strategy.on_epoch_start(model, progress.epoch)
        module, optimizer, scheduler, *loaders = accelerator.prepare(module, optimizer, scheduler, *loaders)
        sampler = TaskSampler(config.task_sampling, cfg.seed)
        return cls(module, loaders, optimizer, scheduler, accelerator, generators, strategy, sampler, []), progress

    @property
    def unwrapped(self) -> MultiTaskModel:
        return self.accelerator.unwrap_model(self.module).model

    @property
    def loss_weighting(self):
        return self.accelerator.unwrap_model(self.module).loss_weighting

    @property
    def run(self):
        """How the loop predicts: `run_model`, sharded across the processes of a multi-process run."""
        return sharded_runner(self.accelerator)

    def train_epoch(self, cfg: TrainConfig, progress: Progress, callbacks: list[Callback]) -> dict[str, float]:
        """One pass over the sampled train set (the rest of it, when resumed); each task's mean training loss."""
        self.module.train()
        self.strategy.on_epoch_start(self.unwrapped, progress.epoch)
        self.epoch_start_sampler_states = [generator.get_state() for generator in self.sampler_generators]
        sums, counts = defaultdict(float, progress.epoch_loss_sums), defaultdict(int, progress.epoch_loss_counts)
        done = progress.step_in_epoch  # batches taken before the run was interrupted: passed over unbuilt
        batches = self.task_sampler.batches(self.loaders, progress.epoch, skip=done)
        steps = sum(len(loader) for loader in self.loaders)
        # A bar on a terminal, a log line every cfg.log_every_seconds elsewhere; from the main process only.
        shown = EpochProgress(f"epoch {progress.epoch}", steps, cfg.log_every_seconds, self.accelerator.is_main_process)
        for step, batch in enumerate(shown.wrap(batches, done), start=done + 1):
            shown.start()
            output, loss = self.module(**batch)
            norm = None
            rates = learning_rates(self.optimizer)  # those this step uses, before the schedule moves on
            if loss is not None:  # else no example in this batch is labelled for any task
                check_finite(loss, output.losses, progress.epoch, step)
                self.accelerator.backward(loss)
                total = self.accelerator.clip_grad_norm_(self.unwrapped.parameters(), cfg.max_grad_norm)
                norm = None if total is None else float(total)
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
            for callback in callbacks:
                callback.on_step(StepEnd(progress.global_step, step, loss, output.losses, rates, norm))
        shown.close()
        return mean_over_processes(self.accelerator, list(self.unwrapped.tasks), sums, counts)


def warm_up_encoder(model: MultiTaskModel, corpora: list[Corpus], cfg: TrainConfig, processes: int) -> None:
    """SetFit's contrastive pairs on the encoder before the heads train (`train.contrastive`)."""
    if processes > 1:
        raise ConfigError("train.contrastive runs in one process only (not yet supported with several processes)")
    [corpus] = [corpus for corpus in corpora if cfg.contrastive.task in corpus.tasks]
    contrastive_warmup(model, corpus.splits.train, cfg.contrastive, cfg.seed)


def train(config: Config, splits: Splits | list[Corpus] | None = None, resume: bool = False) -> dict:
    """Trains, keeps the best checkpoint by dev score in OUTPUT/best, and writes the run's records.

    With `resume`, continues from OUTPUT/training_state exactly where the interrupted run stood.
    """
    cfg, started, output = config.train, time.perf_counter(), Path(config.output_dir)
    set_seed(cfg.seed)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"{output}: output_dir is a file, not a folder")
    if resume and not has_training_state(output):
        raise CheckpointError(f"{output}: nothing to resume (no {output / 'training_state'})")
    corpora = as_corpora(config, splits) if splits is not None else load_corpora(config)
    check_corpora(config.tasks, corpora)
    trainer, progress = Trainer.setup(config, corpora, output if resume else None)
    if trainer.accelerator.is_main_process:
        write_text_atomic(output / "config.yaml", yaml.safe_dump(config.model_dump(), sort_keys=False))
    settings = None if resume else config.model_dump()  # a resumed run's were logged when it started
    with RunTracking.start(trainer.accelerator, settings, bool(cfg.report_to)) as trainer.tracking:
        return _run(config, trainer, progress, corpora, started, resume)


def _run(config: Config, trainer: Trainer, progress: Progress, corpora: list[Corpus], started: float, resume: bool):
    """The epochs (from where `progress` stands), then the best checkpoint on test; the run's summary."""
    cfg, output, accelerator, model = config.train, Path(config.output_dir), trainer.accelerator, trainer.unwrapped
    elapsed_before, main = progress.elapsed_s, accelerator.is_main_process
    parameters = reports.count_parameters(model)
    imbalance = reports.imbalance_settings(cfg.entity_sampler_weight, model, corpora)
    resumed_at = (progress.epoch, progress.step_in_epoch) if resume else None
    reports.log_start(trainer, corpora, parameters, imbalance, resumed_at)
    stopper, history = EarlyStopping(cfg.patience, **progress.early_stopping), progress.history

    def save_state() -> None:
        progress.elapsed_s = elapsed_before + time.perf_counter() - started
        progress.early_stopping = stopper.state
        if main:  # the whole training state, written by the main process only
            states, optimizer, weighting = trainer.epoch_start_sampler_states, trainer.optimizer, trainer.loss_weighting
            save_training_state(output, model, optimizer, trainer.scheduler, states, progress, weighting)

    callbacks = [
        trainer.tracking,
        RunRecords(output, history, model, trainer.loss_weighting, cfg.num_sample_predictions, main, cfg.max_grad_norm),
        Checkpoints(output, model, save_state, cfg, main, run_card_facts(config, corpora)),
    ]
    for epoch in range(progress.epoch, cfg.epochs + 1):
        if stopper.should_stop:
            break
        epoch_started, progress.epoch = time.perf_counter(), epoch
        with diverged_note(output, stopper):
            train_loss = trainer.train_epoch(cfg, progress, callbacks)
        dev_metrics, samples = evaluate_corpora(model, corpora, "dev", cfg.eval_batch_size, tune=True, run=trainer.run)
        dev = headline(dev_metrics)
        score = early_stopping_score(cfg.early_stopping_metric, dev, epoch, corpora)
        improved = stopper.update(score, epoch)
        progress.start_epoch(epoch + 1)
        trainer.epoch_start_sampler_states = [generator.get_state() for generator in trainer.sampler_generators]
        end = EpochEnd(epoch, progress.global_step, train_loss, dev, samples, epoch_started, score, improved)
        for callback in callbacks:
            callback.on_epoch_end(end)
        if stopper.should_stop:
            logger.info("no dev improvement for %d epochs: stopping early", cfg.patience)
    accelerator.wait_for_everyone()
    best = MultiTaskModel.from_pretrained(output / "best", device=accelerator.device)
    calibration = fit_temperatures(best, corpora, "dev", cfg.eval_batch_size)
    test = evaluate_corpora(best, corpora, "test", cfg.eval_batch_size, run=trainer.run, calibration=True)[0]
    elapsed = round(elapsed_before + time.perf_counter() - started, 1)
    summary = reports.summarize(config, trainer, stopper, history, test, corpora, elapsed, parameters, imbalance)
    summary["calibration_on_dev"] = calibration
    reports.write_summary(output, summary, main)
    if main:  # best/ keeps its fitted temperatures, and its card now knows the test scores too
        card = replace(run_card_facts(config, corpora), epoch=stopper.best_epoch, dev=summary["dev"])
        card = replace(card, test=summary["test"], calibration=calibration, calibrated_on="dev")
        best.save_settings(output / "best", card)
    accelerator.wait_for_everyone()
    return summary


def run_card_facts(config: Config, corpora: list[Corpus]) -> CardFacts:
    """What the model card of this run's checkpoints says beyond config.json: the settings, the train size."""
    train_examples = sum(len(corpus.splits.train) for corpus in corpora)
    return CardFacts(train_examples=train_examples, training=config.model_dump(mode="json"))
