"""Precompute throughput of the ``local`` and ``ray`` engines on this machine: same images, same run.

``run(quick=..., catalog_dir=..., seed=...)`` is what ``scripts/bench.py`` calls. It precomputes one catalog (the
world ``bench.py`` built, else the ``tiny`` world built here: 248 images) twice into scratch folders, with
``force=True`` so every image is encoded, first with the local engine and then with the ray engine on a local Ray
instance, and reports for each:

- ``images_per_s``: images over the image stage's seconds (reading, decoding, encoding, writing the shards; for the
  ray engine its workers' start, model loading included, but not the Ray instance's, which is ``ray_start_s``);
- ``image_stage_s``, ``total_s`` (text, assembly and the catalog map included) and the engine's settings;
- for the ray engine, ``images_per_s_after_first_batch``: the rate once its workers run (``first_batch_s`` is
  their start, model loading included, until the first batch arrives) -- what a long run approaches.

Both engines use every core: the local engine as torch threads in one process, the ray engine as one single-threaded
encoder worker per core (decoding fused into them). The ray engine is skipped, with the reason, when Ray is not
installed. Nothing is asserted: these are figures for the README.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def _figures(manifest: dict, n_items: int) -> dict:
    timings = manifest["timings"]
    image_s = timings.get("pca_seconds", 0.0) + timings["image_seconds"]
    return {
        "images": n_items,
        "images_per_s": round(n_items / max(image_s, 1e-9), 2),
        "image_stage_s": round(image_s, 2),
        "total_s": timings["total_seconds"],
        "engine": timings["engine"],
    }


def run(quick: bool = False, catalog_dir: str | os.PathLike | None = None, seed: int = 0) -> dict:
    """Images/s of ``precompute`` with each engine on one catalog (see the module docstring).

    Parameters
    ----------
    quick : bool
        Without ``catalog_dir``, both mean the ``tiny`` world (248 images); kept for ``bench.py``'s interface.
    catalog_dir : path, optional
        The catalog to encode (its own artifacts are left alone: the runs write to scratch folders).
    seed : int
        Seed of the world built when no catalog is given, and of the precompute.

    Returns
    -------
    dict
        ``local`` and ``ray`` figures (``ray`` holds ``skipped`` when Ray is missing), ``ray_over_local`` (the ratio
        of their images/s), the catalog, the CPU count.
    """
    from recsys.catalog import Catalog
    from recsys.precompute import EngineError, create_engine, precompute
    from recsys.precompute_ray import import_ray

    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="recsys-engines-") as scratch:
        scratch = Path(scratch)
        if catalog_dir is None:
            from recsys.data.demo_world import build_demo_catalog

            catalog_dir = scratch / "tiny"
            build_demo_catalog(catalog_dir, preset="tiny", seed=seed)
        catalog = Catalog.load(catalog_dir)
        settings = {"device": "cpu", "progress": False, "force": True, "seed": seed}
        result: dict = {"catalog": Path(catalog_dir).name, "items": len(catalog), "cpus": cpus, "quick": quick}

        logger.info("precompute engines: local on %d images", len(catalog))
        local = precompute(catalog, artifacts_dir=scratch / "local", engine="local", threads=cpus, **settings)
        result["local"] = {**_figures(local, len(catalog)), "torch_threads": cpus}

        engine = create_engine("ray", num_cpus=cpus, num_encode_workers=cpus)
        try:
            was_up = import_ray().is_initialized()
            started = time.perf_counter()
            ray = engine.connect()
            ray_start_s = time.perf_counter() - started
        except EngineError as exc:
            result["ray"] = {"skipped": str(exc)}
            return result
        try:
            logger.info("precompute engines: ray on %d images", len(catalog))
            distributed = precompute(catalog, artifacts_dir=scratch / "ray", engine=engine, **settings)
        finally:
            if not was_up:  # a Ray instance this process had before is not ours to end
                ray.shutdown()
        result["ray"] = {**_figures(distributed, len(catalog)), "ray_start_s": round(ray_start_s, 2)}
        first = distributed["timings"]["engine"]
        steady_s = result["ray"]["image_stage_s"] - first["first_batch_s"]
        result["ray"]["images_per_s_after_first_batch"] = round(
            (len(catalog) - first["first_batch_items"]) / max(steady_s, 1e-9), 2)
        result["ray_over_local"] = round(result["ray"]["images_per_s"] / result["local"]["images_per_s"], 3)
        result["load_average"] = list(os.getloadavg())
        return result
