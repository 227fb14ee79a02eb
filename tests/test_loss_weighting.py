"""Loss weighting: sum, static weights, and learned uncertainty weights that receive gradients and are saved."""

from __future__ import annotations

import math

import pytest
import torch

from mtst.config import LossConfig, load_config
from mtst.errors import ConfigError
from mtst.training.loss_weighting import LossWeighting, UncertaintyWeighting


def test_sum_and_static_weights():
    losses = {"intent": torch.tensor(2.0), "slots": torch.tensor(3.0)}
    assert float(LossWeighting(["intent", "slots"])(losses)) == 5.0
    static = LossWeighting(["intent", "slots"], {"slots": 0.5})
    assert float(static(losses)) == 2.0 + 1.5 and static.weights() == {"intent": 1.0, "slots": 0.5}
    assert float(static({"intent": torch.tensor(2.0)})) == 2.0  # a task absent from the batch adds nothing


def test_uncertainty_formula_and_gradients():
    weighting = UncertaintyWeighting(["intent", "slots"])
    with torch.no_grad():
        weighting.log_variances.copy_(torch.tensor([0.0, math.log(4.0)]))
    loss = weighting({"intent": torch.tensor(2.0), "slots": torch.tensor(8.0)})
    assert loss.item() == pytest.approx(2.0 + 8.0 / 4 + 0.5 * math.log(4.0))
    loss.backward()
    # d/ds (exp(-s) L + s/2) = 0.5 - exp(-s) L
    assert weighting.log_variances.grad.tolist() == pytest.approx([0.5 - 2.0, 0.5 - 2.0])
    assert weighting.weights() == pytest.approx({"intent": 1.0, "slots": 0.25})


def test_uncertainty_weights_train_and_survive_the_training_state(tiny_config, tmp_path):
    from mtst.data import load_splits
    from mtst.training.loop import Trainer
    from mtst.training.state import Progress, load_training_state, save_training_state

    config = tiny_config.model_copy(update={"loss": LossConfig(weighting="uncertainty")})
    splits = load_splits(config.data)
    trainer, _ = Trainer.setup(config, splits)
    assert trainer.optimizer.param_groups[-1]["name"] == "loss_weighting"
    before = trainer.loss_weighting.log_variances.detach().clone()
    trainer.unwrapped.train()
    output = trainer.unwrapped(**next(iter(trainer.loaders[0])))
    trainer.loss_weighting(output.losses).backward()
    assert trainer.loss_weighting.log_variances.grad.abs().min() > 0
    trainer.optimizer.step()
    after = trainer.loss_weighting.log_variances.detach().clone()
    assert not torch.equal(before, after)

    save_training_state(
        tmp_path,
        trainer.unwrapped,
        trainer.optimizer,
        trainer.scheduler,
        [generator.get_state() for generator in trainer.sampler_generators],
        Progress(),
        trainer.loss_weighting,
    )
    fresh, _ = Trainer.setup(config, splits)
    load_training_state(
        tmp_path, fresh.unwrapped, fresh.optimizer, fresh.scheduler, fresh.sampler_generators, fresh.loss_weighting
    )
    assert torch.equal(fresh.loss_weighting.log_variances, after)


def test_learned_weights_are_logged_per_epoch(tiny_config):
    from mtst.training.loop import train

    summary = train(tiny_config.model_copy(update={"loss": LossConfig(weighting="uncertainty")}))
    first, second = summary["loss_weights_by_epoch"]
    assert set(first) == {"intent", "slots"} and first != second


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"loss.weighting": "static", "loss.weights": {"topic": 1.0}}, "unknown tasks \\['topic'\\]"),
        ({"loss.weights": {"intent": 2.0}}, "apply only with loss.weighting: static"),
        ({"loss.weighting": "static", "loss.weights": {"intent": -1.0}}, "must be >= 0"),
        ({"loss.weighting": "mean"}, "loss.weighting"),
    ],
)
def test_bad_loss_settings_are_one_clear_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, **overrides)
