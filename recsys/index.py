"""One vector index for every page: FAISS inner-product search with category filtering.

Vectors are expected L2-normalized (as every encoder and artifact in the studio is), so inner product is
cosine similarity. Small catalogs get an exact index; large ones an approximate one, chosen by size: IVF
(inverted lists over k-means cells) by default, because on two cores it builds several times faster than
HNSW at the same recall on clustered embeddings (``recsys.benchmarks.encode_index`` measures both); HNSW
on request. Filters (categories, a mask, excluded items) go to FAISS as an ``IDSelector``;
when an approximate search cannot fill ``k`` results from a selective filter, those queries are answered
exactly over the allowed items instead, so a category with at least ``k`` items always yields ``k`` results.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import faiss
import numpy as np

logger = logging.getLogger(__name__)

KINDS = ("auto", "exact", "hnsw", "ivf")
SIDECAR_VERSION = 1


def _as_matrix(vectors: np.ndarray, dim: int | None = None, name: str = "vectors") -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, dim), got shape {matrix.shape}.")
    if dim is not None and matrix.shape[1] != dim:
        raise ValueError(f"{name} have {matrix.shape[1]} dimensions but the index holds {dim}-dimensional vectors.")
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():  # FAISS would answer a NaN query with id -1 and rank a NaN row anywhere
        rows = np.flatnonzero(~finite)
        raise ValueError(f"{name} hold NaN or infinite values (row {rows[0]}"
                         f"{f' and {len(rows) - 1} more' if len(rows) > 1 else ''}); they cannot be compared.")
    return np.ascontiguousarray(matrix)


class VectorIndex:
    """Inner-product nearest-neighbour search over item vectors, filterable by category.

    Parameters
    ----------
    kind : {"auto", "exact", "hnsw", "ivf"}
        ``exact`` is ``IndexFlatIP``; ``hnsw`` is ``IndexHNSWFlat`` (inner product); ``ivf`` is
        ``IndexIVFFlat``. ``auto`` picks ``exact`` below ``exact_threshold`` items and ``ivf`` above.
    exact_threshold : int
        Catalog size from which ``auto`` switches to an approximate index.
    hnsw_m : int
        HNSW graph degree (more: better recall, more memory, slower build).
    ef_construction, ef_search : int
        HNSW candidate-list sizes when building and searching (search uses at least ``2 * k``).
    nlist : int, optional
        IVF cells; default ``2 * sqrt(n)`` (trained on at most ``64 * nlist`` vectors).
    nprobe : int
        IVF cells visited per query.
    seed : int
        Seeds IVF training (k-means) and its training sample.

    Attributes
    ----------
    kind_ : str
        The kind actually built.
    index_ : faiss.Index
    n_items_, dim_ : int
    category_names_ : numpy.ndarray of str or None
        The distinct categories, sorted.
    category_codes_ : numpy.ndarray of int32 or None
        Each row's category as a position in ``category_names_`` (filters compare these small integers).
    categories_ : numpy.ndarray of str or None
        The category of each row (a property decoded from the two above).
    ids_ : numpy.ndarray of str or None
        Optional item ids of the rows.

    Examples
    --------
    >>> index = VectorIndex().fit(vectors, categories=items["category"])   # doctest: +SKIP
    >>> scores, positions = index.search(query, k=10, categories="tshirt")  # doctest: +SKIP
    """

    def __init__(
        self,
        kind: str = "auto",
        exact_threshold: int = 50_000,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 32,
        seed: int = 0,
    ):
        self.kind = kind
        self.exact_threshold = exact_threshold
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.nlist = nlist
        self.nprobe = nprobe
        self.seed = seed

    # ------------------------------------------------------------------ building
    def _params(self) -> dict:
        return {
            "kind": self.kind,
            "exact_threshold": self.exact_threshold,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "seed": self.seed,
        }

    def _resolve_kind(self, n_items: int) -> str:
        if self.kind not in KINDS:
            raise ValueError(f"Unknown index kind {self.kind!r}; use one of {', '.join(KINDS)}.")
        if self.kind == "auto":
            return "exact" if n_items < self.exact_threshold else "ivf"
        return self.kind

    def fit(
        self,
        vectors: np.ndarray,
        categories: Sequence[str] | np.ndarray | None = None,
        ids: Sequence[str] | np.ndarray | None = None,
    ) -> "VectorIndex":
        """Build the index over ``vectors`` (n, dim); ``categories`` and ``ids`` are per-row labels.

        Returns
        -------
        VectorIndex
            ``self``, built.

        Raises
        ------
        ValueError
            When ``vectors`` is empty or not 2-D (a 1-D vector counts as one row), a label sequence's length is not
            ``n``, or :attr:`kind` is unknown.
        """
        matrix = _as_matrix(vectors)
        n_items, dim = matrix.shape
        if n_items == 0:
            raise ValueError("Cannot build an index over zero vectors.")
        for name, labels in (("categories", categories), ("ids", ids)):
            if labels is not None and len(labels) != n_items:
                raise ValueError(f"{name} has {len(labels)} entries but there are {n_items} vectors.")
        kind = self._resolve_kind(n_items)
        if kind == "exact":
            index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        else:
            # k-means wants >= 39 training points per cell; fewer cells than that would only warn and drift.
            nlist = self.nlist or max(1, min(int(2 * math.sqrt(n_items)), n_items // 39))
            nlist = min(nlist, n_items)
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = self.seed
            # k-means needs ~40 points per cell to be stable; more mostly costs training time.
            sample_size = min(n_items, 64 * nlist)
            rng = np.random.default_rng(self.seed)
            sample = matrix if sample_size == n_items else matrix[np.sort(rng.choice(n_items, sample_size, replace=False))]
            index.train(sample)
            index.nprobe = min(self.nprobe, nlist)
        index.add(matrix)
        self.index_ = index
        self.kind_ = kind
        self.n_items_ = n_items
        self.dim_ = dim
        self._set_categories(None if categories is None else np.asarray(categories, dtype=str))
        self.ids_ = None if ids is None else np.asarray(ids, dtype=str)
        logger.info("built a %s index over %d x %d vectors", kind, n_items, dim)
        return self

    def _set_categories(self, categories: np.ndarray | None) -> None:
        self._category_masks: dict[tuple[int, ...], np.ndarray] = {}
        if categories is None:
            self.category_names_ = self.category_codes_ = None
        else:
            names, codes = np.unique(categories, return_inverse=True)
            self.category_names_, self.category_codes_ = names, codes.astype(np.int32)

    @property
    def categories_(self) -> np.ndarray | None:
        """The category of each row, ``(n_items,)`` str, or None when the index was built without categories."""
        if getattr(self, "category_codes_", None) is None:
            return None
        return self.category_names_[self.category_codes_]

    def _category_mask(self, categories: str | Iterable[str]) -> np.ndarray:
        """Read-only mask of the rows in ``categories``, cached: pages filter by the same few categories."""
        if self.category_codes_ is None:
            raise ValueError("This index was built without categories, so it cannot filter by category.")
        wanted = [categories] if isinstance(categories, str) else list(categories)
        positions = np.searchsorted(self.category_names_, wanted)
        unknown = [w for w, p in zip(wanted, positions) if p >= len(self.category_names_) or self.category_names_[p] != w]
        if unknown:
            raise KeyError(f"Unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}.")
        key = tuple(sorted(set(int(p) for p in positions)))
        mask = self._category_masks.get(key)
        if mask is None:
            mask = np.isin(self.category_codes_, key)
            mask.flags.writeable = False
            if len(self._category_masks) >= 64:
                self._category_masks.clear()
            self._category_masks[key] = mask
        return mask

    def _check_fitted(self) -> None:
        if not hasattr(self, "index_"):
            raise RuntimeError("This VectorIndex is not built yet; call fit(vectors) or VectorIndex.load(path) first.")

    # ------------------------------------------------------------------ filtering
    def allowed_mask(
        self,
        categories: str | Iterable[str] | None = None,
        allowed: np.ndarray | Sequence[int] | None = None,
        exclude: Iterable[int] | None = None,
    ) -> np.ndarray | None:
        """Boolean mask ``(n_items,)`` of the rows a search may return, or None when nothing is filtered.

        ``categories``: one name or several; ``allowed``: a boolean mask of length n or row positions;
        ``exclude``: row positions to leave out (e.g. the query item itself). Filters combine with AND.

        Raises
        ------
        RuntimeError
            When the index is not built yet.
        ValueError
            When a boolean ``allowed`` mask is not of shape ``(n_items,)``, or categories are asked of an index
            built without them.
        KeyError
            Naming a category the index does not hold.
        IndexError
            When a row position in ``allowed`` or ``exclude`` is out of range.
        """
        self._check_fitted()
        if categories is None and allowed is None and exclude is None:
            return None
        mask = np.ones(self.n_items_, dtype=bool)
        if categories is not None:
            mask &= self._category_mask(categories)
        if allowed is not None:
            allowed = np.asarray(allowed)
            if allowed.dtype == bool:
                if allowed.shape != (self.n_items_,):
                    raise ValueError(f"The allowed mask has shape {allowed.shape}, not ({self.n_items_},).")
                mask &= allowed
            else:
                keep = np.zeros(self.n_items_, dtype=bool)
                keep[allowed.astype(np.int64)] = True
                mask &= keep
        if exclude is not None:
            mask[np.fromiter(exclude, dtype=np.int64)] = False
        return mask

    # ------------------------------------------------------------------ searching
    def search(
        self,
        queries: np.ndarray,
        k: int = 10,
        categories: str | Iterable[str] | None = None,
        allowed: np.ndarray | Sequence[int] | None = None,
        exclude: Iterable[int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows with the largest inner product with each query, optionally filtered.

        Parameters
        ----------
        queries : numpy.ndarray
            ``(dim,)`` or ``(q, dim)``, L2-normalized like the indexed vectors.
        k : int
        categories, allowed, exclude
            Filters, see :meth:`allowed_mask`.

        Returns
        -------
        scores : numpy.ndarray
            ``(q, k')`` float32, best first, where ``k' = min(k, number of allowed rows)``.
        positions : numpy.ndarray
            ``(q, k')`` int64 row positions (rows of the catalog's items table).

        Raises
        ------
        RuntimeError
            When the index is not built yet.
        ValueError
            When ``k < 1``, ``queries`` is not ``(dim,)`` or ``(q, dim)``, or a filter is malformed (see
            :meth:`allowed_mask`, which also names its ``KeyError`` and ``IndexError``).
        """
        self._check_fitted()
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        matrix = _as_matrix(queries, self.dim_, "queries")
        mask = self.allowed_mask(categories, allowed, exclude)
        n_allowed = self.n_items_ if mask is None else int(mask.sum())
        k_eff = min(k, n_allowed)
        if k_eff == 0:
            return np.zeros((len(matrix), 0), np.float32), np.zeros((len(matrix), 0), np.int64)
        if mask is None or mask.all():
            scores, positions = self.index_.search(matrix, k_eff, params=self._search_params(k_eff))
            if self.kind_ != "exact":
                scores, positions = self._fill_short_rows(matrix, k_eff, scores, positions, None)
            return scores, positions

        bitmap = np.packbits(mask, bitorder="little")  # must outlive the search: FAISS keeps a raw pointer
        selector = faiss.IDSelectorBitmap(self.n_items_, faiss.swig_ptr(bitmap))
        if self.kind_ == "exact" or n_allowed <= max(50 * k_eff, self.n_items_ // 50):
            # Few allowed rows: scanning just them is exact and cheaper than a graph walk that rarely meets them.
            return self._exhaustive(matrix, k_eff, selector)
        scores, positions = self.index_.search(matrix, k_eff, params=self._search_params(k_eff, selector))
        return self._fill_short_rows(matrix, k_eff, scores, positions, selector)

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

    # ------------------------------------------------------------------ persistence
    @staticmethod
    def sidecar_path(path: str | os.PathLike) -> Path:
        """The sidecar of the index file ``path``: ``<path>.json`` (labels and parameters)."""
        path = Path(path)
        return path.with_name(path.name + ".json")

    def save(self, path: str | os.PathLike) -> None:
        """Write the FAISS index to ``path`` and its labels and parameters to ``<path>.json``."""
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        faiss.write_index(self.index_, str(tmp))
        os.replace(tmp, path)
        sidecar = {
            "version": SIDECAR_VERSION,
            "params": self._params(),
            "kind": self.kind_,
            "n_items": self.n_items_,
            "dim": self.dim_,
            "categories": None,
            "ids": None if self.ids_ is None else self.ids_.tolist(),
        }
        if self.category_codes_ is not None:
            sidecar["categories"] = {"names": self.category_names_.tolist(), "codes": self.category_codes_.tolist()}
        sidecar_path = self.sidecar_path(path)
        tmp = sidecar_path.with_name(f".{sidecar_path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(sidecar), encoding="utf-8")
        os.replace(tmp, sidecar_path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "VectorIndex":
        """Read an index written by :meth:`save`.

        Raises
        ------
        ValueError
            In one sentence, when the index file or its sidecar is missing, cannot be read, or they do not match.
        """
        path = Path(path)
        sidecar_path = cls.sidecar_path(path)
        if not path.is_file() or not sidecar_path.is_file():
            raise ValueError(f"The index {path} or its sidecar {sidecar_path.name} is missing; build and save the index again.")
        try:
            sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
            index = faiss.read_index(str(path))
        except (OSError, ValueError, RuntimeError) as exc:
            raise ValueError(f"The index {path} cannot be read ({exc}); build and save it again.") from None
        if sidecar.get("version") != SIDECAR_VERSION or index.ntotal != sidecar.get("n_items") or index.d != sidecar.get("dim"):
            raise ValueError(f"The index {path} does not match its sidecar {sidecar_path.name}; build and save it again.")
        self = cls(**sidecar["params"])
        self.index_ = index
        self.kind_ = sidecar["kind"]
        self.n_items_ = int(index.ntotal)
        self.dim_ = int(index.d)
        categories = sidecar.get("categories")
        self._category_masks = {}
        if categories is None:
            self.category_names_ = self.category_codes_ = None
        else:
            self.category_names_ = np.asarray(categories["names"], dtype=str)
            self.category_codes_ = np.asarray(categories["codes"], dtype=np.int32)
        self.ids_ = None if sidecar.get("ids") is None else np.asarray(sidecar["ids"], dtype=str)
        return self

    def __repr__(self) -> str:
        built = f", built {self.kind_} over {self.n_items_} x {self.dim_}" if hasattr(self, "index_") else ""
        return f"VectorIndex(kind={self.kind!r}{built})"
