"""A Milvus collection as the storage of :class:`recsys.index.VectorIndex` (``backend="milvus"``): the ``milvus``
backend, and the choice between it and the in-process FAISS kinds (:func:`resolve_backend`).

For catalogs that live on a cluster: the vectors sit in Milvus (https://milvus.io, through ``pymilvus``), the
studio keeps only labels. A local file URI (``.../index.milvus.db``) runs the embedded Milvus Lite, which
is what the tests use; an ``http://host:19530`` URI talks to a Milvus server or cluster. Each row stores
its catalog position as the primary key, its vector, and its category as a small integer code, so a
category filter is a scalar-field expression (``cat in [2, 5]``) evaluated inside the database.

``pymilvus`` (and ``milvus-lite`` for local files) are optional extras, in ``requirements-scale.txt``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

import numpy as np

from recsys.config import get_settings
from recsys.utils import read_json

logger = logging.getLogger(__name__)

_BACKENDS = ("faiss", "milvus")
_CLIENTS: dict[str, object] = {}
_LOCK = threading.Lock()
#: Rows per insert call: pymilvus serializes each batch in one gRPC message (64 MB limit by default).
INSERT_BATCH_BYTES = 16 * 2**20


def _is_local(uri: str) -> bool:
    return "://" not in uri


class _UnimplementedProbe(logging.Filter):
    """Milvus Lite serves the Milvus API from a gRPC server in this process, and pymilvus probes a call it does not
    implement (``AllocTimestamp``, while waiting for an index) and goes on without it; gRPC logs that as an ERROR
    with a traceback although nothing failed. This filter moves exactly that record to debug level; every other
    gRPC error stays as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, NotImplementedError) and str(error) == "Method not implemented!":
            logger.debug("Milvus Lite does not implement a call pymilvus probed; it went on without it",
                         exc_info=record.exc_info)
            return False
        return True


_PROBE_FILTER = _UnimplementedProbe()


def _setting_uri() -> str:
    settings = get_settings()
    return settings.milvus_uri or str(settings.artifacts_dir / "index.milvus.db")


def _client(uri: str | None):
    """One ``MilvusClient`` per URI and process: Milvus Lite starts a server process per database file."""
    uri = _setting_uri() if uri is None else uri
    uri = str(Path(uri).expanduser().resolve()) if _is_local(str(uri)) else str(uri)
    with _LOCK:
        if uri not in _CLIENTS:
            try:
                from pymilvus import MilvusClient
            except ImportError:
                raise ValueError("The milvus index backend needs the scale extras: "
                                 "pip install -r requirements-scale.txt.") from None
            if _is_local(uri):
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
                logging.getLogger("grpc._server").addFilter(_PROBE_FILTER)  # once: a filter is kept in a set
            _CLIENTS[uri] = MilvusClient(uri)
        return uri, _CLIENTS[uri]


