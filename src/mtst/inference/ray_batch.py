"""Prediction on a Ray cluster: the Predictor as a callable class for Ray Data's `map_batches`.

    import ray
    from mtst.inference.ray_batch import BatchPredictor

    texts = ray.data.read_text("texts/", num_cpus=0)  # one text per line, column "text"
    results = texts.map_batches(
        BatchPredictor,
        fn_constructor_kwargs={"checkpoint": "runs/demo/best", "threads": 1},
        concurrency=4,  # actors, each holding one CPU
        num_cpus=1,
        batch_size=256,
    )
    results.write_json("predictions/")

Ray starts `concurrency` actors; each loads the checkpoint once in `__init__` and predicts whole batches
(`read_text(..., num_cpus=0)`: when the actors hold every CPU, a read waiting for one would never run). The
`prediction` column holds, per text, the JSON that `mtst predict --json` prints (one string, so that batches
with and without entities, or with a long text's `windows`, share one schema). Needs the `ray` extra.
"""

from __future__ import annotations

import json
import os

from mtst.errors import MtstError
from mtst.inference.predictor import Predictor


class BatchPredictor:
    """Loads a checkpoint once per Ray actor; called with a batch `{"text": [...]}`, returns text + prediction."""

    def __init__(self, checkpoint: str, backend: str = "torch", batch_size: int = 64, threads: int | None = None):
        if threads is not None:  # one actor per CPU is Ray's way to scale; intra-op threads would compete
            import torch

            torch.set_num_threads(threads)
        self.predictor = Predictor.from_checkpoint(os.fspath(checkpoint), batch_size=batch_size, backend=backend)

    def __call__(self, batch: dict) -> dict:
        texts = [_text(row, index) for index, row in enumerate(batch["text"])]
        results = self.predictor.predict(texts)
        return {"text": texts, "prediction": [json.dumps(result, ensure_ascii=False) for result in results]}


def _text(row, index: int) -> str:
    """A row as text: bytes (`read_binary_files`) are decoded; anything else is refused, never predicted as
    its repr ("None", "b'...'", "nan"). Ray hands over a batch, not its place in the dataset: rows are numbered
    within it."""
    if isinstance(row, bytes):
        try:
            return row.decode("utf-8")
        except UnicodeDecodeError as error:
            raise MtstError(f"`text` row {index} of a batch: invalid UTF-8 (byte 0x{row[error.start]:02x})") from None
    if not isinstance(row, str):
        got = "None" if row is None else type(row).__name__
        raise MtstError(f"`text` row {index} of a batch: expected a text, got {got}")
    return str(row)  # numpy.str_ from a NumPy batch becomes a plain str
