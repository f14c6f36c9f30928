"""How :class:`recsys.index.VectorIndex` searches with FAISS, and its compressed kind: IVF-PQ re-ranked exactly.

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

from recsys.utils import load_array, top_n

logger = logging.getLogger(__name__)

#: Size of the float32 vectors from which ``VectorIndex(kind="auto")`` compresses: 2 GiB (e.g. 2M x 256 or
#: 400k x 1280). Below it an uncompressed IVF is more accurate and builds faster (no PQ training); above it
#: the float copy inside the index would crowd a shared 24 GB machine that also holds the app, its models and
#: other vector sets, while IVF-PQ holds ``dim / 4`` bytes a vector (16x less) and re-ranking from the
#: vectors on disk restores exact scores for the short list.
COMPRESS_THRESHOLD_BYTES = 2 * 2**30
#: Rows per chunk when reading vectors (finite check, adding, exact scans): temporaries ~64 MB at 256-d.
_CHUNK = 65_536


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


class FaissMixin:
    """The FAISS mechanics of :class:`recsys.index.VectorIndex`: IVF sizing, the ``ivfpq`` kind (build, search,
    re-rank, vectors on disk), search parameters and the exact fallback of the other kinds."""

    def _nlist(self, n_items: int) -> int:
        # k-means wants >= 39 training points per cell; fewer cells than that would only warn and drift.
        nlist = self.nlist or max(1, min(int(2 * math.sqrt(n_items)), n_items // 39))
        return min(nlist, n_items)

    def _training_sample(self, matrix: np.ndarray, size: int) -> np.ndarray:
        if size >= len(matrix):
            return np.ascontiguousarray(matrix)
        rng = np.random.default_rng(self.seed)
        return np.ascontiguousarray(matrix[np.sort(rng.choice(len(matrix), size, replace=False))])

    def _build_ivfpq(self, matrix: np.ndarray):
        n_items, dim = matrix.shape
        nlist = self._nlist(n_items)
        pq_m = self.pq_m or max(1, dim // 4)
        if dim % pq_m:
            pq_m = max(m for m in range(1, pq_m + 1) if dim % m == 0)
        sample = self._training_sample(matrix, max(64 * nlist, min(n_items, 256 * 2**self.pq_bits)))
        # 39 points per centroid is FAISS's floor for a stable k-means; small catalogs get fewer bits instead.
        pq_bits = max(1, min(self.pq_bits, int(math.log2(max(2, len(sample) // 39)))))
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m, pq_bits, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = ivf.pq.cp.seed = self.seed
        # 64 points per code centroid (FAISS's default is 256): training cost drops 4x, and the codes only
        # choose the short list that exact re-ranking then orders.
        ivf.pq.cp.max_points_per_centroid = 64
        index = ivf
        if self.opq:
            rotation = faiss.OPQMatrix(dim, pq_m)
            rotation.niter = 20  # of FAISS's 50: the rotation barely improves after ~20 alternations
            index = faiss.IndexPreTransform(rotation, ivf)
        index.train(sample)
        ivf.nprobe = min(self.nprobe, nlist)
        logger.info("ivfpq: %d cells, %d x %d-bit codes (%d bytes a vector)%s", nlist, pq_m, pq_bits,
                    ivf.code_size, ", OPQ" if self.opq else "")
        return index

    def _ivf_params(self, nprobe: int, selector=None):
        """Search parameters of the IVF-PQ index, wrapped for the OPQ pre-transform when there is one."""
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        if selector is not None:
            params.sel = selector
        if isinstance(self.index_, faiss.IndexPreTransform):
            outer = faiss.SearchParametersPreTransform()
            outer.index_params = params
            outer.inner = params  # SWIG keeps a raw pointer: the Python object must outlive the search
            return outer
        return params

    def _search_compressed(self, queries, k, mask, n_allowed):
        """IVF-PQ short list, filled by a full probe when a filter starves it, re-ranked by exact vectors."""
        ivf = faiss.extract_index_ivf(self.index_)
        selector = bitmap = None
        if mask is not None:
            if self.vectors_ is not None and n_allowed <= max(50 * k, self.n_items_ // 50):
                # Few allowed rows: reading just them and scoring exactly is cheaper than probing the cells.
                return self._exact_rows(queries, k, np.flatnonzero(mask))
            bitmap = np.packbits(mask, bitorder="little")  # must outlive the search: FAISS keeps a raw pointer
            selector = faiss.IDSelectorBitmap(self.n_items_, faiss.swig_ptr(bitmap))
        short = min(n_allowed, max(k, self.rerank)) if self.vectors_ is not None else k
        scores, positions = self.index_.search(queries, short, params=self._ivf_params(ivf.nprobe, selector))
        starved = np.flatnonzero((positions[:, :k] < 0).any(axis=1))
        if len(starved):  # visiting every cell is a full scan of the codes, so it always finds k allowed rows
            logger.debug("%d of %d queries probed every cell", len(starved), len(queries))
            scores[starved], positions[starved] = self.index_.search(
                queries[starved], short, params=self._ivf_params(ivf.nlist, selector))
        if self.vectors_ is None:
            return scores[:, :k], positions[:, :k]
        return self._rerank(queries, k, positions)

    def _rerank(self, queries, k, candidates):
        out_scores = np.empty((len(queries), k), np.float32)
        out_positions = np.empty((len(queries), k), np.int64)
        for row, (query, found) in enumerate(zip(queries, candidates)):
            found = np.sort(found[found >= 0])  # ascending rows: sequential reads from a memory map
            exact = np.asarray(self.vectors_[found], dtype=np.float32) @ query
            best = top_n(exact, k)
            out_scores[row], out_positions[row] = exact[best], found[best]
        return out_scores, out_positions

    def _exact_rows(self, queries, k, rows):
        """Exact top ``k`` among ``rows`` (sorted positions), read from :attr:`vectors_` in chunks."""
        best_scores = np.full((len(queries), 0), -np.inf, np.float32)
        best_positions = np.zeros((len(queries), 0), np.int64)
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            scores = queries @ np.asarray(self.vectors_[chunk], dtype=np.float32).T
            scores = np.concatenate([best_scores, scores], axis=1)
            positions = np.concatenate([best_positions, np.broadcast_to(chunk, (len(queries), len(chunk)))], axis=1)
            order = top_n(scores, k, axis=1)
            best_scores = np.take_along_axis(scores, order, axis=1)
            best_positions = np.take_along_axis(positions, order, axis=1)
        return best_scores, best_positions

    @staticmethod
    def vectors_path(path: str | os.PathLike) -> Path:
        """Where :meth:`save` writes an ``ivfpq`` index's exact vectors: ``<path>.vectors.npy``."""
        path = Path(path)
        return path.with_name(path.name + ".vectors.npy")

    def _save_vectors(self, path: Path) -> str | None:
        """Where the re-ranking vectors live for the sidecar: a whole memory-mapped ``.npy`` by its absolute
        path (the catalog's own vectors are not copied), else written to :meth:`vectors_path`."""
        if getattr(self, "vectors_", None) is None:
            return None
        if isinstance(self.vectors_, np.memmap) and _whole_npy(self.vectors_):
            return str(Path(self.vectors_.filename).resolve())
        target = self.vectors_path(path)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}.npy")
        np.save(tmp, np.asarray(self.vectors_, dtype=np.float32))
        os.replace(tmp, target)
        return target.name

    def _load_vectors(self, path: Path, name: str | None) -> None:
        self.vectors_ = None
        if not name:
            return
        vectors_path = path.parent / name  # an absolute path stays absolute
        try:
            self.vectors_ = load_array(vectors_path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise ValueError(f"The re-ranking vectors {vectors_path} of the index {path} cannot be read ({exc}); "
                             "build and save the index again.") from None
        if self.vectors_.shape != (self.n_items_, self.dim_):
            raise ValueError(f"The re-ranking vectors {vectors_path} have shape {self.vectors_.shape}, not "
                             f"({self.n_items_}, {self.dim_}); build and save the index again.")

    def _search_params(self, k: int, selector=None):
        if self.kind_ == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, 2 * k))
        elif self.kind_ == "ivf":
            params = faiss.SearchParametersIVF(nprobe=self.index_.nprobe)
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return params

    def _exhaustive(self, queries: np.ndarray, k: int, selector=None) -> tuple[np.ndarray, np.ndarray]:
        """Exact search (over the selected rows) whatever the index kind, without copying the vectors."""
        if self.kind_ == "ivf":
            params = faiss.SearchParametersIVF(nprobe=self.index_.nlist)  # visiting every cell is a full scan
            if selector is not None:
                params.sel = selector
            return self.index_.search(queries, k, params=params)
        flat = self.index_ if self.kind_ == "exact" else faiss.downcast_index(self.index_.storage)
        params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return flat.search(queries, k, params=params)

    def _fill_short_rows(self, queries, k, scores, positions, selector):
        short = np.flatnonzero((positions < 0).any(axis=1))
        if len(short):
            logger.debug("%d of %d queries fell back to exact search", len(short), len(queries))
            scores[short], positions[short] = self._exhaustive(queries[short], k, selector)
        return scores, positions

    def _search_faiss(self, matrix, k, mask, n_allowed):
        """Search of the ``exact``, ``hnsw`` and ``ivf`` kinds, filtered through a FAISS ``IDSelector``."""
        if mask is None or mask.all():
            scores, positions = self.index_.search(matrix, k, params=self._search_params(k))
            if self.kind_ != "exact":
                scores, positions = self._fill_short_rows(matrix, k, scores, positions, None)
            return scores, positions

        bitmap = np.packbits(mask, bitorder="little")  # must outlive the search: FAISS keeps a raw pointer
        selector = faiss.IDSelectorBitmap(self.n_items_, faiss.swig_ptr(bitmap))
        if self.kind_ == "exact" or n_allowed <= max(50 * k, self.n_items_ // 50):
            # Few allowed rows: scanning just them is exact and cheaper than a graph walk that rarely meets them.
            return self._exhaustive(matrix, k, selector)
        scores, positions = self.index_.search(matrix, k, params=self._search_params(k, selector))
        return self._fill_short_rows(matrix, k, scores, positions, selector)
