"""Small numeric helpers shared across the library, each defined once.

No Streamlit, no model code: vector normalisation, the interaction-matrix format, and torch thread control.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import scipy.sparse as sp

#: Threads a model's ``fit`` uses by default: the studio targets small shared machines (DESIGN section 8).
FIT_THREADS = 2


def l2_normalize(vectors: np.ndarray, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``vectors`` scaled to unit L2 norm along ``axis`` (float32; zero rows stay zero).

    Parameters
    ----------
    vectors : array-like, shape ``(..., d)``
    axis : int
        The axis whose norm becomes 1.

    Returns
    -------
    np.ndarray of float32, the shape of ``vectors``.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=axis, keepdims=True)
    return vectors / np.maximum(norms, eps)


def top_n(scores, k: int | None, axis: int = -1) -> np.ndarray:
    """Indices of the ``k`` largest ``scores`` along ``axis``, largest first, ties in index order: what
    ``np.argsort(-scores, kind="stable")[..., :k]`` gives (``k`` past the length gives all; NaN sorts last).

    One row selects its candidates with ``np.argpartition`` (linear time) and sorts only those: every score tied
    with the k-th is kept before the stable sort, so ties break by index exactly as a full stable sort breaks them.
    Several rows (``scores`` of two or more dimensions) are sorted whole along ``axis``.
    """
    scores = np.asarray(scores)
    n = scores.shape[axis] if scores.ndim else 0
    k = n if k is None else max(0, min(int(k), n))
    if scores.ndim != 1 or k == n or n <= 64:
        order = np.argsort(-scores, axis=axis, kind="stable")
        return np.take(order, np.arange(k), axis=axis)
    negative = -scores
    threshold = np.partition(negative, k - 1)[k - 1]
    if threshold != threshold:  # NaN among the first k: the full stable sort places them
        return np.argsort(negative, kind="stable")[:k]
    candidates = np.flatnonzero(negative <= threshold)
    return candidates[np.argsort(negative[candidates], kind="stable")[:k]]


def as_csr(X) -> sp.csr_matrix:
    """The interactions ``X`` as a binary float32 CSR matrix of shape ``(n_users, n_items)``.

    Any non-zero entry (a count, a rating) becomes 1; explicit zeros are dropped.

    Raises
    ------
    TypeError, ValueError
        From ``scipy.sparse.csr_matrix`` when ``X`` is not two-dimensional matrix-like data.
    """
    X = sp.csr_matrix(X, dtype=np.float32)
    X.data[:] = 1.0
    X.eliminate_zeros()
    return X


@contextlib.contextmanager
def torch_threads(threads: int | None = FIT_THREADS) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)`` and restore the previous setting afterwards.

    ``None`` or 0 leave torch's setting unchanged. Small models train faster on one or two threads on shared
    machines, where extra intra-op threads spin-wait (measured ~50x slower for the demo-clip heads).
    """
    import torch  # heavy; keep ``recsys.utils`` importable cheaply

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


#: How a git-lfs pointer file begins: a clone made without ``git lfs pull`` holds these few lines instead of the data.
LFS_POINTER = b"version https://git-lfs.github.com/spec/"


def file_damage(path) -> str | None:
    """What is visibly wrong with a stored file, as a clause for a sentence ("it is empty, 0 bytes", "it is a
    git-lfs pointer, not the file itself: fetch it with git lfs pull"), or None when nothing is (or the file
    cannot be looked at). A file cut short or of another kind shows only in its reader's complaint."""
    from pathlib import Path

    try:
        path = Path(path)
        if path.stat().st_size == 0:
            return "it is empty, 0 bytes"
        with path.open("rb") as handle:
            head = handle.read(len(LFS_POINTER))
    except OSError:
        return None
    if head == LFS_POINTER:
        return "it is a git-lfs pointer, not the file itself: fetch it with git lfs pull"
    return None


def load_array(path, mmap_mode: str | None = None) -> np.ndarray:
    """The NumPy array stored in ``path`` (``np.load`` without pickle; ``mmap_mode`` as ``np.load``'s).

    Raises
    ------
    OSError
        When the file is missing or cannot be opened.
    ValueError
        When it is not a whole ``.npy`` array -- empty, a git-lfs pointer, cut short, or another kind of file; the
        message is the reason only (callers name the file in their own sentence).
    """
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, EOFError) as exc:  # EOFError: an empty file
        damage = file_damage(path)
        if damage:
            raise ValueError(damage) from None
        if "pickled" in str(exc):  # NumPy's word for any file without the .npy magic
            raise ValueError("it is not a NumPy array file") from None
        raise ValueError(f"it is cut short or damaged ({exc})") from None


def read_json(path, kind: type = dict):
    """The JSON value in ``path`` when it is a ``kind`` (``dict`` or ``list``); None when the file does not exist.

    Raises
    ------
    ValueError
        When the file cannot be read or parsed (empty, a git-lfs pointer, not UTF-8 text, cut short), or holds
        another kind of value; the message is the reason only (callers name the file in their own sentence).
    """
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(file_damage(path) or "it is not UTF-8 text") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(file_damage(path) or str(exc)) from None
    if not isinstance(value, kind):
        raise ValueError(f"it is not a JSON {'object' if kind is dict else kind.__name__}")
    return value


@dataclass(frozen=True)
class RankedGuess:
    """A prediction over named options: the best ``label``, its probability (``confidence``) and every option's
    probability (``shares``, highest first). :class:`recsys.photo.CategoryGuess` and
    :class:`recsys.colour.ColourGuess` name the label after what they guess."""

    label: str
    confidence: float
    shares: dict

    @classmethod
    def from_probabilities(cls, names, probabilities) -> "RankedGuess":
        """The guess of ``probabilities`` ``(n,)`` over ``names`` (ties keep the names' order).

        Raises
        ------
        IndexError
            For no option at all.
        """
        probabilities = np.asarray(probabilities, dtype=np.float64)
        order = np.argsort(-probabilities, kind="stable")
        shares = {str(names[i]): float(probabilities[i]) for i in order}
        best = str(names[int(order[0])])
        return cls(label=best, confidence=shares[best], shares=shares)

    @property
    def runner_up(self) -> str | None:
        """The second most probable option (None with a single option)."""
        names = list(self.shares)
        return names[1] if len(names) > 1 else None
