"""Vector indexes past memory: exact, IVF, HNSW, IVF-PQ and the Milvus backend on 1M x 1280 and 10M x 256.

``run(quick=...)`` is what ``scripts/bench.py`` calls. The vectors are synthetic clustered embeddings (the
two-level mixture of :func:`recsys.benchmarks.encode_index.clustered_embeddings`) generated in chunks into
a memory-mapped ``.npy`` under ``work_dir``, so 10M x 256 (9.5 GiB) never sits in RAM at once; the last
``n_queries`` rows are held out as queries. For every index kind that fits this machine:

- ``build_s``: wall seconds of :meth:`recsys.index.VectorIndex.fit`;
- ``index_bytes``: the saved index file (what the index holds in memory), ``rss_growth_mb`` (anonymous
  resident memory after the build minus before) and ``peak_rss_mb`` (the process's high-water mark during
  the build, where the kernel lets it be reset);
- ``recall_at_10`` against exact ground truth (an exact scan of the memory map in chunks);
- ``p50_ms`` / ``p99_ms``: single-query latency, one query at a time.

Kinds that do not fit are listed under ``skipped`` with the reason (a float copy over ``MEMORY_BUDGET``,
HNSW's build time past ``HNSW_MAX_ITEMS``, Milvus Lite past ``MILVUS_MAX_ITEMS``).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from recsys.benchmarks.encode_index import _environment, _summary, recall_at_k
from recsys.utils import top_n

logger = logging.getLogger(__name__)

#: (items, dimensions) of the full run: the issue's 1M effnet-sized vectors and 10M PCA-reduced ones.
SIZES = ((1_000_000, 1280), (10_000_000, 256))
QUICK_SIZES = ((50_000, 256), (10_000, 1280))
#: Largest float copy of the vectors an index may hold here (24 GB machine shared with others).
MEMORY_BUDGET = 6 * 2**30
#: HNSW builds at roughly 1-3k vectors/s at these dimensions on two cores: beyond this, hours.
HNSW_MAX_ITEMS = 200_000
#: Milvus Lite is meant for up to about a million vectors and inserts row by row over gRPC.
MILVUS_MAX_ITEMS = 200_000
#: Queries timed on Milvus Lite: its searches take seconds each at 50k vectors (an embedded stand-in for tests
#: that scans its stored segments per query; a Milvus server is the backend's production target).
MILVUS_LATENCY_QUERIES = 20
#: nprobe values swept for IVF-PQ (search-time only: the same built index).
NPROBES = (16, 32, 64, 128)
#: Short-list sizes swept for IVF-PQ re-ranking (0: the quantized scores alone).
RERANKS = (0, 256, 1024, 4096, 10_000)
_CHUNK = 250_000


def _memory() -> dict:
    """Resident memory of this process in MB: anonymous (heap), file-backed (memory maps), high-water mark."""
    figures = {}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile", "VmHWM"):
                    figures[key] = int(value.split()[0]) / 1024
    except OSError:  # not Linux: no figures rather than wrong ones
        pass
    return figures


def _reset_peak() -> bool:
    try:  # Linux >= 4.0: writing 5 resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def write_clustered_npy(
    path: str | os.PathLike,
    n: int,
    dim: int,
    groups: int = 16,
    rank: int = 32,
    cluster_spread: float = 0.5,
    spread: float = 0.08,
    noise: float = 0.15,
    max_clusters: int = 4096,
    seed: int = 0,
) -> np.memmap:
    """Write ``n`` x ``dim`` L2-normalized clustered float32 vectors to the ``.npy`` ``path`` in chunks.

    The mixture of :func:`recsys.benchmarks.encode_index.clustered_embeddings` (``sqrt(n)`` clusters, at
    most ``max_clusters``, in ``groups`` groups, ``rank`` directions of variation each), drawn
    chunk by chunk so memory stays ~``_CHUNK * dim * 8`` bytes whatever ``n``. Returns the file memory-mapped
    read-only. An existing file of the right shape is reused (generation of 10M rows takes minutes).
    """
    path = Path(path)
    if path.is_file():
        existing = np.load(path, mmap_mode="r")
        if existing.shape == (n, dim) and existing.dtype == np.float32:
            return existing
    rng = np.random.default_rng(seed)
    clusters = min(max_clusters, max(8, int(np.sqrt(n))))
    group_centres = rng.normal(size=(groups, dim)) / np.sqrt(dim)
    offsets = rng.normal(size=(clusters, dim)) * (cluster_spread / np.sqrt(dim))
    centres = (group_centres[rng.integers(groups, size=clusters)] + offsets).astype(np.float32)
    bases = (rng.normal(size=(clusters, rank, dim)) * (spread / np.sqrt(dim))).astype(np.float32)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, dim))
    for number, start in enumerate(range(0, n, _CHUNK)):
        chunk_rng = np.random.default_rng([seed, number])
        size = min(_CHUNK, n - start)
        labels = chunk_rng.integers(clusters, size=size)
        block = np.empty((size, dim), np.float32)
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(clusters + 1))
        coefficients = chunk_rng.normal(size=(size, rank)).astype(np.float32)
        for cluster in np.flatnonzero(np.diff(bounds)):
            rows = order[bounds[cluster]:bounds[cluster + 1]]
            block[rows] = centres[cluster] + coefficients[rows] @ bases[cluster]
        block += (chunk_rng.normal(size=block.shape) * (noise / np.sqrt(dim))).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + size] = block
    out.flush()
    del out
    os.replace(tmp, path)
    return np.load(path, mmap_mode="r")


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` inner products of ``queries`` over ``vectors`` (may be memory-mapped), read in chunks."""
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_positions = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(vectors), _CHUNK):
        scores = queries @ np.asarray(vectors[start:start + _CHUNK], dtype=np.float32).T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        positions = np.concatenate([best_positions, top + start], axis=1)
        order = top_n(scores, k, axis=1)
        best_scores = np.take_along_axis(scores, order, axis=1)
        best_positions = np.take_along_axis(positions, order, axis=1)
    return best_scores, best_positions


