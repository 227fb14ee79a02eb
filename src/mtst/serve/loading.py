"""Loads the predictor a server answers with, and describes its checkpoint for `/info`."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import yaml

from mtst.encoder import DEFAULT_ENCODER
from mtst.errors import CheckpointError
from mtst.model import read_checkpoint
from mtst.predict import Predictor
from mtst.serve.config import Backend


def load_predictor(checkpoint: str | Path, backend: Backend = "torch") -> Predictor:
    """The one place a server builds its predictor; `onnx` runs the model.onnx that `mtst export` wrote."""
    return Predictor.from_checkpoint(checkpoint, backend=backend)


def mtst_version() -> str:
    import mtst

    return getattr(mtst, "__version__", None) or metadata.version("mtst")


def _encoder_name(checkpoint: Path) -> str | None:
    # The run's config.yaml beside the checkpoint names the encoder it started from; a copied checkpoint may lack it.
    run_config = checkpoint.parent / "config.yaml"
    if not run_config.is_file():
        return None
    encoder = (yaml.safe_load(run_config.read_text(encoding="utf-8")) or {}).get("encoder") or {}
    return encoder.get("name_or_path") or DEFAULT_ENCODER


def describe_checkpoint(checkpoint: str | Path, backend: Backend = "torch") -> dict:
    """Model, tasks with their labels, encoder and mtst version, read by the same reader that loads the model."""
    checkpoint = Path(checkpoint).resolve()
    spec = read_checkpoint(checkpoint)
    try:
        name = _encoder_name(checkpoint)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise CheckpointError(f"{checkpoint}: cannot describe the checkpoint ({error})") from None
    encoder = spec.encoder_config
    return {
        "model": checkpoint.name,  # not the absolute path: clients need not learn the server's file layout
        "version": mtst_version(),
        "backend": backend,
        "encoder": {
            "name": name,
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
