"""The model store: the one place that decides whether a model is "trained for this catalog and these artifacts".

``ModelStore(catalog, artifacts).get(task, name)`` loads a saved model when its provenance (catalog fingerprint,
encoder specs, split seed, library version) matches, ``.fit(task, name, progress=...)`` trains and saves one, and
``.status(task)`` says which models are ready. Models live in ``<catalog>/artifacts/models/<task>-<name>.*``.

The store knows no model by type and imports no task: each model's spec in :mod:`recsys.models.registry` supplies
the class, ``fit(store, name, *, quick, progress)`` (train the model users see; it may ask this store for the models
it reads, such as the joint space or the autoencoder) and ``inputs(store, name)`` (the side inputs a saved model is
loaded with).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from recsys.catalog import Catalog
from recsys.models.base import Provenance, StaleModelError
from recsys.models.registry import get_model, list_models, model_info, saved_model_path
from recsys.progress import ProgressCallback

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelStatus:
    """Whether a model is ready: ``state`` is ``"trained"``, ``"missing"`` or ``"stale"``; ``reason`` says why."""

    task: str
    name: str
    state: str
    reason: str = ""

    @property
    def ready(self) -> bool:
        """True when the model is trained for this catalog and artifacts (``state == "trained"``)."""
        return self.state == "trained"


class ModelStore:
    """Trained models of one catalog and its artifacts (see the module docstring).

    Parameters
    ----------
    catalog : Catalog
    artifacts : recsys.artifacts.Artifacts or None
        The precomputed embeddings the models read; their encoder specs are part of the provenance.
    seed : int
        The split / training seed recorded in the provenance.
    """

    def __init__(self, catalog: Catalog, artifacts=None, seed: int = 0):
        self.catalog = catalog
        self.artifacts = artifacts
        self.seed = seed
        self._loaded: dict[tuple[str, str], object] = {}
        self._problems: dict[tuple[str, str], str] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ where and what
    def provenance(self) -> Provenance:
        """What a model trained now would be trained on."""
        image = getattr(self.artifacts, "image_encoder_spec", "") if self.artifacts is not None else ""
        text = getattr(self.artifacts, "text_encoder_spec", "") if self.artifacts is not None else ""
        return Provenance(catalog_fingerprint=self.catalog.fingerprint(), image_encoder=str(image or ""),
                          text_encoder=str(text or ""), split_seed=int(self.seed))

    def path(self, task: str, name: str) -> Path:
        """The model's file path without suffix."""
        return saved_model_path(self.catalog.root, task, name)

    # ------------------------------------------------------------------ loading
    def get(self, task: str, name: str, *, full_only: bool = False):
        """The saved model ``(task, name)`` when it is trained for this catalog and artifacts, else None.

        A stale or damaged file (empty, a git-lfs pointer, cut short, another model's) is logged in one line, its
        reason kept for :meth:`problem`, and treated as not trained, so the set-up or training job writes it again.
        ``full_only`` also refuses a model trained on a quick schedule (what a protocol reusing page models asks).

        Raises
        ------
        KeyError
            For a model the registry does not know.
        """
        model = self._get(task, name)
        if full_only and getattr(getattr(model, "provenance_", None), "schedule", "full") != "full":
            return None
        return model

    def _get(self, task: str, name: str):
        key = (task, name)
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
            info = model_info(task, name)
            path = self.path(task, name)
            if not info.trainable or not path.with_suffix(".json").is_file():
                return None
            cls = type(get_model(task, name))
            try:
                inputs = info.inputs(self, name) if info.inputs is not None else {}
                model = cls.load(path, provenance=self.provenance(), **inputs)
            except StaleModelError as exc:
                self._problems[key] = str(exc)
                logger.warning("%s", exc)
                return None
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                # A damaged file (empty, a git-lfs pointer, cut short, another model's) is a model not trained: the
                # set-up or training job writes it again; its reason is one sentence, its traceback debug detail.
                problem = str(exc) if isinstance(exc, ValueError) else f"The saved model {path.name} cannot be read ({exc})"
                self._problems[key] = f"{problem.rstrip('.')}; it counts as not trained."
                logger.warning("%s", self._problems[key])
                logger.debug("loading %s failed", path, exc_info=True)
                return None
            self._problems.pop(key, None)
            self._loaded[key] = model
            return model

    def problem(self, task: str, name: str) -> str | None:
        """Why the last :meth:`get` of ``(task, name)`` found no usable model (None when it did or never looked)."""
        return self._problems.get((task, name))

    def memo(self, key: str, build: Callable[[], object]):
        """``build()`` once per store (one store per catalog version): in-memory models shared by several services,
        such as the photo category predictor, that are cheap enough never to be saved."""
        with self._lock:
            if ("_memo", key) not in self._loaded:
                self._loaded[("_memo", key)] = build()
            return self._loaded[("_memo", key)]

    # ------------------------------------------------------------------ training
    def fit(self, task: str, name: str, *, quick: bool = False, progress: ProgressCallback | None = None):
        """Train ``(task, name)`` on all of the catalog's data, save it with its provenance, and return it.

        Raises
        ------
        KeyError
            For an unknown model.
        ValueError
            When the catalog lacks what the task needs (one sentence from the task).
        """
        info = model_info(task, name)
        if not info.trainable:
            raise ValueError(f"The {task} model {name!r} is computed, not trained.")
        model = info.fit(self, name, quick=quick, progress=progress)
        with self._lock:
            model.save(self.path(task, name),
                       provenance=dataclasses.replace(self.provenance(), schedule="quick" if quick else "full"))
            self._loaded[(task, name)] = model
            self._problems.pop((task, name), None)
        logger.info("trained and saved %s/%s", task, name)
        return model

    def get_or_fit(self, task: str, name: str, *, quick: bool = False, progress: ProgressCallback | None = None):
        """:meth:`get`, else :meth:`fit` (saved)."""
        model = self.get(task, name)
        return model if model is not None else self.fit(task, name, quick=quick, progress=progress)

    def model_status(self, task: str, name: str) -> ModelStatus:
        """Whether ``(task, name)`` is trained for this catalog and artifacts (loads it when it is saved)."""
        if self.get(task, name) is not None:
            return ModelStatus(task, name, "trained")
        if self.problem(task, name):
            return ModelStatus(task, name, "stale", self.problem(task, name))
        return ModelStatus(task, name, "missing", "It has not been trained for this catalog yet.")

    def schedule(self, model) -> str:
        """``"quick"`` or ``"full"``: the schedule a model this store loaded or trained was trained on."""
        return getattr(getattr(model, "provenance_", None), "schedule", "full")

    def status(self, task: str) -> dict[str, ModelStatus]:
        """``{name: ModelStatus}`` of the task's trainable models (components other models read left out)."""
        return {name: self.model_status(task, name) for name in list_models(task, trainable=True)}
