"""The token head's word-vector options: sub-token pooling, the scalar mix of layers, the class-weight cap."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mtst.cli import app
from mtst.config import load_config
from mtst.data.batching import Collator
from mtst.data.example import Example
from mtst.data.features import Features, encode_examples
from mtst.data.labels import IGNORE_ID
from mtst.errors import ConfigError
from mtst.inference.predictor import Predictor
from mtst.model.multitask import MultiTaskModel
from mtst.model.subtokens import NO_WORD, ScalarMix, pool_subtokens
from mtst.tasks import make_task, task_config
from mtst.tasks.token_head import TokenHead, token_class_weights
from mtst.training.loop import train
from tests.conftest import TOY_SENTENCES

# One sentence: [CLS] w0a w0b w1 [SEP] [PAD]; each state is a distinct row.
STATES = torch.arange(6 * 2, dtype=torch.float).view(1, 6, 2)
WORD_IDS = torch.tensor([[NO_WORD, 0, 0, 1, NO_WORD, NO_WORD]])


def test_first_pooling_is_the_encoder_states_unchanged():
    assert pool_subtokens(STATES, None, "first") is STATES


def test_mean_pooling_puts_each_words_mean_at_all_its_subtokens():
    pooled = pool_subtokens(STATES, WORD_IDS, "mean")[0]
    s = STATES[0]
    word0 = (s[1] + s[2]) / 2
    assert torch.equal(pooled[1], word0) and torch.equal(pooled[2], word0)
    assert torch.equal(pooled[3], s[3])
    assert torch.equal(pooled[[0, 4, 5]], s[[0, 4, 5]])  # specials and padding keep their own state


def test_first_last_pooling_concatenates_a_words_first_and_last_subtoken():
    pooled = pool_subtokens(STATES, WORD_IDS, "first_last")[0]
    s = STATES[0]
    assert pooled.shape == (6, 4)
    assert torch.equal(pooled[1], torch.cat([s[1], s[2]])) and torch.equal(pooled[2], torch.cat([s[1], s[2]]))
    assert torch.equal(pooled[3], torch.cat([s[3], s[3]]))
    assert torch.equal(pooled[0], torch.cat([s[0], s[0]]))


@given(st.lists(st.lists(st.integers(1, 4), max_size=5), min_size=1, max_size=3), st.integers(0, 3))
@settings(max_examples=60, deadline=None)
def test_first_last_pooling_matches_a_word_by_word_reference(sentences, padding):
    """Random batches of [CLS] words [SEP] [PAD]...: each word's first and last sub-token, by hand."""
    rows = [[NO_WORD] + [w for w, pieces in enumerate(s) for _ in range(pieces)] + [NO_WORD] for s in sentences]
    width = max(map(len, rows)) + padding
    word_ids = torch.tensor([row + [NO_WORD] * (width - len(row)) for row in rows])
    states = torch.randn(len(rows), width, 3)
    pooled = pool_subtokens(states, word_ids, "first_last")
    for b, row in enumerate(word_ids.tolist()):
        for i, word in enumerate(row):
            span = [j for j, other in enumerate(row) if other == word] if word != NO_WORD else [i]
            assert torch.equal(pooled[b, i], torch.cat([states[b, span[0]], states[b, span[-1]]]))


def test_pooling_without_word_ids_is_refused():
    with pytest.raises(ValueError, match="needs the word index"):
        pool_subtokens(STATES, None, "mean")


def test_scalar_mix_starts_as_the_layer_average_and_learns_its_weights():
    layers = tuple(torch.randn(2, 3, 4) for _ in range(3))
    mix = ScalarMix(3)
    mixed = mix(layers)
    assert torch.allclose(mixed, sum(layers) / 3, atol=1e-6)
    mixed.sum().backward()
    assert mix.gamma.grad is not None and mix.layer_weights.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="3 layers got 2"):
        mix(layers[:2])


def test_token_head_reads_the_mixed_layers_and_pools_them():
    task = make_task("slots", "token", "tags", ("O", "B-x"), subtoken_pooling="first_last", encoder_layers="scalar_mix")
    head = TokenHead(2, task, num_layers=2)
    assert head.classifier.in_features == 4
    features = {"token_embeddings": None, "hidden_states": (STATES, 3 * STATES), "word_ids": WORD_IDS}
    with torch.no_grad():
        expected = pool_subtokens(2 * STATES, WORD_IDS, "first_last")  # the average of STATES and 3 * STATES
        assert torch.allclose(head.word_vectors(features), expected)


def test_collator_pads_word_ids_and_features_carry_them(tiny_model):
    example = Example.from_words(["weather", "in", "zurichberg"], {"tags": ("O", "O", "B-city")})
    [feature] = encode_examples([example], tiny_model.tokenizer, [tiny_model.tasks["slots"]], 64)
    assert feature.word_ids[0] == NO_WORD and feature.word_ids[-1] == NO_WORD
    assert feature.word_ids.count(2) > 1  # the rare word is split into several sub-tokens
    batch = Collator(0, {})([feature, Features([101, 102], [], {}, [NO_WORD, NO_WORD])])
    assert batch["word_ids"][0].tolist() == feature.word_ids
    assert batch["word_ids"][1].tolist() == [NO_WORD] * len(feature.word_ids)


