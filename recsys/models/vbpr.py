"""VBPR: BPR-MF plus a visual term computed from precomputed CNN features of the item images."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recsys.models.bpr import PairwiseModule, PairwiseRanker


class _VBPRModule(PairwiseModule):
    def __init__(self, n_users: int, n_items: int, features: np.ndarray, n_factors: int, n_visual_factors: int):
        super().__init__(n_users, n_factors + n_visual_factors)
        # Memory-mapped artifacts are read-only; torch wants writable memory, so only those are copied.
        self.register_buffer("features", torch.as_tensor(np.require(features, np.float32, ["W"])), persistent=False)
        self.item = nn.Embedding(n_items, n_factors)
        self.item_bias = nn.Embedding(n_items, 1)
        self.embed = nn.Linear(self.features.shape[1], n_visual_factors, bias=False)  # E
        self.visual_bias = nn.Linear(self.features.shape[1], 1, bias=False)  # beta'
        nn.init.normal_(self.item.weight, std=0.1)
        nn.init.zeros_(self.item_bias.weight)
        nn.init.zeros_(self.visual_bias.weight)

    def item_side(self, item_idx):
        f = self.features[item_idx]
        vectors = torch.cat([self.item(item_idx), self.embed(f)], dim=-1)
        return vectors, self.item_bias(item_idx).squeeze(-1) + self.visual_bias(f).squeeze(-1)

    def regularized(self, user_vectors, item_idx):
        # E and beta' are shared by all items; the paper regularizes them once per step, like any weight.
        return user_vectors.pow(2).sum() + self.item(item_idx).pow(2).sum()


class VBPR(PairwiseRanker):
    """Visual Bayesian personalized ranking on precomputed image features.

    ``x_ui = beta_i + gamma_u . gamma_i + theta_u . (E f_i) + beta' . f_i`` with ``f_i`` the item's CNN
    feature vector (here the artifacts' pooled EfficientNet-Lite0 vector), trained with the BPR loss.
    Items without interactions (cold-start) are scored through their visual terms alone.

    Parameters
    ----------
    n_factors : int
        Dimension of the latent (non-visual) factors ``gamma``.
    n_visual_factors : int
        Dimension of the visual factors ``theta_u`` and of ``E f_i``.
    n_epochs, batch_size, learning_rate, reg, bias_reg, random_state
        Training settings, as in :class:`recsys.models.bpr.BPR`.

    Side inputs
    -----------
    item_features : ndarray (n_items, d)
        Given to ``fit`` and again to ``load``.

    References
    ----------
    R. He, J. McAuley. VBPR: Visual Bayesian Personalized Ranking from Implicit Feedback. AAAI 2016.
    """

    _side_names = ("item_features",)
    _hyper = PairwiseRanker._hyper + ("n_factors", "n_visual_factors")

    def __init__(self, *, n_factors: int = 16, n_visual_factors: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.n_factors = n_factors
        self.n_visual_factors = n_visual_factors

    def _build_module(self, n_users, n_items):
        return _VBPRModule(n_users, n_items, self.side_["item_features"], self.n_factors, self.n_visual_factors)

    def content_direction(self, user_vector: np.ndarray) -> np.ndarray:
        """``w_u = E^T theta_u + beta'``: the content term of the score is ``w_u . f_i``, linear in the features."""
        theta = torch.as_tensor(np.asarray(user_vector, dtype=np.float32)[self.n_factors:])
        with torch.no_grad():
            w = self.module_.embed.weight.T @ theta + self.module_.visual_bias.weight[0]
        return w.numpy()

    def visual_direction(self, user_vector: np.ndarray) -> np.ndarray:
        """``w_u`` in the units of the image features, so that the image term of the score is ``w_u . f_i``.

        Because the pooled feature is the mean of the feature map's regions, ``w_u`` applied to each region's
        feature splits the visual term over the regions (a class-activation-map style explanation).
        """
        return self.content_direction(user_vector)

    def score_terms(self, user_vector: np.ndarray, item_idx: int) -> dict[str, float]:
        """One item's score split into its terms: ``latent`` (``beta_i + gamma_u . gamma_i``) and the content terms."""
        self._check_fitted()
        vector = np.asarray(user_vector, dtype=np.float32)
        index = torch.tensor([int(item_idx)])
        with torch.no_grad():
            latent = float(self.module_.item_bias(index)[0, 0]
                           + self.module_.item(index)[0] @ torch.as_tensor(vector[: self.n_factors]))
            parts = self.content_direction(vector) * self.module_.features[int(item_idx)].numpy()
        return {"latent": latent, **self._content_terms(parts)}

    def _content_terms(self, parts: np.ndarray) -> dict[str, float]:
        return {"image": float(parts.sum())}


class MultimodalVBPR(VBPR):
    """VBPR over the image features and the items' text (description) embeddings, as in the MMRec toolbox.

    The content vector ``f_i`` is the concatenation of the image and text features, each block divided by its
    mean row norm so neither dominates the shared ``E`` and ``beta'`` by scale alone. The image block keeps
    VBPR's region explanation: :meth:`visual_direction` returns the image part of ``w_u`` only, so a heatmap shows
    what the image term contributed, and the text term is a per-item constant for the user.

    Side inputs
    -----------
    item_features : ndarray (n_items, d_image)
    text_features : ndarray (n_items, d_text)
        Given to ``fit`` and again to ``load``.

    References
    ----------
    R. He, J. McAuley. VBPR. AAAI 2016. H. Zhou, X. Zhou, Z. Zeng, L. Zhang, Z. Shen. A Comprehensive Survey on
    Multimodal Recommender Systems: Taxonomy, Evaluation, and Future Directions (MMRec), 2023.
    """

    _side_names = ("item_features", "text_features")

    def _content(self) -> np.ndarray:
        image = np.asarray(self.side_["item_features"], dtype=np.float32)
        text = np.asarray(self.side_["text_features"], dtype=np.float32)
        if len(image) != len(text):
            raise ValueError(f"{len(image)} image feature rows but {len(text)} text feature rows; recompute the artifacts.")
        image_scale = float(np.linalg.norm(image, axis=1).mean()) or 1.0
        text_scale = float(np.linalg.norm(text, axis=1).mean()) or 1.0
        self.image_scale_ = image_scale
        return np.concatenate([image / image_scale, text / text_scale], axis=1)

    def _build_module(self, n_users, n_items):
        content = self._content()
        return _VBPRModule(n_users, n_items, content, self.n_factors, self.n_visual_factors)

    def visual_direction(self, user_vector: np.ndarray) -> np.ndarray:
        """The image part of ``w_u``, in the units of the raw image features (see :meth:`VBPR.visual_direction`)."""
        image_dim = np.asarray(self.side_["item_features"]).shape[1]
        return self.content_direction(user_vector)[:image_dim] / self.image_scale_

    def _content_terms(self, parts: np.ndarray) -> dict[str, float]:
        image_dim = np.asarray(self.side_["item_features"]).shape[1]
        return {"image": float(parts[:image_dim].sum()), "description": float(parts[image_dim:].sum())}
