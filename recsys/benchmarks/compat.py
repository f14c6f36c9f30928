"""Performance figures of "complete the look" (issue 4).

* training time of each compatibility model on a generated world (demo; tiny when quick), from precomputed
  features -- the real artifacts when the world has them, otherwise unit vectors of the same shapes
  (labelled as such: the time does not depend on the values);
* against it, one epoch of the same triplets pushed through the image encoder end to end (decode +
  preprocess + EfficientNet-Lite0 forward and backward for the 3 images of each triplet), measured on a
  sample of triplets and extrapolated to the epoch -- the paper's setting, which took about 7 hours an
  epoch on a GPU because images were decoded in the loop;
* recommendation latency: assembling a full outfit around a query (whole-set scoring), and the top-k per slot.

``scripts/bench.py`` finds the ``bench_*`` functions; ``run(quick)`` runs them all.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from recsys.utils import FIT_THREADS, torch_threads

logger = logging.getLogger(__name__)

#: The complete-the-look paper's end-to-end training, for orientation (seconds per epoch on a GPU).
PAPER_END_TO_END_EPOCH_S = 7 * 3600


class _ShapedArtifacts:
    """Random unit vectors with the artifacts' shapes, for timing where a world has no artifacts."""

    def __init__(self, n: int, seed: int):
        rng = np.random.default_rng(seed)

        def unit(d):
            x = rng.normal(size=(n, d)).astype(np.float32)
            return x / np.linalg.norm(x, axis=1, keepdims=True)

        self.image, self.text_title, self.text_description = unit(1280), unit(384), unit(384)

    def text(self, field: str) -> np.ndarray:
        return getattr(self, f"text_{field}")


def _world(catalog_dir, quick: bool, seed: int, scratch: Path):
    from recsys.artifacts import ArtifactError, load_artifacts
    from recsys.catalog import Catalog

    if catalog_dir is None or not (Path(catalog_dir) / "items.parquet").is_file():
        from recsys.data.demo_world import build_demo_catalog

        catalog_dir = scratch / "world"
        build_demo_catalog(catalog_dir, preset="tiny" if quick else "demo", seed=seed)
    catalog = Catalog.load(catalog_dir)
    try:
        return catalog, load_artifacts(catalog), "artifacts"
    except ArtifactError:
        return catalog, _ShapedArtifacts(len(catalog), seed), "random unit vectors of the artifacts' shapes (no artifacts)"


def bench_compat_training(catalog_dir: str | os.PathLike | None = None, quick: bool = False, seed: int = 0) -> dict:
    """Fit time of both compatibility models from features, against an end-to-end epoch through the encoder."""
    from recsys.models.registry import list_models
    from recsys.tasks.compat import data as compat_data
    from recsys.tasks.compat.models import N_EPOCHS, QUICK_EPOCHS

    with torch_threads(FIT_THREADS), tempfile.TemporaryDirectory(prefix="bench-compat-") as scratch:
        catalog, artifacts, source = _world(catalog_dir, quick, seed, Path(scratch))
        data = compat_data.prepare(catalog, seed, artifacts=artifacts)
        figures: dict = {"catalog": catalog.name, "items": len(catalog), "train_outfits": len(data.train_outfits),
                         "features": source, "feature_dim": int(data.features.shape[1]), "fit_seconds": {},
                         "epochs": QUICK_EPOCHS if quick else N_EPOCHS}
        triplets_per_epoch = 0
        for name in list_models("compat", trainable=True):
            model = compat_data.fit_on_split(name, data, seed=seed, quick=quick)
            figures["fit_seconds"][name] = round(model.fit_seconds_, 2)
            figures.setdefault("seconds_per_epoch", {})[name] = round(model.fit_seconds_ / model.n_epochs, 3)
            triplets_per_epoch = model.n_triplets_per_epoch_
        figures["triplets_per_epoch"] = triplets_per_epoch
        figures["end_to_end"] = _end_to_end_epoch(catalog, data, triplets_per_epoch, sample_triplets=2 if quick else 8,
                                                  seed=seed)
        figures["paper_end_to_end_epoch_s_gpu"] = PAPER_END_TO_END_EPOCH_S
        return figures


