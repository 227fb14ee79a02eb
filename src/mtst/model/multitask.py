"""The multi-task model: one encoder pass feeds every head. Saved as JSON + safetensors, no pickle."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model
from torch import nn
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel

from mtst.data import Corpus, Splits, as_corpora
from mtst.data.settings import DataConfig
from mtst.errors import CheckpointError
from mtst.files import atomic_directory, dumps, write_text_atomic
from mtst.model.card import CardFacts, card_files, read_card_facts, updated
from mtst.model.checkpoint import CheckpointConfig, EncoderInfo, parse_checkpoint_config
from mtst.model.encoder import DEFAULT_ENCODER, load_encoder, load_tokenizer
from mtst.model.pooling import pool_sentence
from mtst.tasks import Task, build_task

if TYPE_CHECKING:
    from mtst.config import Config

CONFIG_FILE, WEIGHTS_FILE, ENCODER_DIR = "config.json", "model.safetensors", "encoder"
TOKENIZER_FILE = "tokenizer.json"  # mtst needs a fast tokenizer, so every checkpoint it writes has one


@dataclass
class ModelOutput:
    logits: dict[str, torch.Tensor]
    losses: dict[str, torch.Tensor]
    sentence_embedding: torch.Tensor | None  # None from the ONNX graph, which exports the logits only


class MultiTaskModel(nn.Module):
    def __init__(
        self,
        encoder: nn.Module,
        tokenizer,
        tasks: Sequence[Task],
        info: EncoderInfo | None = None,
        data: DataConfig | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.tasks = {task.name: task for task in tasks}
        # Saved in config.json so that a checkpoint describes itself: the encoder it started from (name, length,
        # pooling), the data settings.
        self.info, self.data = info or EncoderInfo(), data
        self.heads = nn.ModuleDict({task.name: task.head(encoder.config) for task in tasks})

    @classmethod
    def from_config(cls, config: Config, data: Splits | list[Corpus]) -> MultiTaskModel:
        """The encoder the config names, with one head per task; each task's labels come from the train
        split of its own corpus."""
        train_of = {name: corpus.splits.train for corpus in as_corpora(config, data) for name in corpus.tasks}
        tokenizer, encoder = load_encoder(config.encoder.name_or_path, config.encoder.max_length)
        by_name = {task.name: task for task in config.tasks}
        tasks = [build_task(task, train_of[task.name], by_name) for task in config.tasks]
        name = config.encoder.name_or_path or DEFAULT_ENCODER
        info = EncoderInfo(name=name, max_length=config.encoder.max_length, pooling=config.encoder.pooling)
        return cls(encoder, tokenizer, tasks, info, config.data)

    @property
    def max_length(self) -> int:
        return self.info.max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        self.info = self.info.model_copy(update={"max_length": value})

    def fit_heads(self, train_features) -> None:
        """Each task sets on its head what its train labels imply (the token kind: loss weights per tag).

        Called once per corpus: a task that has no labels in these features (another corpus's task) keeps what
        its own corpus set."""
        for name, task in self.tasks.items():
            encoded = [f.labels[name] for f in train_features if f.labels.get(name) is not None]
            if encoded:
                task.fit_head(self.heads[name], encoded)

    @property
    def needs_word_ids(self) -> bool:
        """Whether forward needs `word_ids` (a token task pools over each word's sub-tokens)."""
        return any(task.needs_word_ids for task in self.tasks.values())

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict:
        all_layers = any(task.needs_all_layers for task in self.tasks.values())
        every_layer = {"output_hidden_states": True} if all_layers else {}  # asked only when a head mixes layers
        output = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **every_layer)
        token_embeddings = output.last_hidden_state
        return {
            "token_embeddings": token_embeddings,
            "sentence_embedding": pool_sentence(token_embeddings, attention_mask, self.info.pooling),
            "hidden_states": output.hidden_states if all_layers else None,
        }

    def forward(self, input_ids, attention_mask, labels: dict | None = None, word_ids=None) -> ModelOutput:
        """`word_ids` ([B, S], the word index of each sub-token, -1 elsewhere) is needed only when a token
        task pools sub-tokens (`needs_word_ids`); the Collator always provides it."""
        features = {**self.embed(input_ids, attention_mask), "word_ids": word_ids}
        logits, losses = self.run_heads(features, labels)
        return ModelOutput(logits, losses, features["sentence_embedding"])

    def run_heads(self, features: dict, labels: dict | None = None) -> tuple[dict, dict]:
        """Every head on the embedded batch: (logits, losses) by task, in the model's task order."""
        labels, logits, losses = labels or {}, {}, {}
        # A head may read the outputs of the heads before it (`reads_outputs_of`): they run first.
        features = {**features, "outputs": logits}
        for name in sorted(self.heads, key=lambda n: bool(self.tasks[n].reads_outputs_of)):
            logits[name], loss = self.heads[name](features, labels.get(name))
            if loss is not None:
                losses[name] = loss
        return {name: logits[name] for name in self.heads}, losses

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """L2-normalised sentence embeddings: the encoder still works as a sentence embedder."""
        was_training = self.training
        self.eval()  # no dropout, whatever mode the model was left in
        device = next(self.parameters()).device
        chunks = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(device)
            embedding = self.embed(batch["input_ids"], batch["attention_mask"])["sentence_embedding"]
            chunks.append(F.normalize(embedding.float(), dim=-1))
        self.train(was_training)
        return torch.cat(chunks) if chunks else torch.empty(0, self.encoder.config.hidden_size)

    def save_pretrained(self, directory: str | Path, card: CardFacts | None = None) -> None:
        """Writes config.json, model.safetensors, encoder/config.json, the tokenizer and a model card
        (README.md, with what `card` says the run knows), atomically."""
        broken = non_finite_weights(self)
        if broken:
            raise CheckpointError(f"{directory}: refusing to save NaN or infinite weights ({', '.join(broken[:3])})")
        with atomic_directory(directory) as tmp:
            config = self.checkpoint_config().model_dump(mode="json")
            (tmp / CONFIG_FILE).write_text(dumps(config, CONFIG_FILE, indent=2, ensure_ascii=False), encoding="utf-8")
            for name, text in card_files(self.checkpoint_config(), card or CardFacts()).items():
                (tmp / name).write_text(text, encoding="utf-8")
            self.encoder.config.save_pretrained(tmp / ENCODER_DIR)
            self.tokenizer.save_pretrained(tmp)
            save_model(self, str(tmp / WEIGHTS_FILE))

    def save_settings(self, directory: str | Path, card: CardFacts | None = None) -> None:
        """Rewrites config.json and the model card of a checkpoint whose weights are unchanged (calibration
        settings), each file atomically: a reader sees the old file or the new one, never a part. The card
        keeps what it knew and adds what `card` knows."""
        directory = Path(directory)
        config = self.checkpoint_config().model_dump(mode="json")
        write_text_atomic(directory / CONFIG_FILE, dumps(config, CONFIG_FILE, indent=2, ensure_ascii=False))
        facts = updated(read_card_facts(directory), card or CardFacts())
        for name, text in card_files(self.checkpoint_config(), facts).items():
            write_text_atomic(directory / name, text)

    def checkpoint_config(self) -> CheckpointConfig:
        """What config.json holds: the encoder, the data settings and every task with its labels."""
        return CheckpointConfig(encoder=self.info, data=self.data, tasks=list(self.tasks.values()))

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> MultiTaskModel:
        directory = Path(directory)
        spec = read_checkpoint(directory)
        try:
            encoder = AutoModel.from_config(spec.encoder_config)
        except (ValueError, TypeError, KeyError) as error:  # e.g. a hidden size no head count divides
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise CheckpointError(f"{directory / ENCODER_DIR}: cannot build the encoder ({first})") from None
        model = cls(encoder, spec.tokenizer, spec.tasks, spec.config.encoder, spec.config.data)
        _check_weight_shapes(model, directory / WEIGHTS_FILE)
        try:
            # safetensors wants "cpu", not the "cpu:0" that a multi-process run's device reads as.
            target = "cpu" if torch.device(device).type == "cpu" else str(device)
            missing, unexpected = load_model(model, str(directory / WEIGHTS_FILE), strict=False, device=target)
        except (OSError, RuntimeError, SafetensorError) as error:
            raise CheckpointError(
                f"{directory / WEIGHTS_FILE}: cannot load weights ({str(error).splitlines()[0]})"
            ) from None
        if missing or unexpected:
            raise CheckpointError(
                f"{directory / WEIGHTS_FILE}: weights do not match config.json "
                f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
            )
        broken = non_finite_weights(model)
        if broken:
            raise CheckpointError(f"{directory / WEIGHTS_FILE}: NaN or infinite weights ({', '.join(broken[:3])})")
        return model.to(device).eval()


def non_finite_weights(model: nn.Module) -> list[str]:
    """The names of the weights holding NaN or infinity: never saved, never served."""
    return [name for name, t in model.state_dict().items() if t.is_floating_point() and not t.isfinite().all()]


def _check_weight_shapes(model: MultiTaskModel, weights_path: Path) -> None:
    """Reads only the safetensors header, so a mismatch is named before anything is loaded."""
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            shapes = {name: list(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except FileNotFoundError:
        raise CheckpointError(f"{weights_path}: missing") from None
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"{weights_path}: cannot load weights ({str(error).splitlines()[0]})") from None
    for name, tensor in model.state_dict().items():
        if name in shapes and shapes[name] != list(tensor.shape):
            task = name.split(".")[1] if name.startswith("heads.") else None
            why = f"; config.json lists {len(model.tasks[task].labels)} {task} labels" if task in model.tasks else ""
            raise CheckpointError(
                f"{weights_path}: weights do not match config.json: {name} is {shapes[name]} in the file, "
                f"the model needs {list(tensor.shape)}{why}"
            )


@dataclass
class CheckpointSpec:
    """Everything in a checkpoint folder but the weights: enough to tokenize and decode."""

    config: CheckpointConfig
    tokenizer: object
    encoder_config: object

    @property
    def tasks(self) -> list[Task]:
        return self.config.tasks

    @property
    def max_length(self) -> int:
        return self.config.encoder.max_length


def read_checkpoint(directory: str | Path) -> CheckpointSpec:
    """Reads config.json, encoder/config.json and the tokenizer; the ONNX backend needs no torch weights."""
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise CheckpointError(f"{directory}: not an mtst checkpoint (no {CONFIG_FILE})")
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{config_path}: unreadable checkpoint config ({error})") from None
    config = parse_checkpoint_config(raw, config_path)
    if not (directory / TOKENIZER_FILE).is_file():  # transformers would build a 5-piece vocabulary without it
        raise CheckpointError(f"{directory}: incomplete checkpoint (no {TOKENIZER_FILE})")
    try:
        encoder_config = AutoConfig.from_pretrained(directory / ENCODER_DIR, local_files_only=True)
        tokenizer = load_tokenizer(directory, encoder_config.model_type)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{directory}: incomplete checkpoint ({str(error).splitlines()[0]})") from None
    spec = CheckpointSpec(config, tokenizer, encoder_config)
    check_parts_agree(spec, directory)
    return spec


def check_parts_agree(spec: CheckpointSpec, directory: Path) -> None:
    """The tokenizer, the encoder's config and max_length belong together: parts copied from elsewhere
    would predict garbage (every word [UNK]) or fail later, in the middle of a request."""
    rows, pieces = getattr(spec.encoder_config, "vocab_size", None), len(spec.tokenizer)
    # Embedding matrices are often padded past the vocabulary (DeBERTa-v3: 128,001 pieces, 128,100 rows).
    if rows is not None and not rows - 256 <= pieces <= rows:
        raise CheckpointError(
            f"{directory}: the tokenizer has {pieces} pieces but the encoder {rows} embedding rows; "
            "its tokenizer files belong to another model"
        )
    positions = getattr(spec.encoder_config, "max_position_embeddings", None) or 8192
    if spec.max_length > positions:
        raise CheckpointError(
            f"{directory / CONFIG_FILE}: encoder.max_length {spec.max_length} exceeds the encoder's "
            f"{positions} positions"
        )
