"""One registry of the studio's models, keyed by task and name (torchvision's ``register_model`` /
``get_model`` / ``list_models``): each entry is a spec, data the model store and the protocols read.

A task's ``models`` module registers its models::

    register_model(task="personal", name="vbpr", title="VBPR", defaults={...}, quick={"n_epochs": 8},
                   fit=data.fit, inputs=data.inputs)(VBPR)

The spec says everything the lifecycle needs: the class and its defaults, the overrides of a quick schedule (the
one definition of "quick": :func:`get_model` applies them), how to fit the model users see (``fit(store, name, *,
quick, progress)``) and what a saved model is loaded with (``inputs(store, name)``). :class:`recsys.store.ModelStore`
calls only these, so neither it nor this module imports a task: the registry is a plain dict, filled when
``recsys.tasks`` is imported (it imports every task's ``models`` module; DESIGN section 2, the layers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from recsys.models.base import model_path


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
    quick : dict
        Parameter overrides of the quick schedule (smoke tests, ``--quick``, the first run's quick report).
    fit : callable or None
        ``fit(store, name, *, quick=False, progress=None)`` trains the model users see on all of the store's
        catalog (not saved: the store saves it); None for a row that is not trained.
    inputs : callable or None
        ``inputs(store, name) -> dict``: the side inputs a saved model is loaded with (None: none).
    component : bool
        True for a model other models read (the personal autoencoder), not a report row: :func:`list_models`
        leaves it out unless asked.
    """

    task: str
    name: str
    title: str
    builder: Callable
    trainable: bool = True
    description: str = ""
    target: Callable | None = None
    quick: dict = field(default_factory=dict)
    fit: Callable | None = None
    inputs: Callable | None = None
    component: bool = False


_REGISTRY: dict[str, dict[str, ModelInfo]] = {}


def register_model(*, task: str, name: str, title: str, trainable: bool = True, description: str = "",
                   defaults: dict | None = None, quick: dict | None = None, fit: Callable | None = None,
                   inputs: Callable | None = None, component: bool = False) -> Callable:
    """Decorator registering a model's spec under ``(task, name)`` (see :class:`ModelInfo`); returns what it
    decorates unchanged.

    It decorates either a builder function ``builder(**params) -> Estimator`` or an estimator class, which is then
    built as ``cls(**(defaults | params))``.

    Raises
    ------
    ValueError
        For a name registered twice, or a trainable model without ``fit``.
    """
    if trainable and fit is None:
        raise ValueError(f"The trainable {task} model {name!r} needs a fit function in its spec.")

    def decorate(target: Callable) -> Callable:
        builder = _class_builder(target, defaults or {}) if isinstance(target, type) else target
        models = _REGISTRY.setdefault(task, {})
        if name in models and models[name].builder is not builder and models[name].target is not target:
            raise ValueError(f"A {task} model named {name!r} is already registered.")
        models[name] = ModelInfo(task, name, title, builder, trainable, description, target, dict(quick or {}),
                                 fit if trainable else None, inputs, component)
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
    if task not in _REGISTRY:
        known = ", ".join(_REGISTRY) or "none yet: import recsys.tasks, which registers the studio's models"
        raise ValueError(f"Unknown task {task!r}; the tasks with registered models are {known}.")
    return _REGISTRY[task]


def saved_model_path(root, task: str, name: str) -> Path:
    """Where the model store keeps ``(task, name)`` of the catalog at ``root``: ``<root>/artifacts/models/
    <task>-<name>`` (no suffix; the weights ``.safetensors`` and the card ``.json`` beside each other)."""
    return model_path(root, f"{task}-{name}")


def list_models(task: str, trainable: bool | None = None, components: bool = False) -> list[str]:
    """Names of ``task``'s models in registration order (only trainable or untrained ones when asked; components
    other models read, such as the personal autoencoder, only when ``components``).

    Raises
    ------
    ValueError
        For a task with no registered model.
    """
    return [n for n, info in _load(task).items()
            if (trainable is None or info.trainable == trainable) and (components or not info.component)]


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


def get_model(task: str, name: str, *, quick: bool = False, **params):
    """A new, unfitted estimator of ``(task, name)`` with its registered settings, overridden by the spec's quick
    schedule when ``quick``, then by ``params``.

    Raises
    ------
    KeyError
        For an unknown model (one sentence).
    ValueError
        For a parameter the model does not have.
    """
    info = model_info(task, name)
    return info.builder(**((info.quick if quick else {}) | params))
