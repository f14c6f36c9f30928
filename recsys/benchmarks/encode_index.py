"""Image-encoding throughput and vector-index latency/recall against catalog size.

Every function returns a plain, JSON-ready dict; nothing is written by hand. ``run(quick=...)`` is what
``scripts/bench.py`` calls.

- :func:`bench_image_encoding`: images/s of an image encoder on CPU, from image files on disk, decoding and
  preprocessing included (the work ``scripts/precompute.py`` does per item).
- :func:`bench_index`: single-query latency (p50/p99, k=10) of the exact and the approximate index at
  several catalog sizes on synthetic clustered embeddings, and the approximate index's recall@10 against
  the exact one.
"""

from __future__ import annotations

import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

#: Catalog sizes of the full run; ``quick`` drops the million.
INDEX_SIZES = (2_000, 100_000, 1_000_000)
QUICK_INDEX_SIZES = (2_000, 100_000)
#: Up to this size the benchmark uses the real effnet-lite0 dimension; beyond it, vectors PCA-reduced to
#: 256 dimensions (1M x 1280 float32 would be 5 GB, and a reduced copy is what a large catalog would index).
FULL_DIM, REDUCED_DIM, FULL_DIM_MAX_ITEMS = 1280, 256, 200_000


def _environment() -> dict:
    import faiss
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "faiss": faiss.__version__,
        "torch_threads": torch.get_num_threads(),
        "faiss_threads": faiss.omp_get_max_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# ---------------------------------------------------------------------- image encoding
def write_sample_images(folder: Path, count: int, size: int = 224, seed: int = 0) -> list[Path]:
    """``count`` garment-like PNGs (a coloured silhouette with a pattern on white) for throughput runs."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    paths = []
    for number in range(count):
        image = Image.new("RGB", (size, size), (255, 255, 255))
        draw = ImageDraw.Draw(image)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        left, top = int(rng.integers(20, 50)), int(rng.integers(10, 40))
        draw.rectangle((left, top, size - left, size - top), fill=colour)
        for stripe in range(top, size - top, int(rng.integers(8, 20))):
            draw.line((left, stripe, size - left, stripe), fill=tuple(255 - c for c in colour), width=3)
        path = folder / f"sample_{number:04d}.png"
        image.save(path)
        paths.append(path)
    return paths


def bench_image_encoding(
    spec: str = "effnet-lite0",
    n_images: int = 128,
    batch_size: int = 32,
    threads: int | None = 2,
    micro_batches: Sequence[int | None] = (4,),
    repeats: int = 2,
    image_paths: Sequence[str | os.PathLike] | None = None,
    seed: int = 0,
) -> dict:
    """CPU images/s of ``spec`` from PNG files on disk, decoding and preprocessing included.

    Parameters
    ----------
    spec : str
        Image encoder spec.
    n_images : int
        Images per timed pass (written to a temporary folder unless ``image_dir`` holds images).
    batch_size : int
        Images per ``encode_images`` call.
    threads : int or None
        ``torch.set_num_threads`` during the run (restored after); None leaves torch's choice.
    micro_batches : sequence
        ``cpu_micro_batch`` settings to compare (None: whole batches through the network).
    repeats : int
        Timed passes per setting; the best one is reported (the others absorb noise from shared cores).
    image_paths : sequence of paths, optional
        Image files to use (the first ``n_images``) instead of generated ones.

    Returns
    -------
    dict
        ``images_per_s`` (first setting), ``by_micro_batch`` (all settings: best and all passes), settings, environment.
    """
    from PIL import Image

    from recsys.encoders import create_encoder
    from recsys.utils import torch_threads

    with tempfile.TemporaryDirectory(prefix="recsys-bench-") as scratch, torch_threads(threads):
        if image_paths is not None:
            paths = [Path(p) for p in image_paths][:n_images]
        else:
            paths = write_sample_images(Path(scratch), n_images, seed=seed)
        encoder = create_encoder(spec, device="cpu")

        def one_pass() -> tuple[float, float]:
            started, cpu_started = time.perf_counter(), time.process_time()
            for start in range(0, len(paths), batch_size):
                images = []
                for path in paths[start : start + batch_size]:
                    with Image.open(path) as image:
                        images.append(image.convert("RGB"))
                encoder.encode_images(images, batch_size=batch_size)
            return len(paths) / (time.perf_counter() - started), len(paths) / (time.process_time() - cpu_started)

        results = {}
        for micro_batch in micro_batches:
            encoder.cpu_micro_batch = micro_batch
            encoder.encode_images([Image.new("RGB", (224, 224))] * min(batch_size, 8))  # warm-up: oneDNN builds its kernels
            passes = [one_pass() for _ in range(repeats)]
            rates = [wall for wall, _ in passes]
            results[str(micro_batch)] = {
                "images_per_s": round(max(rates), 2),
                "passes": [round(r, 2) for r in rates],
                # Images per CPU-second over all threads: with one thread, the rate an idle core would give,
                # whatever else shares the machine.
                "images_per_cpu_s": round(max(cpu for _, cpu in passes), 2),
            }
            logger.info("%s micro-batch %s: %.1f images/s", spec, micro_batch, max(rates))
        return {
            "spec": spec,
            "device": "cpu",
            "n_images": len(paths),
            "batch_size": batch_size,
            "threads": threads,
            "images_per_s": results[str(micro_batches[0])]["images_per_s"],
            "by_micro_batch": results,
            "environment": _environment(),
        }


# ---------------------------------------------------------------------- index
def clustered_embeddings(
    n: int,
    dim: int,
    groups: int = 16,
    clusters: int | None = None,
    rank: int = 32,
    cluster_spread: float = 0.5,
    spread: float = 0.08,
    noise: float = 0.15,
    seed: int = 0,
) -> np.ndarray:
    """L2-normalized synthetic embeddings shaped like real ones: a two-level mixture.

    ``groups`` broad groups (garment categories) split into ``clusters`` tight clusters (item types); each
    point is its cluster's centre plus variation along ``rank`` cluster-specific directions (low intrinsic
    dimension) plus a little isotropic noise. Neighbouring clusters of one group overlap, so nearest
    neighbours cross cluster borders, as they do in real catalogs; well-separated blobs would flatter
    approximate indexes.

    Parameters
    ----------
    n, dim : int
    groups : int
    clusters : int, optional
        Default ``sqrt(n)``, at least 8.
    rank : int
        Directions of variation per cluster.
    cluster_spread, spread, noise : float
        Norms of the cluster-centre offsets within a group, of the variation per direction, and of the noise
        (the group centres have norm ~1).
    """
    rng = np.random.default_rng(seed)
    clusters = clusters or max(8, int(np.sqrt(n)))
    group_centres = rng.normal(size=(groups, dim)) / np.sqrt(dim)
    offsets = rng.normal(size=(clusters, dim)) * (cluster_spread / np.sqrt(dim))
    centres = (group_centres[rng.integers(groups, size=clusters)] + offsets).astype(np.float32)
    bases = (rng.normal(size=(clusters, rank, dim)) * (spread / np.sqrt(dim))).astype(np.float32)
    labels = rng.integers(clusters, size=n)
    out = np.empty((n, dim), dtype=np.float32)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(clusters + 1))
    for cluster in range(clusters):
        rows = order[bounds[cluster] : bounds[cluster + 1]]
        if len(rows):
            out[rows] = centres[cluster] + rng.normal(size=(len(rows), rank)).astype(np.float32) @ bases[cluster]
    chunk = 100_000
    for start in range(0, n, chunk):  # noise in chunks keeps the float64 temporaries small
        block = out[start : start + chunk]
        block += (rng.normal(size=block.shape) * (noise / np.sqrt(dim))).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _latencies_ms(index, queries: np.ndarray, k: int, **filters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wall-clock and CPU milliseconds of each single-query search, and the results."""
    timings, cpu_timings, results = [], [], []
    for query in queries:
        started, cpu_started = time.perf_counter(), time.process_time()
        _, positions = index.search(query[None, :], k=k, **filters)
        timings.append((time.perf_counter() - started) * 1000.0)
        cpu_timings.append((time.process_time() - cpu_started) * 1000.0)
        results.append(positions[0])
    return np.asarray(timings), np.asarray(cpu_timings), np.asarray(results)


