"""The training-free composed-retrieval rows: the reference image alone, the captions alone, and their zero-shot
sum in the joint space (Baldrati et al., CVPR 2022) -- the baselines every trained composer is compared with.
"""

from __future__ import annotations

import numpy as np

from recsys.models.composed import ComposedModel
from recsys.utils import l2_normalize


class ImageOnly(ComposedModel):
    """Baseline: rank by similarity to the reference image alone (the caption is ignored)."""

    reads_caption = False
    uses_joint_space = False

    def gallery_vectors(self, image_features) -> np.ndarray:
        """The image features ``(n, d_image)`` as unit rows ``(n, d_image)``."""
        return l2_normalize(image_features)

    def compose(self, query_vectors, caption_features) -> np.ndarray:
        """The queries ``(m, d)`` unchanged: the caption features are ignored."""
        return np.asarray(query_vectors, dtype=np.float32)


class TextOnly(ComposedModel):
    """Baseline: rank by the caption alone, in the joint image-text space (the reference is ignored).

    Raises ``RuntimeError`` from its methods until :meth:`fit` gave it the joint space.
    """

    reads_reference = False

    def gallery_vectors(self, image_features) -> np.ndarray:
        """``(n, d)`` joint-space unit rows of image features ``(n, d_image)``.

        Raises
        ------
        RuntimeError
            Before :meth:`fit` gave the model its joint space.
        """
        return self._joint().image(image_features)

    def compose(self, query_vectors, caption_features) -> np.ndarray:
        """``(m, d)`` joint-space unit rows of the caption features ``(m, d_text)``; the queries are ignored.

        Raises
        ------
        RuntimeError
            Before :meth:`fit` gave the model its joint space.
        """
        return self._joint().text(caption_features)


class ZeroShotSum(ComposedModel):
    """Zero-shot composition: ``normalize(reference image embedding + text_weight * caption embedding)``.

    Parameters
    ----------
    text_weight : float
        Weight of the caption against the reference (both unit vectors).

    Raises ``RuntimeError`` from its methods until :meth:`fit` gave it the joint space.

    References
    ----------
    Baldrati et al., "Effective Conditioned and Composed Image Retrieval Combining CLIP-Based Features",
    CVPR 2022 (the sum of CLIP features as the training-free baseline).
    """

    def __init__(self, *, text_weight: float = 1.0):
        self.text_weight = text_weight

    def gallery_vectors(self, image_features) -> np.ndarray:
        """``(n, d)`` joint-space unit rows of image features ``(n, d_image)``.

        Raises
        ------
        RuntimeError
            Before :meth:`fit` gave the model its joint space.
        """
        return self._joint().image(image_features)

    def compose(self, query_vectors, caption_features) -> np.ndarray:
        """``normalize(query + text_weight * caption)``: ``(m, d)`` unit rows from ``(m, d)`` queries and
        ``(m, d_text)`` caption features.

        Raises
        ------
        RuntimeError
            Before :meth:`fit` gave the model its joint space.
        """
        return l2_normalize(np.asarray(query_vectors, dtype=np.float32) + self.text_weight * self._joint().text(caption_features))
