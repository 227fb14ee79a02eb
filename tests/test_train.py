import json
from pathlib import Path

import pytest
import torch

from mtst.config import load_config
from mtst.errors import MtstError
from mtst.inference.predictor import Predictor
from mtst.model.multitask import MultiTaskModel
from mtst.training.loop import train
from mtst.training.optim import parameter_groups
from mtst.training.state import EarlyStopping


def test_parameter_groups_exact_sets(tiny_model):
    groups = {g["name"]: g for g in parameter_groups(tiny_model, 5e-5, 1e-3, 0.01)}
    assert set(groups) == {"encoder", "encoder.no_decay", "heads", "heads.no_decay"}
    names = {id(p): n for n, p in tiny_model.named_parameters()}
    named = {k: {names[id(p)] for p in g["params"]} for k, g in groups.items()}
    # The slot head's CRF (on by default): its transition matrix decays like a weight, start/end scores do not.
    assert named["heads"] == {
        "heads.intent.classifier.weight",
        "heads.slots.classifier.weight",
        "heads.slots.crf.transitions",
    }
    assert named["heads.no_decay"] == {
        "heads.intent.classifier.bias",
        "heads.slots.classifier.bias",
        "heads.slots.crf.start",
        "heads.slots.crf.end",
    }
    assert all(n.endswith("bias") or "LayerNorm" in n for n in named["encoder.no_decay"])
    assert all(not n.endswith("bias") and "LayerNorm" not in n for n in named["encoder"])
    assert sum(len(v) for v in named.values()) == len(names)
    assert (groups["encoder"]["lr"], groups["heads"]["lr"]) == (5e-5, 1e-3)
    assert (groups["encoder"]["weight_decay"], groups["encoder.no_decay"]["weight_decay"]) == (0.01, 0.0)


def test_early_stopping_patience():
    stopper = EarlyStopping(patience=2)
    assert stopper.update(0.5, 1) and not stopper.update(0.5, 2) and not stopper.should_stop
    assert not stopper.update(0.4, 3) and stopper.should_stop and stopper.best_epoch == 1


def test_train_writes_every_artifact_and_predicts(tiny_config, tmp_path):
    summary = train(tiny_config)
    out = tmp_path / "run"
    for name in (
        "best/config.json",
        "best/model.safetensors",
        "metrics.jsonl",
        "curves.png",
        "summary.json",
        "config.yaml",
    ):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]["train_loss"]) == {"intent", "slots"}
    assert {"intent.accuracy", "slots.f1", "sentence_accuracy", "score"} <= set(rows[0]["dev"])
    saved = json.loads((out / "summary.json").read_text())
    assert saved["best_epoch"] == summary["best_epoch"] and "slots.f1" in saved["test"]
    pooler = 32 * 32 + 32  # the encoder's pooler never trains: mean pooling does not use it
    assert saved["parameters"]["trainable"] == saved["parameters"]["total"] - pooler
    assert saved["strategy"] == "full" and saved["loss_weights_by_epoch"] == [{"intent": 1.0, "slots": 1.0}] * 2
    imbalance = saved["imbalance"]
    assert imbalance["entity_bearing_train_sentences"] == 6 and imbalance["entity_sampler_weight"] == 1.0
    assert imbalance["slots.imbalance"] == {"scheme": "none: the CRF's likelihood is the loss"}
    [result] = Predictor(MultiTaskModel.from_pretrained(out / "best")).predict(["play music by queen"])
    assert result["label"] in ("PlayMusic", "GetWeather")


def test_training_is_reproducible_with_a_seed(tiny_config, tmp_path):
    first = train(tiny_config)
    second = train(load_config(None, **{**_flat(tiny_config), "output_dir": str(tmp_path / "again")}))
    assert first["test"] == second["test"]


def test_losses_fall_on_the_toy_set(tiny_config):
    config = tiny_config.model_copy(
        update={"train": tiny_config.train.model_copy(update={"epochs": 20, "patience": 20, "head_lr": 3e-2})}
    )
    train(config)
    losses = [json.loads(line)["train_loss"] for line in open(f"{config.output_dir}/metrics.jsonl")]
    slots, intent = [row["slots"] for row in losses], [row["intent"] for row in losses]
    assert sum(slots[-3:]) / 3 < slots[0] / 2
    # A few steps an epoch on the toy set: the intent's epoch loss is noisy, so its best epoch is what must fall.
    assert min(intent[1:]) < 0.8 * intent[0]


def _flat(config):
    return {
        "encoder.name_or_path": config.encoder.name_or_path,
        "encoder.max_length": config.encoder.max_length,
        "data.dir": config.data.dir,
        "train.epochs": config.train.epochs,
        "train.batch_size": config.train.batch_size,
    }


def test_max_length_beyond_the_encoder_window_is_refused(tiny_config):
    from mtst.data import load_splits
    from mtst.errors import ConfigError
    from mtst.model.multitask import MultiTaskModel

    config = tiny_config.model_copy(update={"encoder": tiny_config.encoder.model_copy(update={"max_length": 512})})
    with pytest.raises(ConfigError, match="exceeds the encoder's 128 positions"):
        MultiTaskModel.from_config(config, load_splits(config.data))


def _strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"invalid JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def _assert_nothing_non_finite_written(out):
    for path in [*out.rglob("*.json"), *out.rglob("*.jsonl")]:
        for line in path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]:
            _strict_json(line)
    for path in out.rglob("*.safetensors"):
        from safetensors.torch import load_file

        assert all(torch.isfinite(t).all() for t in load_file(path).values() if t.is_floating_point()), path


def test_a_loss_turning_non_finite_stops_the_run_and_keeps_the_last_good_checkpoint(tiny_config, monkeypatch):
    forward, calls = MultiTaskModel.forward, []

    def nan_from_epoch_two(self, *args, **kwargs):
        output = forward(self, *args, **kwargs)
        if self.training:
            calls.append(1)
            if len(calls) > 2:  # the toy train set is 2 batches: epoch 2 onwards
                output.losses["slots"] = output.losses["slots"] * float("nan")
        return output

    monkeypatch.setattr(MultiTaskModel, "forward", nan_from_epoch_two)
    stopped = r"epoch 2, batch 1: the training loss is nan \(.*slots=nan.*best/ holds epoch 1"
    with pytest.raises(MtstError, match=stopped):
        train(tiny_config)
    out = Path(tiny_config.output_dir)
    assert [_strict_json(row)["epoch"] for row in (out / "metrics.jsonl").read_text().splitlines()] == [1]
    assert not (out / "summary.json").exists()
    MultiTaskModel.from_pretrained(out / "best")
    _assert_nothing_non_finite_written(out)
