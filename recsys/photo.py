"""Photo understanding shared by every upload: which catalog category a photo shows.

One predictor for every page that takes a photo (Similar items, Complete the look, Text-guided search): a
multinomial logistic regression on the catalog's own image embeddings (scikit-learn), standardised first because
L2-normalised embeddings have tiny per-dimension scales that would leave the classifier timid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.models.base import Estimator


@dataclass(frozen=True)
class CategoryGuess:
    """The predicted category of a photo, its probability (``confidence``), and every category's probability
    (``shares``, highest first)."""

    category: str
    confidence: float
    shares: dict

    @property
    def runner_up(self) -> str | None:
        """The second most probable category (None for a one-category catalog)."""
        names = list(self.shares)
        return names[1] if len(names) > 1 else None


class CategoryPredictor(Estimator):
    """The category of an uploaded photo from its image vector: multinomial logistic regression on the catalog.

    Parameters
    ----------
    C : float
        Inverse regularisation strength of :class:`sklearn.linear_model.LogisticRegression`.
    random_state : int

    Attributes
    ----------
    classifier_ : sklearn Pipeline (StandardScaler, LogisticRegression)
    """

    def __init__(self, C: float = 1.0, random_state: int = 0):
        self.C = C
        self.random_state = random_state

    def fit(self, image_vectors: np.ndarray, categories) -> "CategoryPredictor":
        """Fit on ``(n_items, d)`` image vectors and their ``(n_items,)`` categories; returns ``self``.

        Raises
        ------
        ValueError
            From scikit-learn, for mismatched lengths or a single category.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.classifier_ = make_pipeline(StandardScaler(),
                                         LogisticRegression(C=self.C, max_iter=500, random_state=self.random_state))
        self.classifier_.fit(np.asarray(image_vectors, dtype=np.float32), np.asarray(categories).astype(str))
        return self

    def rank(self, image_vector: np.ndarray) -> list[tuple[str, float]]:
        """Categories of a ``(d,)`` image vector ranked by probability; the first probability is the confidence."""
        probabilities = self.classifier_.predict_proba(np.asarray(image_vector, dtype=np.float32).reshape(1, -1))[0]
        order = np.argsort(-probabilities, kind="stable")
        return [(str(self.classifier_.classes_[i]), float(probabilities[i])) for i in order]

    def predict(self, image_vector: np.ndarray) -> CategoryGuess:
        """The :class:`CategoryGuess` of a ``(d,)`` image vector."""
        ranked = self.rank(image_vector)
        return CategoryGuess(category=ranked[0][0], confidence=ranked[0][1], shares=dict(ranked))


def category_predictor(store) -> CategoryPredictor:
    """The catalog's :class:`CategoryPredictor`, fitted once per :class:`recsys.store.ModelStore` and shared by every
    page that takes a photo.

    Raises
    ------
    recsys.artifacts.ArtifactError
        When the store has no artifacts to fit on.
    """
    if store.artifacts is None:
        from recsys.artifacts import ArtifactError

        raise ArtifactError(f"The catalog {store.catalog.name} has no precomputed embeddings to read photos with.")
    return store.memo("photo-category", lambda: CategoryPredictor().fit(store.artifacts.image,
                                                                         store.catalog.items["category"]))
