"""Experiment tracking through accelerate's trackers: `train.report_to: [tensorboard, mlflow]`.

Both write local files and need no server: TensorBoard event files under OUTPUT/tensorboard/, and an MLflow
store in OUTPUT/mlflow.db with artifacts under OUTPUT/mlruns/ (unless MLFLOW_TRACKING_URI points elsewhere):
SQLite, the local backend MLflow 3 recommends (it refuses its old `./mlruns` file store unless told otherwise).
Logged: the run's settings once, each optimizer step's loss per task and in all (the loss the step
optimised), and each parameter group's learning rate; each epoch's mean training loss per task and every dev
metric. The loop calls `on_step` and `on_epoch_end` (a Callback), and leaves a `with` block of the tracking
when it ends, stops early or fails (an MLflow run is then marked FINISHED, FAILED or KILLED); with `report_to`
empty they do nothing. A resumed run continues its MLflow run (in the run's own store) and logs to the same TensorBoard
folder. Only the main process writes (accelerate's trackers run there alone), so with several processes the
step losses are the main process's batches.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from accelerate import Accelerator

from mtst.config import Reporter
from mtst.errors import ConfigError
from mtst.training.callbacks import Callback, EpochEnd, StepEnd

# What each tracker imports when the run starts: checked before training, so a missing one is one line up front.
# MLflow's local SQLite store needs sqlalchemy and alembic, which mlflow-skinny does not pull.
NEEDS: dict[Reporter, tuple] = {"tensorboard": ("tensorboard",), "mlflow": ("mlflow", "sqlalchemy", "alembic")}


def trackers(report_to: list[str], output_dir: str | Path, resume: bool = False) -> list | None:
    """accelerate tracker objects for `Accelerator(log_with=...)`, writing under the run's output folder; a
    resumed run continues its MLflow run (TensorBoard reads the folder's event files as one run anyway)."""
    if not report_to:
        return None
    from accelerate.tracking import MLflowTracker, TensorBoardTracker

    output, made = Path(output_dir).resolve(), []
    for name in report_to:
        _check_installed(name)
        if name == "tensorboard":
            made.append(TensorBoardTracker(output.name or "mtst", output / "tensorboard"))
        elif name == "mlflow":
            made.append(_mlflow_tracker(MLflowTracker, output, resume))
    return made


def _check_installed(name: str) -> None:
    for module in NEEDS[name]:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ConfigError(f"train.report_to {name}: {module} is missing: pip install 'mtst[trackers]'") from None


def _mlflow_tracker(tracker_class, output: Path, resume: bool):
    import mlflow

    run_id = None
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        output.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(tracking_uri(output))  # a local SQLite file, never a server by default
        # set_tracking_uri also exports MLFLOW_TRACKING_URI, which the next run in this process (mtst compare,
        # a notebook) would take for the user's own store and write there instead of its own folder.
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        # The run's own store: its latest run is the one to continue. (A shared store, MLFLOW_TRACKING_URI, cannot
        # tell runs of one name apart, so a resumed run starts another there.) Only the main process starts one.
        if resume and (output / "mlflow.db").is_file() and int(os.environ.get("RANK", "0")) == 0:
            latest = mlflow.search_runs(
                experiment_names=["mtst"], order_by=["attributes.start_time DESC"], max_results=1, output_format="list"
            )
            run_id = latest[0].info.run_id if latest else None
    return tracker_class(
        experiment_name="mtst", logging_dir=str(output / "mlruns"), run_name=output.name, run_id=run_id
    )


def tracking_uri(output_dir: str | Path) -> str:
    """The MLflow store of a run: `mlflow ui --backend-store-uri` takes the same URI."""
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


class RunTracking(Callback):
    """What the training loop reports to the trackers; a no-op when the run has none."""

    def __init__(self, accelerator: Accelerator | None = None, enabled: bool = False):
        # Only the main process holds trackers; the others skip the work of collecting values.
        self.accelerator, self.enabled = accelerator, enabled and accelerator.is_main_process

    @classmethod
    def start(cls, accelerator: Accelerator, settings: dict | None, enabled: bool) -> RunTracking:
        """Starts the trackers, logging `settings` (None when resuming: they were logged, and MLflow refuses a
        parameter whose value changes, which a resumed run's output_dir spelled another way would)."""
        if enabled:
            accelerator.init_trackers("mtst", config=None if settings is None else _flat(settings))
        return cls(accelerator, enabled)

    def __enter__(self) -> RunTracking:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        """The trackers close however the run ends; an MLflow run that raised is FAILED (KILLED on Ctrl-C)."""
        failed = "KILLED" if error_type is KeyboardInterrupt else "FAILED"
        self.end("FINISHED" if error_type is None else failed)

    def on_step(self, step: StepEnd) -> None:
        if not self.enabled or step.loss is None:
            return
        values = {f"train/loss/{name}": task_loss.item() for name, task_loss in step.losses.items()}
        values["train/loss"] = step.loss.item()
        values |= {f"lr/{group}": lr for group, lr in step.learning_rates.items()}
        if step.grad_norm is not None:
            values["train/grad_norm"] = step.grad_norm  # before clipping
        self.accelerator.log(values, step=step.global_step)

    def on_epoch_end(self, end: EpochEnd) -> None:
        if not self.enabled:
            return
        values = {"epoch": end.epoch, **{f"train/epoch_loss/{name}": loss for name, loss in end.train_loss.items()}}
        values |= {f"dev/{key}": value for key, value in end.dev.items() if isinstance(value, int | float)}
        self.accelerator.log(values, step=end.global_step)

    def end(self, status: str = "FINISHED") -> None:
        """Closes every tracker (their files complete). Not `accelerator.end_training()`: that also destroys the
        process group, which the run still needs afterwards (and a caller may train again in the process)."""
        if not self.enabled:
            return
        for tracker in self.accelerator.trackers:
            if tracker.name == "mlflow" and status != "FINISHED":
                import mlflow

                mlflow.end_run(status=status)  # accelerate's finish() would mark a failed run FINISHED
            else:
                tracker.finish()
        self.accelerator.trackers.clear()
        self.enabled = False


def _flat(settings: dict, prefix: str = "") -> dict:
    """Nested settings as dotted keys with scalar values, which every tracker takes as hyperparameters."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, int | float | str | bool) else str(value)
    return flat
