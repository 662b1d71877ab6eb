"""Fine-tuning tasks, each implementing ``bertdrift.finetune.tasks.base.Task``."""

from __future__ import annotations

from bertdrift.config import TASKS
from bertdrift.errors import ConfigError
from bertdrift.finetune.tasks.base import Task, TaskData, TaskModel
from bertdrift.finetune.tasks.nli import NLITask
from bertdrift.finetune.tasks.parsing import ParsingTask
from bertdrift.finetune.tasks.qa import QATask

_REGISTRY: dict[str, type[Task]] = {"mnli": NLITask, "squad": QATask, "parsing": ParsingTask}


def get_task(name: str | Task) -> Task:
    """A fresh task object for ``name`` (one of ``bertdrift.config.TASKS``)."""
    if isinstance(name, Task):
        return name
    if name not in _REGISTRY:
        raise ConfigError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return _REGISTRY[name]()


__all__ = ["NLITask", "ParsingTask", "QATask", "Task", "TaskData", "TaskModel", "get_task"]
