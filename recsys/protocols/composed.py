"""Composed-query retrieval, the FashionIQ protocol (task ``composed``).

For every triple of the evaluation split (``test``, or ``val`` where the test captions are not public) the
query is the reference image plus the triple's two captions joined with "and"; the gallery is the
reference's category (of the split, when items carry one), without the reference itself. Reported:
``R@10`` and ``R@50`` per category (``<category>/R@10``, ``<category>/R@50``) and their mean over categories
(``R@10``, ``R@50``), as in FashionIQ; and ``text/R@10``, text-to-image recall of plain text queries that
describe a held-out target (on the built-in world a query made of its attributes, e.g. "red floral midi
dress made of silk"; elsewhere its title), against the whole catalog.

Models: ``random``, ``image-only``, ``text-only``, ``zero-shot`` (baselines), ``image-difference`` (the
paper's model), ``combiner`` (CLIP4Cir-style), and on the built-in world ``oracle``: it knows every item's
attributes and ranks the category's items by how many of them equal the reference's with the triple's
``changes`` applied (ties broken at random).
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from recsys.artifacts import load_artifacts
from recsys.catalog import ATTRIBUTE_COLUMNS, Catalog
from recsys.composed_search import (
    evaluation_split,
    gallery_rows,
    held_out_rows,
    join_captions,
    load_models,
    target_ranks,
    text_encoder_for,
    train_models,
    triples_of,
)
from recsys.metrics import rank_of, recall_at_k
from recsys.models.composed import ComposedModel

logger = logging.getLogger(__name__)

KS = (10, 50)
ProgressCallback = Callable[[float, str], None]


def train(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress: ProgressCallback | None = None) -> dict:
    """Fit and save demo-clip, the image-difference model and the combiner; returns their fit summaries."""
    artifacts = load_artifacts(catalog)
    encoder = text_encoder_for(artifacts)
    return train_models(catalog, artifacts, encoder, seed=seed, quick=quick, progress=progress).summary


def recall_report(ranks: np.ndarray, categories: list[str]) -> dict:
    """FashionIQ figures: recall per category and their unweighted mean over categories."""
    report: dict = {}
    ranks = np.asarray(ranks)
    categories = np.asarray(categories)
    per_k: dict[int, list[float]] = {k: [] for k in KS}
    for category in sorted(set(categories.tolist())):
        mine = ranks[categories == category]
        for k in KS:
            value = recall_at_k(mine, k)
            report[f"{category}/R@{k}"] = value
            per_k[k].append(value)
    for k in KS:
        report[f"R@{k}"] = float(np.mean(per_k[k])) if per_k[k] else float("nan")
    return report


# ---------------------------------------------------------------------- the oracle and random baselines
def _attribute_columns(catalog: Catalog) -> list[str]:
    return [c for c in ATTRIBUTE_COLUMNS if c in catalog.items.columns]


def oracle_ranks(catalog: Catalog, triples: list[dict], split: str | None, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Ranks by the number of attributes equal to the reference's with the captioned ``changes`` applied."""
    rng = np.random.default_rng(seed)
    columns = _attribute_columns(catalog)
    values = catalog.items[columns].astype(object).where(catalog.items[columns].notna(), None).to_numpy()
    lookup = catalog.id_to_index
    ranks, categories = [], []
    for t in triples:
        ref, tgt = lookup[t["reference_id"]], lookup[t["target_id"]]
        category = catalog.items["category"].iat[ref]
        wanted = dict(zip(columns, values[ref]))
        for attribute, (_, new) in (t.get("changes") or {}).items():
            wanted[attribute] = new
        rows = gallery_rows(catalog, category, split)
        rows = rows[rows != ref]
        if tgt not in rows:
            rows = np.append(rows, tgt)
        matches = sum((values[rows, j] == wanted[c]).astype(float) for j, c in enumerate(columns))
        scores = matches + rng.random(len(rows)) * 1e-3  # random tie-break among equally good items
        ranks.append(rank_of(scores, int(np.flatnonzero(rows == tgt)[0])))
        categories.append(category)
    return np.asarray(ranks), categories


