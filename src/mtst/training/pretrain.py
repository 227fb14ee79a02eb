"""Task-adaptive pre-training: more masked-language-model training of the encoder on the task's own sentences.

Gururangan et al. (2020, "Don't Stop Pretraining") call it TAPT. The encoder is loaded with a masked-LM head
(`AutoModelForMaskedLM`), trained on the training sentences of the config's corpora (plus any unlabelled
text file, one sentence per line) with transformers' `DataCollatorForLanguageModeling` (15 % of sub-tokens,
or of whole words), and written as a plain encoder folder that `encoder.name_or_path` / `--encoder` takes.

all-MiniLM-L6-v2 ships no masked-LM head (its safetensors hold the encoder and pooler only): the head's
transform (dense + LayerNorm) and output bias then start from random values, while its output projection is
tied to the word embeddings, as in BERT. `pretrain.json` lists the freshly initialised head weights and the
masked-LM loss on the dev sentences before and after, with the same masks both times.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import DataLoader
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    get_linear_schedule_with_warmup,
)
from transformers.utils import logging as hf_logging

from mtst.config import Config
from mtst.data import load_corpora
from mtst.data.textfile import read_text_lines
from mtst.errors import ConfigError
from mtst.files import atomic_directory, dumps, refuse_to_replace
from mtst.model.encoder import load_tokenizer, resolve_encoder_path

logger = logging.getLogger(__name__)
NOTE_FILE = "pretrain.json"


class PretrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    output_dir: str
    extra_text: str | None = None  # one unlabelled sentence per line
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    mlm_probability: float = Field(0.15, gt=0, lt=1)
    whole_word_mask: bool = True
    max_length: int = Field(128, ge=8)
    seed: int = 13


def corpus_sentences(config: Config) -> tuple[list[str], list[str]]:
    """(train, dev) sentence texts of every corpus the config names; a sentence seen twice is kept once."""
    train, dev = {}, {}
    for corpus in load_corpora(config):
        train.update((example.text, None) for example in corpus.splits.train)
        dev.update((example.text, None) for example in corpus.splits.dev)
    return list(train), list(dev)


def _encode(tokenizer, texts: Sequence[str], max_length: int) -> list[dict]:
    # Offsets let the collator find whole words (sub-tokens with no gap between them).
    encoded = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        return_special_tokens_mask=True,
        return_offsets_mapping=True,
    )
    return [{key: encoded[key][i] for key in encoded} for i in range(len(texts))]


class MaskingCollator:
    """Pads a batch and masks it with transformers' `DataCollatorForLanguageModeling` (seeded).

    The offsets that whole-word masking reads are padded here: `tokenizer.pad` refuses (start, end) pairs.
    Whole-word masking in transformers replaces every chosen word by [MASK] (no random or kept tokens).
    """

    def __init__(self, tokenizer, settings: PretrainConfig, seed: int):
        whole = settings.whole_word_mask
        self.tokenizer = tokenizer
        self.masker = DataCollatorForLanguageModeling(
            tokenizer,
            mlm_probability=settings.mlm_probability,
            whole_word_mask=whole,
            mask_replace_prob=1.0 if whole else 0.8,
            random_replace_prob=0.0 if whole else 0.1,
            seed=seed,
        )
        self.restart()

    def restart(self) -> None:
        """Back to the seed's first draw: the same masks again."""
        self.masker.create_rng("pt")

    def __call__(self, features: list[dict]) -> dict:
        width = max(len(feature["input_ids"]) for feature in features)
        offsets = [list(f["offset_mapping"]) + [(0, 0)] * (width - len(f["offset_mapping"])) for f in features]
        plain = [{k: v for k, v in feature.items() if k != "offset_mapping"} for feature in features]
        batch = dict(self.tokenizer.pad(plain, return_tensors="pt"))
        batch["input_ids"], batch["labels"] = self.masker.torch_mask_tokens(
            batch["input_ids"],
            special_tokens_mask=batch.pop("special_tokens_mask"),
            offset_mapping=torch.tensor(offsets),
        )
        return batch