def _end_to_end_epoch(catalog, data, triplets_per_epoch: int, sample_triplets: int, seed: int) -> dict:
    """Time decode + preprocess + encoder forward/backward for sampled triplets; extrapolate to the epoch."""
    from recsys.encoders import create_encoder
    from recsys.models.compat import triplets_from_outfits

    encoder = create_encoder("effnet-lite0", device="cpu")
    network = encoder.model.train()
    head = torch.nn.Linear(encoder.dim, 128)
    optimiser = torch.optim.SGD(list(network.parameters()) + list(head.parameters()), lr=1e-4)
    loss_fn = torch.nn.TripletMarginLoss(margin=0.2)
    rng = np.random.default_rng(seed)
    triplets = triplets_from_outfits(data.train_outfits, data.categories, rng)
    triplets = triplets[rng.choice(len(triplets), size=min(sample_triplets, len(triplets)), replace=False)]
    ids = catalog.items["item_id"].to_numpy()

    def step(batch: np.ndarray) -> None:
        images = [encoder.preprocess(catalog.load_image(ids[i])) for i in batch.ravel()]
        pixels = torch.stack(images).contiguous(memory_format=torch.channels_last)
        pooled = network.extract_features(pixels).mean(dim=(2, 3))
        embedded = torch.nn.functional.normalize(head(pooled), dim=-1).view(len(batch), 3, -1)
        loss = loss_fn(embedded[:, 0], embedded[:, 1], embedded[:, 2])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    step(triplets[:2])  # warm-up: first calls pay for allocator and kernel selection
    started = time.perf_counter()
    step(triplets)
    seconds = time.perf_counter() - started
    network.eval()
    per_triplet = seconds / len(triplets)
    return {"measured_triplets": int(len(triplets)), "measured_seconds": round(seconds, 2),
            "seconds_per_triplet": round(per_triplet, 3),
            "epoch_seconds_extrapolated": round(per_triplet * triplets_per_epoch, 1)}


def bench_outfit_latency(catalog_dir: str | os.PathLike | None = None, quick: bool = False, seed: int = 0) -> dict:
    """Milliseconds to assemble a full outfit around a catalog item (and for the top-k per slot)."""
    from recsys.models.registry import list_models
    from recsys.tasks.compat import data as compat_data
    from recsys.tasks.compat.builder import OutfitBuilder, Query

    with torch_threads(FIT_THREADS), tempfile.TemporaryDirectory(prefix="bench-outfit-") as scratch:
        catalog, artifacts, source = _world(catalog_dir, quick, seed, Path(scratch))
        data = compat_data.prepare(catalog, seed, artifacts=artifacts)
        figures: dict = {"catalog": catalog.name, "items": len(catalog), "features": source}
        rng = np.random.default_rng(seed)
        queries = rng.choice(len(catalog), size=10 if quick else 50, replace=False)
        for name in list_models("compat", trainable=True):
            model = compat_data.fit_on_split(name, data, seed=seed, quick=True)
            builder = OutfitBuilder(model, data.slots)
            assemble, top_k = [], []
            for row in queries:
                query = Query(slot=str(data.slots[row]), row=int(row))
                started = time.perf_counter()
                builder.assemble(query)
                assemble.append(1000 * (time.perf_counter() - started))
                started = time.perf_counter()
                builder.top_k(query, k=10)
                top_k.append(1000 * (time.perf_counter() - started))
            figures[name] = {"assemble_ms_median": round(float(np.median(assemble)), 2),
                             "assemble_ms_p95": round(float(np.percentile(assemble, 95)), 2),
                             "top_k_per_slot_ms_median": round(float(np.median(top_k)), 2)}
        return figures


def run(quick: bool = False) -> dict:
    """All figures of this module."""
    return {"training": bench_compat_training(quick=quick), "outfit_latency": bench_outfit_latency(quick=quick)}
