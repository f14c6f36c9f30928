"""The in-process FAISS kinds of :class:`recsys.index.VectorIndex`: ``exact`` (``IndexFlatIP``), ``hnsw``
(``IndexHNSWFlat``, inner product) and ``ivf`` (``IndexIVFFlat``), and the FAISS mechanics they share.

Filters (categories, a mask, excluded items) go to FAISS as an ``IDSelector``; when an approximate search cannot
fill ``k`` results from a selective filter, those queries are answered exactly over the allowed items instead, so
a category with at least ``k`` items always yields ``k`` results.
"""

from __future__ import annotations

import logging
import math

import faiss
import numpy as np

from recsys.index.base import CHUNK

logger = logging.getLogger(__name__)


def selector_of(mask: np.ndarray, n_items: int):
    """A FAISS ``IDSelectorBitmap`` of ``mask`` and the bitmap it points into (keep both alive for the search:
    FAISS keeps a raw pointer)."""
    bitmap = np.packbits(mask, bitorder="little")
    return faiss.IDSelectorBitmap(n_items, faiss.swig_ptr(bitmap)), bitmap


def nlist_of(index, n_items: int) -> int:
    """IVF cells: ``index.nlist``, default ``2 * sqrt(n)``, never fewer than 39 training points a cell."""
    # k-means wants >= 39 training points per cell; fewer cells than that would only warn and drift.
    nlist = index.nlist or max(1, min(int(2 * math.sqrt(n_items)), n_items // 39))
    return min(nlist, n_items)


def training_sample(index, matrix: np.ndarray, size: int) -> np.ndarray:
    """At most ``size`` rows of ``matrix`` drawn with ``index.seed``, in row order."""
    if size >= len(matrix):
        return np.ascontiguousarray(matrix)
    rng = np.random.default_rng(index.seed)
    return np.ascontiguousarray(matrix[np.sort(rng.choice(len(matrix), size, replace=False))])


class FaissBackend:
    """What the FAISS kinds share: adding rows in chunks, filtered search with the exact fallback, files."""

    kind = ""

    def create(self, index, matrix: np.ndarray, source):
        """The empty (trained) native index; each kind implements it.

        Raises
        ------
        NotImplementedError
            Always: each kind implements it.
        """
        raise NotImplementedError

    def build(self, index, matrix: np.ndarray, source):
        """The native index over ``matrix`` ``(n, dim)``: :meth:`create`, then the rows added in chunks."""
        native = self.create(index, matrix, source)
        for start in range(0, len(matrix), 16 * CHUNK):  # bounded temporaries when the rows come from disk
            native.add(matrix[start:start + 16 * CHUNK])
        return native

    def search_params(self, index, k: int, selector=None):
        """FAISS search parameters for ``k`` results (with ``selector``'s filter when given)."""
        params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return params

    def exhaustive(self, index, queries: np.ndarray, k: int, selector=None) -> tuple[np.ndarray, np.ndarray]:
        """Exact search (over the selected rows), without copying the vectors."""
        return index.index_.search(queries, k, params=self.search_params(index, k, selector))

    def _fill_short_rows(self, index, queries, k, scores, positions, selector):
        short = np.flatnonzero((positions < 0).any(axis=1))
        if len(short):
            logger.debug("%d of %d queries fell back to exact search", len(short), len(queries))
            scores[short], positions[short] = self.exhaustive(index, queries[short], k, selector)
        return scores, positions

    def search(self, index, queries, k, mask, n_allowed, filters):
        """Top ``k`` of the allowed rows (see :class:`recsys.index.base.IndexBackend`); queries an
        approximate search leaves short are answered exactly."""
        if mask is None or mask.all():
            scores, positions = index.index_.search(queries, k, params=self.search_params(index, k))
            return self._fill_short_rows(index, queries, k, scores, positions, None)
        selector, bitmap = selector_of(mask, index.n_items_)
        if n_allowed <= max(50 * k, index.n_items_ // 50):
            # Few allowed rows: scanning just them is exact and cheaper than a graph walk that rarely meets them.
            return self.exhaustive(index, queries, k, selector)
        scores, positions = index.index_.search(queries, k, params=self.search_params(index, k, selector))
        return self._fill_short_rows(index, queries, k, scores, positions, selector)

    def write(self, index, path) -> None:
        """Write the FAISS index ``index.index_`` to ``path``."""
        faiss.write_index(index.index_, str(path))

    def read(self, path, mmap: bool):
        """The FAISS index at ``path``, memory-mapped when ``mmap``."""
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mmap else 0)


class ExactBackend(FaissBackend):
    """``exact``: ``IndexFlatIP``, every search a scan."""

    kind = "exact"

    def create(self, index, matrix, source):
        """An empty ``IndexFlatIP`` of ``matrix``'s width."""
        return faiss.IndexFlatIP(matrix.shape[1])

    def search(self, index, queries, k, mask, n_allowed, filters):
        """Top ``k`` of the allowed rows, always exact: a filter is a scan of the selected rows."""
        if mask is None or mask.all():
            return index.index_.search(queries, k, params=self.search_params(index, k))
        selector, bitmap = selector_of(mask, index.n_items_)
        return self.exhaustive(index, queries, k, selector)


class HNSWBackend(FaissBackend):
    """``hnsw``: ``IndexHNSWFlat`` with inner product; exact scans read its flat storage."""

    kind = "hnsw"

    def create(self, index, matrix, source):
        """An empty ``IndexHNSWFlat`` with the facade's graph degree and candidate-list sizes."""
        native = faiss.IndexHNSWFlat(matrix.shape[1], index.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        native.hnsw.efConstruction = index.ef_construction
        native.hnsw.efSearch = index.ef_search
        return native

    def search_params(self, index, k, selector=None):
        """HNSW search parameters: a candidate list of at least ``2 * k``."""
        params = faiss.SearchParametersHNSW(efSearch=max(index.ef_search, 2 * k))
        if selector is not None:
            params.sel = selector
        return params

    def exhaustive(self, index, queries, k, selector=None):
        """Exact search over the graph's flat storage (the selected rows only when ``selector``)."""
        params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return faiss.downcast_index(index.index_.storage).search(queries, k, params=params)


class IVFBackend(FaissBackend):
    """``ivf``: ``IndexIVFFlat`` over k-means cells; an exact scan visits every cell."""

    kind = "ivf"

    def create(self, index, matrix, source):
        """An ``IndexIVFFlat`` trained on a seeded sample of ``matrix`` (about 64 rows a cell)."""
        n_items, dim = matrix.shape
        nlist = nlist_of(index, n_items)
        native = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        native.cp.seed = index.seed
        native.train(training_sample(index, matrix, 64 * nlist))  # ~40 points a cell keep k-means stable
        native.nprobe = min(index.nprobe, nlist)
        return native

    def search_params(self, index, k, selector=None):
        """IVF search parameters: the index's ``nprobe`` cells."""
        params = faiss.SearchParametersIVF(nprobe=index.index_.nprobe)
        if selector is not None:
            params.sel = selector
        return params

    def exhaustive(self, index, queries, k, selector=None):
        """Exact search: every cell visited (the selected rows only when ``selector``)."""
        params = faiss.SearchParametersIVF(nprobe=index.index_.nlist)  # visiting every cell is a full scan
        if selector is not None:
            params.sel = selector
        return index.index_.search(queries, k, params=params)
