"""Similar-item retrieval protocol: do the nearest neighbours share the query's category (and look)?

For a sample of catalog items used as queries, the top 10 neighbours over the whole catalog (the query
itself excluded) are judged by category -- precision@5 and @10 -- and, where the catalog has the
attributes, by colour and pattern agreement@10. Compared with random neighbours and, on the built-in
world, an oracle that ranks by the true attributes.
"""

from __future__ import annotations

import logging

import numpy as np

from recsys.artifacts import load_artifacts
from recsys.catalog import Catalog
from recsys.metrics import precision_at_k
from recsys.models.similar import SimilarItems

logger = logging.getLogger(__name__)

K = 10
AGREEMENT_COLUMNS = ("color", "pattern")


def _judge(items, queries: np.ndarray, neighbours: np.ndarray) -> dict:
    result = {}
    category = items["category"].to_numpy()
    same = category[neighbours] == category[queries][:, None]
    result["P@5"] = precision_at_k(same, 5)
    result["P@10"] = precision_at_k(same, 10)
    for column in AGREEMENT_COLUMNS:
        if column in items.columns and items[column].notna().all():
            values = items[column].to_numpy()
            result[f"{column}@10"] = precision_at_k(values[neighbours] == values[queries][:, None], 10)
    return result


def _oracle_neighbours(items, queries: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank by the number of true attributes shared with the query, category first (ties broken at random)."""
    columns = ["category"] + [c for c in ("color", "pattern", "material", "detail", "style") if c in items.columns]
    weights = {"category": 100.0}
    codes = {c: items[c].astype(str).to_numpy() for c in columns}
    rows = []
    for q in queries:
        score = sum(weights.get(c, 1.0) * (codes[c] == codes[c][q]) for c in columns) + rng.random(len(items)) * 1e-3
        score[q] = -np.inf
        rows.append(np.argsort(-score)[:K])
    return np.array(rows)


def evaluate(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress=None) -> dict:
    """Precision@5/@10 of the category, colour/pattern agreement@10: visual similarity vs random vs oracle."""
    artifacts = load_artifacts(catalog)
    items = catalog.items
    rng = np.random.default_rng(seed)
    n_queries = min(len(items), 200 if quick else 1000)
    queries = np.sort(rng.choice(len(items), size=n_queries, replace=False))

    model = SimilarItems(index_kind="exact").fit(artifacts.image, items["category"])
    visual = np.array([model.similar_to_item(q, k=K, same_category=False)[0] for q in queries])
    random_rows = []
    for q in queries:
        pool = np.delete(np.arange(len(items)), q)
        random_rows.append(rng.choice(pool, size=K, replace=False))
    report = {
        "visual-similarity": _judge(items, queries, visual),
        "random": _judge(items, queries, np.array(random_rows)),
    }
    if catalog.has_truth:
        report["oracle"] = _judge(items, queries, _oracle_neighbours(items, queries, rng))
    for name, values in report.items():
        logger.info("similar %s: %s", name, values)
    return report
