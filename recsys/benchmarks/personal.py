"""Performance figures of personalized ranking (issue "For you").

* fit time of every model on the demo world (its real interactions; the real artifacts when they exist,
  otherwise feature arrays of the same shapes, labelled as such);
* one BPR and one VBPR epoch at Amazon-Fashion scale (64k users, 234k items, 0.5M interactions, synthetic,
  1280-d features) on this machine's CPU cores -- against the papers' end-to-end image training (DVBPR
  variants: about 10 minutes an epoch on a GPU);
* scoring all items for one user at that scale.

``run(quick=True)`` uses a much smaller scale and the tiny world. ``scripts/bench.py`` finds the
``bench_*`` functions here.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

logger = logging.getLogger(__name__)

AMAZON_SCALE = {"users": 64_000, "items": 234_000, "interactions": 500_000, "feature_dim": 1280}
QUICK_SCALE = {"users": 6_400, "items": 23_400, "interactions": 50_000, "feature_dim": 1280}
#: The papers' end-to-end image training, for comparison (DVBPR variants; seconds per epoch on a GPU).
PAPER_END_TO_END_EPOCH_S = 600


def synthetic_interactions(users: int, items: int, interactions: int, seed: int = 0) -> sp.csr_matrix:
    """A users x items matrix with long-tailed item popularity, like a fashion shop's."""
    rng = np.random.default_rng(seed)
    popularity = rng.pareto(1.2, size=items) + 1.0
    popularity /= popularity.sum()
    rows = rng.integers(0, users, size=interactions)
    cols = rng.choice(items, size=interactions, p=popularity)
    X = sp.csr_matrix((np.ones(interactions, dtype=np.float32), (rows, cols)), shape=(users, items))
    X.data[:] = 1.0
    return X


def _epoch_seconds(model, X, **side) -> float:
    started = time.perf_counter()
    model.fit(X, **side)
    return time.perf_counter() - started


def bench_amazon_scale_epoch(quick: bool = False, seed: int = 0) -> dict:
    """One BPR and one VBPR epoch, and one user's all-item scoring, at Amazon-Fashion scale (synthetic)."""
    from recsys.utils import FIT_THREADS, torch_threads

    with torch_threads(FIT_THREADS):  # scoring too runs on the threads fit uses, as the studio does
        return _amazon_scale_epoch(quick, seed)


def _amazon_scale_epoch(quick: bool, seed: int) -> dict:
    from recsys.models.bpr import BPR
    from recsys.models.vbpr import VBPR

    scale = QUICK_SCALE if quick else AMAZON_SCALE
    X = synthetic_interactions(scale["users"], scale["items"], scale["interactions"], seed)
    rng = np.random.default_rng(seed)
    features = rng.random((scale["items"], scale["feature_dim"]), dtype=np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    figures: dict = {"scale": {**scale, "observed_pairs": int(X.nnz)}, "threads": torch.get_num_threads()}
    # The first optimizer pulls in torch's compiler stack (tens of seconds, once per process): not an epoch's cost.
    BPR(n_epochs=1).fit(synthetic_interactions(20, 30, 60, seed))
    bpr = BPR(n_epochs=1, batch_size=4096, random_state=seed)
    figures["bpr_epoch_s"] = round(_epoch_seconds(bpr, X), 2)
    vbpr = VBPR(n_epochs=1, batch_size=4096, random_state=seed)
    figures["vbpr_epoch_s"] = round(_epoch_seconds(vbpr, X, item_features=features), 2)
    figures["paper_end_to_end_epoch_s_gpu"] = PAPER_END_TO_END_EPOCH_S
    figures["vbpr_epochs_per_paper_epoch"] = round(PAPER_END_TO_END_EPOCH_S / max(figures["vbpr_epoch_s"], 1e-9), 1)
    for name, model in (("bpr", bpr), ("vbpr", vbpr)):
        model.score(0)  # warm-up
        timings = []
        for user in rng.integers(0, scale["users"], size=5):
            started = time.perf_counter()
            model.score(int(user))
            timings.append(time.perf_counter() - started)
        figures[f"{name}_score_all_items_ms"] = round(1000 * float(np.median(timings)), 1)
        figures[f"{name}_items_per_s"] = round(scale["items"] / float(np.median(timings)))
    return figures


def bench_fit_times(catalog_dir: str | os.PathLike | None = None, quick: bool = False, seed: int = 0) -> dict:
    """Fit time of every personalized model on a generated world (demo; tiny when quick)."""
    from recsys.artifacts import ArtifactError, load_artifacts
    from recsys.catalog import Catalog
    from recsys.models.registry import get_model
    from recsys.tasks.personal import data as personal_data
    from recsys.tasks.personal import features
    from recsys.tasks.personal.models import TASK, ranker_names
    from recsys.utils import FIT_THREADS, torch_threads

    with torch_threads(FIT_THREADS), tempfile.TemporaryDirectory(prefix="bench-personal-") as scratch:
        if catalog_dir is None or not (Path(catalog_dir) / "items.parquet").is_file():
            from recsys.data.demo_world import build_demo_catalog

            catalog_dir = Path(scratch) / "world"
            build_demo_catalog(catalog_dir, preset="tiny" if quick else "demo", seed=seed)
        catalog = Catalog.load(catalog_dir)
        data = personal_data.interaction_data(catalog)
        try:
            artifacts = load_artifacts(catalog)
            features_source = "artifacts"
        except ArtifactError:
            artifacts = _shaped_like_artifacts(len(catalog), seed)
            features_source = "random arrays of the artifacts' shapes (no artifacts for this world)"
        figures: dict = {"catalog": catalog.name, "items": len(catalog), "users": len(data.user_ids),
                         "interactions": int(data.train.nnz), "features": features_source, "fit_seconds": {}}
        for name in ranker_names(ceiling=False):
            model = get_model(TASK, name, quick=quick)
            if name == "dvbpr-ae":
                started = time.perf_counter()
                autoencoder = get_model(TASK, "autoencoder", quick=quick, random_state=seed)
                images = features.downscale_images(catalog, features.AE_IMAGE_SIZE)
                autoencoder.fit(images)
                figures["fit_seconds"]["autoencoder"] = round(time.perf_counter() - started, 2)
                side = {"item_features": autoencoder.transform(images)}
            else:
                # The protocol's own inputs (its autoencoder codes and review embeddings are cached in the
                # catalog, so those two are built here instead, where their cost is measured or left out).
                side = personal_data.side_inputs(catalog, artifacts, name)
                if name == "vecf":
                    side["item_features"] = np.asarray(artifacts.image)
            started = time.perf_counter()
            model.fit(data.train, **side)
            figures["fit_seconds"][name] = round(time.perf_counter() - started, 2)
            figures.setdefault("epochs", {})[name] = model.n_epochs
        return figures


class _Shaped:
    def __init__(self, n: int, seed: int):
        rng = np.random.default_rng(seed)
        self.image = rng.random((n, 1280), dtype=np.float32)
        self.text_description = rng.random((n, 384), dtype=np.float32)
        self.feature_maps = rng.random((n, 256, 7, 7), dtype=np.float32).astype(np.float16)


def _shaped_like_artifacts(n: int, seed: int) -> _Shaped:
    return _Shaped(n, seed)


def run(quick: bool = False, catalog_dir: str | os.PathLike | None = None) -> dict:
    """All figures of this module; fit times on ``catalog_dir`` (scripts/bench.py's world, with its artifacts)."""
    return {"amazon_scale_epoch": bench_amazon_scale_epoch(quick=quick),
            "fit_times": bench_fit_times(catalog_dir=catalog_dir, quick=quick)}
