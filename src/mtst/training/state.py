"""The resumable state of a training run, written as safetensors + JSON (no pickle) into OUTPUT/training_state.

It holds everything that decides what the run does next: weights, AdamW moments, the schedule's position,
every random generator (global and the sampler's), the place in the epoch, the early-stopping record and
the metrics so far. A run resumed from it takes exactly the steps the uninterrupted run would have taken.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from mtst.errors import CheckpointError, TrainingDiverged
from mtst.files import atomic_directory, dumps, recover_directory

STATE_DIR = "training_state"
FORMAT_VERSION = 1


@dataclass
class Progress:
    """Where the run stands; `epoch` is the epoch being run and `step_in_epoch` its optimizer steps done."""

    epoch: int = 1
    step_in_epoch: int = 0
    global_step: int = 0
    history: list[dict] = field(default_factory=list)
    early_stopping: dict = field(default_factory=dict)
    epoch_loss_sums: dict[str, float] = field(default_factory=dict)
    epoch_loss_counts: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.step_in_epoch = epoch, 0
        self.epoch_loss_sums, self.epoch_loss_counts = {}, {}


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


@contextlib.contextmanager
def diverged_note(output: Path, stopper: EarlyStopping):
    """A run stopped by a non-finite loss says what best/ still holds."""
    try:
        yield
    except TrainingDiverged as error:
        kept = f"{output / 'best'}/ holds epoch {stopper.best_epoch}" if stopper.best_epoch else "nothing saved"
        raise TrainingDiverged(f"{error}; {kept}") from None


def _optimizer_tensors(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param_id, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{param_id}.{key}"] = value
    groups = [{k: v for k, v in group.items() if k != "params"} for group in state["param_groups"]]
    return tensors, {"scalars": scalars, "param_groups": groups}


def _restore_optimizer(optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    current = optimizer.state_dict()
    state: dict = {}
    for key, value in [*tensors.items(), *meta["scalars"].items()]:
        param_id, _, name = key.partition(".")
        state.setdefault(int(param_id), {})[name] = value
    if len(meta["param_groups"]) != len(current["param_groups"]):
        raise CheckpointError("training state: the optimizer's parameter groups differ from this run's")
    groups = []
    for saved, group in zip(meta["param_groups"], current["param_groups"], strict=True):
        # JSON turned tuples such as AdamW's betas into lists; give them back their original type.
        restored = {k: tuple(v) if isinstance(group.get(k), tuple) else v for k, v in saved.items()}
        groups.append({**group, **restored, "params": group["params"]})
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{index}"] = cuda_state
    version, python_state, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    meta = {
        "python": [version, list(python_state), gauss],
        "numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(cached)],
    }
    return tensors, meta


def _restore_rng(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    version, python_state, gauss = meta["python"]
    random.setstate((version, tuple(python_state), gauss))
    kind, keys, position, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))


def save_training_state(
    output_dir: str | Path,
    model,
    optimizer,
    scheduler,
    sampler_state: torch.Tensor | list[torch.Tensor],
    progress: Progress,
    loss_weighting: torch.nn.Module | None = None,
) -> None:
    """Writes the whole state atomically: a reader finds the previous complete state or this one.

    `sampler_state` is the sampler generator's state at the start of `progress.epoch`: a resumed run redraws
    that epoch's order from it and skips the batches already taken; a multi-corpus run passes one per corpus.
    Learned loss weights (`loss_weighting`) are saved beside the model's weights.
    """
    optimizer_tensors, optimizer_meta = _optimizer_tensors(optimizer)
    rng_tensors, rng_meta = _rng_state()
    states = sampler_state if isinstance(sampler_state, list) else [sampler_state]
    for index, state in enumerate(states):
        rng_tensors["sampler" if index == 0 else f"sampler.{index}"] = state
    meta = {
        "format_version": FORMAT_VERSION,
        "progress": asdict(progress),
        "optimizer": optimizer_meta,
        "scheduler": scheduler.state_dict(),
        "rng": rng_meta,
    }
    with atomic_directory(Path(output_dir) / STATE_DIR) as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        if loss_weighting is not None and list(loss_weighting.parameters()):
            save_model(loss_weighting, str(tmp / "loss_weighting.safetensors"))
        save_file(optimizer_tensors, str(tmp / "optimizer.safetensors"))
        save_file(rng_tensors, str(tmp / "rng.safetensors"))
        (tmp / "state.json").write_text(dumps(meta, "state.json", indent=1), encoding="utf-8")


def has_training_state(output_dir: str | Path) -> bool:
    recover_directory(Path(output_dir) / STATE_DIR)  # a kill between the two renames of the last save
    return (Path(output_dir) / STATE_DIR / "state.json").is_file()


def load_training_state(
    output_dir: str | Path,
    model,
    optimizer,
    scheduler,
    sampler_generator: torch.Generator | list[torch.Generator],
    loss_weighting: torch.nn.Module | None = None,
) -> Progress:
    """Restores everything `save_training_state` wrote; the objects must come from the same config."""
    folder = Path(output_dir) / STATE_DIR
    recover_directory(folder)
    try:
        meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        missing, unexpected = load_model(model, str(folder / "model.safetensors"), strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{folder}: the saved weights do not fit this run's model ({sorted(missing)[:3]})")
        if loss_weighting is not None and list(loss_weighting.parameters()):
            load_model(loss_weighting, str(folder / "loss_weighting.safetensors"))
        _restore_optimizer(optimizer, load_file(str(folder / "optimizer.safetensors")), meta["optimizer"])
        scheduler.load_state_dict(meta["scheduler"])
        rng = load_file(str(folder / "rng.safetensors"))
        generators = sampler_generator if isinstance(sampler_generator, list) else [sampler_generator]
        for index, generator in enumerate(generators):
            generator.set_state(rng.pop("sampler" if index == 0 else f"sampler.{index}"))
        _restore_rng(rng, meta["rng"])
        return Progress(**meta["progress"])
    except FileNotFoundError as error:
        raise CheckpointError(f"{folder}: incomplete training state (no {Path(error.filename).name})") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{folder}: unreadable training state ({message})") from None
