"""train.report_to: TensorBoard event files and an MLflow file store, read back after a run."""

import pytest
import torch

pytest.importorskip("tensorboard", reason="the trackers extra")
pytest.importorskip("mlflow", reason="the trackers extra")


def tensorboard_scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = list(folder.glob("*/events.out.tfevents.*"))  # the run's own; hparams get a folder of their own
    accumulator = EventAccumulator(str(events.parent))
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def mlflow_run(output):
    from mlflow.tracking import MlflowClient

    from mtst.tracking import tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri(output))
    (experiment,) = [e for e in client.search_experiments() if e.name == "mtst"]
    (run,) = client.search_runs([experiment.experiment_id])
    return client, run


def test_steps_and_epochs_reach_both_trackers(tmp_path, monkeypatch):
    from accelerate import Accelerator

    from mtst.tracking import RunTracking, trackers

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    output = tmp_path / "run"
    accelerator = Accelerator(log_with=trackers(["tensorboard", "mlflow"], output), cpu=True)
    tracking = RunTracking.start(accelerator, {"train": {"epochs": 2, "seed": 13}, "tasks": [{"name": "a"}]}, True)
    weight = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([{"params": [weight], "lr": 0.5, "name": "heads"}])
    for step, lr in ((1, 0.5), (2, 0.25)):
        optimizer.param_groups[0]["lr"] = lr
        tracking.on_step(step, {"intent": torch.tensor(1.0 / step), "slots": torch.tensor(2.0)}, optimizer)
    tracking.on_epoch(2, 1, {"intent": 0.75}, {"intent.accuracy": 0.5, "score": 0.6})
    tracking.end()

    scalars = tensorboard_scalars(output / "tensorboard")
    assert scalars["train/loss"] == [(1, 3.0), (2, 2.5)] and scalars["lr/heads"] == [(1, 0.5), (2, 0.25)]
    assert scalars["dev/score"] == [(2, pytest.approx(0.6))] and scalars["train/epoch_loss/intent"] == [(2, 0.75)]

    client, run = mlflow_run(output)
    assert (output / "mlflow.db").is_file()
    assert run.data.params["train.seed"] == "13" and run.data.metrics["dev/intent.accuracy"] == 0.5
    history = client.get_metric_history(run.info.run_id, "train/loss/intent")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 0.5)]


def test_no_trackers_by_default():
    from accelerate import Accelerator

    from mtst.tracking import RunTracking, trackers

    assert trackers([], "x") is None
    RunTracking.start(Accelerator(cpu=True), {}, False).on_step(1, {}, None)  # a no-op, touching nothing
