"""`mtst suggest`: uncertainty measures by hand, diverse picks, and files the readers take back."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from mtst.cli import app
from mtst.data.formats.doccano import read_doccano
from mtst.data.formats.jsonl import read_jsonl
from mtst.data.formats.label_studio import read_label_studio
from mtst.inference.suggest import distinct, scores, select, uncertainties
from mtst.model.multitask import MultiTaskModel
from mtst.tasks import make_task
from mtst.tasks.uncertainty import bald, distribution_uncertainty, mnlp

POOL = [
    "play the song yesterday by the beatles",
    "Play the song   yesterday by the Beatles",  # the same up to case and spaces
    "what is the weather in paris",
    "will it rain in berlin tomorrow",
    "put on some jazz music",
    "is it sunny in rome",
    "play anything by queen",
]


def test_measures_by_hand():
    uniform, sure = torch.full((4,), 0.25), torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert distribution_uncertainty(uniform) == pytest.approx({"margin": 1.0, "entropy": 1.0})
    assert distribution_uncertainty(sure) == pytest.approx({"margin": 0.0, "entropy": 0.0}, abs=1e-6)
    assert bald([sure, sure]) == pytest.approx(0.0, abs=1e-6)  # samples agree: nothing to learn about weights
    assert bald([sure, torch.tensor([0.0, 1.0, 0.0, 0.0])]) == pytest.approx(math.log(2), abs=1e-5)
    emissions = torch.log(torch.tensor([[0.5, 0.5], [0.8, 0.2]]))
    assert mnlp(emissions) == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2)


def test_joint_and_single_strategies_and_random_is_seeded():
    rows = [{"intent.entropy": 0.2, "intent.margin": 0.1, "slots.mnlp": math.log(2)}, {"intent.entropy": 0.9}]
    assert scores(rows, "joint") == pytest.approx([(0.2 + 0.5) / 2, 0.9])
    assert scores(rows, "margin") == [0.1, 0.0]
    assert scores(rows, "random", seed=1) == scores(rows, "random", seed=1) != scores(rows, "random", seed=2)


def test_the_pick_takes_one_per_cluster_before_a_second():
    near_a, near_b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    embeddings = torch.stack([near_a, near_a * 0.99, near_b, near_b * 0.98])
    assert select([0.9, 0.8, 0.1, 0.05], 2, embeddings) == [0, 2]  # not the two most uncertain near-twins
    assert select([0.9, 0.8, 0.1, 0.05], 2, None) == [0, 1]
    assert distinct(POOL) == [POOL[0], *POOL[2:]]


def test_every_measure_of_a_checkpoint_is_in_range(tiny_checkpoint):
    model = MultiTaskModel.from_pretrained(tiny_checkpoint)
    rows, embeddings = uncertainties(model, POOL[:3], mc_samples=4)
    assert embeddings.shape == (3, 32) and torch.allclose(embeddings.norm(dim=-1), torch.ones(3))
    for row in rows:
        assert set(row) == {"intent.margin", "intent.entropy", "intent.bald", "slots.mnlp", "slots.bald"}
        assert 0 <= row["intent.margin"] <= 1 and 0 <= row["intent.entropy"] <= 1 + 1e-6 and row["slots.mnlp"] >= 0
        assert row["intent.bald"] >= -1e-6
    assert model.training is False  # put back as it was
    # A sentence measured alone gets what it gets in a batch.
    slots, head = model.tasks["slots"], model.heads["slots"]
    logits, samples = torch.randn(2, 6, len(slots.labels)), [torch.randn(2, 6, len(slots.labels)) for _ in range(3)]
    word_starts = [[1, None, 2, 4], [1, 3]]
    batched = slots.uncertainties(logits, samples, word_starts, head)
    for row, starts in enumerate(word_starts):
        alone = slots.uncertainty(logits[row], [sample[row] for sample in samples], starts, head)
        assert set(alone) == {"mnlp", "bald"} and alone == pytest.approx(batched[row])


def test_a_kind_without_a_measure_gives_none():
    topics = make_task("topics", "multilabel", "labels", ["a", "b"])
    logits = torch.randn(2, 2)
    assert topics.uncertainty(logits[0], [], None, None) == {}
    assert topics.uncertainties(logits, [], [None, None], None) == [{}, {}]


@pytest.mark.parametrize("fmt", ["mtst", "label-studio", "doccano"])
def test_the_file_goes_back_through_the_readers(tiny_checkpoint, tmp_path, fmt):
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(POOL) + "\n")
    output = tmp_path / ("out.json" if fmt == "label-studio" else "out.jsonl")
    argv = ["suggest", str(tiny_checkpoint), "--pool", str(pool), "--budget", "4", "-o", str(output), "--format", fmt]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert f"wrote 4 of {len(POOL)} pool sentences" in result.output
    if fmt == "label-studio":
        tasks = json.loads(output.read_text())
        ranks = [task["meta"]["mtst_suggestion"]["rank"] for task in tasks]
        for task in tasks:  # the annotator accepts the pre-annotation as it is
            task["annotations"] = [{"result": task["predictions"][0]["result"]}]
        output.write_text(json.dumps(tasks))
        examples = read_label_studio(output)
    else:
        records = [json.loads(line) for line in output.read_text().splitlines()]
        ranks = [record["mtst_suggestion"]["rank"] for record in records]
        examples = (read_jsonl if fmt == "mtst" else read_doccano)(output)
    texts = [example.text for example in examples]
    assert ranks == [1, 2, 3, 4] and set(texts) <= set(POOL) and len(set(t.casefold() for t in texts)) == 4
    assert all(example.annotations["label"] in {"GetWeather", "PlayMusic"} for example in examples)
    assert all("tags" in example.annotations for example in examples)


def test_bad_options_are_one_line_errors(tiny_checkpoint, tmp_path):
    pool = tmp_path / "pool.txt"
    pool.write_text("\n\n")
    out = str(tmp_path / "o.jsonl")
    runner = CliRunner()
    result = runner.invoke(app, ["suggest", str(tiny_checkpoint), "--pool", str(pool), "-n", "2", "-o", out])
    assert result.exit_code == 2 and "no sentences in the pool" in result.output
    pool.write_text("hello\n")
    argv = ["suggest", str(tiny_checkpoint), "--pool", str(pool), "-n", "2", "-o", out, "--strategy", "vibes"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2 and "unknown --strategy 'vibes'" in result.output


def test_a_pool_is_read_by_its_reader_or_as_lines(tmp_path):
    from mtst.inference.suggest import read_pool

    lines = tmp_path / "seq.in"  # a JointBERT words file: no reader's suffix, so one sentence per line
    lines.write_text("fly to paris\n\nweather in rome\n")
    assert read_pool(lines) == ["fly to paris", "weather in rome"]
    records = tmp_path / "pool.jsonl"
    records.write_text(json.dumps({"text": "play queen", "label": None}) + "\n")
    assert read_pool(records) == ["play queen"]


def test_batched_mnlp_is_each_sentences_own_best_path_probability_per_word():
    """One Viterbi for the batch gives each row what enumerating its tag sequences gives: -log max P / words."""
    import itertools

    from mtst.model.crf import CRF
    from mtst.tasks.uncertainty import mnlp_batch

    torch.manual_seed(0)
    crf = CRF(["O", "B-city", "I-city"])
    with torch.no_grad():
        for parameter in (crf.start, crf.end, crf.transitions):
            parameter.normal_()
    emissions = torch.randn(3, 4, 3)
    mask = torch.tensor([[True] * 4, [True, True, False, False], [False] * 4])
    batched = mnlp_batch(emissions, mask, crf)
    for row, words in enumerate(mask.sum(1).tolist()[:2]):
        paths = torch.tensor(list(itertools.product(range(3), repeat=words)))
        with torch.no_grad():
            every = crf.neg_log_likelihood(
                emissions[row, :words].expand(len(paths), -1, -1),
                paths,
                torch.ones(len(paths), words, dtype=torch.bool),
            )
        assert batched[row] == pytest.approx(every.min().item() / words, rel=1e-5)
        assert mnlp(emissions[row, :words], crf) == pytest.approx(batched[row], rel=1e-5)
    assert batched[2] == 0.0  # no words, nothing to be unsure about
    plain = mnlp_batch(emissions, mask)
    assert plain[1] == pytest.approx(mnlp(emissions[1, :2]))
