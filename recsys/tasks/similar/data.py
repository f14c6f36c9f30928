"""What the similar-items models read and are judged on: the image vectors, the categories, the query sample.

* The inputs: row ``i`` of the artifacts' ``image`` array (L2-normalised, ``(n_items, d)``) and the catalog's
  ``category`` column, with its ``color`` and ``pattern`` columns where it has them; nothing else is learned.
* The "split": there is no training data, only a sample of catalog items used as queries
  (:func:`query_sample`), each answered over the whole catalog with itself excluded.

:func:`fit` and :func:`inputs` are what the models' specs give :class:`recsys.store.ModelStore`.
"""

from __future__ import annotations

import numpy as np

from recsys.artifacts import ArtifactError
from recsys.catalog import Catalog
from recsys.models.registry import get_model, model_info
from recsys.progress import ProgressCallback


TASK = "similar"

#: Queries of the protocol (a quick run uses fewer); a smaller catalog uses every item.
N_QUERIES, QUICK_QUERIES = 1000, 200


def query_sample(n_items: int, rng: np.random.Generator, quick: bool = False) -> np.ndarray:
    """Sorted row positions of the protocol's query items, drawn without replacement from ``rng``.

    Raises
    ------
    ValueError
        For an empty catalog.
    """
    n_queries = min(n_items, QUICK_QUERIES if quick else N_QUERIES)
    return np.sort(rng.choice(n_items, size=n_queries, replace=False))


def _require(artifacts, catalog: Catalog):
    if artifacts is None:
        raise ArtifactError(f"The catalog {catalog.name} has no precomputed image embeddings; run "
                            f"python scripts/precompute.py --catalog {catalog.root}.")
    return artifacts


def fit(store, name: str, *, quick: bool = False, progress: ProgressCallback | None = None):
    """What the model store calls: :func:`fit_index` on the store's catalog and artifacts (``quick`` and
    ``progress`` are accepted for the store's interface; building the index uses neither)."""
    return fit_index(store.catalog, store.artifacts, name)


def fit_index(catalog: Catalog, artifacts, name: str):
    """The model users see: ``name`` fitted on the artifacts' image vectors and the catalog's categories.

    Raises
    ------
    KeyError
        For a model the registry does not know.
    ValueError
        For an untrained row (``random``, ``oracle``).
    recsys.artifacts.ArtifactError
        When the catalog has no artifacts.
    """
    if not model_info(TASK, name).trainable:
        raise ValueError(f"The {TASK} model {name!r} is computed, not trained.")
    artifacts = _require(artifacts, catalog)
    return get_model(TASK, name).fit(artifacts.image, catalog.items["category"], **attributes(catalog))


def inputs(store, name: str) -> dict:
    """Side inputs a saved model is loaded with: the image vectors and categories its index is rebuilt from.

    Raises
    ------
    recsys.artifacts.ArtifactError
        When the catalog has no artifacts.
    """
    catalog = store.catalog
    artifacts = _require(store.artifacts, catalog)
    return {"vectors": artifacts.image, "categories": catalog.items["category"], **attributes(catalog)}


def attributes(catalog: Catalog) -> dict:
    """``{"colours": ..., "patterns": ...}``: the catalog's ``color`` and ``pattern`` columns (None where absent),
    what the shopper ranking gives its bonuses for."""
    items = catalog.items
    return {"colours": items["color"] if "color" in items.columns else None,
            "patterns": items["pattern"] if "pattern" in items.columns else None}
