"""`mtst pretrain`: masked-LM training of the tiny encoder on the toy corpus, written as an encoder folder."""

import json

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from mtst.cli import app
from mtst.model.encoder import load_encoder, load_tokenizer
from mtst.training.pretrain import MaskingCollator, PretrainConfig, _encode, _load_masked_lm, masked_lm_loss


@pytest.fixture(scope="module")
def pretrained(tiny_encoder_dir, tmp_path_factory):
    from tests.conftest import TOY_SENTENCES, write_jointbert

    data = tmp_path_factory.mktemp("toy")
    for split in ("train", "dev", "test"):
        write_jointbert(data / split, TOY_SENTENCES)
    extra = data / "extra.txt"
    extra.write_text("play some music by the rolling stones\nweather in lisbon on friday\n")
    output = tmp_path_factory.mktemp("tapt") / "encoder"
    argv = ["pretrain", "--encoder", str(tiny_encoder_dir), "--data-dir", str(data), "--output-dir", str(output)]
    argv += ["--extra-text", str(extra), "--epochs", "4", "--batch-size", "4", "--learning-rate", "1e-3"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    return output, json.loads(result.output[result.output.index("{") :])


def test_pretrain_writes_an_encoder_folder_that_training_accepts(pretrained, tiny_encoder_dir):
    output, printed = pretrained
    note = json.loads((output / "pretrain.json").read_text())
    assert note["train_sentences"] == 8 + 2 and note["dev_sentences"] == 8
    assert note["settings"]["whole_word_mask"] is True and len(note["train_loss_by_epoch"]) == 4
    # The tiny BERT, like all-MiniLM-L6-v2, ships no masked-LM head: its transform starts random.
    assert "cls.predictions.transform.dense.weight" in note["fresh_head_weights"]
    loss = note["dev_masked_lm_loss"]
    assert printed["dev_masked_lm_loss"] == loss
    assert loss["after"] < loss["before"]  # dev holds the train sentences here, with the same masks both times
    tokenizer, encoder = load_encoder(str(output), 64)
    assert tokenizer("play queen")["input_ids"] == load_encoder(str(tiny_encoder_dir), 64)[0]("play queen")["input_ids"]
    saved, source = load_file(output / "model.safetensors"), load_file(tiny_encoder_dir / "model.safetensors")
    assert set(saved) == set(source)  # the plain encoder, pooler included, no masked-LM head
    key = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(saved[key], source[key]) and torch.equal(
        saved["pooler.dense.weight"], source["pooler.dense.weight"]
    )
    assert torch.equal(encoder.state_dict()[key], saved[key])


def test_masked_lm_loss_uses_the_same_masks_on_every_call(tiny_encoder_dir):
    model, fresh = _load_masked_lm(tiny_encoder_dir)
    assert fresh  # the head the tiny folder lacks
    tokenizer = load_tokenizer(tiny_encoder_dir, "bert")
    settings = PretrainConfig(output_dir="unused", whole_word_mask=True)
    features = _encode(tokenizer, ["weather in zurichberg tomorrow", "play queen"], 64)
    collator = MaskingCollator(tokenizer, settings, seed=5)
    first = masked_lm_loss(model, features, collator, 2, "cpu")
    assert first == masked_lm_loss(model, features, collator, 2, "cpu")


def test_whole_word_masking_masks_every_piece_of_a_word(tiny_encoder_dir):
    tokenizer = load_tokenizer(tiny_encoder_dir, "bert")
    settings = PretrainConfig(output_dir="unused", whole_word_mask=True, mlm_probability=0.5)
    features = _encode(tokenizer, ["zurichberg zurichberg zurichberg zurichberg zurichberg zurichberg"], 64)
    word_ids = tokenizer(["zurichberg " * 6]).word_ids(0)
    batch = MaskingCollator(tokenizer, settings, seed=0)(features)
    masked = (batch["labels"][0] != -100).tolist()
    for word in set(w for w in word_ids if w is not None):
        pieces = [masked[i] for i, w in enumerate(word_ids) if w == word]
        assert len(pieces) > 1 and len(set(pieces)) == 1  # all of a word's pieces or none
    assert any(masked)


def test_bad_pretrain_option_is_one_line_error(tiny_encoder_dir, toy_data_dir, tmp_path):
    argv = ["pretrain", "--encoder", str(tiny_encoder_dir), "--data-dir", str(toy_data_dir), "-o", str(tmp_path / "x")]
    result = CliRunner().invoke(app, [*argv, "--mlm-probability", "1.5"])
    assert result.exit_code == 2 and result.output.startswith("error: --mlm-probability: ")


def test_pretrain_keeps_what_it_did_not_write_unless_overwrite(pretrained, tiny_encoder_dir, toy_data_dir, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    a_file = tmp_path / "existing_file.txt"
    a_file.write_text("mine")
    base = ["pretrain", "--encoder", str(tiny_encoder_dir), "--data-dir", str(toy_data_dir), "--epochs", "1"]
    for target, problem in [
        (notes, "holds files mtst did not write (no pretrain.json)"),
        (a_file, "a file is there, not a folder"),
        (tiny_encoder_dir, "writing here would replace"),
    ]:
        result = CliRunner().invoke(app, [*base, "-o", str(target)])
        assert result.exit_code == 2 and problem in result.stderr, (target, result.output)
    assert (notes / "notes.txt").read_text() == "mine" and a_file.read_text() == "mine"
    output, _ = pretrained  # an earlier pretrain output is replaced without asking
    assert CliRunner().invoke(app, [*base, "-o", str(output), "--batch-size", "8"]).exit_code == 0
