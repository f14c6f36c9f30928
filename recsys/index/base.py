"""What every index backend of :class:`recsys.index.VectorIndex` implements (:class:`IndexBackend`), and the input
check they share (:func:`as_matrix`).

A backend is one object per kind (``exact``, ``hnsw``, ``ivf``, ``ivfpq``, ``milvus``) and holds no state of its
own: it builds, searches, writes and reads the native index the facade keeps in ``index_``, so the facade never
asks which kind it holds.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

#: Rows per chunk when reading vectors (finite check, adding, exact scans): temporaries ~64 MB at 256-d.
CHUNK = 65_536


class IndexBackend(Protocol):
    """One kind of index. ``index`` is the :class:`recsys.index.VectorIndex` facade (its parameters, ``index_``,
    ``n_items_``, ``vectors_``); ``mask`` a boolean ``(n_items,)`` of the rows a search may return (None: all);
    ``filters`` the ``(categories, allowed, exclude)`` the mask was made of."""

    def build(self, index, matrix: np.ndarray, source) -> object:
        """The native index over ``matrix`` ``(n, dim)`` float32 (``source``: the caller's array), or None when it
        cannot be built here (the facade then builds an in-process kind)."""

    def search(self, index, queries: np.ndarray, k: int, mask, n_allowed: int, filters) -> tuple[np.ndarray, np.ndarray]:
        """``(q, k)`` float32 scores and int64 positions, best first, of the allowed rows."""

    def write(self, index, path) -> None:
        """Write the native index ``index.index_`` to ``path``."""

    def read(self, path, mmap: bool) -> object:
        """The native index :meth:`write` wrote at ``path`` (memory-mapped when ``mmap`` and the kind can be)."""


def as_matrix(vectors: np.ndarray, dim: int | None = None, name: str = "vectors") -> np.ndarray:
    """``vectors`` as a C-contiguous float32 ``(n, dim)`` matrix (one row for a 1-D vector).

    Raises
    ------
    ValueError
        When it is not 2-D, has another width than ``dim``, or holds NaN or infinite values (one sentence).
    """
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, dim), got shape {matrix.shape}.")
    if dim is not None and matrix.shape[1] != dim:
        raise ValueError(f"{name} have {matrix.shape[1]} dimensions but the index holds {dim}-dimensional vectors.")
    # Chunked: a memory-mapped catalog of millions of rows must not be copied into a boolean twin.
    finite = np.concatenate([np.isfinite(matrix[start:start + CHUNK]).all(axis=1)
                             for start in range(0, max(len(matrix), 1), CHUNK)])
    if not finite.all():  # FAISS would answer a NaN query with id -1 and rank a NaN row anywhere
        rows = np.flatnonzero(~finite)
        raise ValueError(f"{name} hold NaN or infinite values (row {rows[0]}"
                         f"{f' and {len(rows) - 1} more' if len(rows) > 1 else ''}); they cannot be compared.")
    return np.ascontiguousarray(matrix)
