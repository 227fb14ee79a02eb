"""The sentence pooling stage: mean, cls or max, chosen by `encoder.pooling`, kept by the checkpoint and exports."""

import numpy as np
import pytest
import torch

from mtst.config import load_config
from mtst.errors import ConfigError
from mtst.model.multitask import MultiTaskModel
from mtst.model.pooling import pool_sentence

STATES = torch.tensor([[[1.0, -4.0], [3.0, 2.0], [100.0, 100.0]]])  # the third token is padding
MASK = torch.tensor([[1, 1, 0]])


@pytest.mark.parametrize(("pooling", "expected"), [("mean", [2.0, -1.0]), ("max", [3.0, 2.0]), ("cls", [1.0, -4.0])])
def test_each_pooling_by_hand_and_padding_never_counts(pooling, expected):
    assert pool_sentence(STATES, MASK, pooling).tolist() == [expected]


def test_an_unknown_pooling_is_a_config_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("encoder: {pooling: sum}\n")
    with pytest.raises(ConfigError, match="encoder.pooling"):
        load_config(path)


@pytest.mark.parametrize("pooling", ["cls", "max"])
def test_the_checkpoint_and_the_sentence_transformers_export_keep_the_pooling(tiny_checkpoint, tmp_path, pooling):
    st = pytest.importorskip("sentence_transformers", reason="the sentence-transformers extra")
    from mtst.export.sentence_transformers import export_sentence_transformers

    model = MultiTaskModel.from_pretrained(tiny_checkpoint)
    mean = model.encode(["weather in paris tomorrow"])
    model.info = model.info.model_copy(update={"pooling": pooling})
    model.save_pretrained(tmp_path / "ckpt")
    reloaded = MultiTaskModel.from_pretrained(tmp_path / "ckpt")
    assert reloaded.info.pooling == pooling
    ours = reloaded.encode(["weather in paris tomorrow"])
    assert not torch.allclose(ours, mean)  # the choice is used, not only recorded
    folder = export_sentence_transformers(tmp_path / "ckpt", tmp_path / "st")
    theirs = st.SentenceTransformer(str(folder), device="cpu").encode(["weather in paris tomorrow"])
    assert np.allclose(theirs, ours.numpy(), atol=1e-6)
