"""Task kinds: the registry from a config's `type` to the module that holds everything about that kind.

Adding a kind is one module (its `XTaskConfig` and `XTask`, see `mtst.tasks.base`) and one line here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Union

from pydantic import Field, TypeAdapter

from mtst.tasks.base import Task, TaskConfigBase
from mtst.tasks.multilabel import MultilabelTask, MultilabelTaskConfig
from mtst.tasks.sentence import SentenceTask, SentenceTaskConfig
from mtst.tasks.token import TokenTask, TokenTaskConfig

# type -> (the task as configured, the task as trained)
KINDS: dict[str, tuple[type[TaskConfigBase], type[Task]]] = {
    "sentence": (SentenceTaskConfig, SentenceTask),
    "token": (TokenTaskConfig, TokenTask),
    "multilabel": (MultilabelTaskConfig, MultilabelTask),
}
TASK_TYPES = tuple(KINDS)

# A task entry of a config file, validated as the class its `type` names.
TaskConfig = Annotated[Union[tuple(config for config, _ in KINDS.values())], Field(discriminator="type")]  # noqa: UP007
# A task entry of a checkpoint's config.json.
TrainedTask = Annotated[Union[tuple(task for _, task in KINDS.values())], Field(discriminator="type")]  # noqa: UP007
_CONFIG_ADAPTER = TypeAdapter(TaskConfig)
_TASK_ADAPTER = TypeAdapter(TrainedTask)

__all__ = ["KINDS", "TASK_TYPES", "Task", "TaskConfig", "TaskConfigBase", "TrainedTask", "make_task", "task_config"]


def task_config(**fields) -> TaskConfigBase:
    """A task's config from keyword arguments, as a config file would give them (`type` picks the kind)."""
    return _CONFIG_ADAPTER.validate_python(fields)


def make_task(name: str, type: str, field: str, labels: Sequence[str], **options) -> Task:
    """A trained task from its parts, e.g. `make_task("intent", "sentence", "label", ("a", "b"))`."""
    return _TASK_ADAPTER.validate_python(
        {"name": name, "type": type, "field": field, "labels": tuple(labels), **options}
    )


def task_from_dict(entry: dict) -> Task:
    """A checkpoint's task entry; pydantic's ValidationError (or KeyError for an unknown type) when invalid."""
    return _TASK_ADAPTER.validate_python(entry)


def build_task(config: TaskConfigBase, train, tasks: dict[str, TaskConfigBase]) -> Task:
    """The trained form of a configured task, its labels read from its corpus's train split."""
    return KINDS[config.type][1].from_config(config, train, tasks)


def build_labels(config: TaskConfigBase, train) -> list[str]:
    """The task's label list (index = id) from the train split."""
    return KINDS[config.type][1].vocabulary(config, train)
