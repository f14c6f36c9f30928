"""Similar-item retrieval protocol: do the nearest neighbours share the query's category (and look)?

For a sample of catalog items used as queries (:func:`recsys.tasks.similar.data.query_sample`), the top 10
neighbours (the query itself excluded) are judged by category -- precision@5 and @10 -- and, where the catalog has
the attributes, by colour and pattern agreement@10. The page's model, ``shopper-similarity``, searches the query's
category and favours its colour and pattern (the catalog's own columns: a retailer's metadata, not the judge's
secret); ``visual-similarity``, plain cosine over the whole catalog, is the baseline it must beat, with random
neighbours and, on the built-in world, an oracle that ranks by the true attributes.
"""

from __future__ import annotations

import logging

import numpy as np

from recsys.artifacts import load_artifacts
from recsys.catalog import Catalog
from recsys.metrics import PER_QUERY, defined_errors, precision_at_k, standard_error
from recsys.models.registry import get_model
from recsys.tasks.similar import data
from recsys.tasks.similar.models import TASK

logger = logging.getLogger(__name__)

K = 10
AGREEMENT_COLUMNS = ("color", "pattern")


def judge(items, queries: np.ndarray, neighbours: np.ndarray) -> dict:
    """Precision@5/@10 of the category and ``<column>@10`` agreement of ``(n_queries, k)`` neighbour positions.

    Agreement is reported for each of :data:`AGREEMENT_COLUMNS` the items table has without gaps.
    """
    result = {}
    category = items["category"].to_numpy()
    found = neighbours >= 0  # a model may find fewer than k items (a small category): the gap counts as a miss
    same = (category[neighbours] == category[queries][:, None]) & found
    per_query = {"P@5": same[:, :5].mean(axis=1), "P@10": same[:, :10].mean(axis=1)}
    result["P@5"] = precision_at_k(same, 5)
    result["P@5_se"] = standard_error(per_query["P@5"])
    result["P@10"] = precision_at_k(same, 10)
    result["P@10_se"] = standard_error(per_query["P@10"])
    for column in AGREEMENT_COLUMNS:
        if column in items.columns and items[column].notna().all():
            values = items[column].to_numpy()
            agree = (values[neighbours] == values[queries][:, None]) & found
            per_query[f"{column}@10"] = agree[:, :10].mean(axis=1)
            result[f"{column}@10"] = precision_at_k(agree, 10)
            result[f"{column}@10_se"] = standard_error(per_query[f"{column}@10"])
    return defined_errors(result) | {PER_QUERY: {m: (v.astype(np.float64), None) for m, v in per_query.items()}}


def evaluate(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress=None, models=None,
             store=None) -> dict:
    """``{model: {"P@5", "P@10", "color@10", "pattern@10"}}`` for shopper and visual similarity, random and (on a
    generated world) the oracle. ``models`` and ``store`` are accepted for the common signature; every row here is
    cheap, so all are reported.

    Raises
    ------
    recsys.artifacts.ArtifactError
        When the catalog has no usable artifacts.
    """
    artifacts = load_artifacts(catalog)
    items = catalog.items
    # One generator draws the queries, then the random rows, then the oracle's tie-breaks, in this order.
    rng = np.random.default_rng(seed)
    queries = data.query_sample(len(items), rng, quick=quick)
    attributes = data.attributes(catalog)
    models = {name: get_model(TASK, name, index_kind="exact").fit(artifacts.image, items["category"], **attributes)
              for name in ("shopper-similarity", "visual-similarity")}
    models["random"] = get_model(TASK, "random", random_state=rng).fit(artifacts.image, items["category"])
    if catalog.has_truth:
        models["oracle"] = get_model(TASK, "oracle", random_state=rng).fit(items)
    report = {}
    for name, model in models.items():
        report[name] = judge(items, queries, model.neighbours(queries, K))
        logger.info("similar %s: %s", name, {k: v for k, v in report[name].items() if k != PER_QUERY})
    return report
