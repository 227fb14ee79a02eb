"""train.report_to: TensorBoard event files and an MLflow store, read back after a run."""

import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch

from mtst.errors import ConfigError, MtstError

pytest.importorskip("tensorboard", reason="the trackers extra")
pytest.importorskip("mlflow", reason="the trackers extra")


def tensorboard_scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run,) = [path for path in folder.iterdir() if path.is_dir()]  # named after the run; hparams go in a subfolder
    accumulator = EventAccumulator(str(run))  # every event file of the folder (a resumed run adds one), in order
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def mlflow_run(output):
    from mlflow.tracking import MlflowClient

    from mtst.training.tracking import tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri(output))
    (experiment,) = [e for e in client.search_experiments() if e.name == "mtst"]
    (run,) = client.search_runs([experiment.experiment_id])
    return client, run


def test_steps_and_epochs_reach_both_trackers(tmp_path, monkeypatch):
    from accelerate import Accelerator

    from mtst.training.callbacks import EpochEnd, StepEnd, learning_rates
    from mtst.training.tracking import RunTracking, trackers

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    output = tmp_path / "run"
    accelerator = Accelerator(log_with=trackers(["tensorboard", "mlflow"], output), cpu=True)
    tracking = RunTracking.start(accelerator, {"train": {"epochs": 2, "seed": 13}, "tasks": [{"name": "a"}]}, True)
    weight = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([{"params": [weight], "lr": 0.5, "name": "heads"}])
    for step, lr in ((1, 0.5), (2, 0.25)):
        optimizer.param_groups[0]["lr"] = lr
        losses = {"intent": torch.tensor(1.0 / step), "slots": torch.tensor(2.0)}
        tracking.on_step(StepEnd(step, step, sum(losses.values()), losses, learning_rates(optimizer), 2.0 * step))
    dev = {"intent.accuracy": 0.5, "score": 0.6}
    tracking.on_epoch_end(EpochEnd(1, 2, {"intent": 0.75}, dev, [], 0.0, 0.6, True))
    tracking.end()

    scalars = tensorboard_scalars(output / "tensorboard")
    assert scalars["train/loss"] == [(1, 3.0), (2, 2.5)] and scalars["lr/heads"] == [(1, 0.5), (2, 0.25)]
    assert scalars["train/grad_norm"] == [(1, 2.0), (2, 4.0)]
    assert scalars["dev/score"] == [(2, pytest.approx(0.6))] and scalars["train/epoch_loss/intent"] == [(2, 0.75)]

    client, run = mlflow_run(output)
    assert (output / "mlflow.db").is_file()
    assert run.data.params["train.seed"] == "13" and run.data.metrics["dev/intent.accuracy"] == 0.5
    history = client.get_metric_history(run.info.run_id, "train/loss/intent")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 0.5)]


def test_no_trackers_by_default():
    from accelerate import Accelerator

    from mtst.training.callbacks import StepEnd
    from mtst.training.tracking import RunTracking, trackers

    assert trackers([], "x") is None
    RunTracking.start(Accelerator(cpu=True), {}, False).on_step(StepEnd(1, 1, torch.tensor(1.0), {}, {}))  # a no-op


def run_with(tiny_config, *report_to: str):
    """The tiny run, one epoch, reporting to `report_to`."""
    train = tiny_config.train.model_copy(update={"epochs": 1, "report_to": list(report_to)})
    return tiny_config.model_copy(update={"train": train})


def logged_epoch(output: Path) -> dict:
    """The dev metrics and mean train losses of metrics.jsonl's last epoch, as the trackers name them."""
    row = json.loads((output / "metrics.jsonl").read_text().splitlines()[-1])
    values = {f"dev/{key}": value for key, value in row["dev"].items() if isinstance(value, float | int)}
    return values | {f"train/epoch_loss/{task}": loss for task, loss in row["train_loss"].items()}


def check_steps(scalars: dict[str, list[tuple[int, float]]], config) -> None:
    """Each optimizer step's losses and learning rates: the LR a step used is the schedule's at that step."""
    steps = [step for step, _ in scalars["train/loss"]]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 2
    for (_, total), (_, intent), (_, slots) in zip(
        scalars["train/loss"], scalars["train/loss/intent"], scalars["train/loss/slots"], strict=True
    ):
        assert total == pytest.approx(intent + slots, rel=1e-5) and intent > 0 and slots > 0  # loss.weighting: sum
    groups = [name for name in scalars if name.startswith("lr/")]  # full strategy: one per block, decay or not
    assert {"lr/encoder.embeddings", "lr/encoder.layer.1.no_decay", "lr/heads", "lr/heads.no_decay"} <= set(groups)
    for group in groups:
        lr = config.train.head_lr if group.startswith("lr/heads") else config.train.encoder_lr
        cosine = [lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / len(steps))) for step in steps]  # no warm-up step
        assert [value for _, value in scalars[group]] == pytest.approx(cosine, rel=1e-5), group


