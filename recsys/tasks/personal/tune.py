"""Validation-only hyper-parameter sweeps of the personal models (``scripts/tune.py``).

Each setting is fitted on the training split of :func:`recsys.tasks.personal.data.interaction_data` and scored
on the validation items with :func:`recsys.tasks.personal.protocol.validation_callback`; the test items are never
looked at, so the settings :func:`recsys.tasks.personal.models.model_settings` records stay honest.
"""

from __future__ import annotations

import itertools
import logging
import time

import numpy as np

from recsys.artifacts import load_artifacts
from recsys.catalog import Catalog
from recsys.models.registry import get_model
from recsys.tasks.personal import protocol
from recsys.tasks.personal.data import fit_inputs, interaction_data
from recsys.tasks.personal.models import TASK, ranker_names

logger = logging.getLogger(__name__)


def tune(catalog: Catalog, name: str, grid: dict[str, list], *, seed: int = 0, quick: bool = False,
         every: int = 5) -> list[dict]:
    """Validation-only sweep of model ``name`` over every combination of ``grid`` (hyper-parameter -> values).

    Each setting is fitted on the training split and scored on the validation items (test items are never
    looked at), keeping its best epoch as the protocol does. Rows come back best first by validation NDCG@50,
    each with its sampled AUC at that epoch and its fit time in seconds.

    Raises
    ------
    ValueError
        For an unknown model or a hyper-parameter the model does not have.
    CatalogError
        When the catalog has no interactions.
    recsys.artifacts.ArtifactError
        When the model reads artifacts the catalog lacks.
    """
    names = ranker_names()
    if name not in names:
        raise ValueError(f"There is no personal model '{name}'; pick one of {', '.join(names)}.")
    hyper = list(get_model(TASK, name).get_params())
    unknown = sorted(set(grid) - set(hyper))
    if unknown:
        raise ValueError(f"{name} has no hyper-parameter {', '.join(unknown)}; it has {', '.join(hyper)}.")
    data = interaction_data(catalog)
    users = np.flatnonzero(data.valid_item >= 0)
    artifacts = None if name == "vbpr-attributes" else load_artifacts(catalog)
    side = fit_inputs(catalog, artifacts, data, name, data.train, quick, seed)
    rows = []
    selected = f"val/NDCG@{protocol.SELECTION_CUTOFF}"
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        model = get_model(TASK, name, quick=quick).set_params(**params)
        aucs: dict[int, float] = {}
        started = time.perf_counter()
        model.fit(data.train, on_epoch=protocol.validation_callback(data, users, every, aucs), **side)
        best = max((h for h in model.history_ if "validation" in h), key=lambda h: h["validation"])
        rows.append(params | {"best_epoch": best["epoch"], selected: best["validation"],
                              "val/AUC": aucs[best["epoch"]], "fit_seconds": round(time.perf_counter() - started, 1)})
        logger.info("%s %s: %s", name, params, rows[-1])
    return sorted(rows, key=lambda row: -row[selected])
