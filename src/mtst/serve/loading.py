"""Loads the predictor a server answers with, and describes its checkpoint for `/info`."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from mtst.inference.backends import Backend
from mtst.inference.predictor import Predictor
from mtst.integrations.rasa import RANKING_LENGTH
from mtst.model.multitask import read_checkpoint


def load_predictor(checkpoint: str | Path, backend: Backend = "torch") -> Predictor:
    """The one place a server builds its predictor; `onnx` runs the model.onnx that `mtst export` wrote.
    Each sentence task ranks its labels (`ranking`): Rasa's `intent_ranking` comes from it."""
    return Predictor.from_checkpoint(checkpoint, backend=backend, ranking=RANKING_LENGTH)


def mtst_version() -> str:
    import mtst

    return getattr(mtst, "__version__", None) or metadata.version("mtst")


def describe_checkpoint(checkpoint: str | Path, backend: Backend = "torch") -> dict:
    """Model, tasks with their labels, encoder and mtst version, all from the checkpoint's own files."""
    checkpoint = Path(checkpoint).resolve()
    spec = read_checkpoint(checkpoint)
    encoder = spec.encoder_config
    return {
        "model": checkpoint.name,  # not the absolute path: clients need not learn the server's file layout
        "version": mtst_version(),
        "backend": backend,
        "encoder": {
            "name": spec.config.encoder.name,
            "model_type": encoder.model_type,
            "hidden_size": getattr(encoder, "hidden_size", None),
            "layers": getattr(encoder, "num_hidden_layers", None),
            "max_length": spec.max_length,
        },
        "tasks": [
            {"name": task.name, "type": task.type, "field": task.field, "labels": list(task.labels)}
            for task in spec.tasks
        ],
    }
