"""Sampling the BPR criterion's training triples (Rendle et al., UAI 2009): each observed (user, item) pair with a
uniformly drawn item the user has not interacted with."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def sample_triples(X: sp.csr_matrix, rng: np.random.Generator, n_items: int) -> tuple[np.ndarray, ...]:
    """One epoch of BPR triples: every observed (user, item) pair once, each with a uniformly drawn unobserved item.

    A drawn negative that the user did interact with is redrawn a few times (vectorized rejection); the rare
    survivor after that only adds a little noise to the loss (Rendle et al., UAI 2009, uniform sampling).

    Returns
    -------
    users, positives, negatives : ndarray of int64, each of shape ``(X.nnz,)``
    """
    coo = X.tocoo()
    order = rng.permutation(coo.nnz)
    users, positives = coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)
    negatives = rng.integers(0, n_items, size=len(users))
    for _ in range(5):
        clash = np.asarray(X[users, negatives]).ravel() > 0
        if not clash.any():
            break
        negatives[clash] = rng.integers(0, n_items, size=int(clash.sum()))
    return users, positives, negatives
