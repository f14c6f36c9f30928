"""One estimator base for every trained model: parameters, cloning, and saving with provenance.

Learned from scikit-learn's ``BaseEstimator`` (parameters are the constructor's keyword arguments, read back from
its signature; ``clone`` builds an unfitted copy) and cornac's ``Recommender.save/load`` -- but never pickle: a
model file a user hands us must not be able to run code. A model is two files written atomically:
``<path>.safetensors`` (arrays) and ``<path>.json`` (class, parameters, learned scalars, provenance).

Provenance records what a model was trained on: the catalog's fingerprint, the encoder specs of the artifacts,
the split seed, and the library version. :meth:`Estimator.load` compares it with what the caller has now and
raises :class:`StaleModelError` (one sentence) when they differ, so a stale model is never used silently.

One hyper-parameter vocabulary across models: ``n_epochs``, ``learning_rate``, ``batch_size``, ``reg`` (L2 or
weight decay), ``random_state``.
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from recsys.utils import file_damage, read_json

MODEL_DIR = Path("artifacts") / "models"


class StaleModelError(ValueError):
    """A saved model was trained on other data (catalog, artifacts' encoders, split seed or library version)."""


@dataclass(frozen=True)
class Provenance:
    """What a model was trained on; two provenances match when every field is equal.

    Attributes
    ----------
    catalog_fingerprint : str
        :meth:`recsys.catalog.Catalog.fingerprint` of the catalog.
    image_encoder, text_encoder : str
        Encoder specs of the artifacts the model read ("" when it read none).
    split_seed : int
        The seed of the task's train/test split.
    library_version : str
        ``recsys.__version__``; a model format change bumps it.
    schedule : str
        ``"full"``, or ``"quick"`` for the short training schedules of smoke tests. Recorded, not matched (a quick
        model is a model of this catalog): a protocol that reuses saved models takes only full ones
        (:meth:`recsys.store.ModelStore.get` with ``full_only``).
    """

    catalog_fingerprint: str = ""
    image_encoder: str = ""
    text_encoder: str = ""
    split_seed: int = 0
    library_version: str = field(default_factory=lambda: _library_version())
    schedule: str = "full"

    def to_dict(self) -> dict:
        """The fields as a JSON-able dict (what a model's ``.json`` file stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict | None) -> "Provenance | None":
        """The provenance stored in ``values``, unknown keys ignored and missing fields defaulted; None when ``values``
        is not a dict (a model saved without provenance).
        """
        if not isinstance(values, dict):
            return None
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        return cls(**known)

    def mismatch(self, other: "Provenance | None") -> str | None:
        """A sentence naming the first field that differs from ``other`` (None when they match)."""
        if other is None:
            return "it records no provenance (it was saved by an older version)"
        labels = {"catalog_fingerprint": "catalog", "image_encoder": "image encoder", "text_encoder": "text encoder",
                  "split_seed": "split seed", "library_version": "library version"}
        for name, label in labels.items():
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                return f"it was trained with {label} {theirs!r}, and the studio now has {mine!r}"
        return None


def _library_version() -> str:
    from recsys import __version__

    return __version__


def model_path(catalog_root: str | os.PathLike, name: str) -> Path:
    """Where the model ``name`` of a catalog lives (without suffix)."""
    return Path(catalog_root) / MODEL_DIR / name


def save_model(path: str | os.PathLike, tensors: dict[str, np.ndarray], params: dict) -> None:
    """Write ``path.safetensors`` (arrays) and ``path.json`` (JSON-able ``params``) atomically.

    Both files are written to temporary names and renamed, so a reader never sees half a model.

    Raises
    ------
    OSError
        When the folder cannot be written.
    TypeError
        When ``params`` holds a value JSON cannot store.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights, meta = path.with_suffix(".safetensors"), path.with_suffix(".json")
    arrays = {k: np.ascontiguousarray(np.asarray(v)) for k, v in tensors.items()}
    if not arrays:  # safetensors needs one tensor; an empty file would read back as "missing"
        arrays = {"_empty": np.zeros(1, dtype=np.float32)}
    save_file(arrays, str(weights) + ".tmp")
    Path(str(meta) + ".tmp").write_text(json.dumps(params, indent=2, default=_jsonable), encoding="utf-8")
    os.replace(str(weights) + ".tmp", weights)
    os.replace(str(meta) + ".tmp", meta)


def load_model(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read what :func:`save_model` wrote: ``(tensors, params)``.

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    ValueError
        One sentence naming the file when either half is damaged: empty, a git-lfs pointer, cut short (a full
        disk), or not what :func:`save_model` writes (the JSON half not an object, the weights not safetensors).
    """
    from safetensors import SafetensorError

    path = Path(path)
    weights, meta = path.with_suffix(".safetensors"), path.with_suffix(".json")
    for file in (weights, meta):
        if not file.is_file():
            raise FileNotFoundError(f"The model file {file} is missing; train it with scripts/train.py.")
    try:
        params = read_json(meta)
    except ValueError as exc:
        raise ValueError(f"The model file {meta.name} is damaged ({exc}).") from None
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        damage = file_damage(weights) or f"it is cut short or not a safetensors file: {exc}"
        raise ValueError(f"The model file {weights.name} is damaged ({damage}).") from None
    tensors.pop("_empty", None)
    return tensors, params


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class Estimator:
    """Base of every trained model (scikit-learn's ``BaseEstimator`` contract, cornac's save/load).

    Subclasses
    ----------
    * store every constructor argument unchanged as an attribute of the same name (keyword-only arguments);
    * end learned state in ``_`` and return ``self`` from ``fit``;
    * implement :meth:`_get_state` and :meth:`_set_state` to be saved (arrays + JSON-able values).

    Capabilities are methods, not types: a model that can explain a score on image regions sets
    ``explains_regions = True`` and implements ``region_scores``.
    """

    #: True when the model implements ``region_scores(user_vector, item_idx, artifacts)``.
    explains_regions = False

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        names = []
        for klass in cls.__mro__:  # ``**kwargs`` passed to a base: collect the bases' keywords too
            if "__init__" not in vars(klass) or klass is object:
                continue
            signature = inspect.signature(vars(klass)["__init__"])
            for p in signature.parameters.values():
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in names:
                    names.append(p.name)
            if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
                break
        return names

    def get_params(self, deep: bool = False) -> dict:
        """The constructor's keyword arguments with their current values (``deep`` is accepted for sklearn)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "Estimator":
        """Set constructor parameters by name; returns ``self``.

        Raises
        ------
        ValueError
            For a name that is not a constructor parameter.
        """
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; it has {', '.join(sorted(valid))}.")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Learned arrays and JSON-able learned values; subclasses that can be saved implement it."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved.")

    def _set_state(self, tensors: dict[str, np.ndarray], meta: dict, **inputs) -> None:
        """Restore what :meth:`_get_state` returned; ``inputs`` are the side inputs ``fit`` had (never saved)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be loaded.")

    def save(self, path: str | os.PathLike, provenance: Provenance | None = None) -> None:
        """Write ``path.safetensors`` and ``path.json`` (class, parameters, learned values, provenance).

        Raises
        ------
        RuntimeError
            When the model is not fitted.
        OSError
            When the folder cannot be written.
        """
        tensors, meta = self._get_state()
        params = {"class": type(self).__name__, "params": self.get_params(), "state": meta,
                  "provenance": provenance.to_dict() if provenance is not None else None}
        save_model(path, tensors, params)
        self.provenance_ = provenance

    @classmethod
    def load(cls, path: str | os.PathLike, provenance: Provenance | None = None, **inputs) -> "Estimator":
        """Read a model :meth:`save` wrote.

        Parameters
        ----------
        path : path without suffix
        provenance : Provenance, optional
            What the caller has now; when given, the saved provenance must match it.
        **inputs
            Side inputs the model's ``fit`` was given (feature arrays), which are not saved with it.

        Raises
        ------
        FileNotFoundError
            When a file is missing.
        StaleModelError
            When the saved provenance does not match ``provenance`` (one sentence).
        ValueError
            When the file holds another class, cannot be read (empty, a git-lfs pointer, cut short), or holds arrays
            and values that do not fit the class (one sentence naming the file).
        """
        tensors, saved = load_model(path)
        if "class" not in saved or "state" not in saved:
            raise StaleModelError(f"The saved model {Path(path).name} was written by an older version of the studio.")
        if saved.get("class") != cls.__name__:
            raise ValueError(f"The model file {path} holds a {saved.get('class')}, not a {cls.__name__}.")
        stored = Provenance.from_dict(saved.get("provenance"))
        if provenance is not None:
            problem = provenance.mismatch(stored)
            if problem:
                raise StaleModelError(f"The saved model {Path(path).name} is out of date: {problem}.")
        try:
            model = cls(**saved.get("params", {}))
            model._set_state(tensors, saved.get("state", {}), **inputs)
        except (TypeError, KeyError, IndexError, AttributeError, RuntimeError, ValueError) as exc:
            if isinstance(exc, ValueError) and type(exc) is not ValueError:
                raise  # a sentence of the model's own (EncoderError, ...) says it better
            # Another model's arrays under this name, or a hand-edited JSON half: what does not fit is damage.
            raise ValueError(f"The model file {Path(path).name} does not hold what a {cls.__name__} saves "
                             f"({type(exc).__name__}: {exc}).") from None
        model.provenance_ = stored
        return model


def clone(estimator: Estimator) -> Estimator:
    """A new unfitted estimator with the same parameters (scikit-learn's ``clone``)."""
    return type(estimator)(**estimator.get_params())
