"""The multi-task model: one encoder pass feeds every head. Saved as JSON + safetensors, no pickle."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from pydantic import TypeAdapter, ValidationError
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model
from torch import nn
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel

from mtst.checkpoint import atomic_directory
from mtst.config import TASK_NAME
from mtst.data.features import TaskLabels
from mtst.encoder import load_tokenizer
from mtst.errors import CheckpointError
from mtst.heads import HEADS, mean_pool
from mtst.jsonout import dumps
from mtst.word_vectors import ENCODER_LAYERS, SUBTOKEN_POOLINGS

CONFIG_FILE, WEIGHTS_FILE, ENCODER_DIR = "config.json", "model.safetensors", "encoder"
TOKENIZER_FILE = "tokenizer.json"  # mtst needs a fast tokenizer, so every checkpoint it writes has one
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TaskSpec:
    name: str
    type: str
    field: str
    labels: tuple[str, ...]
    dropout: float = 0.1
    label_smoothing: float = 0.0
    crf: bool = False  # token tasks: a CRF over the words decodes the tags
    # Token tasks: decode only the tags seen in train with the sentence label predicted by task `condition_on`;
    # `allowed_tags` maps each of its labels to those tags.
    condition_on: str | None = None
    allowed_tags: dict[str, tuple[str, ...]] | None = None
    # Token tasks: how a word's vector is built (mtst.word_vectors).
    subtoken_pooling: str = "first"
    encoder_layers: str = "last"

    @property
    def needs_word_ids(self) -> bool:
        return self.type == "token" and self.subtoken_pooling != "first"

    @property
    def needs_all_layers(self) -> bool:
        return self.type == "token" and self.encoder_layers == "scalar_mix"

    def tags_allowed_with(self, sentence_label: str) -> frozenset[str]:
        """The tags decoding may give when `condition_on` predicted `sentence_label` (`O` always)."""
        return frozenset((self.allowed_tags or {}).get(sentence_label, ())) | {"O"}

    @property
    def as_labels(self) -> TaskLabels:
        return TaskLabels(self.name, self.type, self.field, {label: i for i, label in enumerate(self.labels)})


@dataclass
class ModelOutput:
    logits: dict[str, torch.Tensor]
    losses: dict[str, torch.Tensor]
    sentence_embedding: torch.Tensor | None  # None from the ONNX graph, which exports the logits only


class MultiTaskModel(nn.Module):
    def __init__(self, encoder: nn.Module, tokenizer, tasks: Sequence[TaskSpec], max_length: int = 128):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.tasks = {task.name: task for task in tasks}
        self.max_length = max_length
        self.heads = nn.ModuleDict({task.name: _build_head(encoder.config, task) for task in tasks})

    @property
    def needs_word_ids(self) -> bool:
        """Whether forward needs `word_ids` (a token task pools over each word's sub-tokens)."""
        return any(task.needs_word_ids for task in self.tasks.values())

    @property
    def crfs(self) -> dict[str, nn.Module]:
        """The CRF of each token task that has one: decoding needs its transitions."""
        return {name: head.crf for name, head in self.heads.items() if getattr(head, "crf", None) is not None}

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict:
        all_layers = any(task.needs_all_layers for task in self.tasks.values())
        every_layer = {"output_hidden_states": True} if all_layers else {}  # asked only when a head mixes layers
        output = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **every_layer)
        token_embeddings = output.last_hidden_state
        return {
            "token_embeddings": token_embeddings,
            "sentence_embedding": mean_pool(token_embeddings, attention_mask),
            "hidden_states": output.hidden_states if all_layers else None,
        }

    def forward(self, input_ids, attention_mask, labels: dict | None = None, word_ids=None) -> ModelOutput:
        """`word_ids` ([B, S], the word index of each sub-token, -1 elsewhere) is needed only when a token
        task pools sub-tokens (`needs_word_ids`); the Collator always provides it."""
        features = {**self.embed(input_ids, attention_mask), "word_ids": word_ids}
        labels = labels or {}
        logits, losses = {}, {}
        for name, head in self.heads.items():
            logits[name], loss = head(features, labels.get(name))
            if loss is not None:
                losses[name] = loss
        return ModelOutput(logits, losses, features["sentence_embedding"])

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

    def save_pretrained(self, directory: str | Path) -> None:
        """Writes config.json, model.safetensors, encoder/config.json and the tokenizer, atomically."""
        broken = non_finite_weights(self)
        if broken:
            raise CheckpointError(f"{directory}: refusing to save NaN or infinite weights ({', '.join(broken[:3])})")
        with atomic_directory(directory) as tmp:
            config = {
                "format_version": FORMAT_VERSION,
                "max_length": self.max_length,
                "pooling": "mean",
                "tasks": [asdict(task) for task in self.tasks.values()],
            }
            (tmp / CONFIG_FILE).write_text(dumps(config, CONFIG_FILE, indent=2, ensure_ascii=False), encoding="utf-8")
            self.encoder.config.save_pretrained(tmp / ENCODER_DIR)
            self.tokenizer.save_pretrained(tmp)
            save_model(self, str(tmp / WEIGHTS_FILE))

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> MultiTaskModel:
        directory = Path(directory)
        spec = read_checkpoint(directory)
        try:
            encoder = AutoModel.from_config(spec.encoder_config)
        except (ValueError, TypeError, KeyError) as error:  # e.g. a hidden size no head count divides
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise CheckpointError(f"{directory / ENCODER_DIR}: cannot build the encoder ({first})") from None
        model = cls(encoder, spec.tokenizer, spec.tasks, spec.max_length)
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


