"""Interrupted training: the full state is saved atomically and a resumed run ends bitwise where an
uninterrupted one does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

from mtst.data import load_splits
from mtst.tasks import task_config
from mtst.training.loop import Trainer
from mtst.training.state import STATE_DIR, Progress, load_training_state, save_training_state
from mtst.training.strategies import parse_strategy
from tests.conftest import TOY_SENTENCES, write_jointbert


def _config_file(tmp_path, tiny_config, output, **train) -> str:
    settings = tiny_config.model_dump()
    settings["output_dir"] = str(output)
    settings["train"].update(train)
    path = tmp_path / f"{output.name}.yaml"
    path.write_text(yaml.safe_dump(settings))
    return str(path)


def _mtst(*args) -> subprocess.Popen:
    # One thread each, so the two runs' float sums happen in the same order.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mtst", "train", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _state(output) -> dict | None:
    try:
        return json.loads((output / STATE_DIR / "state.json").read_text())["progress"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture
def long_toy_data(tmp_path):
    """Enough batches per epoch (100 at batch size 4) for a kill to land mid-epoch."""
    folder = tmp_path / "data"
    write_jointbert(folder / "train", TOY_SENTENCES * 50)
    write_jointbert(folder / "dev", TOY_SENTENCES)
    write_jointbert(folder / "test", TOY_SENTENCES)
    return folder


@pytest.mark.parametrize(
    ("group_by_length", "intent_kind", "word_embeddings"),
    [
        (False, "sentence", "full"),
        (True, "sentence", "full"),
        (False, "multilabel", "full"),
        (False, "sentence", "rows"),
    ],
    ids=["drawn-order", "length-grouped", "multilabel", "rowwise-word-embeddings"],
)
@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(
    tmp_path, tiny_config, long_toy_data, group_by_length, intent_kind, word_embeddings
):
    tiny_config.data.dir = str(long_toy_data)
    strategy = parse_strategy({"word_embeddings": word_embeddings})  # rows: the row-wise AdamW state too
    tiny_config = tiny_config.model_copy(update={"strategy": strategy})
    if intent_kind == "multilabel":  # a label set per sentence, some with two intents, its threshold tuned on dev
        two_intents = ("play rain songs", "O O O", "PlayMusic#GetWeather")
        write_jointbert(long_toy_data / "train", (TOY_SENTENCES + [two_intents]) * 44)  # 99 batches of 4
        tasks = [task_config(name="intent", type="multilabel", field="label"), tiny_config.tasks[1]]
        tiny_config = tiny_config.model_copy(update={"tasks": tasks})
    train = {
        "epochs": 2,
        "batch_size": 4,
        "checkpoint_every_steps": 10,
        "num_sample_predictions": 0,
        "group_by_length": group_by_length,
    }
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"

    whole = _mtst("--config", _config_file(tmp_path, tiny_config, reference, **train))
    victim = _mtst("--config", _config_file(tmp_path, tiny_config, interrupted, **train))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = _state(interrupted)
        if state and state["epoch"] == 2 and state["step_in_epoch"] > 0:
            break
        assert victim.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    assert whole.wait(timeout=300) == 0, whole.stdout.read()
    killed_at = _state(interrupted)
    assert killed_at["epoch"] == 2 and 0 < killed_at["step_in_epoch"] < 100
    assert not (interrupted / "summary.json").exists()

    resumed = _mtst("--resume", str(interrupted))
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, log
    # It carried on from the saved state rather than starting again (which would also end the same).
    assert f"resumed at epoch 2, batch {killed_at['step_in_epoch']}" in " ".join(log.split())

    for weights in (f"{STATE_DIR}/model.safetensors", "best/model.safetensors"):
        expected, actual = load_file(reference / weights), load_file(interrupted / weights)
        assert expected.keys() == actual.keys()
        assert all(torch.equal(expected[name], actual[name]) for name in expected), weights
    history = [json.loads(line) for line in (interrupted / "metrics.jsonl").read_text().splitlines()]
    expected_history = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
    assert [row["train_loss"] for row in history] == [row["train_loss"] for row in expected_history]
    assert [row["dev"] for row in history] == [row["dev"] for row in expected_history]


@pytest.mark.parametrize("word_embeddings", ["full", "rows"])
def test_training_state_round_trip(tmp_path, tiny_config, word_embeddings):
    tiny_config = tiny_config.model_copy(update={"strategy": parse_strategy({"word_embeddings": word_embeddings})})
    splits = load_splits(tiny_config.data)
    trainer, _ = Trainer.setup(tiny_config, splits)
    batch = next(iter(trainer.loaders[0]))
    sum(trainer.unwrapped(**batch).losses.values()).backward()
    trainer.optimizer.step()
    trainer.scheduler.step()
    progress = Progress(epoch=2, step_in_epoch=1, global_step=3, early_stopping={"best": 0.5})
    state = torch.Generator().manual_seed(7).get_state()
    save_training_state(tmp_path, trainer.unwrapped, trainer.optimizer, trainer.scheduler, state, progress)

    fresh, _ = Trainer.setup(tiny_config, splits)
    generator = torch.Generator()
    loaded = load_training_state(tmp_path, fresh.unwrapped, fresh.optimizer, fresh.scheduler, generator)
    assert loaded == progress
    assert torch.equal(generator.get_state(), state)
    for name, value in trainer.unwrapped.state_dict().items():
        assert torch.equal(value, fresh.unwrapped.state_dict()[name]), name
    saved, restored = trainer.optimizer.state_dict(), fresh.optimizer.state_dict()
    assert saved["param_groups"] == restored["param_groups"]
    for param_id, values in saved["state"].items():
        for key, value in values.items():
            assert torch.equal(value, restored["state"][param_id][key])
    assert fresh.scheduler.state_dict() == trainer.scheduler.state_dict()


def test_resume_refuses_a_folder_without_state(tmp_path):
    from typer.testing import CliRunner

    from mtst.cli import app

    (tmp_path / "config.yaml").write_text("train: {epochs: 1}\n")
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 2
    assert "nothing to resume" in result.output and "Traceback" not in result.output


def test_resume_refuses_other_settings(tmp_path):
    from typer.testing import CliRunner

    from mtst.cli import app

    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path), "--epochs", "3"])
    assert result.exit_code == 2
    assert "--epochs" in result.output


def test_resume_after_a_kill_between_the_two_renames(tmp_path, tiny_config):
    from mtst.training.state import has_training_state

    splits = load_splits(tiny_config.data)
    trainer, _ = Trainer.setup(tiny_config, splits)
    state = torch.Generator().manual_seed(7).get_state()
    progress = Progress(epoch=2, step_in_epoch=1, global_step=3)
    save_training_state(tmp_path, trainer.unwrapped, trainer.optimizer, trainer.scheduler, state, progress)
    old = tmp_path / f".{STATE_DIR}.old-killed"
    old.mkdir()
    os.replace(tmp_path / STATE_DIR, old / STATE_DIR)  # killed after the first rename

    assert has_training_state(tmp_path)
    fresh, _ = Trainer.setup(tiny_config, splits)
    loaded = load_training_state(tmp_path, fresh.unwrapped, fresh.optimizer, fresh.scheduler, torch.Generator())
    assert loaded == progress and not old.exists()
