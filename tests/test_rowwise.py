"""`strategy.word_embeddings: rows`: AdamW per row, only the rows a batch reaches change."""

from __future__ import annotations

import pytest
import torch

from mtst.data import load_splits
from mtst.errors import ConfigError
from mtst.training.loop import Trainer
from mtst.training.optim import adamw
from mtst.training.rowwise import RowwiseAdamW
from mtst.training.strategies import parse_strategy

WORD_EMBEDDINGS = "encoder.embeddings.word_embeddings.weight"


def _steps(optimizer_kind, grads, rowwise: bool, **options):
    torch.manual_seed(0)
    matrix, other = torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(4))
    groups = [
        {"params": [matrix], "lr": 0.1, "weight_decay": 0.01, "rowwise": rowwise},
        {"params": [other], "lr": 0.1, "weight_decay": 0.0},
    ]
    optimizer = optimizer_kind(groups, **options)
    for grad in grads:
        matrix.grad, other.grad = grad.clone(), grad[0, :].repeat(2)[:4].clone()
        optimizer.step()
    return matrix.detach(), other.detach(), optimizer


@pytest.mark.parametrize("flags", [{"fused": True}, {"foreach": False}])
def test_a_row_seen_every_step_follows_adamw_exactly(flags):
    grads = [torch.randn(5, 3, generator=torch.Generator().manual_seed(s)) for s in range(4)]
    expected = _steps(torch.optim.AdamW, grads, rowwise=False, foreach=False)
    got = _steps(RowwiseAdamW, grads, rowwise=True, **flags)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-6, atol=1e-7)  # the dense group is AdamW's own step
    assert got[2].state[got[2].param_groups[0]["params"][0]]["row_steps"].tolist() == [4.0] * 5


def test_an_unseen_row_keeps_its_exact_value_and_its_moments():
    grads = [torch.randn(5, 3, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    for grad in grads[1:]:
        grad[2] = 0.0  # row 2 is seen at the first step only, row 4 never
    for grad in grads:
        grad[4] = 0.0
    torch.manual_seed(0)
    start = torch.randn(5, 3)
    after_first, _, _ = _steps(RowwiseAdamW, grads[:1], rowwise=True)
    final, _, optimizer = _steps(RowwiseAdamW, grads, rowwise=True)
    assert torch.equal(final[4], start[4])  # never seen: bitwise its initial value, no weight decay either
    assert torch.equal(final[2], after_first[2])  # no momentum carried it on
    assert not torch.equal(final[0], after_first[0]) and not torch.equal(after_first[0], start[0])
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    assert state["row_steps"].tolist() == [3.0, 3.0, 1.0, 3.0, 0.0]
    assert torch.equal(state["exp_avg"][4], torch.zeros(3))
    # Plain AdamW, for contrast: the unseen row decays.
    dense, _, _ = _steps(torch.optim.AdamW, grads, rowwise=False)
    assert not torch.equal(dense[4], start[4])


def test_rows_strategy_puts_the_word_embeddings_in_a_rowwise_group(tiny_model):
    from mtst.config import TrainConfig

    names = {id(p): n for n, p in tiny_model.named_parameters()}
    groups = parse_strategy({"word_embeddings": "rows"}).parameter_groups(tiny_model, TrainConfig(weight_decay=0.01))
    rowwise = [g for g in groups if g.get("rowwise")]
    assert [[names[id(p)] for p in g["params"]] for g in rowwise] == [[WORD_EMBEDDINGS]]
    assert rowwise[0]["weight_decay"] == 0.01 and rowwise[0]["name"] == "encoder.word_embeddings.rows"
    others = {names[id(p)] for g in groups if not g.get("rowwise") for p in g["params"]}
    assert WORD_EMBEDDINGS not in others and "encoder.embeddings.position_embeddings.weight" in others
    assert isinstance(adamw(groups), RowwiseAdamW) and type(adamw(groups[:1])) is torch.optim.AdamW


def test_word_embeddings_settings_and_the_older_spelling():
    assert parse_strategy("full").word_embeddings == "full"
    assert parse_strategy({"train_word_embeddings": False}).word_embeddings == "frozen"
    assert parse_strategy({"name": "llrd", "decay": 0.8, "train_word_embeddings": True}).word_embeddings == "full"
    assert parse_strategy({"word_embeddings": "frozen"}).train_word_embeddings is False
    with pytest.raises(ConfigError, match="freezes what `word_embeddings: rows` trains"):
        parse_strategy({"word_embeddings": "rows", "train_word_embeddings": False})
    with pytest.raises(ConfigError, match="'full', 'rows' or 'frozen'"):
        parse_strategy({"word_embeddings": "sparse"})


def test_training_with_rows_changes_only_the_rows_of_words_in_the_batches(tiny_config):
    config = tiny_config.model_copy(update={"strategy": parse_strategy({"word_embeddings": "rows"})})
    trainer, _ = Trainer.setup(config, load_splits(config.data))
    matrix = trainer.unwrapped.encoder.get_input_embeddings().weight
    before, seen = matrix.detach().clone(), set()
    for batch in list(trainer.loaders[0])[:2]:
        seen |= set(batch["input_ids"].flatten().tolist())
        sum(trainer.unwrapped(**batch).losses.values()).backward()
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
    changed = {row for row in range(matrix.shape[0]) if not torch.equal(matrix[row], before[row])}
    pad = trainer.unwrapped.tokenizer.pad_token_id
    assert changed == seen - {pad} and len(changed) > 5  # the padding row's gradient is always zero


def test_the_older_spelling_reads_bools_as_pydantic_does():
    assert parse_strategy({"train_word_embeddings": "false"}).word_embeddings == "frozen"
    with pytest.raises(ConfigError, match="train_word_embeddings must be true or false"):
        parse_strategy({"train_word_embeddings": "sometimes"})
