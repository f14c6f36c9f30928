"""The compressed kind of :class:`recsys.index.VectorIndex`, ``ivfpq``: IVF-PQ re-ranked exactly.

Product quantization (Jegou, Douze, Schmid, "Product quantization for nearest neighbor search", TPAMI 2011)
stores each vector as ``pq_m`` one-byte codes (``dim / 4`` by default: 16x less than float32), inside IVF
cells as FAISS's ``IndexIVFPQ`` does; OPQ (Ge et al., CVPR 2013) optionally rotates the vectors first. The
codes only choose a short list (``rerank`` candidates); when the exact vectors are at hand (the array given
to ``fit``, or a memory-mapped ``.npy``, of which only the candidates' rows are read) the short list is
re-scored exactly, so the scores returned are true inner products, as the other kinds return.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import faiss
import numpy as np

from recsys.index.base import CHUNK
from recsys.index.faiss_kinds import FaissBackend, nlist_of, selector_of, training_sample
from recsys.utils import load_array, top_n

logger = logging.getLogger(__name__)

#: Size of the float32 vectors from which ``VectorIndex(kind="auto")`` compresses: 2 GiB (e.g. 2M x 256 or
#: 400k x 1280). Below it an uncompressed IVF is more accurate and builds faster (no PQ training); above it
#: the float copy inside the index would crowd a shared 24 GB machine that also holds the app, its models and
#: other vector sets, while IVF-PQ holds ``dim / 4`` bytes a vector (16x less) and re-ranking from the
#: vectors on disk restores exact scores for the short list.
COMPRESS_THRESHOLD_BYTES = 2 * 2**30


def _whole_npy(vectors: np.memmap) -> bool:
    """Whether ``vectors`` maps a whole float32 ``.npy`` file (then the file itself can be referred to)."""
    source = getattr(vectors, "filename", None)
    if not source or not str(source).endswith(".npy"):
        return False
    try:
        whole = np.load(source, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return whole.shape == vectors.shape and whole.dtype == vectors.dtype and whole.offset == vectors.offset


class IVFPQBackend(FaissBackend):
    """``ivfpq``: ``IndexIVFPQ`` (behind ``OPQ`` when asked), its short list re-ranked by the exact vectors the
    facade keeps in ``vectors_`` (the caller's array, or a memory-mapped ``.npy``)."""

    kind = "ivfpq"

    def create(self, index, matrix: np.ndarray, source):
        """An ``IndexIVFPQ`` (behind OPQ when ``index.opq``) trained on a seeded sample; keeps the
        exact vectors for re-ranking in ``index.vectors_``."""
        n_items, dim = matrix.shape
        nlist = nlist_of(index, n_items)
        pq_m = index.pq_m or max(1, dim // 4)
        if dim % pq_m:
            pq_m = max(m for m in range(1, pq_m + 1) if dim % m == 0)
        sample = training_sample(index, matrix, max(64 * nlist, min(n_items, 256 * 2**index.pq_bits)))
        # 39 points per centroid is FAISS's floor for a stable k-means; small catalogs get fewer bits instead.
        pq_bits = max(1, min(index.pq_bits, int(math.log2(max(2, len(sample) // 39)))))
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m, pq_bits, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = ivf.pq.cp.seed = index.seed
        # 64 points per code centroid (FAISS's default is 256): training cost drops 4x, and the codes only
        # choose the short list that exact re-ranking then orders.
        ivf.pq.cp.max_points_per_centroid = 64
        native = ivf
        if index.opq:
            rotation = faiss.OPQMatrix(dim, pq_m)
            rotation.niter = 20  # of FAISS's 50: the rotation barely improves after ~20 alternations
            native = faiss.IndexPreTransform(rotation, ivf)
        native.train(sample)
        ivf.nprobe = min(index.nprobe, nlist)
        logger.info("ivfpq: %d cells, %d x %d-bit codes (%d bytes a vector)%s", nlist, pq_m, pq_bits,
                    ivf.code_size, ", OPQ" if index.opq else "")
        # Keep the caller's array (a memmap stays a memmap) for re-ranking; a copy would defeat compression.
        index.vectors_ = source if isinstance(source, np.memmap) and source.dtype == np.float32 else matrix
        return native

    def _ivf_params(self, index, nprobe: int, selector=None):
        """Search parameters of the IVF-PQ index, wrapped for the OPQ pre-transform when there is one."""
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        if selector is not None:
            params.sel = selector
        if isinstance(index.index_, faiss.IndexPreTransform):
            outer = faiss.SearchParametersPreTransform()
            outer.index_params = params
            outer.inner = params  # SWIG keeps a raw pointer: the Python object must outlive the search
            return outer
        return params

    def search(self, index, queries, k, mask, n_allowed, filters):
        """IVF-PQ short list, filled by a full probe when a filter starves it, re-ranked by exact vectors."""
        mask = None if mask is None or mask.all() else mask
        ivf = faiss.extract_index_ivf(index.index_)
        selector = bitmap = None
        if mask is not None:
            if index.vectors_ is not None and n_allowed <= max(50 * k, index.n_items_ // 50):
                # Few allowed rows: reading just them and scoring exactly is cheaper than probing the cells.
                return self._exact_rows(index, queries, k, np.flatnonzero(mask))
            selector, bitmap = selector_of(mask, index.n_items_)  # bitmap: must outlive the search
        short = min(n_allowed, max(k, index.rerank)) if index.vectors_ is not None else k
        scores, positions = index.index_.search(queries, short, params=self._ivf_params(index, ivf.nprobe, selector))
        starved = np.flatnonzero((positions[:, :k] < 0).any(axis=1))
        if len(starved):  # visiting every cell is a full scan of the codes, so it always finds k allowed rows
            logger.debug("%d of %d queries probed every cell", len(starved), len(queries))
            scores[starved], positions[starved] = index.index_.search(
                queries[starved], short, params=self._ivf_params(index, ivf.nlist, selector))
        if index.vectors_ is None:
            return scores[:, :k], positions[:, :k]
        return self._rerank(index, queries, k, positions)

    def _rerank(self, index, queries, k, candidates):
        out_scores = np.empty((len(queries), k), np.float32)
        out_positions = np.empty((len(queries), k), np.int64)
        for row, (query, found) in enumerate(zip(queries, candidates)):
            found = np.sort(found[found >= 0])  # ascending rows: sequential reads from a memory map
            exact = np.asarray(index.vectors_[found], dtype=np.float32) @ query
            best = top_n(exact, k)
            out_scores[row], out_positions[row] = exact[best], found[best]
        return out_scores, out_positions

    def _exact_rows(self, index, queries, k, rows):
        """Exact top ``k`` among ``rows`` (sorted positions), read from :attr:`vectors_` in chunks."""
        best_scores = np.full((len(queries), 0), -np.inf, np.float32)
        best_positions = np.zeros((len(queries), 0), np.int64)
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            scores = queries @ np.asarray(index.vectors_[chunk], dtype=np.float32).T
            scores = np.concatenate([best_scores, scores], axis=1)
            positions = np.concatenate([best_positions, np.broadcast_to(chunk, (len(queries), len(chunk)))], axis=1)
            order = top_n(scores, k, axis=1)
            best_scores = np.take_along_axis(scores, order, axis=1)
            best_positions = np.take_along_axis(positions, order, axis=1)
        return best_scores, best_positions


def vectors_path(path: str | os.PathLike) -> Path:
    """Where :meth:`recsys.index.VectorIndex.save` writes an ``ivfpq`` index's exact vectors: ``<path>.vectors.npy``."""
    path = Path(path)
    return path.with_name(path.name + ".vectors.npy")


def save_vectors(index, path: Path) -> str | None:
    """Where the re-ranking vectors live for the sidecar: a whole memory-mapped ``.npy`` by its absolute
    path (the catalog's own vectors are not copied), else written to :func:`vectors_path`; None without them."""
    if getattr(index, "vectors_", None) is None:
        return None
    if isinstance(index.vectors_, np.memmap) and _whole_npy(index.vectors_):
        return str(Path(index.vectors_.filename).resolve())
    target = vectors_path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}.npy")
    np.save(tmp, np.asarray(index.vectors_, dtype=np.float32))
    os.replace(tmp, target)
    return target.name


def load_vectors(index, path: Path, name: str | None) -> None:
    """Memory-map the re-ranking vectors the sidecar names (``name``; None: none) into ``index.vectors_``.

    Raises
    ------
    ValueError
        When they cannot be read or do not have the index's shape (one sentence).
    """
    index.vectors_ = None
    if not name:
        return
    vectors_path = path.parent / name  # an absolute path stays absolute
    try:
        index.vectors_ = load_array(vectors_path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise ValueError(f"The re-ranking vectors {vectors_path} of the index {path} cannot be read ({exc}); "
                         "build and save the index again.") from None
    if index.vectors_.shape != (index.n_items_, index.dim_):
        raise ValueError(f"The re-ranking vectors {vectors_path} have shape {index.vectors_.shape}, not "
                         f"({index.n_items_}, {index.dim_}); build and save the index again.")
