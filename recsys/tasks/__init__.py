"""One package per task, each with the same three parts (cornac's split of models, metrics and eval methods):

- ``models.py``: registers the task's models in :mod:`recsys.models.registry`;
- ``data.py``: splits and model inputs of a catalog; ``fit(catalog, artifacts, name, ...)`` and
  ``inputs(catalog, artifacts, name)`` used by :class:`recsys.store.ModelStore`;
- ``protocol.py``: ``evaluate(catalog, *, seed=0, quick=False, progress=None) -> {model: {metric: value}}``,
  models in, metrics out;
- ``service.py``: the facade the pages call.
"""

from __future__ import annotations

import importlib
from types import ModuleType

TASKS = ("similar", "compat", "personal", "dialogue", "composed")


class TaskUnavailable(RuntimeError):
    """A task's package is not part of this version."""


def task_part(task: str, part: str) -> ModuleType:
    """The module ``recsys.tasks.<task>.<part>`` (``models``, ``data``, ``protocol`` or ``service``).

    Raises
    ------
    ValueError
        For an unknown task.
    TaskUnavailable
        When the task has no such part in this version.
    """
    if task not in TASKS:
        raise ValueError(f"Unknown task '{task}'; choose one of {', '.join(TASKS)}.")
    name = f"recsys.tasks.{task}.{part}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in (name, f"recsys.tasks.{task}"):
            raise TaskUnavailable(f"The task '{task}' has no {part} in this version.") from None
        raise