@torch.no_grad()
def masked_lm_loss(model, features: list[dict], collator, batch_size: int, device) -> float | None:
    """Mean masked-token loss; the collator's own seeded generator fixes the masks, so calls compare."""
    if not features:
        return None
    model.eval()
    collator.restart()  # the same masks on every call
    total, count = 0.0, 0
    for start in range(0, len(features), batch_size):
        batch = {k: v.to(device) for k, v in collator(features[start : start + batch_size]).items()}
        masked = int((batch["labels"] != -100).sum())
        if masked:
            total += float(model(**batch).loss) * masked
            count += masked
    model.train()
    return total / count if count else None


def _load_masked_lm(path: Path):
    # transformers' own load report calls a missing head a corrupted checkpoint; one line of ours says it plainly.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(path, local_files_only=True, output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    fresh = sorted(info["missing_keys"])
    if fresh:
        logger.warning("the encoder folder has no masked-LM head: %d head tensors start random (%s)", len(fresh), fresh)
    return model, fresh


def pretrain(config: Config, settings: PretrainConfig, overwrite: bool = False) -> dict:
    """Trains the masked LM and writes the encoder folder; returns the note written beside it. What is at
    `output_dir` already is replaced only when it is an earlier pretrain output, or with `overwrite`."""
    source = resolve_encoder_path(config.encoder.name_or_path)
    refuse_to_replace(settings.output_dir, NOTE_FILE, overwrite, keep=source)
    started = time.perf_counter()
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    model, fresh = _load_masked_lm(source)
    tokenizer = load_tokenizer(source, model.config.model_type)
    if tokenizer.mask_token_id is None:
        raise ConfigError(f"encoder {source}: the tokenizer has no mask token, which masked-LM training needs")
    train_texts, dev_texts = corpus_sentences(config)
    if settings.extra_text:
        train_texts += read_text_lines(settings.extra_text)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).train()
    train_features = _encode(tokenizer, train_texts, settings.max_length)
    dev_features = _encode(tokenizer, dev_texts, settings.max_length)
    dev_collator = MaskingCollator(tokenizer, settings, settings.seed + 1)
    before = masked_lm_loss(model, dev_features, dev_collator, settings.batch_size, device)
    losses = train_masked_lm(
        model, train_features, MaskingCollator(tokenizer, settings, settings.seed), settings, device
    )
    after = masked_lm_loss(model, dev_features, dev_collator, settings.batch_size, device)
    note = {
        "source_encoder": str(source),
        "train_sentences": len(train_texts),
        "dev_sentences": len(dev_texts),
        "settings": settings.model_dump(),
        "fresh_head_weights": fresh,
        "train_loss_by_epoch": losses,
        "dev_masked_lm_loss": {"before": before, "after": after},
        "device": str(device),
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    save_encoder(model, tokenizer, source, Path(settings.output_dir), note)
    return note


def train_masked_lm(model, features: list[dict], collator, settings: PretrainConfig, device) -> list[float]:
    """AdamW with linear warm-up and decay; the mean training loss of each epoch."""
    generator = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(
        features, batch_size=settings.batch_size, shuffle=True, collate_fn=collator, generator=generator
    )
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)]},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    steps = settings.epochs * len(loader)
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(settings.warmup_ratio * steps), steps)
    losses = []
    for epoch in range(1, settings.epochs + 1):
        total, batches = 0.0, 0
        for batch in loader:
            if not (batch["labels"] != -100).any():
                continue  # no token drawn for masking (a small batch): its loss is 0/0, NaN, and teaches nothing
            loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            total, batches = total + loss.item(), batches + 1
        losses.append(total / max(batches, 1))
        logger.info("masked-LM epoch %d: train loss %.4f", epoch, losses[-1])
    return losses


def save_encoder(model, tokenizer, source: Path, output: Path, note: dict) -> None:
    """The trained encoder (the source's own pooler kept, so `AutoModel` finds every weight), its tokenizer
    and the note; the masked-LM head is left out, since a joint run never uses it."""
    encoder = AutoModel.from_pretrained(source, local_files_only=True)
    missing, _ = encoder.load_state_dict(model.base_model.state_dict(), strict=False)
    if any(not key.startswith("pooler.") for key in missing):
        raise ConfigError(f"encoder {source}: the masked-LM model does not cover the encoder ({missing[:3]})")
    with atomic_directory(output) as tmp:
        encoder.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / NOTE_FILE).write_text(dumps(note, NOTE_FILE, indent=2) + "\n", encoding="utf-8")
