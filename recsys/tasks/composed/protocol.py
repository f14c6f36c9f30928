"""Composed-query retrieval, the FashionIQ protocol (task ``composed``): models in, recall out.

For every triple of the evaluation split (``test``, or ``val`` where the test captions are not public) the
query is the reference image plus the triple's captions joined with "and"; the gallery is the reference's
category (of the split, when items carry one), without the reference itself. Reported: ``R@10`` and ``R@50`` per
category (``<category>/R@10``, ``<category>/R@50``) and their mean over categories (``R@10``, ``R@50``), as in
FashionIQ; and ``text/R@10``, text-to-image recall of plain text queries that describe a held-out target (on the
built-in world a query made of its attributes, e.g. "red floral midi dress made of silk"; elsewhere its title),
against the whole catalog, for the rows that answer free text.

Rows are the registered models (:mod:`recsys.tasks.composed.models`) in registration order: ``random``,
``image-only``, ``text-only``, ``zero-shot``, ``image-difference``, ``combiner``, and on the built-in world
``oracle``. The trained models come from :class:`recsys.store.ModelStore` (trained and saved first when missing).

References
----------
Wu et al., "Fashion IQ: A New Dataset Towards Retrieving Images by Natural Language Feedback", CVPR 2021.
"""

from __future__ import annotations

import logging

import numpy as np

from recsys.artifacts import load_artifacts
from recsys.catalog import Catalog
from recsys.metrics import PER_QUERY, defined_errors, rank_of, recall_at_k, standard_error
from recsys.models.registry import get_model, list_models, model_info
from recsys.progress import ProgressCallback
from recsys.store import ModelStore
from recsys.tasks.composed import data

logger = logging.getLogger(__name__)

KS = (10, 50)


def recall_report(ranks: np.ndarray, categories: list[str]) -> dict:
    """FashionIQ figures: ``<category>/R@k`` per category and their unweighted mean over categories ``R@k``, with
    the standard error of that mean (``R@k_se``: the categories' own standard errors, combined as for a mean of
    independent means; left out when a category has a single query)."""
    report: dict = {}
    per_category: dict = {}
    ranks = np.asarray(ranks)
    categories = np.asarray(categories)
    per_k: dict[int, list[float]] = {k: [] for k in KS}
    errors: dict[int, list[float]] = {k: [] for k in KS}
    for category in sorted(set(categories.tolist())):
        mine = ranks[categories == category]
        for k in KS:
            value = recall_at_k(mine, k)
            per_category[f"{category}/R@{k}"] = value
            per_k[k].append(value)
            errors[k].append(standard_error((mine < k).astype(np.float64)))
    # The means first: they are the figures a table shows in its first columns.
    for k in KS:
        report[f"R@{k}"] = float(np.mean(per_k[k])) if per_k[k] else float("nan")
        combined = float(np.sqrt(np.sum(np.square(errors[k])))) / len(errors[k]) if errors[k] else float("nan")
        report[f"R@{k}_se"] = combined
    # Per triple, with its category: two rows' recalls pair triple by triple, within categories.
    per_query = {f"R@{k}": ((ranks < k).astype(np.float64), categories) for k in KS}
    return defined_errors(report | per_category) | {PER_QUERY: per_query}


def _ranker(catalog: Catalog, name: str, seed: int):
    """The fitted untrained row ``name`` that ranks without embeddings (random, oracle), or None."""
    if model_info(data.TASK, name).trainable:
        return None
    model = get_model(data.TASK, name, random_state=seed)
    if getattr(model, "composes_queries", True):
        return None
    try:
        return model.fit(catalog)
    except ValueError as exc:  # e.g. the oracle of a catalog that is not a generated world
        logger.info("composed row %s left out: %s", name, exc)
        return None


def evaluate(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress: ProgressCallback | None = None,
             models=None, store=None) -> dict:
    """Run the FashionIQ protocol on the evaluation split; returns ``{model: {metric: value}}`` in registry order.
    ``models`` (optional) limits the trained models evaluated (the baselines and oracle are always reported).

    Uses the models saved for this catalog and its artifacts when they are current (in ``store`` when given, else a
    store of split ``seed``), else trains (and saves) them.

    Raises
    ------
    ValueError
        When the catalog has no caption triples to evaluate on.
    recsys.artifacts.ArtifactError
        When the catalog has no usable precomputed embeddings.
    """
    split = data.evaluation_split(catalog)
    triples = data.triples_of(catalog, split)
    if not triples:
        raise ValueError(f"The catalog {catalog.root} has no caption triples to evaluate composed retrieval on.")
    if quick:
        triples = triples[:200]
    artifacts = load_artifacts(catalog)
    encoder = data.text_encoder_for(artifacts)
    if store is None or store.seed != seed:
        store = ModelStore(catalog, artifacts, seed=seed)
    composers = data.load_models(catalog, artifacts, store, train=True, quick=quick, progress=progress, names=models)
    gallery_split = split if "split" in catalog.items.columns else None
    captions = data.encode_texts(encoder, [data.join_captions(t["captions"]) for t in triples])
    text_rows, texts = data.text_queries(catalog)
    text_features = data.encode_texts(encoder, texts) if len(text_rows) else None
    report: dict = {}
    for name in list_models(data.TASK):
        model = composers.get(name) or _ranker(catalog, name, seed)
        if model is None:
            continue
        if model.composes_queries:
            ranks, categories = data.target_ranks(model, catalog, artifacts.image, triples, captions, gallery_split)
        else:
            try:
                ranks, categories = model.rank_targets(triples, gallery_split)
            except ValueError as exc:
                logger.info("composed row %s left out: %s", name, exc)
                continue
        report[name] = recall_report(ranks, categories)
        # Plain text queries: only rows with a text-only path answer them (the joint space, chance, the oracle).
        if not len(text_rows):
            continue
        if not model.composes_queries:
            report[name]["text/R@10"] = recall_at_k(model.rank_text(text_rows), 10)
        elif not model.reads_reference:
            scores = model.score(model.compose(None, text_features), model.gallery_vectors(artifacts.image))
            report[name]["text/R@10"] = recall_at_k(np.array([rank_of(scores[i], int(r)) for i, r in enumerate(text_rows)]), 10)
    logger.info("composed retrieval evaluated on %d %s triples", len(triples), split)
    return report