def test_a_run_reports_steps_and_dev_metrics_to_tensorboard(tiny_config, monkeypatch):
    from mtst.training.loop import train

    config = run_with(tiny_config, "tensorboard")
    train(config)
    output = Path(config.output_dir)
    scalars = tensorboard_scalars(output / "tensorboard")
    check_steps(scalars, config)
    last = scalars["train/loss"][-1][0]
    epoch = logged_epoch(output)
    assert {"dev/score", "dev/intent.accuracy", "dev/slots.f1", "train/epoch_loss/slots"} <= set(epoch)
    for name, value in epoch.items():  # every dev metric of the epoch (as metrics.jsonl has it), at its last step
        assert scalars[name] == [(last, pytest.approx(value, rel=1e-6))], name
    assert not (output / "mlflow.db").exists()


def test_a_run_reports_steps_and_dev_metrics_to_mlflow(tiny_config, monkeypatch):
    from mtst.training.loop import train

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = run_with(tiny_config, "mlflow")
    train(config)
    output = Path(config.output_dir)
    client, run = mlflow_run(output)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["train.report_to"] == "['mlflow']" and run.data.params["train.epochs"] == "1"
    names = [name for name in run.data.metrics if name.startswith(("train/loss", "lr/"))]
    history = {name: client.get_metric_history(run.info.run_id, name) for name in names}
    check_steps({name: [(m.step, m.value) for m in metrics] for name, metrics in history.items()}, config)
    assert {name: pytest.approx(value, rel=1e-6) for name, value in logged_epoch(output).items()} == {
        name: value for name, value in run.data.metrics.items() if name.startswith(("dev/", "train/epoch_loss/"))
    }
    assert not (output / "tensorboard").exists()
    # set_tracking_uri exports the URI; left there, the next run in this process would write into this store
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_a_failed_run_ends_its_trackers(tiny_config, monkeypatch):
    """A run that stops on an error keeps what it logged, marks its MLflow run FAILED, leaves no run active."""
    import mlflow

    from mtst.model.multitask import MultiTaskModel
    from mtst.training.loop import train

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    forward, calls = MultiTaskModel.forward, []

    def nan_from_batch_two(self, *args, **kwargs):
        output = forward(self, *args, **kwargs)
        if self.training:
            calls.append(1)
            if len(calls) > 1:
                output.losses["slots"] = output.losses["slots"] * float("nan")
        return output

    monkeypatch.setattr(MultiTaskModel, "forward", nan_from_batch_two)
    config = run_with(tiny_config, "mlflow", "tensorboard")
    with pytest.raises(MtstError, match="epoch 1, batch 2: the training loss is nan"):
        train(config)
    client, run = mlflow_run(Path(config.output_dir))
    assert run.info.status == "FAILED" and mlflow.active_run() is None
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1]
    assert [step for step, _ in tensorboard_scalars(Path(config.output_dir) / "tensorboard")["train/loss"]] == [1]


def test_a_missing_tracker_library_is_one_line_before_training(monkeypatch, tmp_path):
    from mtst.training.tracking import trackers

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"^train.report_to tensorboard: tensorboard is missing: pip install "):
        trackers(["tensorboard"], tmp_path)
    monkeypatch.setitem(sys.modules, "alembic", None)
    with pytest.raises(ConfigError, match=r"^train.report_to mlflow: alembic is missing"):
        trackers(["mlflow"], tmp_path)


def test_a_resumed_run_continues_its_mlflow_run_and_tensorboard_folder(tiny_config, monkeypatch):
    from mtst.model.multitask import MultiTaskModel
    from mtst.training.loop import train

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    forward, calls = MultiTaskModel.forward, []

    def interrupted_in_epoch_two(self, *args, **kwargs):
        if self.training:
            calls.append(1)
            if len(calls) == 3:  # the toy train set is 2 batches: epoch 2, batch 1
                raise KeyboardInterrupt
        return forward(self, *args, **kwargs)

    config = run_with(tiny_config, "mlflow", "tensorboard")
    config = config.model_copy(update={"train": config.train.model_copy(update={"epochs": 2})})
    monkeypatch.setattr(MultiTaskModel, "forward", interrupted_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    output = Path(config.output_dir)
    assert mlflow_run(output)[1].info.status == "KILLED"
    monkeypatch.setattr(MultiTaskModel, "forward", forward)
    train(config, resume=True)

    client, run = mlflow_run(output)  # still one run
    assert run.info.status == "FINISHED" and run.data.params["train.epochs"] == "2"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1, 2, 3, 4]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "dev/score")] == [2, 4]
    scalars = tensorboard_scalars(output / "tensorboard")
    # Sorted: TensorBoard reads a folder's event files by name, which orders two files written within one second by
    # the process's writer count (a resumed run in a new process is seconds later, so its file comes second).
    assert sorted(step for step, _ in scalars["train/loss"]) == [1, 2, 3, 4] and len(scalars["dev/score"]) == 2