def _summary(timings_ms: np.ndarray, cpu_ms: np.ndarray | None = None) -> dict:
    summary = {
        "p50_ms": round(float(np.percentile(timings_ms, 50)), 4),
        "p99_ms": round(float(np.percentile(timings_ms, 99)), 4),
        "mean_ms": round(float(timings_ms.mean()), 4),
    }
    if cpu_ms is not None:
        # CPU time (all threads) of the same queries: on shared cores it shows what an idle machine would take.
        summary["cpu_p50_ms"] = round(float(np.percentile(cpu_ms, 50)), 4)
        summary["cpu_p99_ms"] = round(float(np.percentile(cpu_ms, 99)), 4)
    return summary


def recall_at_k(approximate: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each query's exact top-k found in its approximate top-k."""
    k = exact.shape[1]
    return float(np.mean([len(set(a.tolist()) & set(e.tolist())) / k for a, e in zip(approximate, exact)]))


def bench_index_size(
    n_items: int,
    dim: int | None = None,
    k: int = 10,
    n_queries: int = 200,
    approximate: dict[str, dict] | None = None,
    n_categories: int = 12,
    seed: int = 0,
) -> dict:
    """Exact vs approximate :class:`recsys.index.VectorIndex` on ``n_items`` synthetic clustered vectors.

    Parameters
    ----------
    n_items : int
    dim : int, optional
        Default :data:`FULL_DIM` up to :data:`FULL_DIM_MAX_ITEMS` items, :data:`REDUCED_DIM` above.
    k, n_queries : int
        Single-query searches, timed one by one (queries are fresh points of the same distribution).
    approximate : dict, optional
        ``{name: VectorIndex parameters}`` of the approximate indexes to compare with the exact one;
        default :func:`default_approximate` for the size.
    n_categories : int
        Random categories, for the filtered timings (one category, about ``1/n_categories`` of the items).

    Returns
    -------
    dict
        ``exact`` and each approximate index: build seconds, latency p50/p99 (wall clock, and CPU time),
        the same for category-filtered queries, and (approximate) recall@k against exact.
    """
    from recsys.index import VectorIndex

    dim = dim or (FULL_DIM if n_items <= FULL_DIM_MAX_ITEMS else REDUCED_DIM)
    approximate = approximate or default_approximate(n_items)
    started = time.perf_counter()
    data = clustered_embeddings(n_items + n_queries, dim, seed=seed)
    vectors, queries = data[:n_items], data[n_items:]
    del data
    categories = np.random.default_rng(seed).integers(n_categories, size=n_items).astype(str)
    query_category = str(categories[0])
    result: dict = {
        "n_items": n_items,
        "dim": dim,
        "k": k,
        "n_queries": n_queries,
        "generate_s": round(time.perf_counter() - started, 2),
    }
    answers = {}
    for name, params in {"exact": {"kind": "exact"}, **approximate}.items():
        started = time.perf_counter()
        index = VectorIndex(**params).fit(vectors, categories=categories)
        build_s = time.perf_counter() - started
        index.search(queries[:5], k=k)  # warm-up
        timings, cpu_timings, positions = _latencies_ms(index, queries, k)
        filtered = _latencies_ms(index, queries[: max(20, n_queries // 4)], k, categories=query_category)
        answers[name] = (positions, filtered[2])
        result[name] = {
            "kind": index.kind_,
            "params": {key: value for key, value in params.items() if key != "kind"},
            "build_s": round(build_s, 2),
            **_summary(timings, cpu_timings),
            "filtered": _summary(filtered[0], filtered[1]),
        }
        if name != "exact":
            result[name]["recall_at_k"] = round(recall_at_k(positions, answers["exact"][0]), 4)
            result[name]["filtered"]["recall_at_k"] = round(recall_at_k(filtered[2], answers["exact"][1]), 4)
        logger.info("%d items, %s: build %.1f s, p50 %.3f ms", n_items, name, build_s, result[name]["p50_ms"])
        del index
    return result


def default_approximate(n_items: int) -> dict[str, dict]:
    """The approximate indexes compared at a size: IVF (what ``kind="auto"`` builds) and, up to
    :data:`HNSW_MAX_ITEMS`, HNSW (beyond, its build takes many minutes on two cores)."""
    variants = {"ivf": {"kind": "ivf"}}
    if n_items <= HNSW_MAX_ITEMS:
        variants["hnsw"] = {"kind": "hnsw"}
    return variants


#: Largest benchmark size at which HNSW is built too (100k x 1280 takes about a minute on two idle cores).
HNSW_MAX_ITEMS = 200_000


def bench_index(sizes: Sequence[int] = INDEX_SIZES, k: int = 10, n_queries: int = 200, seed: int = 0) -> dict:
    """:func:`bench_index_size` for each catalog size."""
    return {
        "k": k,
        "sizes": {str(size): bench_index_size(size, k=k, n_queries=n_queries, seed=seed) for size in sizes},
        "data": "synthetic two-level clustered embeddings (16 groups, sqrt(n) clusters, 32 directions of variation "
        f"each), L2-normalized; {FULL_DIM}-d up to {FULL_DIM_MAX_ITEMS} items, {REDUCED_DIM}-d (PCA-reduced size) above",
        "environment": _environment(),
    }


def run(quick: bool = False, catalog_dir: str | os.PathLike | None = None, seed: int = 0) -> dict:
    """The encoder and index figures for ``scripts/bench.py``: smaller and without 1M items when ``quick``.

    ``catalog_dir``: encode that catalog's images (else generated ones).
    """
    n_images = 64 if quick else 128
    image_paths = None
    if catalog_dir is not None:
        from recsys.catalog import Catalog

        catalog = Catalog.load(catalog_dir, check_images=False)
        image_paths = [catalog.image_path(item_id) for item_id in catalog.items["item_id"].iloc[:n_images]]
    repeats = 1 if quick else 2
    encoding = bench_image_encoding(
        n_images=n_images, repeats=repeats, micro_batches=(4, None), image_paths=image_paths, seed=seed
    )
    # One thread too: on shared cores its images per CPU-second is what one idle core would deliver.
    encoding["one_thread"] = bench_image_encoding(
        n_images=n_images, threads=1, repeats=repeats, micro_batches=(4,), image_paths=image_paths, seed=seed
    )["by_micro_batch"]["4"]
    index = bench_index(QUICK_INDEX_SIZES if quick else INDEX_SIZES, n_queries=100 if quick else 200, seed=seed)
    return {"image_encoding": encoding, "index": index}
