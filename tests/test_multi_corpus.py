"""Multi-corpus training: each task on its own dataset, batches from one corpus at a time, evaluated apart."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mtst.config import load_config
from mtst.data import corpus_data
from mtst.data.sampling import TaskSampler
from mtst.errors import ConfigError
from tests.conftest import TOY_SENTENCES

TOPICS = [("stocks fell sharply in tokyo", "Business"), ("the team won the cup final", "Sports")] * 5


@pytest.fixture
def two_corpora(tmp_path, tiny_encoder_dir):
    """A CSV topic corpus without a dev split and a CoNLL entity corpus."""
    topics, entities = tmp_path / "topics", tmp_path / "entities"
    topics.mkdir()
    entities.mkdir()
    for split in ("train", "test"):
        (topics / f"{split}.csv").write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in TOPICS))
    for split in ("train", "dev", "test"):
        blocks = [
            "\n".join(f"{w} {t}" for w, t in zip(words.split(), tags.split(), strict=True))
            for words, tags, _ in TOY_SENTENCES
        ]
        (entities / f"{split}.txt").write_text("\n\n".join(blocks) + "\n")
    raw = {
        "encoder": {"name_or_path": str(tiny_encoder_dir), "max_length": 64},
        "tasks": [
            {"name": "topic", "type": "sentence", "data": {"dir": str(topics), "dev": None, "dev_from_train": 0.2}},
            {"name": "entities", "type": "token", "data": {"dir": str(entities), "format": "conll"}},
        ],
        "train": {"epochs": 2, "batch_size": 3, "num_sample_predictions": 0},
        "task_sampling": "round-robin",
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "two.yaml"
    import yaml

    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_sampling_rules_are_seeded_by_epoch():
    proportional = TaskSampler("proportional", seed=1)
    order = proportional.order([6, 2], epoch=1)
    assert Counter(order) == {0: 6, 1: 2}
    assert order == proportional.order([6, 2], epoch=1) and order != proportional.order([6, 2], epoch=2)
    assert TaskSampler("round-robin").order([3, 1], 1) == [0, 1, 0, 1]
    flat = Counter(TaskSampler("temperature:1000").order([900, 100], 1))
    assert len(flat) == 2 and abs(flat[0] - flat[1]) < 150  # high temperature: close to uniform
    assert TaskSampler("proportional").order([4], 3) == [0, 0, 0, 0]


def test_a_bad_sampling_rule_names_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown task_sampling 'random'; choose one of proportional"):
        load_config(None, task_sampling="random")


def test_tasks_without_their_own_data_share_the_top_level_corpus(two_corpora):
    config = two_corpora.model_copy(
        update={"tasks": [*two_corpora.tasks, two_corpora.tasks[1].model_copy(update={"name": "x", "data": None})]}
    )
    assert [names for names, _ in corpus_data(config)] == [["topic"], ["entities"], ["x"]]


def test_a_batch_computes_losses_only_for_its_own_corpus_tasks(two_corpora):
    from mtst.data import load_corpora
    from mtst.training.loop import Trainer

    corpora = load_corpora(two_corpora)
    assert [len(c.splits.train) for c in corpora] == [8, 8] and len(corpora[0].splits.dev) == 2
    trainer, _ = Trainer.setup(two_corpora, corpora)
    seen = Counter()
    for batch in trainer.task_sampler.batches(trainer.loaders, epoch=1):
        output = trainer.unwrapped(**batch)
        assert set(output.losses) == set(batch["labels"]) and set(batch["labels"]) in ({"topic"}, {"entities"})
        seen[next(iter(batch["labels"]))] += 1
    assert seen == {"topic": 3, "entities": 3}  # round-robin over ceil(8/3) batches of each corpus


def test_multi_corpus_training_evaluates_each_task_on_its_own_test_set(two_corpora):
    from mtst.training.loop import train

    summary = train(two_corpora)
    assert set(summary["test"]) >= {"topic.accuracy", "entities.f1", "sentence_accuracy.topic", "score"}
    assert summary["test"]["score"] == pytest.approx(
        (summary["test"]["topic.accuracy"] + summary["test"]["entities.f1"]) / 2
    )
    assert summary["train_examples"] == 16
    from safetensors.torch import load_file

    rng = load_file(Path(two_corpora.output_dir) / "training_state" / "rng.safetensors")
    assert {"sampler", "sampler.1"} <= set(rng)  # each corpus's sampler state, for resuming mid-epoch


def test_shipped_news_ner_config_gives_each_task_its_corpus():
    config = load_config(Path(__file__).parents[1] / "configs" / "news_ner.yaml")
    groups = corpus_data(config)
    assert [(names, data.format) for names, data in groups] == [(["topic"], "csv"), (["entities"], "conll")]
    assert groups[0][1].text_column == "content" and groups[0][1].dev_from_train == 0.1


def test_a_tiny_temperature_picks_the_largest_corpus_instead_of_overflowing():
    # 900 ** (1 / 0.001) is inf in double precision; the weights are computed in log space.
    order = TaskSampler("temperature:0.001").order([900, 100], 1)
    assert order == [0] * 1000
