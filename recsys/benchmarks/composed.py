"""Text-guided search figures: training time of each model, and query latency (encode the caption, compose,
search the FAISS index) on a catalog and on a synthetic 100k-item gallery.

``scripts/bench.py`` calls :func:`bench_composed`; :func:`run` builds its own world for a standalone run.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

CAPTIONS = ("is red and has long sleeves", "is striped", "has a bow and is made of silk", "is shorter, short",
            "is navy instead of black", "has no pattern")
LARGE_GALLERY = 100_000


def _ms(seconds: list[float]) -> dict:
    values = np.asarray(seconds) * 1000.0
    return {"median_ms": round(float(np.median(values)), 3), "p95_ms": round(float(np.percentile(values, 95)), 3)}


def _ensure_artifacts(catalog) -> float:
    """Precompute the catalog's embeddings when they are missing; returns the seconds spent (0 if present)."""
    from recsys.artifacts import ArtifactError, load_artifacts, precompute

    try:
        load_artifacts(catalog)
        return 0.0
    except ArtifactError:
        started = time.perf_counter()
        precompute(catalog, device="auto", progress=False)
        return time.perf_counter() - started


def _query_latency(search, catalog, artifacts, model_name: str, n_queries: int, seed: int) -> dict:
    """Median time of encode caption + compose + search (same category, reference excluded) on the catalog."""
    from recsys.models.composed import compose_turns

    rng = np.random.default_rng(seed)
    model = search.models()[model_name]
    index = search._index(model_name)  # built once, outside the timed loop, as the page does
    encode, compose, find, total = [], [], [], []
    for q in range(n_queries):
        row = int(rng.integers(len(catalog)))
        caption = CAPTIONS[q % len(CAPTIONS)]
        t0 = time.perf_counter()
        text = search.text_encoder.encode_text([caption])
        t1 = time.perf_counter()
        query = compose_turns(model, artifacts.image[row : row + 1], [text])
        query /= np.linalg.norm(query, axis=1, keepdims=True)
        t2 = time.perf_counter()
        index.search(query, 24, categories=catalog.items["category"].iat[row], exclude=[row])
        t3 = time.perf_counter()
        encode.append(t1 - t0), compose.append(t2 - t1), find.append(t3 - t2), total.append(t3 - t0)
    return {"encode_caption": _ms(encode), "compose": _ms(compose), "search": _ms(find), "total": _ms(total)}


def _large_gallery_latency(search, artifacts, model_name: str, n_items: int, n_queries: int, seed: int) -> dict:
    """The same query path against ``n_items`` synthetic gallery vectors (catalog vectors plus small noise)."""
    from recsys.index import VectorIndex
    from recsys.models.composed import compose_turns

    rng = np.random.default_rng(seed)
    model = search.models()[model_name]
    base = model.gallery_vectors(artifacts.image)
    picks = rng.integers(len(base), size=n_items)
    gallery = base[picks] + 0.05 * rng.normal(size=(n_items, base.shape[1])).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    categories = np.asarray(search.catalog.items["category"])[picks]
    started = time.perf_counter()
    index = VectorIndex().fit(gallery, categories=categories)
    build = time.perf_counter() - started
    total = []
    for q in range(n_queries):
        row = int(rng.integers(len(base)))
        t0 = time.perf_counter()
        text = search.text_encoder.encode_text([CAPTIONS[q % len(CAPTIONS)]])
        query = compose_turns(model, artifacts.image[row : row + 1], [text])
        query /= np.linalg.norm(query, axis=1, keepdims=True)
        index.search(query, 24, categories=search.catalog.items["category"].iat[row])
        total.append(time.perf_counter() - t0)
    return {"items": n_items, "index": index.kind_, "index_build_s": round(build, 2), "total": _ms(total)}


def bench_composed(catalog_dir, quick: bool = False, seed: int = 0) -> dict:
    """Training seconds of demo-clip, the image-difference model and the combiner (trained and saved through the
    model store); query latency per model."""
    from recsys.artifacts import load_artifacts
    from recsys.catalog import Catalog
    from recsys.models.registry import list_models
    from recsys.store import ModelStore
    from recsys.tasks.composed.service import SearchService

    catalog = Catalog.load(catalog_dir)
    precompute_s = _ensure_artifacts(catalog)
    artifacts = load_artifacts(catalog)
    store = ModelStore(catalog, artifacts, seed=seed)
    search = SearchService(catalog, artifacts, store)
    search.text_encoder  # loaded outside the timings, as the page does
    figures: dict = {"catalog_items": len(catalog), "precompute_s": round(precompute_s, 1)}
    started = time.perf_counter()
    for name in list_models("composed", trainable=True):
        try:
            model = store.fit("composed", name, quick=quick)
        except ValueError as exc:  # e.g. demo-clip on open_clip artifacts
            logger.info("not trained: %s", exc)
            continue
        figures[f"train_{name}_s"] = round(model.fit_seconds_, 2)
    figures["train_all_s"] = round(time.perf_counter() - started, 1)
    models = search.models()
    n_queries = 10 if quick else 50
    for name in ("zero-shot", "image-difference", "combiner"):
        if name in models:
            figures[f"query_{name}"] = _query_latency(search, catalog, artifacts, name, n_queries, seed)
    n_items = 20_000 if quick else LARGE_GALLERY
    for name in ("zero-shot", "combiner"):
        if name in models:
            figures[f"query_{name}_{n_items // 1000}k"] = _large_gallery_latency(search, artifacts, name, n_items, n_queries, seed)
    return figures


def run(quick: bool = False) -> dict:
    """Build a world (``tiny`` when quick, else ``demo``), precompute it, and run :func:`bench_composed` on it."""
    from recsys.data.demo_world import build_demo_catalog

    with tempfile.TemporaryDirectory(prefix="bench-composed-") as scratch:
        folder = Path(scratch) / "world"
        build_demo_catalog(folder, preset="tiny" if quick else "demo", seed=0)
        return bench_composed(folder, quick=quick)
