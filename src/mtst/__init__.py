"""mtst: one shared sentence-transformer encoder, a sentence head and a token head, trained jointly."""

from mtst.config import Config, load_config
from mtst.errors import CheckpointError, ConfigError, DataError, MtstError

__version__ = "0.1.0"
__all__ = [
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataError",
    "MtstError",
    "MultiTaskModel",
    "Predictor",
    "load_config",
]

# The model classes pull in torch and transformers (seconds); `mtst data check` and `--help` need neither.
_LAZY = {"MultiTaskModel": "mtst.model.multitask", "Predictor": "mtst.inference.predictor"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mtst' has no attribute {name!r}")
