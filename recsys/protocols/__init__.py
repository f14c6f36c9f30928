"""The papers' evaluation protocols and training entry points, one module per task.

Each task module ``recsys.protocols.<task>`` exposes

- ``evaluate(catalog, *, seed=0, quick=False, progress=None) -> {model_name: {metric_name: value}}``
- ``train(catalog, *, seed=0, quick=False, progress=None) -> {model_name: {...fit summary...}}`` (optional)

Evaluation owns the splits; models know nothing of metrics.
"""

from __future__ import annotations

import importlib
from types import ModuleType

TASKS = ("similar", "compat", "personal", "dialogue", "composed")


class TaskUnavailable(RuntimeError):
    """A task's protocol module is not part of this version."""


def task_module(task: str) -> ModuleType:
    if task not in TASKS:
        raise ValueError(f"Unknown task '{task}'; choose one of {', '.join(TASKS)}.")
    try:
        return importlib.import_module(f"recsys.protocols.{task}")
    except ModuleNotFoundError as exc:
        if exc.name == f"recsys.protocols.{task}":
            raise TaskUnavailable(f"The task '{task}' is not available in this version.") from None
        raise
