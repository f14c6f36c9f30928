"""One package per task, each with the same parts (cornac's split of models, metrics and eval methods):

- ``models.py``: registers the task's models in :mod:`recsys.models.registry`, each as a spec (class, defaults,
  quick schedule, and the ``fit(store, name, ...)`` / ``inputs(store, name)`` of its ``data`` module);
- ``data.py``: splits and model inputs of a catalog, and the ``fit`` / ``inputs`` the specs name;
- ``protocol.py``: ``evaluate(catalog, *, seed=0, quick=False, progress=None) -> {model: {metric: value}}``,
  models in, metrics out;
- ``service.py``: the facade the pages call.

Importing this package registers every task's models (the registry is a plain dict that imports no task): the
entry point the layers above (services, scripts, ``recsys.evaluate``) reach the registry through. Every import
arrow runs down (DESIGN section 2).
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


# Registration: each task's spec module, in TASKS order (after TASKS and task_part, which they may read).
from recsys.tasks.similar import models as _similar  # noqa: E402,F401
from recsys.tasks.compat import models as _compat  # noqa: E402,F401
from recsys.tasks.personal import models as _personal  # noqa: E402,F401
from recsys.tasks.dialogue import models as _dialogue  # noqa: E402,F401
from recsys.tasks.composed import models as _composed  # noqa: E402,F401