def _build_head(encoder_config, task: TaskSpec) -> nn.Module:
    if task.type == "token":  # a token head may mix every layer: the embeddings' output and each block's
        return HEADS["token"](encoder_config.hidden_size, task, num_layers=encoder_config.num_hidden_layers + 1)
    return HEADS[task.type](encoder_config.hidden_size, task)


def non_finite_weights(model: nn.Module) -> list[str]:
    """The names of the weights holding NaN or infinity: never saved, never served."""
    return [name for name, t in model.state_dict().items() if t.is_floating_point() and not t.isfinite().all()]


def _check_tasks(tasks: Sequence[TaskSpec], config_path: Path) -> None:
    for task in tasks:
        if task.type not in HEADS:
            raise CheckpointError(f"{config_path}: task {task.name!r} has unknown type {task.type!r}")
        if task.subtoken_pooling not in SUBTOKEN_POOLINGS or task.encoder_layers not in ENCODER_LAYERS:
            raise CheckpointError(
                f"{config_path}: task {task.name!r} has unknown subtoken_pooling {task.subtoken_pooling!r} "
                f"or encoder_layers {task.encoder_layers!r}"
            )
        if not task.labels or not all(isinstance(label, str) and label for label in task.labels):
            raise CheckpointError(f"{config_path}: task {task.name!r} needs a list of non-empty label strings")
        if len(set(task.labels)) != len(task.labels):
            raise CheckpointError(f"{config_path}: task {task.name!r} lists a label twice")
        if task.condition_on is not None:
            _check_conditioning(task, {t.name: t for t in tasks}, config_path)


def _check_conditioning(task: TaskSpec, by_name: dict[str, TaskSpec], config_path: Path) -> None:
    condition = by_name.get(task.condition_on)
    if condition is None or condition.type != "sentence" or task.type != "token":
        raise CheckpointError(f"{config_path}: token task {task.name!r} must be conditioned on a sentence task")
    if not isinstance(task.allowed_tags, dict):
        raise CheckpointError(f"{config_path}: task {task.name!r} has condition_on but no allowed_tags map")
    allowed = task.allowed_tags
    if set(allowed) - set(condition.labels) or any(set(tags) - set(task.labels) for tags in allowed.values()):
        raise CheckpointError(f"{config_path}: allowed_tags of {task.name!r} name unknown labels or tags")


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


# config.json's task entries are validated like the training config: a string where labels belong would
# otherwise become one label per character, a string dropout a traceback when the head is built.
_TASK_ENTRY = TypeAdapter(TaskSpec)


def _task_spec(task, config_path: Path) -> TaskSpec:
    name = task.get("name") if isinstance(task, dict) else None
    try:
        spec = _TASK_ENTRY.validate_python(task)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "task"
        raise CheckpointError(
            f"{config_path}: unreadable checkpoint config (task {name!r}: {where}: {first['msg']})"
        ) from None
    if not TASK_NAME.fullmatch(spec.name):
        raise CheckpointError(f"{config_path}: task name {spec.name!r} is not letters, digits, `_` or `-`")
    if not (0 <= spec.dropout < 1 and 0 <= spec.label_smoothing < 1):  # NaN fails both too
        raise CheckpointError(f"{config_path}: task {name!r}: dropout and label_smoothing must be in [0, 1)")
    return spec


@dataclass
class CheckpointSpec:
    """Everything in a checkpoint folder but the weights: enough to tokenize and decode."""

    tasks: list[TaskSpec]
    max_length: int
    tokenizer: object
    encoder_config: object


def read_checkpoint(directory: str | Path) -> CheckpointSpec:
    """Reads config.json, encoder/config.json and the tokenizer; the ONNX backend needs no torch weights."""
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise CheckpointError(f"{directory}: not an mtst checkpoint (no {CONFIG_FILE})")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        version, entries = config.get("format_version", FORMAT_VERSION), config["tasks"]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{config_path}: unreadable checkpoint config ({error})") from None
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path}: format_version {version!r} is not {FORMAT_VERSION}, the one this mtst reads"
        )
    if not isinstance(entries, list):
        raise CheckpointError(f"{config_path}: unreadable checkpoint config (`tasks` must be a list)")
    tasks = [_task_spec(task, config_path) for task in entries]
    _check_tasks(tasks, config_path)
    if not (directory / TOKENIZER_FILE).is_file():  # transformers would build a 5-piece vocabulary without it
        raise CheckpointError(f"{directory}: incomplete checkpoint (no {TOKENIZER_FILE})")
    try:
        encoder_config = AutoConfig.from_pretrained(directory / ENCODER_DIR, local_files_only=True)
        tokenizer = load_tokenizer(directory, encoder_config.model_type)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{directory}: incomplete checkpoint ({str(error).splitlines()[0]})") from None
    spec = CheckpointSpec(tasks, config.get("max_length", 128), tokenizer, encoder_config)
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
    length = spec.max_length
    if isinstance(length, bool) or not isinstance(length, int) or not 8 <= length <= positions:
        raise CheckpointError(
            f"{directory / CONFIG_FILE}: max_length {length!r} must be an integer from 8 to the encoder's "
            f"{positions} positions"
        )