class MilvusCollection:
    """One catalog's vectors in a Milvus collection: build, open, filtered inner-product search.

    Use :meth:`create` or :meth:`open`, not the constructor. ``ntotal`` and ``d`` mirror a FAISS index's,
    so :class:`recsys.index.VectorIndex` checks a loaded collection against its sidecar the same way.
    """

    def __init__(self, uri: str, name: str, client, ntotal: int, d: int):
        self.uri, self.name, self.client, self.ntotal, self.d = uri, name, client, ntotal, d

    @classmethod
    def create(
        cls,
        uri: str | None,
        vectors: np.ndarray,
        category_codes: np.ndarray | None = None,
        name: str | None = None,
        index_type: str | None = None,
    ) -> "MilvusCollection":
        """A collection over ``vectors`` ``(n, dim)`` float32 and their ``category_codes`` ``(n,)``.

        ``name``: default ``recsys_<digest>`` of the vectors and codes, so the same catalog maps to the same
        collection: one that already exists with ``n`` rows is reused as it is (an app restart inserts nothing),
        any other of that name is replaced. ``index_type``: Milvus index of the vector field; default ``FLAT``
        (exact) in Milvus Lite and ``AUTOINDEX`` (the server's choice of approximate index) on a server.
        """
        from pymilvus import DataType, MilvusClient

        uri, client = _client(uri)
        n_items, dim = vectors.shape
        codes = np.zeros(n_items, np.int32) if category_codes is None else np.asarray(category_codes, np.int32)
        if name is None:
            digest = hashlib.blake2b(codes.tobytes(), digest_size=8)
            for start in range(0, n_items, 65_536):  # in chunks: the vectors may be a memory map
                digest.update(np.ascontiguousarray(vectors[start:start + 65_536]).tobytes())
            name = f"recsys_{digest.hexdigest()}"
            if client.has_collection(name) and int(client.get_collection_stats(name)["row_count"]) == n_items:
                client.load_collection(name)
                logger.info("milvus collection %s at %s already holds these %d vectors", name, uri, n_items)
                return cls(uri, name, client, n_items, dim)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pos", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("cat", DataType.INT32)
        index_params = client.prepare_index_params()
        index_params.add_index(field_name="vec", metric_type="IP",
                               index_type=index_type or ("FLAT" if _is_local(uri) else "AUTOINDEX"))
        if client.has_collection(name):
            client.drop_collection(name)
        # Strong consistency: a search right after building must see every row (tests, first page view).
        client.create_collection(name, schema=schema, index_params=index_params, consistency_level="Strong")
        batch = max(1, INSERT_BATCH_BYTES // (4 * dim))
        for start in range(0, n_items, batch):
            stop = min(start + batch, n_items)
            client.insert(name, [{"pos": pos, "vec": vectors[pos], "cat": int(codes[pos])} for pos in range(start, stop)])
        client.load_collection(name)
        logger.info("milvus collection %s at %s: %d x %d", name, uri, n_items, dim)
        return cls(uri, name, client, n_items, dim)

    @classmethod
    def open(cls, uri: str, name: str, n_items: int, dim: int) -> "MilvusCollection":
        """Reopen a collection described by :meth:`describe`.

        Raises
        ------
        ValueError
            When the collection does not exist at ``uri``.
        """
        uri, client = _client(uri)
        if not client.has_collection(name):
            raise ValueError(f"Milvus at {uri} has no collection {name!r}")
        client.load_collection(name)
        count = int(client.get_collection_stats(name)["row_count"])
        return cls(uri, name, client, count if count else n_items, dim)

    def describe(self) -> dict:
        """JSON-ready ``uri``, ``name``, ``n_items``, ``dim``: what :meth:`open` needs."""
        return {"uri": self.uri, "name": self.name, "n_items": self.ntotal, "dim": self.d}

    def search(self, queries: np.ndarray, k: int, expression: str = "") -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` by inner product of each query ``(q, dim)`` among the rows matching ``expression``.

        Returns ``(q, k)`` float32 scores and int64 positions, best first; a row the database could not fill
        (an approximate server index missing allowed rows) is padded with ``-inf`` and ``-1``.
        """
        hits = self.client.search(self.name, data=[np.asarray(q, np.float32) for q in queries], limit=k,
                                  filter=expression, anns_field="vec", output_fields=["pos"],
                                  search_params={"metric_type": "IP"})
        scores = np.full((len(queries), k), -np.inf, np.float32)
        positions = np.full((len(queries), k), -1, np.int64)
        for row, found in enumerate(hits):
            found = sorted(found, key=lambda hit: (-hit["distance"], hit["pos"]))[:k]
            scores[row, :len(found)] = [hit["distance"] for hit in found]
            positions[row, :len(found)] = [hit["pos"] for hit in found]
        if (positions < 0).any():
            logger.warning("milvus returned fewer than %d rows for %d queries", k, int((positions < 0).any(axis=1).sum()))
        return scores, positions

    def drop(self) -> None:
        """Delete the collection from the database."""
        self.client.drop_collection(self.name)


def resolve_backend(index) -> str:
    """The backend ``index`` builds with: its ``backend``, else the ``RECSYS_INDEX_BACKEND`` setting; a setting that
    names no backend falls back to ``faiss`` with ``index.backend_note_`` saying so (a typo in an environment
    variable must not take the pages down), a ``backend`` argument that names none is refused.

    Raises
    ------
    ValueError
        For a ``backend`` argument that names no backend.
    """
    index.backend_note_ = None
    backend = index.backend
    if backend is None:
        backend = get_settings().index_backend
        if backend not in _BACKENDS:
            fall_back(index, f"RECSYS_INDEX_BACKEND={backend!r} names no index backend ({' or '.join(_BACKENDS)})")
            return "faiss"
    if backend not in _BACKENDS:
        raise ValueError(f"Unknown index backend {backend!r}; use one of {', '.join(_BACKENDS)}.")
    return backend


def fall_back(index, problem: str) -> None:
    """Record on ``index.backend_note_`` (and log) why the in-process index serves instead of the database."""
    index.backend_note_ = f"{problem}; the studio searches with its in-process index instead."
    logger.warning("%s", index.backend_note_)


class MilvusBackend:
    """``milvus``: the vectors in a Milvus collection, filters as boolean expressions the database evaluates."""

    kind = "milvus"

    def build(self, index, matrix: np.ndarray, source):
        """A Milvus collection over ``matrix``; None (with ``index.backend_note_`` set) when the database cannot be
        used, so the facade builds the in-process index instead."""
        try:
            collection = MilvusCollection.create(index.milvus_uri, matrix, index.category_codes_,
                                                 name=index.milvus_collection)
        except Exception as exc:  # pymilvus and Milvus Lite raise many types for a database that cannot be used
            logger.debug("milvus at %s unusable", index.milvus_uri, exc_info=True)
            setting = "milvus_uri" if index.milvus_uri is not None else "RECSYS_MILVUS_URI"
            uri = index.milvus_uri if index.milvus_uri is not None else _setting_uri()
            reason = str(getattr(exc, "message", "") or exc).splitlines()[0][:200] or type(exc).__name__
            fall_back(index, f"The Milvus database at {setting}={uri} could not be used ({reason})")
            return None
        logger.info("built a milvus collection %s over %d x %d vectors", collection.name, *matrix.shape)
        return collection

    def search(self, index, queries, k, mask, n_allowed, filters):
        """Top ``k`` of the rows the filters allow, the filters evaluated by the database."""
        return index.index_.search(queries, k, self.expression(index, *filters))

    def expression(self, index, categories, allowed, exclude) -> str:
        """A Milvus boolean expression for the filters of :meth:`recsys.index.VectorIndex.allowed_mask`.

        Categories become a scalar-field filter on their small integer codes, evaluated by the database;
        row filters (``allowed``, ``exclude``) a primary-key list, whichever of "in" and "not in" is shorter.
        """
        parts = []
        if categories is not None:
            wanted = [categories] if isinstance(categories, str) else list(categories)
            parts.append(f"cat in {sorted(set(np.searchsorted(index.category_names_, wanted).tolist()))}")
        rows = index.allowed_mask(None, allowed, exclude)
        if rows is not None:
            n_rows = int(rows.sum())
            parts.append(f"pos in {np.flatnonzero(rows).tolist()}" if n_rows <= index.n_items_ - n_rows
                         else f"pos not in {np.flatnonzero(~rows).tolist()}")
        return " and ".join(parts)

    def write(self, index, path) -> None:
        """Write what reopens the collection (URI, name, size) as JSON to ``path``; the vectors stay in
        the database."""
        Path(path).write_text(json.dumps(index.index_.describe()), encoding="utf-8")

    def read(self, path, mmap: bool):
        """The collection the JSON at ``path`` describes.

        Raises
        ------
        ValueError
            When the database has no such collection.
        """
        return MilvusCollection.open(**read_json(path))
