"""Similar items: nearest neighbours in a precomputed image-embedding space.

The style-embedding catalogue approach: every item is embedded once by a pretrained CNN (or CLIP) image
encoder, and "similar" is cosine similarity in that space, optionally restricted to the query's category.
For a photo a user uploads, the category is predicted by a k-nearest-neighbour vote, which the user may
correct.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.index import VectorIndex


@dataclass(frozen=True)
class CategoryGuess:
    """A k-NN vote: the winning category, its share of the (similarity-weighted) votes, and all shares."""

    category: str
    confidence: float
    shares: dict


class SimilarItems:
    """Cosine k-NN over item embeddings with category filtering.

    Parameters
    ----------
    index_kind : {"auto", "exact", "hnsw", "ivf"}
        Passed to :class:`recsys.index.VectorIndex` (``auto``: exact below 50k items).
    vote_k : int
        Neighbours that vote on the category of an uploaded photo.

    Attributes
    ----------
    index_ : VectorIndex
    vectors_ : ndarray of shape (n_items, dim)
    categories_ : ndarray of str
    """

    def __init__(self, index_kind: str = "auto", vote_k: int = 15):
        self.index_kind = index_kind
        self.vote_k = vote_k

    def fit(self, vectors: np.ndarray, categories) -> "SimilarItems":
        self.vectors_ = np.asarray(vectors, dtype=np.float32)
        self.categories_ = np.asarray(categories, dtype=str)
        self.index_ = VectorIndex(kind=self.index_kind).fit(self.vectors_, categories=self.categories_)
        return self

    def similar_to_item(self, item_idx: int, k: int = 10, same_category: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to catalog item ``item_idx`` (itself excluded): ``(positions, scores)``."""
        category = self.categories_[item_idx] if same_category else None
        scores, positions = self.index_.search(self.vectors_[item_idx], k=k, categories=category, exclude=[item_idx])
        return positions[0], scores[0]

    def similar_to_vector(self, vector: np.ndarray, k: int = 10, category: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to an embedding (e.g. of an upload): ``(positions, scores)``."""
        scores, positions = self.index_.search(vector, k=k, categories=category)
        return positions[0], scores[0]

    def predict_category(self, vector: np.ndarray) -> CategoryGuess:
        """Similarity-weighted vote of the ``vote_k`` nearest items on the category of ``vector``."""
        positions, scores = self.similar_to_vector(vector, k=self.vote_k)
        weights = np.clip(scores, 0.0, None) + 1e-6
        shares: dict = {}
        for category, weight in zip(self.categories_[positions], weights):
            shares[category] = shares.get(category, 0.0) + float(weight)
        total = sum(shares.values())
        shares = {c: v / total for c, v in sorted(shares.items(), key=lambda kv: -kv[1])}
        best = next(iter(shares))
        return CategoryGuess(category=best, confidence=shares[best], shares=shares)

    def score(self, item_idx: int, other_idx=None) -> np.ndarray:
        """Cosine similarity of item ``item_idx`` to all items (or to ``other_idx``)."""
        others = self.vectors_ if other_idx is None else self.vectors_[np.asarray(other_idx)]
        return others @ self.vectors_[item_idx]
