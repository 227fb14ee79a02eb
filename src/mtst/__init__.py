"""mtst: one shared sentence-transformer encoder, a sentence head and a token head, trained jointly."""

from mtst.config import Config, load_config
from mtst.errors import CheckpointError, ConfigError, DataError, MtstError
from mtst.model import MultiTaskModel
from mtst.predict import Predictor

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
