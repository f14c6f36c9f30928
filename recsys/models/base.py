"""Saving and loading trained models: tensors in safetensors, hyper-parameters and metrics in JSON.

Never pickle: a model file a user hands us must not be able to run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

MODEL_DIR = Path("artifacts") / "models"


def model_path(catalog_root: str | os.PathLike, name: str) -> Path:
    """Where the model ``name`` of a catalog lives (without suffix)."""
    return Path(catalog_root) / MODEL_DIR / name


def save_model(path: str | os.PathLike, tensors: dict[str, np.ndarray], params: dict) -> None:
    """Write ``path.safetensors`` (arrays) and ``path.json`` (hyper-parameters, metrics, what it was fit on).

    Both files are written to temporary names and renamed, so a reader never sees half a model.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights, meta = path.with_suffix(".safetensors"), path.with_suffix(".json")
    arrays = {k: np.ascontiguousarray(np.asarray(v)) for k, v in tensors.items()}
    save_file(arrays, str(weights) + ".tmp")
    Path(str(meta) + ".tmp").write_text(json.dumps(params, indent=2, default=_jsonable), encoding="utf-8")
    os.replace(str(weights) + ".tmp", weights)
    os.replace(str(meta) + ".tmp", meta)


def load_model(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read what :func:`save_model` wrote; raise ``FileNotFoundError`` naming the missing file."""
    path = Path(path)
    weights, meta = path.with_suffix(".safetensors"), path.with_suffix(".json")
    for file in (weights, meta):
        if not file.is_file():
            raise FileNotFoundError(f"The model file {file} is missing; train it with scripts/train.py.")
    return load_file(str(weights)), json.loads(meta.read_text(encoding="utf-8"))


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