def random_ranks(catalog: Catalog, triples: list[dict], split: str | None, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    lookup = catalog.id_to_index
    ranks, categories = [], []
    for t in triples:
        ref, tgt = lookup[t["reference_id"]], lookup[t["target_id"]]
        category = catalog.items["category"].iat[ref]
        rows = gallery_rows(catalog, category, split)
        rows = rows[rows != ref]
        if tgt not in rows:
            rows = np.append(rows, tgt)
        ranks.append(rank_of(rng.random(len(rows)), int(np.flatnonzero(rows == tgt)[0])))
        categories.append(category)
    return np.asarray(ranks), categories


# ---------------------------------------------------------------------- plain text queries
def attribute_query(row) -> str:
    """A shopper's query for an item of the built-in world, worded unlike its title: "red floral midi dress made of silk"."""
    from recsys.data.demo_world import CATEGORIES

    label = CATEGORIES[row["category"]].label if row["category"] in CATEGORIES else str(row["category"])
    words = [str(row["color"])]
    if row.get("pattern") and row["pattern"] != "solid":
        words.append(str(row["pattern"]))
    if isinstance(row.get("length"), str):
        words.append(f"{row['length']}-length")
    words.append(label)
    extras = []
    if isinstance(row.get("sleeve"), str):
        extras.append("without sleeves" if row["sleeve"] == "sleeveless" else f"with {row['sleeve']} sleeves")
    if isinstance(row.get("material"), str):
        extras.append(f"made of {row['material']}")
    return " ".join(words + extras)


def text_queries(catalog: Catalog) -> tuple[np.ndarray, list[str]]:
    """Rows of the held-out targets and a plain text query for each (attributes on the built-in world, else titles)."""
    rows = held_out_rows(catalog)
    items = catalog.items
    if catalog.has_truth and {"color", "category"} <= set(items.columns):
        texts = [attribute_query(items.iloc[r]) for r in rows]
    else:
        texts = [str(items["title"].iat[r]) for r in rows]
    return rows, texts


def text_oracle_ranks(catalog: Catalog, rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """The oracle of a text query: items of the target's category ranked by how many attributes they share with it."""
    rng = np.random.default_rng(seed)
    columns = ["category"] + _attribute_columns(catalog)
    values = catalog.items[columns].astype(object).where(catalog.items[columns].notna(), None).to_numpy()
    ranks = []
    for r in rows:
        # The query names category, colour, pattern, length, sleeve, material: those are what the oracle can know.
        named = [j for j, c in enumerate(columns) if c in ("category", "color", "pattern", "length", "sleeve", "material")]
        scores = sum((values[:, j] == values[r, j]).astype(float) for j in named) + rng.random(len(values)) * 1e-3
        ranks.append(rank_of(scores, int(r)))
    return np.asarray(ranks)


# ---------------------------------------------------------------------- the protocol
def evaluate(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress: ProgressCallback | None = None) -> dict:
    """Run the FashionIQ protocol on the evaluation split; returns ``{model: {metric: value}}``.

    Uses the models saved by :func:`train` when they match the artifacts, else trains them first.
    """
    split = evaluation_split(catalog)
    triples = triples_of(catalog, split)
    if not triples:
        raise ValueError(f"The catalog {catalog.root} has no caption triples to evaluate composed retrieval on.")
    if quick:
        triples = triples[:200]
    artifacts = load_artifacts(catalog)
    encoder = text_encoder_for(artifacts)
    try:
        bundle = load_models(catalog, artifacts)
    except (FileNotFoundError, KeyError) as exc:
        logger.info("training the composed models first (%s)", exc)
        bundle = train_models(catalog, artifacts, encoder, seed=seed, quick=quick, progress=progress)
    gallery_split = split if "split" in catalog.items.columns else None
    captions = encoder.encode_text([join_captions(t["captions"]) for t in triples])
    report: dict = {}
    ranks, categories = random_ranks(catalog, triples, gallery_split, seed)
    report["random"] = recall_report(ranks, categories)
    for name, model in bundle.models.items():
        ranks, categories = target_ranks(model, catalog, artifacts.image, triples, captions, gallery_split)
        report[name] = recall_report(ranks, categories)
    has_changes = all("changes" in t for t in triples) and catalog.has_truth
    if has_changes:
        ranks, categories = oracle_ranks(catalog, triples, gallery_split, seed)
        report["oracle"] = recall_report(ranks, categories)
    # Plain text queries: only a model with a text-only path answers them (the joint space).
    rows, texts = text_queries(catalog)
    if len(rows):
        text_model: ComposedModel = bundle.models["text-only"]
        gallery = text_model.gallery_vectors(artifacts.image)
        scores = text_model.score(text_model.compose(None, encoder.encode_text(texts)), gallery)
        text_ranks = np.array([rank_of(scores[i], int(r)) for i, r in enumerate(rows)])
        report["text-only"]["text/R@10"] = recall_at_k(text_ranks, 10)
        report["random"]["text/R@10"] = recall_at_k([rank_of(s, int(r)) for s, r in zip(np.random.default_rng(seed).random((len(rows), len(catalog))), rows)], 10)
        if has_changes:
            report["oracle"]["text/R@10"] = recall_at_k(text_oracle_ranks(catalog, rows, seed), 10)
    logger.info("composed retrieval evaluated on %d %s triples", len(triples), split)
    return report
