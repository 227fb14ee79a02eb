"""Freezing strategies: the exact trainable parameters, their learning rates, and gradual unfreezing by epoch."""

from __future__ import annotations

import pytest

from mtst.config import TrainConfig, load_config
from mtst.errors import ConfigError
from mtst.training.strategies import parse_strategy, short_form

CFG = TrainConfig(encoder_lr=1e-4, head_lr=1e-3)


def _names(model, prefix: str) -> set[str]:
    return {n for n, _ in model.named_parameters() if n.startswith(prefix)}


def _groups(model, spec: str, **options) -> dict[str, tuple[set[str], float]]:
    names = {id(p): n for n, p in model.named_parameters()}
    strategy = parse_strategy({**short_form(spec), **options})
    return {g["name"]: ({names[id(p)] for p in g["params"]}, g["lr"]) for g in strategy.parameter_groups(model, CFG)}


def _trainable(model, spec: str, epoch: int, **options) -> set[str]:
    model.train()
    parse_strategy({**short_form(spec), **options}).on_epoch_start(model, epoch)
    return {n for n, p in model.named_parameters() if p.requires_grad}


def _block(model, block: str) -> set[str]:
    return _names(model, "encoder.embeddings." if block == "embeddings" else f"encoder.encoder.layer.{block}.")


def _lrs(groups) -> dict[str, float]:
    return {name: lr for name, (_, lr) in groups.items()}


WORD_EMBEDDINGS = "encoder.embeddings.word_embeddings.weight"


@pytest.fixture
def parts(tiny_model):
    heads = _names(tiny_model, "heads.")
    return {"heads": heads, **{b: _block(tiny_model, b) for b in ("embeddings", "0", "1")}}


def test_full_trains_every_block_at_the_encoder_lr_but_not_the_unused_pooler(tiny_model, parts):
    groups = _groups(tiny_model, "full")
    encoder = parts["embeddings"] | parts["0"] | parts["1"]
    assert set().union(*(params for params, _ in groups.values())) == encoder | parts["heads"]
    assert _lrs(groups) == {
        **{f"encoder.{b}{s}": 1e-4 for b in ("embeddings", "layer.0", "layer.1") for s in ("", ".no_decay")},
        "heads": 1e-3,
        "heads.no_decay": 1e-3,
    }
    biases = {"heads.intent.classifier.bias", "heads.slots.classifier.bias"}
    assert groups["heads.no_decay"][0] == biases | {"heads.slots.crf.start", "heads.slots.crf.end"}
    assert _trainable(tiny_model, "full", 1) == encoder | parts["heads"]
    assert _names(tiny_model, "encoder.pooler.")  # it exists, and is frozen: mean pooling never uses it


def test_frozen_word_embeddings_leave_the_rest_of_their_block_training(tiny_model, parts):
    assert WORD_EMBEDDINGS in parts["embeddings"] and WORD_EMBEDDINGS in _trainable(tiny_model, "full", 1)
    groups = _groups(tiny_model, "full", train_word_embeddings=False)
    assert groups["encoder.embeddings"][0] | groups["encoder.embeddings.no_decay"][0] == parts["embeddings"] - {
        WORD_EMBEDDINGS
    }
    trainable = _trainable(tiny_model, "full", 1, train_word_embeddings=False)
    assert trainable == (parts["embeddings"] - {WORD_EMBEDDINGS}) | parts["0"] | parts["1"] | parts["heads"]


def test_frozen_trains_heads_only_and_keeps_the_encoder_in_eval_mode(tiny_model, parts):
    groups = _groups(tiny_model, "frozen")
    assert _lrs(groups) == {"heads": 1e-3, "heads.no_decay": 1e-3}
    assert _trainable(tiny_model, "frozen", 1) == parts["heads"]
    assert tiny_model.training and tiny_model.heads.training
    assert not any(module.training for module in tiny_model.encoder.modules() if module is not tiny_model.encoder)


