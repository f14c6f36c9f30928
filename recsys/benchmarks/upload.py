"""Upload to first results: the Similar items page's path for a photo, timed step by step.

``run(catalog_dir=..., quick=...)`` is what ``scripts/bench.py`` calls (on a freshly built world). For a set of
photos -- the real clothing photos of ``../shared/realdata`` when they are there, else catalog images re-encoded as
JPEG -- it times, per photo, what the page does after the file arrives: decode (:func:`recsys.imageio.load_upload`),
embed with the catalog's image encoder, read it (:meth:`recsys.tasks.base.TaskService.read_photo`: the classifier,
the two experts, the colour) and search the top 12 (:meth:`SimilarService.similar`). The first photo pays for
loading the encoders and fitting the photo reader and is reported on its own (``first_s``); the others give the
median and p95 (``warm_median_s``, ``warm_p95_s``) and the median of each step. ``first_after_warm_up_s`` is the
first photo after a server start: a fresh service warmed as the app warms it at start, then one photo.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np

from recsys.config import PROJECT_ROOT

SHARED_PHOTOS = PROJECT_ROOT.parent / "shared" / "realdata" / "clothing-small" / "validation"
PHOTOS, QUICK_PHOTOS = 30, 8


def _photos(catalog, n: int) -> tuple[list[bytes], str]:
    if SHARED_PHOTOS.is_dir():
        paths = sorted(p for folder in sorted(SHARED_PHOTOS.iterdir()) for p in sorted(folder.iterdir()))
        step = max(1, len(paths) // n)
        return [p.read_bytes() for p in paths[::step][:n]], "clothing-small validation photos"
    blobs = []
    for item_id in catalog.items["item_id"].iloc[:: max(1, len(catalog) // n)][:n]:
        buffer = io.BytesIO()
        catalog.load_image(item_id).convert("RGB").save(buffer, format="JPEG", quality=90)
        blobs.append(buffer.getvalue())
    return blobs, "catalog images as JPEG (no ../shared)"


def run(catalog_dir: str | Path, quick: bool = False) -> dict:
    """The figures of the module docstring (seconds), for the catalog in ``catalog_dir`` (precomputed here when it
    has no artifacts)."""
    from recsys.artifacts import load_artifacts, precompute, read_manifest
    from recsys.catalog import Catalog
    from recsys.encoders import create_encoder
    from recsys.imageio import load_upload
    from recsys.store import ModelStore
    from recsys.tasks.similar.service import SimilarService

    catalog = Catalog.load(catalog_dir)
    if read_manifest(Path(catalog_dir) / "artifacts") is None:
        precompute(catalog, progress=False)
    artifacts = load_artifacts(catalog)
    blobs, source = _photos(catalog, QUICK_PHOTOS if quick else PHOTOS)
    service = SimilarService(catalog, artifacts, ModelStore(catalog, artifacts))
    steps = {"decode": [], "embed": [], "read": [], "search": [], "total": []}
    first, encoder = None, None
    for k, blob in enumerate(blobs):
        t0 = time.perf_counter()
        image = load_upload(blob)
        t1 = time.perf_counter()
        if encoder is None:  # the page builds it once and keeps it cached
            encoder = create_encoder(artifacts.image_encoder_spec)
        vector = encoder.encode_images([image])[0]
        t2 = time.perf_counter()
        reading = service.read_photo(vector, image)
        t3 = time.perf_counter()
        colour = reading.colour.colour if reading.colour is not None else None
        service.similar(photo=vector, k=12, category=reading.category.category, colour=colour)
        t4 = time.perf_counter()
        if k == 0:
            first = t4 - t0
            continue
        for name, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            steps[name].append(seconds)
    figures = {"photos": len(blobs), "source": source, "first_s": round(first, 3),
               "first_after_warm_up_s": round(_first_after_warm_up(catalog, artifacts, blobs[-1]), 3)}
    if steps["total"]:
        figures["warm_median_s"] = round(float(np.median(steps["total"])), 3)
        figures["warm_p95_s"] = round(float(np.percentile(steps["total"], 95)), 3)
        figures |= {f"{name}_median_s": round(float(np.median(v)), 4) for name, v in steps.items() if name != "total"}
    return figures


def _first_after_warm_up(catalog, artifacts, blob: bytes) -> float:
    """Seconds from a photo's bytes to its results for the first upload after a server start: a fresh service and
    store, warmed as the app warms them at start (:meth:`recsys.tasks.base.TaskService.warm`, the image encoder),
    then one photo -- what a user who uploads once the page is open waits."""
    from recsys.encoders.pool import EncoderWarmUp, shared_encoder
    from recsys.imageio import load_upload
    from recsys.store import ModelStore
    from recsys.tasks.similar.service import SimilarService

    service = SimilarService(catalog, artifacts, ModelStore(catalog, artifacts))
    for step in (EncoderWarmUp(artifacts.image_encoder_spec, None), service):  # what recsys.ui.warm_up runs
        step.warm()
    started = time.perf_counter()
    image = load_upload(blob)
    vector = shared_encoder(artifacts.image_encoder_spec).encode_images([image])[0]
    reading = service.read_photo(vector, image)
    colour = reading.colour.colour if reading.colour is not None else None
    service.similar(photo=vector, k=12, category=reading.category.category, colour=colour)
    return time.perf_counter() - started
