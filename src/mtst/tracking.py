"""Experiment tracking through accelerate's trackers: `train.report_to: [tensorboard, mlflow]`.

Both write local files and need no server: TensorBoard event files under OUTPUT/tensorboard/, and an MLflow
store in OUTPUT/mlflow.db with artifacts under OUTPUT/mlruns/ (unless MLFLOW_TRACKING_URI points elsewhere):
SQLite, the local backend MLflow 3 recommends (it refuses its old `./mlruns` file store unless told otherwise).
Logged: the run's settings once, each optimizer step's loss per task and in all, and each parameter group's
learning rate; each epoch's mean training loss per task and every dev metric. The loop calls `on_step` and
`on_epoch`; with `report_to` empty they do nothing. Only the main process writes (accelerate's trackers run
there alone).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from accelerate import Accelerator

from mtst.errors import ConfigError

REPORTERS = ("tensorboard", "mlflow")


def trackers(report_to: list[str], output_dir: str | Path) -> list | None:
    """accelerate tracker objects for `Accelerator(log_with=...)`, writing under the run's output folder."""
    if not report_to:
        return None
    from accelerate.tracking import MLflowTracker, TensorBoardTracker

    output, made = Path(output_dir).resolve(), []
    for name in report_to:
        try:
            if name == "tensorboard":
                made.append(TensorBoardTracker(output.name or "mtst", output / "tensorboard"))
            elif name == "mlflow":
                made.append(_mlflow_tracker(MLflowTracker, output))
        except ImportError as error:  # accelerate imports the tracker's library when the tracker is made
            raise ConfigError(
                f"train.report_to {name}: {error.name} is missing: pip install 'mtst[trackers]'"
            ) from None
    return made


def _mlflow_tracker(tracker_class, output: Path):
    import mlflow

    if not os.environ.get("MLFLOW_TRACKING_URI"):
        output.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(tracking_uri(output))  # a local SQLite file, never a server by default
    return tracker_class(experiment_name="mtst", logging_dir=str(output / "mlruns"), run_name=output.name)


def tracking_uri(output_dir: str | Path) -> str:
    """The MLflow store of a run: `mlflow ui --backend-store-uri` takes the same URI."""
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


class RunTracking:
    """What the training loop reports to the trackers; a no-op when the run has none."""

    def __init__(self, accelerator: Accelerator, enabled: bool):
        self.accelerator, self.enabled = accelerator, enabled

    @classmethod
    def start(cls, accelerator: Accelerator, settings: dict, enabled: bool) -> RunTracking:
        if enabled:
            accelerator.init_trackers("mtst", config=_flat(settings))
        return cls(accelerator, enabled)

    def on_step(self, step: int, losses: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
        if not self.enabled:
            return
        values = {f"train/loss/{name}": float(loss) for name, loss in losses.items()}
        values["train/loss"] = sum(values.values())
        for index, group in enumerate(optimizer.param_groups):
            values[f"lr/{group.get('name', index)}"] = float(group["lr"])
        self.accelerator.log(values, step=step)

    def on_epoch(self, step: int, epoch: int, train_loss: dict[str, float], dev: dict[str, float]) -> None:
        if not self.enabled:
            return
        values = {"epoch": epoch, **{f"train/epoch_loss/{name}": loss for name, loss in train_loss.items()}}
        values |= {f"dev/{key}": value for key, value in dev.items() if isinstance(value, int | float)}
        self.accelerator.log(values, step=step)

    def end(self) -> None:
        if self.enabled:
            self.accelerator.end_training()


def _flat(settings: dict, prefix: str = "") -> dict:
    """Nested settings as dotted keys with scalar values, which every tracker takes as hyperparameters."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, int | float | str | bool) else str(value)
    return flat