def test_discriminative_uses_its_own_encoder_and_head_lrs(tiny_model, parts):
    groups = _groups(tiny_model, "discriminative", encoder_lr=2e-5, head_lr=3e-3)
    lrs = _lrs(groups)
    assert {lrs[n] for n in lrs if n.startswith("encoder.")} == {2e-5}
    assert (lrs["heads"], lrs["heads.no_decay"]) == (3e-3, 3e-3)
    assert _trainable(tiny_model, "discriminative", 1) == parts["embeddings"] | parts["0"] | parts["1"] | parts["heads"]


def test_freeze_lower_freezes_embeddings_and_the_lowest_layers(tiny_model, parts):
    groups = _groups(tiny_model, "freeze-lower:1")
    assert _lrs(groups) == {
        "encoder.layer.1": 1e-4,
        "encoder.layer.1.no_decay": 1e-4,
        "heads": 1e-3,
        "heads.no_decay": 1e-3,
    }
    assert _trainable(tiny_model, "freeze-lower:1", 1) == parts["1"] | parts["heads"]
    assert not tiny_model.encoder.encoder.layer[0].training and tiny_model.encoder.encoder.layer[1].training
    assert _trainable(tiny_model, "freeze-lower:0", 1) == parts["0"] | parts["1"] | parts["heads"]
    with pytest.raises(ConfigError, match="only 2 layers"):
        _groups(tiny_model, "freeze-lower:3")


def test_gradual_unfreezes_one_block_per_epoch_from_the_top(tiny_model, parts):
    groups = _groups(tiny_model, "gradual")
    assert len(groups) == 8  # every block has its groups from the start, so optimizer state fits any epoch
    expected = {
        1: parts["heads"],
        2: parts["heads"] | parts["1"],
        3: parts["heads"] | parts["1"] | parts["0"],
        4: parts["heads"] | parts["1"] | parts["0"] | parts["embeddings"],
        5: parts["heads"] | parts["1"] | parts["0"] | parts["embeddings"],
    }
    for epoch, trainable in expected.items():
        assert _trainable(tiny_model, "gradual", epoch) == trainable, epoch
    slower = [_trainable(tiny_model, "gradual", e, epochs_per_block=2) for e in (1, 2, 3, 4, 5)]
    assert slower == [expected[1], expected[1], expected[2], expected[2], expected[3]]


def test_llrd_decays_the_lr_layer_by_layer_downwards(tiny_model, parts):
    lrs = _lrs(_groups(tiny_model, "llrd:0.5"))
    assert lrs["encoder.layer.1"] == pytest.approx(1e-4)
    assert lrs["encoder.layer.0"] == lrs["encoder.layer.0.no_decay"] == pytest.approx(5e-5)
    assert lrs["encoder.embeddings"] == pytest.approx(2.5e-5) and lrs["heads"] == 1e-3
    assert _trainable(tiny_model, "llrd:0.5", 1) == parts["embeddings"] | parts["0"] | parts["1"] | parts["heads"]


@pytest.mark.parametrize("spec", ["partial", "llrd:2", "freeze-lower:x", "llrd"])
def test_a_bad_strategy_names_the_valid_ones(spec):
    with pytest.raises(ConfigError, match="unknown strategy .*full, frozen, discriminative, freeze-lower:N"):
        load_config(None, strategy=spec)


def test_summary_reports_trainable_parameters_per_epoch(tiny_config):
    from mtst.training.loop import train

    config = tiny_config.model_copy(update={"strategy": parse_strategy("gradual")})
    summary = train(config)
    heads = sum(p.numel() for n, p in _model_parameters(tiny_config) if n.startswith("heads."))
    top = sum(p.numel() for n, p in _model_parameters(tiny_config) if n.startswith("encoder.encoder.layer.1."))
    assert summary["strategy"] == "gradual"
    assert summary["parameters"]["trainable_by_epoch"] == [heads, heads + top]


def _model_parameters(config):
    from mtst.data import load_splits
    from mtst.model.multitask import MultiTaskModel

    return list(MultiTaskModel.from_config(config, load_splits(config.data)).named_parameters())


def test_train_command_refuses_a_bad_strategy_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from mtst.cli import app

    result = CliRunner().invoke(app, ["train", "--strategy", "llrd:1.5", "--output-dir", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "strategy: unknown strategy 'llrd:1.5'" in result.output
