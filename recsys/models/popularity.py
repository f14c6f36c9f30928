"""The popularity baseline: every user gets the items with the most training interactions."""

from __future__ import annotations

import numpy as np

from recsys.models.bpr import as_csr


class Popularity:
    """Rank items by their number of training interactions (the same list for every user).

    The non-personalized baseline of every personalized-ranking paper (e.g. He & McAuley, VBPR, AAAI 2016);
    it is also what a user without history is shown.
    """

    def fit(self, X) -> "Popularity":
        X = as_csr(X)
        self.n_users_, self.n_items_ = X.shape
        self.item_counts_ = np.asarray(X.sum(axis=0)).ravel()
        return self

    def score(self, user_idx=None, item_idx=None) -> np.ndarray:
        """Counts of all (or the given) items; a list of users gets one identical row each."""
        counts = self.item_counts_ if item_idx is None else self.item_counts_[np.asarray(item_idx)]
        counts = counts.astype(np.float64)
        if user_idx is None or np.ndim(user_idx) == 0:
            return counts
        return np.tile(counts, (len(user_idx), 1))