class _ScanIndex:
    """Exact search as a chunked scan of the memory map: the ``exact`` row where a FAISS flat copy won't fit."""

    kind_ = "exact-scan"

    def __init__(self, vectors):
        self.vectors = vectors

    def search(self, queries, k=10):
        return exact_top_k(self.vectors, np.atleast_2d(queries), k)


def _latencies(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    timings, results = [], []
    for query in queries:
        started = time.perf_counter()
        _, positions = index.search(query[None, :], k=k)
        timings.append((time.perf_counter() - started) * 1000.0)
        results.append(positions[0])
    return np.asarray(timings), np.asarray(results)


def _index_bytes(index, work_dir: Path) -> int | None:
    if getattr(index, "kind_", None) == "milvus":
        return None  # held by the database process, not this one
    import faiss

    path = work_dir / "bench.index"
    faiss.write_index(index.index_, str(path))  # the index alone: the re-ranking vectors are the catalog's own
    size = path.stat().st_size
    path.unlink()
    return size


def _plan(n_items: int, dim: int, milvus: bool) -> tuple[dict[str, dict], dict[str, str]]:
    float_bytes = 4 * n_items * dim
    plan, skipped = {}, {}
    if float_bytes <= MEMORY_BUDGET:
        plan["exact"] = {"kind": "exact"}
        plan["ivf"] = {"kind": "ivf"}
    else:
        skipped["ivf"] = f"a float copy of {float_bytes / 2**30:.1f} GiB exceeds the {MEMORY_BUDGET / 2**30:.0f} GiB budget"
    if n_items <= HNSW_MAX_ITEMS and float_bytes <= MEMORY_BUDGET:
        plan["hnsw"] = {"kind": "hnsw"}
    else:
        skipped["hnsw"] = f"building HNSW over {n_items:,} vectors takes hours on two cores (limit {HNSW_MAX_ITEMS:,})"
    plan["ivfpq"] = {"kind": "ivfpq"}
    if not milvus:
        skipped["milvus"] = "pymilvus / milvus-lite are not installed (requirements-scale.txt)"
    elif n_items <= MILVUS_MAX_ITEMS:
        plan["milvus"] = {"backend": "milvus"}
    else:
        skipped["milvus"] = f"Milvus Lite is meant for up to ~1M vectors and inserts slowly (limit {MILVUS_MAX_ITEMS:,})"
    return plan, skipped


def bench_scale(
    n_items: int,
    dim: int,
    work_dir: str | os.PathLike,
    k: int = 10,
    n_queries: int = 200,
    n_latency: int = 200,
    seed: int = 0,
) -> dict:
    """Every index kind that fits on ``n_items`` x ``dim`` clustered vectors memory-mapped under ``work_dir``.

    Returns
    -------
    dict
        ``n_items``, ``dim``, ``generate_s``, ``ground_truth_s``, one entry per kind built (see the module
        docstring for its figures) and ``skipped`` (kind -> reason).
    """
    from recsys.index import VectorIndex

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = write_clustered_npy(work_dir / f"clustered_{n_items}x{dim}_s{seed}.npy", n_items + n_queries, dim, seed=seed)
    vectors, queries = data[:n_items], np.ascontiguousarray(data[n_items:], dtype=np.float32)
    result: dict = {"n_items": n_items, "dim": dim, "k": k, "n_queries": n_queries,
                    "vectors_gib": round(4 * n_items * dim / 2**30, 2), "generate_s": round(time.perf_counter() - started, 1)}
    started = time.perf_counter()
    _, truth = exact_top_k(vectors, queries, k)
    result["ground_truth_s"] = round(time.perf_counter() - started, 1)
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401

        milvus = True
    except ImportError:
        milvus = False
    plan, skipped = _plan(n_items, dim, milvus)
    result["skipped"] = skipped
    if "exact" not in plan:  # a chunked scan is still exact search: time a few queries of it
        scan = _ScanIndex(vectors)
        timings, _ = _latencies(scan, queries[:5], k)
        result["exact"] = {"kind": "exact-scan", "index_bytes": 4 * n_items * dim, "build_s": 0.0,
                           "recall_at_10": 1.0, **_summary(timings), "latency_queries": 5}
    for name, params in plan.items():
        if name == "milvus":
            params = {**params, "milvus_uri": str(work_dir / "bench.milvus.db")}
        memory_before = _memory()
        peak_reset = _reset_peak()
        started = time.perf_counter()
        index = VectorIndex(seed=seed, **params).fit(vectors)
        build_s = time.perf_counter() - started
        memory_after = _memory()
        figures = {"kind": index.kind_, "build_s": round(build_s, 1)}
        if memory_before:
            figures["rss_growth_mb"] = round(memory_after["RssAnon"] - memory_before["RssAnon"], 1)
            figures["rss_file_mb"] = round(memory_after["RssFile"], 1)
            if peak_reset:
                figures["peak_rss_mb"] = round(memory_after["VmHWM"], 1)
        figures["index_bytes"] = _index_bytes(index, work_dir)
        index.search(queries[:5], k=k)  # warm-up
        timed = min(n_latency, MILVUS_LATENCY_QUERIES) if index.kind_ == "milvus" else n_latency
        timings, positions = _latencies(index, queries[:timed], k)
        figures.update(_summary(timings), latency_queries=timed)
        figures["recall_at_10"] = round(recall_at_k(positions, truth[:timed]), 4)
        if index.kind_ == "ivfpq":
            import faiss

            ivf = faiss.extract_index_ivf(index.index_)
            figures.update(nlist=int(ivf.nlist), nprobe=int(ivf.nprobe), code_bytes=int(ivf.code_size),
                           rerank=index.rerank)
            sweep = {}
            default_nprobe = ivf.nprobe
            for nprobe in NPROBES:
                ivf.nprobe = min(nprobe, ivf.nlist)
                timings, positions = _latencies(index, queries[:n_latency], k)
                sweep[str(nprobe)] = {"recall_at_10": round(recall_at_k(positions, truth[:n_latency]), 4),
                                      **_summary(timings)}
            ivf.nprobe = default_nprobe
            figures["nprobe_sweep"] = sweep
            sweep, default_rerank = {}, index.rerank
            for rerank in RERANKS:
                index.rerank = rerank
                timings, positions = _latencies(index, queries[:n_latency], k)
                sweep[str(rerank)] = {"recall_at_10": round(recall_at_k(positions, truth[:n_latency]), 4),
                                      **_summary(timings)}
            index.rerank = default_rerank
            figures["rerank_sweep"] = sweep
        if index.kind_ == "milvus":
            index.index_.drop()
        result[name] = figures
        logger.info("%d x %d %s: build %.1f s, recall@10 %.3f, p50 %.2f ms", n_items, dim, name, build_s,
                    figures["recall_at_10"], figures["p50_ms"])
        del index
    return result


def run(quick: bool = False, work_dir: str | os.PathLike | None = None, seed: int = 0,
        sizes: tuple[tuple[int, int], ...] | None = None) -> dict:
    """The index-at-scale figures for ``scripts/bench.py``: :data:`QUICK_SIZES` when ``quick``, else :data:`SIZES`.

    ``work_dir`` holds the generated vectors (9.5 GiB for 10M x 256, 4.8 GiB for 1M x 1280; reused if present);
    default a temporary folder removed afterwards. ``sizes`` (items, dimensions) overrides both lists.
    """
    sizes = sizes or (QUICK_SIZES if quick else SIZES)
    n_queries = 100 if quick else 200
    with tempfile.TemporaryDirectory(prefix="index_scale_") as scratch:
        folder = Path(work_dir) if work_dir is not None else Path(scratch)
        figures = {f"{n}x{dim}": bench_scale(n, dim, folder, n_queries=n_queries, n_latency=n_queries, seed=seed)
                   for n, dim in sizes}
    return {
        "sizes": figures,
        "data": "synthetic two-level clustered embeddings (16 groups, sqrt(n) clusters up to 4096, 32 directions "
        "of variation each), L2-normalized, memory-mapped from a .npy; queries are held-out points",
        "environment": _environment(),
    }


if __name__ == "__main__":  # python -m recsys.benchmarks.index_scale [--quick] [--work-dir DIR] [--json OUT]
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} instead of {SIZES}")
    parser.add_argument("--work-dir", type=Path, help="keep the generated vectors here (reused by later runs)")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", nargs="+", metavar="NxD",
                        help="only these sizes, e.g. 10000000x256 (the full run's two take hours together)")
    args = parser.parse_args()
    sizes = tuple(tuple(int(part) for part in size.lower().split("x")) for size in args.sizes or ())
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    figures = json.dumps(run(quick=args.quick, work_dir=args.work_dir, seed=args.seed, sizes=sizes or None), indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(figures, encoding="utf-8")
    print(figures)
