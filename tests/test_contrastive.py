"""SetFit-style contrastive warm-up (issue 26 item 3): pairs as SetFit draws them; the warm-up pulls same-intent
sentences together on the encoder; it is a config option of a normal run."""

import itertools

import pytest
import torch
from torch.nn import functional as F

from mtst.config import load_config
from mtst.errors import ConfigError
from mtst.training.contrastive import ContrastiveConfig, contrastive_warmup, sentence_pairs
from tests.conftest import TOY_SENTENCES


def test_each_sentence_gets_a_same_label_and_an_other_label_partner_per_iteration():
    texts, labels = ["a1", "a2", "b1", "b2", "b3"], ["A", "A", "B", "B", "B"]
    pairs = sentence_pairs(texts, labels, per_sentence=3, seed=0)
    assert len(pairs) == 3 * 5 * 2 and pairs == sentence_pairs(texts, labels, per_sentence=3, seed=0)
    label_of = dict(zip(texts, labels, strict=True))
    for first, second, target in pairs:
        assert first != second and (label_of[first] == label_of[second]) == (target == 1.0)
    assert sentence_pairs(["x"], ["A"], 2, 0) == []  # no partner of either kind: no pair


def _margin(model, texts, labels) -> float:
    """Mean cosine of same-label pairs minus that of different-label pairs."""
    embedded = F.normalize(model.encode(texts), dim=-1)
    same, other = [], []
    for i, j in itertools.combinations(range(len(texts)), 2):
        (same if labels[i] == labels[j] else other).append(float(embedded[i] @ embedded[j]))
    return sum(same) / len(same) - sum(other) / len(other)


def test_the_warm_up_pulls_same_intent_sentences_together(tiny_model, tiny_config):
    from mtst.data import load_splits

    train = load_splits(tiny_config.data).train
    texts, labels = [ex.text for ex in train], [ex.annotations["label"] for ex in train]
    torch.manual_seed(0)
    before = _margin(tiny_model, texts, labels)
    losses = contrastive_warmup(tiny_model, train, ContrastiveConfig(task="intent", epochs=3, lr=1e-3), seed=0)
    assert losses[-1] < losses[0]
    assert _margin(tiny_model, texts, labels) > before + 0.1


def test_the_option_names_a_one_label_task(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {contrastive: {task: slots}}\n")
    with pytest.raises(ConfigError, match="contrastive.task must name a task with one label per sentence"):
        load_config(path)


def test_a_run_with_the_warm_up_trains_and_logs_it(tiny_config, caplog):
    from mtst.training.loop import train

    config = tiny_config.model_copy(deep=True)
    config.train.contrastive = ContrastiveConfig(task="intent", pairs_per_sentence=2)
    with caplog.at_level("INFO", logger="mtst.training.contrastive"):
        summary = train(config)
    assert f"{2 * 2 * len(TOY_SENTENCES)} pairs" in caplog.text and summary["test"]["intent.accuracy"] >= 0


def test_the_head_can_start_as_setfits_logistic_regression_on_the_warmed_up_embeddings(tiny_model, tiny_config):
    from mtst.data import load_splits

    train = load_splits(tiny_config.data).train
    task, head = tiny_model.tasks["intent"], tiny_model.heads["intent"]
    gold = torch.tensor([task.label_to_id[ex.annotations["label"]] for ex in train])
    torch.manual_seed(0)
    config = ContrastiveConfig(task="intent", epochs=3, lr=1e-3, head_init="logistic_regression")
    contrastive_warmup(tiny_model, train, config, seed=0)
    tiny_model.eval()
    batch = tiny_model.tokenizer([ex.text for ex in train], padding=True, return_tensors="pt")
    with torch.no_grad():
        embedded = tiny_model.embed(batch["input_ids"], batch["attention_mask"])["sentence_embedding"]
        logits = head.classifier(embedded)
    assert (logits.argmax(-1) == gold).float().mean() == 1.0  # the fit separates the train sentences


def test_the_logistic_regression_head_gives_sklearns_probabilities_with_several_labels(monkeypatch):
    """Three labels seen (scikit-learn keeps a row per class) and one never seen (never predicted)."""
    from types import SimpleNamespace

    from sklearn.linear_model import LogisticRegression

    from mtst.training import contrastive

    labels = ["A", "B", "C", "unseen"]
    centres = {"A": [3.0, 0.0, 0.0], "B": [0.0, 3.0, 0.0], "C": [0.0, 0.0, 3.0]}
    generator = torch.Generator().manual_seed(0)
    examples = [
        SimpleNamespace(text=f"{label}{i}", annotations={"label": label}) for label in centres for i in range(6)
    ]
    embedded = {
        ex.text: torch.tensor(centres[ex.annotations["label"]]) + torch.randn(3, generator=generator) for ex in examples
    }
    monkeypatch.setattr(contrastive, "_embed", lambda model, texts, device: torch.stack([embedded[t] for t in texts]))
    model = torch.nn.Module()
    model.heads = torch.nn.ModuleDict({"intent": torch.nn.Module()})
    model.heads["intent"].classifier = torch.nn.Linear(3, len(labels))
    task = SimpleNamespace(labels=labels, label_to_id={label: i for i, label in enumerate(labels)}, field="label")
    model.tasks = {"intent": task}
    contrastive.fit_head_by_logistic_regression(model, "intent", examples)
    features = torch.stack([embedded[ex.text] for ex in examples])
    expected = LogisticRegression(max_iter=1000).fit(features.numpy(), [ex.annotations["label"] for ex in examples])
    with torch.no_grad():
        logits = model.heads["intent"].classifier(features)
    assert logits[:, :3].softmax(-1).numpy() == pytest.approx(expected.predict_proba(features.numpy()), abs=1e-5)
    assert (logits[:, 3] < logits[:, :3].min(-1).values).all()


def test_head_init_is_checked():
    with pytest.raises(ValueError, match="head_init"):
        ContrastiveConfig(task="intent", head_init="prototypes")


def test_a_run_of_too_few_optimizer_steps_says_how_to_train_longer(tiny_model, tiny_config, caplog):
    from mtst.training.loss_weighting import WeightedModel, build_loss_weighting
    from mtst.training.optim import FEW_STEPS, build_optimizer

    module = WeightedModel(tiny_model, build_loss_weighting(tiny_config))
    epochs = tiny_config.train.epochs
    with caplog.at_level("WARNING", logger="mtst.training.optim"):
        build_optimizer(module, tiny_config.strategy, tiny_config.train, total_steps=3 * epochs)
        [warning] = [record.getMessage() for record in caplog.records]
        caplog.clear()
        build_optimizer(module, tiny_config.strategy, tiny_config.train, total_steps=FEW_STEPS)
    assert f"run is {3 * epochs} optimizer steps ({epochs} epochs of 3)" in warning and "raise train.epochs" in warning
    assert not caplog.records  # a run of FEW_STEPS or more says nothing
