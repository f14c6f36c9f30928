"""VBPR: BPR-MF plus a visual term computed from precomputed CNN features of the item images.

Also :class:`LinearVisualRegions`, the region explanation of every model whose score is linear in the pooled
image feature (VBPR, multimodal VBPR, DVBPR on ImageNet features).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recsys.models.pairwise import ExplanationUnavailable, PairwiseModule, PairwiseRanker


class LinearVisualRegions:
    """Region scores of a model whose image term is linear in the pooled feature: ``w_u . f_i``.

    The pooled feature is the mean of the feature map's regions, so ``w_u . F_k`` splits the image term over the
    regions ``F_k`` (a class-activation-map style explanation; B. Zhou et al., Learning Deep Features for
    Discriminative Localization, CVPR 2016). The artifacts store the maps PCA-reduced over channels
    (``fmap_pca_components`` ``(C, d)``, ``fmap_pca_mean`` ``(d,)``), so ``w_u`` is projected onto the components.

    A class using it implements ``visual_direction(user_vector) -> (d,)`` and has ``side_["item_features"]``.
    """

    explains_regions = True
    region_meaning = "their mean is the image term of the score"

    def _decomposes(self, artifacts) -> bool:
        """True when the model scores the pooled vectors whose regions the stored feature maps hold."""
        features = self.side_["item_features"]
        return features.shape[1] == artifacts.fmap_pca_components.shape[1] and features.shape[1] == artifacts.image.shape[1]

    def can_explain(self, artifacts) -> bool:
        """True when ``artifacts`` hold feature maps of the very features this model scores."""
        return (artifacts is not None and artifacts.feature_maps is not None
                and artifacts.fmap_pca_components is not None and self._decomposes(artifacts))

    def region_scores(self, user_vector: np.ndarray, item_idx: int, artifacts) -> np.ndarray:
        """The image term of item ``item_idx``'s score for ``user_vector`` split over the regions: ``(h, w)`` float32.

        The regions are divided by the pooled vector's norm, as the models score the L2-normalized pooled vector:
        their mean is then the image term of the score (up to the PCA truncation of the stored maps).

        Raises
        ------
        ExplanationUnavailable
            When the artifacts hold no feature maps, the model scores other features (the autoencoder's codes),
            or the item has no feature map.
        """
        name = type(self).__name__
        if artifacts is None or artifacts.feature_maps is None or artifacts.fmap_pca_components is None:
            raise ExplanationUnavailable("The precomputed artifacts hold no feature maps, so no item's regions can be shown.")
        if not self._decomposes(artifacts):
            raise ExplanationUnavailable(
                f"{name} scores codes of its own encoder (the autoencoder), which have no image regions to show.")
        if not 0 <= int(item_idx) < len(artifacts.feature_maps):
            raise ExplanationUnavailable(f"Item {item_idx} has no feature map in the precomputed artifacts.")
        w = self.visual_direction(user_vector)
        cells = np.asarray(artifacts.feature_maps[int(item_idx)], dtype=np.float32)  # (C, h, w)
        components = np.asarray(artifacts.fmap_pca_components, dtype=np.float32)
        mean = np.asarray(artifacts.fmap_pca_mean, dtype=np.float32)
        projected = components @ w  # the region's PCA code dotted with C w == w . F_k (minus mean)
        regions = np.tensordot(projected, cells, axes=(0, 0)) + float(mean @ w)
        pooled = components.T @ cells.reshape(len(cells), -1).mean(axis=1) + mean
        return regions / max(float(np.linalg.norm(pooled)), 1e-12)


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
        # E f_i and beta' . f_i in one product: the only one as wide as the features.
        visual = F.linear(self.features[item_idx], torch.cat([self.embed.weight, self.visual_bias.weight]))
        vectors = torch.cat([self.item(item_idx), visual[:, :-1]], dim=-1)
        return vectors, self.item_bias(item_idx).squeeze(-1) + visual[:, -1]

    def regularized(self, user_vectors, item_idx):
        # E and beta' are shared by all items; the paper regularizes them once per step, like any weight.
        return user_vectors.pow(2).sum() + self.item(item_idx).pow(2).sum()


class VBPR(LinearVisualRegions, PairwiseRanker):
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
        """One item's score split into its terms: ``latent`` (``beta_i + gamma_u . gamma_i``) and the content terms
        (``image``; multimodal VBPR adds ``description``); the terms add up to the score.

        Raises
        ------
        RuntimeError
            When the model is not fitted.
        """
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
