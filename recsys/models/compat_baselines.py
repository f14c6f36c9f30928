"""The untrained rows of the compatibility report: chance, "looks alike", and the generated world's truth.

Each has the scoring interface of :mod:`recsys.models.compat` (``pair_compatibility`` and ``outfit_score``), so
the protocol scores them exactly like the learned models; they are registered with ``trainable=False`` and are
never saved.
"""

from __future__ import annotations

import numpy as np

from recsys.models.base import Estimator
from recsys.models.compat import PairScorer
from recsys.utils import l2_normalize


class RandomCompatibility(Estimator):
    """Chance: every pair and every set gets an independent uniform score in ``[0, 1)``.

    Parameters
    ----------
    random_state : int
        Seeds the generator :meth:`fit` creates; every score call draws from it, so the order of calls matters.
    """

    def __init__(self, *, random_state: int = 0):
        self.random_state = random_state

    def fit(self, *args, **kwargs) -> "RandomCompatibility":
        """Start the generator (inputs are ignored); returns ``self``."""
        self.rng_ = np.random.default_rng(self.random_state)
        return self

    def pair_compatibility(self, a_idx, b_idx) -> np.ndarray:
        """Uniform scores of the broadcast shape of ``a_idx`` and ``b_idx``."""
        return self.rng_.random(np.broadcast(np.asarray(a_idx), np.asarray(b_idx)).shape)

    def outfit_score(self, item_idx) -> float:
        """One uniform score for the set."""
        return float(self.rng_.random())


class VisualSimilarityCompatibility(PairScorer, Estimator):
    """Baseline: "goes with" = looks alike; the cosine similarity of raw image vectors, mapped to ``[0, 1]``.

    No parameters; :meth:`fit` stores the L2-normalised image vectors as ``item_embeddings_`` ``(n_items, d)``.
    """

    def fit(self, image_vectors: np.ndarray, *args, **kwargs) -> "VisualSimilarityCompatibility":
        """Store the ``(n_items, d)`` image vectors, L2-normalised; returns ``self``."""
        self.item_embeddings_ = l2_normalize(np.asarray(image_vectors, dtype=np.float32))
        return self

    def pair_compatibility(self, a_idx, b_idx) -> np.ndarray:
        """``(1 + cosine) / 2`` of item pairs (row arrays, broadcastable).

        Raises
        ------
        IndexError
            For a row outside the catalog.
        """
        a, b = self.item_embeddings_[np.asarray(a_idx)], self.item_embeddings_[np.asarray(b_idx)]
        return (1.0 + (a * b).sum(axis=-1)) / 2.0


class OracleCompatibility(Estimator):
    """The generated world's true compatibility behind the models' scoring interface (the ceiling row).

    :meth:`fit` takes the world's :class:`WorldTruth` (``recsys.data``), which knows the style, colour and
    pattern rules the outfits were drawn with; a catalog without a stored truth has no oracle.
    """

    def fit(self, truth, *args, **kwargs) -> "OracleCompatibility":
        """Keep ``truth`` (a ``WorldTruth``); returns ``self``."""
        self.truth_ = truth
        return self

    def pair_compatibility(self, a_idx, b_idx) -> np.ndarray:
        """True compatibility of item pairs (row arrays, broadcastable)."""
        return self.truth_.pair_compatibility(a_idx, b_idx)

    def outfit_score(self, item_idx) -> float:
        """True compatibility of a set: the mean over its pairs."""
        return self.truth_.compatibility([int(i) for i in item_idx])