def test_class_weight_cap_bounds_the_heaviest_to_lightest_ratio():
    # 90 O, 9 B-x, 1 I-x: inverse weights are 1/90 : 1/9 : 1 before scaling (ratio 90).
    labels = [0] * 90 + [1] * 9 + [2]
    encoded = [labels + [IGNORE_ID]]
    plain = token_class_weights(encoded, 3, "inverse")
    assert float(plain.max() / plain.min()) == pytest.approx(90.0)
    capped = token_class_weights(encoded, 3, "inverse", cap=5.0)
    assert capped.tolist() == pytest.approx([capped[0].item(), 5 * capped[0].item(), 5 * capped[0].item()])
    frequency = torch.tensor([0.9, 0.09, 0.01])
    assert float((capped * frequency).sum()) == pytest.approx(1.0)  # the average labelled token still weighs 1


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (
            {"name": "intent", "type": "sentence", "subtoken_pooling": "mean"},
            "`subtoken_pooling` is not an option of sentence tasks; it applies to token",
        ),
        (
            {"name": "intent", "type": "sentence", "encoder_layers": "scalar_mix"},
            "`encoder_layers` is not an option of sentence tasks; it applies to token",
        ),
        (
            {"name": "intent", "type": "sentence", "class_weight_cap": 3},
            "`class_weight_cap` is not an option of sentence tasks; it applies to token",
        ),
        ({"name": "slots", "type": "token", "class_weight_cap": 0.5}, "greater than or equal to 1"),
        ({"name": "slots", "type": "token", "subtoken_pooling": "last"}, "'first', 'mean' or 'first_last'"),
        ({"name": "slots", "type": "token", "encoder_layers": "all"}, "'last' or 'scalar_mix'"),
    ],
)
def test_bad_word_vector_options_are_config_errors(tmp_path, task, message):
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"tasks": [task]}))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


@pytest.fixture(scope="module")
def options_run(tmp_path_factory, tiny_encoder_dir):
    """A short run with every word-vector option on the slot task, as a user would configure it."""
    from tests.conftest import write_jointbert

    data = tmp_path_factory.mktemp("toy")
    for split in ("train", "dev", "test"):
        write_jointbert(data / split, TOY_SENTENCES)
    output = tmp_path_factory.mktemp("run") / "run"
    config = load_config(
        None,
        **{
            "encoder.name_or_path": str(tiny_encoder_dir),
            "encoder.max_length": 64,
            "data.dir": str(data),
            "output_dir": str(output),
            "train.epochs": 1,
            "train.batch_size": 4,
            "train.num_sample_predictions": 0,
        },
    )
    slots = {"subtoken_pooling": "first_last", "encoder_layers": "scalar_mix", "class_weight_cap": 2.0, "crf": False}
    config.tasks[1] = task_config(**{**config.tasks[1].model_dump(), **slots})
    return output, train(config)


def test_options_are_saved_in_the_checkpoint_and_reload(options_run):
    output, summary = options_run
    saved = json.loads((output / "best" / "config.json").read_text())["tasks"][1]
    assert saved["subtoken_pooling"] == "first_last" and saved["encoder_layers"] == "scalar_mix"
    assert "class_weight_cap: 2.0" in (output / "config.yaml").read_text()
    weights = summary["imbalance"]["slots.imbalance"]
    assert weights["cap"] == 2.0 and weights["max"] / weights["min"] == pytest.approx(2.0, rel=1e-3)
    model = MultiTaskModel.from_pretrained(output / "best")
    head = model.heads["slots"]
    assert head.layer_mix.layer_weights.numel() == 3 and head.classifier.in_features == 64  # 2 blocks + embeddings
    assert not torch.equal(head.layer_mix.layer_weights, torch.zeros(3))  # the mix trained


@pytest.mark.slow
def test_pooled_checkpoint_predicts_the_same_through_onnx(options_run):
    best = options_run[0] / "best"
    result = CliRunner().invoke(app, ["export", str(best), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    note = json.loads((best / "onnx_export.json").read_text())
    assert list(note["inputs"]) == ["input_ids", "attention_mask", "word_ids"]
    texts = [words for words, _, _ in TOY_SENTENCES] + ["weather in zurichberg tomorrow", ""]
    eager = Predictor.from_checkpoint(best).predict(texts)
    onnx = Predictor.from_checkpoint(best, backend="onnx").predict(texts)
    for torch_row, onnx_row in zip(eager, onnx, strict=True):
        assert torch_row["label"] == onnx_row["label"]
        assert [(e["start"], e["end"], e["label"]) for e in torch_row["entities"]] == [
            (e["start"], e["end"], e["label"]) for e in onnx_row["entities"]
        ]


def test_mean_pooling_changes_only_the_token_logits(tiny_model):
    """The same weights with first vs mean pooling: identical intent logits, different slot logits on a
    sentence with a multi-piece word, identical on one without."""
    features = encode_examples([Example.from_text("weather in zurichberg")], tiny_model.tokenizer, [], 64)
    batch = Collator(0, {})(features)
    # first and mean give the head vectors of one width (first_last, the default, doubles it).
    slots = tiny_model.tasks["slots"].model_copy(update={"subtoken_pooling": "first"})
    model = MultiTaskModel(tiny_model.encoder, tiny_model.tokenizer, [tiny_model.tasks["intent"], slots]).eval()
    with torch.no_grad():
        first = model(batch["input_ids"], batch["attention_mask"], word_ids=batch["word_ids"]).logits
        model.heads["slots"].pooling = "mean"
        mean = model(batch["input_ids"], batch["attention_mask"], word_ids=batch["word_ids"]).logits
    assert torch.equal(first["intent"], mean["intent"])
    assert not torch.allclose(first["slots"], mean["slots"])
    single_piece = batch["word_ids"][0].tolist().index(1)  # "in" is one sub-token
    assert torch.allclose(first["slots"][0, single_piece], mean["slots"][0, single_piece], atol=1e-6)
