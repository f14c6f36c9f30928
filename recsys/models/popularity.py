"""The non-personalized baselines: popularity (the most-interacted items for everyone) and random scores."""

from __future__ import annotations

import numpy as np

from recsys.models.base import Estimator
from recsys.utils import as_csr


class Popularity(Estimator):
    """Rank items by their number of training interactions (the same list for every user).

    The non-personalized baseline of every personalized-ranking paper (e.g. He & McAuley, VBPR, AAAI 2016);
    it is also what a user without history is shown.
    """

    def fit(self, X) -> "Popularity":
        """Count each item's interactions in ``X`` ``(n_users, n_items)`` (any non-zero counts once)."""
        X = as_csr(X)
        self.n_users_, self.n_items_ = X.shape
        self.item_counts_ = np.asarray(X.sum(axis=0)).ravel()
        return self

    def score(self, user_idx=None, item_idx=None) -> np.ndarray:
        """Counts (float64) of all (or the given) items: ``(n_items,)``, or one identical row per user of a list.

        Raises
        ------
        AttributeError
            When the model is not fitted.
        """
        counts = self.item_counts_ if item_idx is None else self.item_counts_[np.asarray(item_idx)]
        counts = counts.astype(np.float64)
        if user_idx is None or np.ndim(user_idx) == 0:
            return counts
        return np.tile(counts, (len(user_idx), 1))


class RandomScores(Estimator):
    """Uniform random scores in ``[0, 1)``: the chance row of a ranking report.

    Parameters
    ----------
    random_state : int, optional
        Seeds one generator at ``fit``; every :meth:`score` call draws the next scores from it.
    """

    def __init__(self, *, random_state: int | None = 0):
        self.random_state = random_state

    def fit(self, X) -> "RandomScores":
        """Remember the number of items of ``X`` ``(n_users, n_items)`` and seed the generator."""
        self.n_items_ = as_csr(X).shape[1]
        self.rng_ = np.random.default_rng(self.random_state)
        return self

    def score(self, user_idx) -> np.ndarray:
        """Random scores ``(len(user_idx), n_items)`` float64 of a list of users.

        Raises
        ------
        AttributeError
            When the model is not fitted.
        """
        return self.rng_.random((len(user_idx), self.n_items_))
