"""Exports a checkpoint's fine-tuned encoder as a sentence-transformers folder.

The folder holds the modules mtst's own `MultiTaskModel.encode` applies: the transformer (truncating at the
checkpoint's `max_length`), the checkpoint's pooling (mean, cls or max) and L2 normalisation, so
`SentenceTransformer(folder).encode` returns the same vectors. The task heads are not part of it: it is the
encoder, for embeddings and semantic search. Written with sentence-transformers' own `save`, into a temporary
folder that then replaces the target.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from mtst.errors import MtstError
from mtst.files import atomic_directory, refuse_to_replace
from mtst.model.multitask import MultiTaskModel

ST_DIR = "sentence-transformers"
ST_MARKER = "modules.json"  # the file sentence-transformers' `save` writes first: an earlier export
CHECK_TEXTS = ["what will the weather be like in new york tomorrow evening", "play queen", ""]
TOLERANCE = 1e-5


def export_sentence_transformers(
    checkpoint: str | Path, output: str | Path | None = None, overwrite: bool = False
) -> Path:
    """Writes the folder (default CHECKPOINT/sentence-transformers) and returns its path. What is at `output`
    already is replaced only when it is an earlier export, or with `overwrite`; never the checkpoint itself."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MtstError("this export needs sentence-transformers: pip install 'mtst[sentence-transformers]'") from None
    try:  # where sentence-transformers 6 keeps its modules; 3 to 5 keep them in `models`
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models
    checkpoint = Path(checkpoint)
    output = Path(output) if output is not None else checkpoint / ST_DIR
    refuse_to_replace(output, ST_MARKER, overwrite, keep=checkpoint)
    model = MultiTaskModel.from_pretrained(checkpoint)
    with tempfile.TemporaryDirectory() as encoder_dir:
        model.encoder.save_pretrained(encoder_dir)
        model.tokenizer.save_pretrained(encoder_dir)
        transformer = models.Transformer(encoder_dir, max_seq_length=model.max_length)
        pooling = models.Pooling(model.encoder.config.hidden_size, pooling_mode=model.info.pooling)
        exported = SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")
        _check(model, exported)
        with atomic_directory(output) as folder:
            exported.save(str(folder))
    return output


def _check(model: MultiTaskModel, exported) -> None:
    """The exported pipeline must embed like the checkpoint before anything is written."""
    ours = model.encode(CHECK_TEXTS)
    theirs = torch.as_tensor(exported.encode(CHECK_TEXTS, convert_to_numpy=True))
    difference = float((ours - theirs).abs().max())
    if difference > TOLERANCE:
        raise MtstError(f"the sentence-transformers folder embeds differently (max difference {difference:.2g})")
