"""The facade :class:`VectorIndex`: one vector index for every page, inner-product search with category filtering,
over one backend object per kind (:mod:`recsys.index.faiss_kinds`, :mod:`recsys.index.ivfpq`,
:mod:`recsys.index.milvus`, behind the protocol of :mod:`recsys.index.base`).

Vectors are expected L2-normalized (as every encoder and artifact in the studio is), so inner product is
cosine similarity. Small catalogs get an exact index; large ones an approximate one, chosen by size: IVF
(inverted lists over k-means cells) by default, because on two cores it builds several times faster than
HNSW at the same recall on clustered embeddings (``recsys.benchmarks.encode_index`` measures both); HNSW
on request. Filters (categories, a mask, excluded items) go to FAISS as an ``IDSelector``;
when an approximate search cannot fill ``k`` results from a selective filter, those queries are answered
exactly over the allowed items instead, so a category with at least ``k`` items always yields ``k`` results.

Past memory, behind the same interface: ``ivfpq``, product-quantized codes re-ranked by exact vectors
(:mod:`recsys.index.ivfpq`), picked by ``auto`` past ``compress_threshold_bytes``; and ``backend="milvus"``, a
Milvus collection (:mod:`recsys.index.milvus`).
``recsys.benchmarks.index_scale`` measures them all at 1M x 1280 and 10M x 256.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from recsys.index.base import IndexBackend, as_matrix
from recsys.index.faiss_kinds import ExactBackend, HNSWBackend, IVFBackend
from recsys.index.ivfpq import COMPRESS_THRESHOLD_BYTES, IVFPQBackend, load_vectors, save_vectors, vectors_path
from recsys.index.milvus import MilvusBackend, resolve_backend
from recsys.utils import file_damage, read_json

logger = logging.getLogger(__name__)

KINDS = ("auto", "exact", "hnsw", "ivf", "ivfpq")
SIDECAR_VERSION = 1


#: One backend object per kind the sidecar can name.
BACKENDS: dict[str, IndexBackend] = {"exact": ExactBackend(), "hnsw": HNSWBackend(), "ivf": IVFBackend(),
                                     "ivfpq": IVFPQBackend(), "milvus": MilvusBackend()}


class VectorIndex:
    """Inner-product nearest-neighbour search over item vectors, filterable by category.

    Parameters
    ----------
    kind : {"auto", "exact", "hnsw", "ivf", "ivfpq"}
        ``exact`` is ``IndexFlatIP``; ``hnsw`` is ``IndexHNSWFlat`` (inner product); ``ivf`` is
        ``IndexIVFFlat``; ``ivfpq`` is ``IndexIVFPQ`` (behind ``OPQ`` when ``opq``). ``auto`` picks ``exact``
        below ``exact_threshold`` items, ``ivfpq`` from ``compress_threshold_bytes`` of float32 vectors and
        ``ivf`` between. Ignored by the ``milvus`` backend, which indexes as the database is configured.
    exact_threshold : int
        Catalog size from which ``auto`` switches to an approximate index.
    compress_threshold_bytes : int
        Size ``4 * n * dim`` from which ``auto`` builds ``ivfpq`` (default :data:`COMPRESS_THRESHOLD_BYTES`).
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
    pq_m : int, optional
        ``ivfpq`` sub-quantizers (bytes per vector at 8 bits); default ``dim / 4`` (4 dimensions a byte),
        lowered to a divisor of ``dim``.
    pq_bits : int
        Bits per code (8: 256 centroids); fewer when under ``39 * 2**pq_bits`` vectors train them.
    opq : bool
        Rotate the vectors with a learned OPQ matrix before quantizing (better codes, slower training).
    rerank : int
        ``ivfpq`` short-list size re-scored exactly when the vectors are available (0: quantized scores).
        1024: on 50k x 256 clustered vectors the codes alone reach recall@10 0.73, 256 candidates 1.0, and
        4096 cost 10x the latency of 1024 for nothing (``recsys.benchmarks.index_scale`` sweeps it at 10M).
    backend : {"faiss", "milvus"}, optional
        Where the vectors are indexed; default the ``RECSYS_INDEX_BACKEND`` setting (``faiss``).
    milvus_uri : str, optional
        Milvus Lite database file or server URI; default the ``RECSYS_MILVUS_URI`` setting.
    milvus_collection : str, optional
        Collection name; default ``recsys_<digest of the vectors and categories>``, so rebuilding the same
        catalog (every app start) reuses the collection instead of inserting it again.

    Attributes
    ----------
    kind_ : str
        The kind actually built (a faiss kind when a misconfigured Milvus fell back: ``backend_note_``, str or None).
    backend_ : recsys.index.base.IndexBackend
        The backend object of ``kind_`` that builds, searches, writes and reads ``index_``.
    index_ : faiss.Index or recsys.index.milvus.MilvusCollection
    n_items_, dim_ : int
    category_names_ : numpy.ndarray of str or None
        The distinct categories, sorted.
    category_codes_ : numpy.ndarray of int32 or None
        Each row's category as a position in ``category_names_`` (filters compare these small integers).
    categories_ : numpy.ndarray of str or None
        The category of each row (a property decoded from the two above).
    ids_ : numpy.ndarray of str or None
        Optional item ids of the rows.
    vectors_ : numpy.ndarray or numpy.memmap or None
        ``ivfpq``: the exact vectors for re-ranking (the array given to :meth:`fit`, not a copy, or the ``.npy``
        memory-mapped on :meth:`load`); None for the other kinds.

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
        compress_threshold_bytes: int = COMPRESS_THRESHOLD_BYTES,
        pq_m: int | None = None,
        pq_bits: int = 8,
        opq: bool = False,
        rerank: int = 1024,
        backend: str | None = None,
        milvus_uri: str | None = None,
        milvus_collection: str | None = None,
    ):
        self.kind = kind
        self.exact_threshold = exact_threshold
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.nlist = nlist
        self.nprobe = nprobe
        self.seed = seed
        self.compress_threshold_bytes = compress_threshold_bytes
        self.pq_m = pq_m
        self.pq_bits = pq_bits
        self.opq = opq
        self.rerank = rerank
        self.backend = backend
        self.milvus_uri = milvus_uri
        self.milvus_collection = milvus_collection

    # ------------------------------------------------------------------ building
    def _params(self) -> dict:
        # Read back from the signature, as scikit-learn's get_params does: no hand-kept list to forget.
        return {name: getattr(self, name) for name in inspect.signature(type(self).__init__).parameters if name != "self"}

    def _resolve_kind(self, n_items: int, dim: int = 1) -> str:
        if self.kind not in KINDS:
            raise ValueError(f"Unknown index kind {self.kind!r}; use one of {', '.join(KINDS)}.")
        if self.kind == "auto":
            if n_items < self.exact_threshold:
                return "exact"
            return "ivfpq" if 4 * n_items * dim >= self.compress_threshold_bytes else "ivf"
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
        matrix = as_matrix(vectors)
        n_items, dim = matrix.shape
        if n_items == 0:
            raise ValueError("Cannot build an index over zero vectors.")
        for name, labels in (("categories", categories), ("ids", ids)):
            if labels is not None and len(labels) != n_items:
                raise ValueError(f"{name} has {len(labels)} entries but there are {n_items} vectors.")
        kind = self._resolve_kind(n_items, dim)
        self.vectors_ = None
        self._set_categories(None if categories is None else np.asarray(categories, dtype=str))
        native = None
        if resolve_backend(self) == "milvus":
            native = BACKENDS["milvus"].build(self, matrix, vectors)
            kind = "milvus" if native is not None else kind  # else backend_note_ says why, and faiss serves
        if native is None:
            native = BACKENDS[kind].build(self, matrix, vectors)
        self.backend_, self.index_, self.kind_ = BACKENDS[kind], native, kind
        self.n_items_ = n_items
        self.dim_ = dim
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
        matrix = as_matrix(queries, self.dim_, "queries")
        mask = self.allowed_mask(categories, allowed, exclude)
        n_allowed = self.n_items_ if mask is None else int(mask.sum())
        k_eff = min(k, n_allowed)
        if k_eff == 0:
            return np.zeros((len(matrix), 0), np.float32), np.zeros((len(matrix), 0), np.int64)
        return self.backend_.search(self, matrix, k_eff, mask, n_allowed, (categories, allowed, exclude))

    # ------------------------------------------------------------------ persistence
    @staticmethod
    def sidecar_path(path: str | os.PathLike) -> Path:
        """The sidecar of the index file ``path``: ``<path>.json`` (labels and parameters)."""
        path = Path(path)
        return path.with_name(path.name + ".json")

    @staticmethod
    def vectors_path(path: str | os.PathLike) -> Path:
        """Where :meth:`save` writes an ``ivfpq`` index's exact vectors: ``<path>.vectors.npy``."""
        return vectors_path(path)

    def save(self, path: str | os.PathLike) -> None:
        """Write the FAISS index to ``path`` and its labels and parameters to ``<path>.json``.

        ``ivfpq`` re-ranking vectors: a memory-mapped ``.npy`` is referred to by its absolute path (the catalog's
        own vectors are not copied); vectors in RAM are written to :meth:`vectors_path`. ``milvus``: ``path``
        holds the URI and collection (the vectors stay in the database).
        """
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.backend_.write(self, tmp)
        os.replace(tmp, path)
        sidecar = {
            "version": SIDECAR_VERSION,
            "params": self._params(),
            "kind": self.kind_,
            "n_items": self.n_items_,
            "dim": self.dim_,
            "categories": None,
            "ids": None if self.ids_ is None else self.ids_.tolist(),
            "vectors": save_vectors(self, path),
        }
        if self.category_codes_ is not None:
            sidecar["categories"] = {"names": self.category_names_.tolist(), "codes": self.category_codes_.tolist()}
        sidecar_path = self.sidecar_path(path)
        tmp = sidecar_path.with_name(f".{sidecar_path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(sidecar), encoding="utf-8")
        os.replace(tmp, sidecar_path)

    @classmethod
    def load(cls, path: str | os.PathLike, mmap: bool = False) -> "VectorIndex":
        """Read an index written by :meth:`save`; ``mmap``: memory-map the index file instead of reading it.

        With ``mmap`` (``faiss.IO_FLAG_MMAP``) an IVF index's inverted lists stay on disk and the OS pages in the
        cells a query visits. An ``ivfpq`` index's exact vectors are always memory-mapped.

        Raises
        ------
        ValueError
            In one sentence, when the index file, its sidecar or its vectors are missing, cannot be read, or
            they do not match.
        """
        path = Path(path)
        sidecar_path = cls.sidecar_path(path)
        if not path.is_file() or not sidecar_path.is_file():
            raise ValueError(f"The index {path} or its sidecar {sidecar_path.name} is missing; build and save the index again.")
        try:  # read_json: a sidecar or milvus file that is empty, a git-lfs pointer or not a JSON object says so
            sidecar = read_json(sidecar_path)
            # An unknown kind is read as a FAISS file, then refused below as not matching.
            index = BACKENDS.get(sidecar.get("kind"), BACKENDS["exact"]).read(path, mmap)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise ValueError(f"The index {path} cannot be read ({file_damage(path) or exc}); build and save it again.") from None
        if sidecar.get("version") != SIDECAR_VERSION or index.ntotal != sidecar.get("n_items") or index.d != sidecar.get(
                "dim") or not isinstance(sidecar.get("params"), dict) or sidecar.get("kind") not in KINDS + ("milvus",):
            raise ValueError(f"The index {path} does not match its sidecar {sidecar_path.name}; build and save it again.")
        self = cls(**sidecar["params"])
        self.index_ = index
        self.kind_ = sidecar["kind"]
        self.backend_ = BACKENDS[self.kind_]
        self.n_items_ = int(index.ntotal)
        self.dim_ = int(index.d)
        load_vectors(self, path, sidecar.get("vectors"))
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
