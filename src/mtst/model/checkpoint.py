"""A checkpoint's config.json: everything but the weights that describing, evaluating and serving the model
needs (the encoder it started from, the data settings it was trained with, each task and its labels), so a
checkpoint folder copied anywhere on its own still works the same.

Format 1 (before this file existed) held only `max_length`, `pooling` and the tasks; it is read as format 2
without an encoder name or data settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mtst.data.settings import DataConfig
from mtst.errors import CheckpointError, validation_problem
from mtst.model.pooling import Pooling
from mtst.tasks import KINDS, Task, TrainedTask, task_from_dict

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


class EncoderInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # The encoder the run started from, as the config named it (the packaged default by its name); None in format 1.
    name: str | None = None
    max_length: int = Field(128, ge=8)  # at most the encoder's positions (checked when the checkpoint is read)
    # How token states become the sentence embedding (model/pooling.py); the sentence-transformer's own mean.
    pooling: Pooling = "mean"


class CheckpointConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    format_version: Literal[2] = FORMAT_VERSION
    encoder: EncoderInfo = EncoderInfo()
    # The run's data settings (format, CSV columns, label names); a task trained on its own corpus keeps its
    # settings in its own `data`. None in format 1.
    data: DataConfig | None = None
    tasks: list[TrainedTask]

    def data_for(self, folder: str | Path) -> DataConfig:
        """The data settings of the corpus in `folder`: a multi-corpus task's own data, else the run's."""
        folder = Path(folder).resolve()
        for task in self.tasks:
            if task.data is not None and task.data.dir and Path(task.data.dir).resolve() == folder:
                return task.data
        return self.data or DataConfig()


def parse_checkpoint_config(raw, path: Path) -> CheckpointConfig:
    """The config.json of a checkpoint, validated; one line naming the first problem otherwise."""
    if not isinstance(raw, dict) or "tasks" not in raw:
        raise CheckpointError(f"{path}: unreadable checkpoint config (no `tasks`)")
    version = raw.get("format_version")
    if version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise CheckpointError(
            f"{path}: checkpoint format_version {version!r} is not one this mtst reads ({readable}); "
            "it was written by another mtst version"
        )
    fields = _from_format_1(raw) if version == 1 else dict(raw)
    fields["tasks"] = read_tasks(fields["tasks"], path)
    try:
        return CheckpointConfig.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CheckpointError(f"{path}: unreadable checkpoint config ({where}: {first['msg']})") from None


def _from_format_1(raw: dict) -> dict:
    encoder = {"max_length": raw.get("max_length", 128), "pooling": raw.get("pooling", "mean")}
    return {"format_version": FORMAT_VERSION, "encoder": encoder, "tasks": raw["tasks"]}


# Options that came after checkpoints were first written, with what those checkpoints were trained with: a later
# change of the default (subtoken_pooling became first_last) must not change what an old checkpoint computes.
TRAINED_BEFORE_OPTION = {"token": {"subtoken_pooling": "first", "encoder_layers": "last"}}


def _unset_options_dropped(entry: dict, kind: type[Task]) -> dict:
    """Format 1 wrote every kind's options into every task (`crf: false` on a sentence task): those left
    unset (None, False) are dropped for the kinds that do not have them."""
    return {key: value for key, value in entry.items() if key in kind.model_fields or value not in (None, False)}


def read_tasks(entries, path: Path) -> list[Task]:
    """The tasks of a checkpoint's config.json, each validated by its kind; one line naming the first problem."""
    if not isinstance(entries, list):
        raise CheckpointError(f"{path}: unreadable checkpoint config (`tasks` must be a list)")
    tasks = []
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        kind = entry.get("type") if isinstance(entry, dict) else None
        if not isinstance(kind, str) or kind not in KINDS:  # a list or dict there is unhashable
            raise CheckpointError(f"{path}: task {name!r} has unknown type {kind!r}")
        try:
            entry = {**TRAINED_BEFORE_OPTION.get(kind, {}), **_unset_options_dropped(entry, KINDS[kind][1])}
            tasks.append(task_from_dict(entry))
        except ValidationError as error:
            first = error.errors()[0]
            if first["type"] == "missing":
                where = ".".join(str(part) for part in (f"tasks.{index}", *first["loc"][1:]))
                raise CheckpointError(f"{path}: unreadable checkpoint config ({where}: missing)") from None
            where = ".".join(str(part) for part in first["loc"][1:])
            problem = validation_problem(first)
            raise CheckpointError(f"{path}: task {name!r}: {where + ': ' if where else ''}{problem}") from None
    by_name = {task.name: task for task in tasks}
    for task in tasks:
        try:
            task.check_with_tasks(by_name)
        except ValueError as error:
            raise CheckpointError(f"{path}: {error}") from None
    return tasks
