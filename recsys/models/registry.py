"""One registry of the studio's models, keyed by task and name (torchvision's ``register_model`` /
``get_model`` / ``list_models``).

A task's model module registers a builder::

    @register_model(task="personal", name="vbpr", title="VBPR (image)")
    def vbpr(**params) -> VBPR:
        return VBPR(**(DEFAULTS | params))

Pages, scripts, reports and benchmarks list and label models from here; nothing else keeps a table of names.
Registration happens when the task package is imported, which :func:`list_models` and :func:`get_model` do
lazily, so importing the registry costs nothing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from recsys.tasks import TASKS


@dataclass(frozen=True)
class ModelInfo:
    """A registered model.

    Attributes
    ----------
    task, name : str
        The registry key; ``name`` is what reports, files and ``--model`` flags use.
    title : str
        How pages and reports label it.
    builder : callable
        ``builder(**params)`` returns a new, unfitted estimator.
    trainable : bool
        False for rows computed without training (baselines, oracle); the store does not save those.
    description : str
        One sentence for the page or report.
    target : class or callable
        What was decorated (the estimator class, or the builder itself).
    """

    task: str
    name: str
    title: str
    builder: Callable
    trainable: bool = True
    description: str = ""
    target: Callable | None = None


_REGISTRY: dict[str, dict[str, ModelInfo]] = {}


def register_model(*, task: str, name: str, title: str, trainable: bool = True, description: str = "",
                   defaults: dict | None = None) -> Callable:
    """Decorator registering a model under ``(task, name)``; returns what it decorates unchanged.

    It decorates either a builder function ``builder(**params) -> Estimator`` or an estimator class, which is then
    built as ``cls(**(defaults | params))``.

    Raises
    ------
    ValueError
        For an unknown task or a name registered twice.
    """
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; the tasks are {', '.join(TASKS)}.")

    def decorate(target: Callable) -> Callable:
        builder = _class_builder(target, defaults or {}) if isinstance(target, type) else target
        models = _REGISTRY.setdefault(task, {})
        if name in models and models[name].builder is not builder and models[name].target is not target:
            raise ValueError(f"A {task} model named {name!r} is already registered.")
        models[name] = ModelInfo(task, name, title, builder, trainable, description, target)
        return target

    return decorate


def register_row(*, task: str, name: str, title: str, description: str = "") -> None:
    """Register a report row that is computed by the task's protocol, not built (e.g. an oracle that reads the
    world's truth): listed and labelled like a model, never trained; building it raises ``ValueError``."""

    def builder(**params):
        raise ValueError(f"The {task} row {name!r} is computed by the protocol, not a model to build.")

    register_model(task=task, name=name, title=title, trainable=False, description=description)(builder)


def _class_builder(cls: type, defaults: dict) -> Callable:
    def builder(**params):
        return cls(**(defaults | params))

    builder.__doc__ = f"A new {cls.__name__} with the registered defaults {defaults}, overridden by ``params``."
    return builder


def _load(task: str) -> dict[str, ModelInfo]:
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; the tasks are {', '.join(TASKS)}.")
    importlib.import_module(f"recsys.tasks.{task}.models")
    return _REGISTRY.get(task, {})


def list_models(task: str, trainable: bool | None = None) -> list[str]:
    """Names of ``task``'s models in registration order (only trainable or untrained ones when asked).

    Raises
    ------
    ValueError
        For an unknown task.
    """
    return [n for n, info in _load(task).items() if trainable is None or info.trainable == trainable]


def model_info(task: str, name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``(task, name)``.

    Raises
    ------
    KeyError
        With one sentence naming the models the task has.
    """
    models = _load(task)
    if name not in models:
        raise KeyError(f"There is no {task} model {name!r}; pick one of {', '.join(models)}.")
    return models[name]


def model_title(task: str, name: str) -> str:
    """The label of a model, or ``name`` itself for a row that is not registered."""
    models = _load(task)
    return models[name].title if name in models else name


def get_model(task: str, name: str, **params):
    """A new, unfitted estimator of ``(task, name)`` with its registered settings, overridden by ``params``.

    Raises
    ------
    KeyError
        For an unknown model (one sentence).
    ValueError
        For a parameter the model does not have.
    """
    return model_info(task, name).builder(**params)
