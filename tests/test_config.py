"""The config refuses what cannot train: non-finite numbers, unusable names, out-of-range seeds, repeated keys,
files that are not UTF-8 YAML; each as one ConfigError line."""

import pytest

from mtst.config import load_config
from mtst.errors import ConfigError


def _load(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


@pytest.mark.parametrize(
    "text, where",
    [
        ("loss: {weighting: static, weights: {slots: .nan}}\n", "loss.weights.slots"),
        ("train: {encoder_lr: .inf}\n", "train.encoder_lr"),
        ("train: {weight_decay: .inf}\n", "train.weight_decay"),
        ("train: {entity_sampler_weight: .inf}\n", "train.entity_sampler_weight"),
        ("train: {head_lr: -.inf}\n", "train.head_lr"),
        ("tasks: [{name: intent, type: sentence, dropout: .nan}]\n", "tasks.0.dropout"),
    ],
)
def test_non_finite_numbers_are_refused(tmp_path, text, where):
    with pytest.raises(ConfigError, match=rf"{where}: .*finite"):
        _load(tmp_path, text)


def test_a_learning_rate_torch_cannot_step_with_is_refused():
    with pytest.raises(ConfigError, match="train.encoder_lr: .*less than or equal to 10"):
        load_config(None, **{"train.encoder_lr": 1e38})


@pytest.mark.parametrize("name", ["intent.main", "", " ", "a/b"])
def test_task_names_must_be_usable_as_keys(tmp_path, name):
    with pytest.raises(ConfigError, match="tasks.0.name"):
        _load(tmp_path, f"tasks: [{{name: {name!r}, type: sentence}}]\n")


@pytest.mark.parametrize("seed", [-1, 2**66])
def test_seed_must_fit_every_generator(seed):
    with pytest.raises(ConfigError, match="train.seed"):
        load_config(None, **{"train.seed": seed})


def test_duplicate_keys_are_refused_with_their_line(tmp_path):
    with pytest.raises(ConfigError, match=r"config.yaml:3: .*`epochs` given twice"):
        _load(tmp_path, "train:\n  epochs: 1\n  epochs: 100\n")


def test_latin1_config_is_one_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes("# caf\xe9\ntrain: {epochs: 1}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"config.yaml:1: not UTF-8"):
        load_config(path)


def test_a_folder_as_config_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, not a config file"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    "given, expected",
    [
        (None, []),
        ("tensorboard", ["tensorboard"]),
        (["tensorboard,mlflow"], ["tensorboard", "mlflow"]),
        (["mlflow", "tensorboard"], ["mlflow", "tensorboard"]),
        ("none", []),
    ],
)
def test_report_to_takes_a_name_a_list_or_commas(given, expected):
    assert load_config(None, **{"train.report_to": given}).train.report_to == expected


@pytest.mark.parametrize(
    "given, message",
    [
        (["wandb"], r"train.report_to.0: Input should be 'tensorboard' or 'mlflow'"),
        ("mlflow,mlflow", r"train.report_to: .*name each tracker once"),
        ({"tensorboard": True}, r"train.report_to: "),
        (",", r"train.report_to: .*a tracker name is empty; .* or none for no tracker"),
        ("", r"train.report_to: .*a tracker name is empty"),
        (["mlflow", " "], r"train.report_to: .*a tracker name is empty"),
        ("tensorboard,", r"train.report_to: .*a tracker name is empty"),
    ],
)
def test_report_to_names_known_trackers_once(given, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, **{"train.report_to": given})
