"""VECF-style ranking: user-conditioned attention over the regions of an item's CNN feature map.

The attended visual feature joins the item's factor, beside the user's preference for the item's pooled visual
feature (VBPR's visual term: colour and pattern every region shares need no attention); a review head predicts the
review's sentence embedding from the attended feature (review supervision), and K-means clusters of the items'
visual features give every item a shared cluster embedding, which is all a cold-start item has.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recsys.models.pairwise import ExplanationUnavailable, PairwiseModule, PairwiseRanker

logger = logging.getLogger(__name__)


class _VECFModule(PairwiseModule):
    user_dependent_items = True
    items_per_step = 2048  # 2048 items x 49 regions x 256 channels of float32 is about 100 MB per step

    def __init__(self, n_users: int, n_items: int, feature_maps: np.ndarray, fmap_scale: float, cluster_of: np.ndarray,
                 n_clusters: int, n_factors: int, attention_dim: int, review_dim: int | None,
                 pooled: np.ndarray | None = None, n_visual_factors: int = 0):
        # The user vector is [p_u, theta_u]: p_u attends and meets the item's factors, theta_u (n_visual_factors
        # wide, none when 0) meets the pooled visual feature as in VBPR.
        super().__init__(n_users, n_factors + (n_visual_factors if pooled is not None else 0))
        self.n_factors = n_factors
        maps = np.asarray(feature_maps)
        n, channels = maps.shape[:2]
        self.grid = maps.shape[2:]
        regions = torch.from_numpy(np.ascontiguousarray(maps.reshape(n, channels, -1).transpose(0, 2, 1)))
        # float16 keeps the demo world's maps at ~80 MB; each batch is widened to float32 when gathered.
        self.register_buffer("regions", regions.to(torch.float16), persistent=False)
        self.fmap_scale = float(fmap_scale)
        self.register_buffer("cluster_of", torch.as_tensor(cluster_of, dtype=torch.int64))
        self.item = nn.Embedding(n_items, n_factors)
        self.item_bias = nn.Embedding(n_items, 1)
        self.cluster = nn.Embedding(n_clusters, n_factors)
        self.cluster_bias = nn.Embedding(n_clusters, 1)
        self.W_u = nn.Linear(n_factors, attention_dim, bias=False)
        self.W_f = nn.Linear(channels, attention_dim, bias=False)
        self.W_1 = nn.Linear(attention_dim, attention_dim)
        self.w_2 = nn.Linear(attention_dim, 1, bias=False)
        self.embed = nn.Linear(channels, n_factors, bias=False)
        # Item factors start at zero so an item never seen in training is its cluster embedding exactly.
        nn.init.zeros_(self.item.weight)
        nn.init.zeros_(self.item_bias.weight)
        nn.init.normal_(self.cluster.weight, std=0.1)
        nn.init.zeros_(self.cluster_bias.weight)
        self.review_head = (nn.Sequential(nn.Linear(2 * n_factors, 128), nn.ReLU(), nn.Linear(128, review_dim))
                            if review_dim else None)
        self.review_users = self.review_items = self.review_targets = None
        self.review_weight = 0.0
        self.review_batch = 256
        self.pooled_visual = pooled is not None and n_visual_factors > 0
        if self.pooled_visual:
            # Memory-mapped artifacts are read-only; torch wants writable memory, so only those are copied.
            self.register_buffer("pooled", torch.as_tensor(np.require(pooled, np.float32, ["W"])), persistent=False)
            self.pooled_embed = nn.Linear(self.pooled.shape[1], n_visual_factors, bias=False)  # VBPR's E
            self.visual_bias = nn.Linear(self.pooled.shape[1], 1, bias=False)  # VBPR's beta'
            nn.init.zeros_(self.visual_bias.weight)

    def preference(self, user_vectors: torch.Tensor) -> torch.Tensor:
        """``p_u`` ``(B, n_factors)``: the part of ``(B, d)`` user vectors that attends and meets item factors."""
        return user_vectors[..., : self.n_factors]

    def pooled_side(self, item_idx: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``E' f_i`` ``(m, n_visual_factors)`` (None without the pooled term) and ``beta' . f_i`` ``(m,)`` of items."""
        if not self.pooled_visual:
            return None, torch.zeros(len(item_idx))
        visual = F.linear(self.pooled[item_idx], torch.cat([self.pooled_embed.weight, self.visual_bias.weight]))
        return visual[:, :-1], visual[:, -1]

    def features_of(self, item_idx: torch.Tensor) -> torch.Tensor:
        """The scaled region features ``(m, K, C)`` float32 of ``(m,)`` items."""
        return self.regions[item_idx].float() / self.fmap_scale

    def projected(self, item_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention keys ``W_f f_k`` ``(m, K, a)`` and embeddings ``E f_k`` ``(m, K, d)`` of ``(m,)`` items' regions.

        Both maps are linear without bias, so they share one product over the ``C`` channels (the step's only
        product as wide as the feature maps); the scale is applied to the narrow result, which is the same.
        """
        weight = torch.cat([self.W_f.weight, self.embed.weight])
        both = F.linear(self.regions[item_idx].float(), weight) / self.fmap_scale
        return both.split([self.W_f.out_features, self.embed.out_features], dim=-1)

    def attention(self, user_vectors: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """alpha_k = softmax_k(w2 ReLU(W1 (W_u p_u * W_f f_k))); ``keys`` are ``W_f f_k`` (B, K, a), the result (B, K)."""
        return self._softmax_over_regions(self.W_u(self.preference(user_vectors))[:, None, :] * keys)

    def _softmax_over_regions(self, joint: torch.Tensor) -> torch.Tensor:
        """``softmax_k(w2 ReLU(W1 joint_k))`` over the last-but-one axis of ``joint`` (the regions)."""
        return torch.softmax(self.w_2(torch.relu(self.W_1(joint))).squeeze(-1), dim=-1)

    def attended(self, user_vectors: torch.Tensor, item_idx: torch.Tensor, projected=None):
        """``E F_ui = sum_k alpha_k E f_k`` ``(B, d)`` and the attention ``alpha`` ``(B, K)`` of ``(B, d)`` users on
        ``(B,)`` items. E has no bias, so the embedding of the attended feature is the attended embedding.

        ``projected``, when given, is :meth:`projected` of those items already computed (e.g. once for the items
        a training step touches).
        """
        keys, embedded = self.projected(item_idx) if projected is None else projected
        alpha = self.attention(user_vectors, keys)
        return (alpha[..., None] * embedded).sum(1), alpha

    def item_vectors(self, user_vectors, item_idx, projected=None):
        """Item vectors ``(B, d)`` ``[q_i + c_k(i) + E F_ui, E' f_i]`` for ``(B, d)`` users, their biases
        ``b_i + b_k(i) + beta' . f_i`` ``(B,)``, and ``E F_ui`` ``(B, n_factors)``."""
        attended, _ = self.attended(user_vectors, item_idx, projected)
        clusters = self.cluster_of[item_idx]
        vectors = self.item(item_idx) + self.cluster(clusters) + attended
        bias = self.item_bias(item_idx).squeeze(-1) + self.cluster_bias(clusters).squeeze(-1)
        pooled, visual_bias = self.pooled_side(item_idx)
        if pooled is not None:
            vectors, bias = torch.cat([vectors, pooled], dim=-1), bias + visual_bias
        return vectors, bias, attended

    def pair_scores(self, user_vectors, item_idx, projected=None):
        vectors, bias, _ = self.item_vectors(user_vectors, item_idx, projected)
        return (user_vectors * vectors).sum(-1) + bias

    def pair_margins(self, user_vectors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                     review_rows: torch.Tensor | None = None):
        """``x_ui - x_uj`` ``(B,)`` of a training batch, and the review loss of ``review_rows`` (or None).

        The regions of every distinct item the step touches (positives, negatives, reviewed items) are
        projected once: an item drawn several times, or as a positive and a negative, costs one product.
        """
        reviews = review_rows is not None
        parts = [positives, negatives] + ([self.review_items[review_rows]] if reviews else [])
        items, where = torch.unique(torch.cat(parts), return_inverse=True)
        keys, embedded = self.projected(items)
        b = len(positives)

        def of(lo: int, hi: int):
            return keys[where[lo:hi]], embedded[where[lo:hi]]

        margin = (self.pair_scores(user_vectors, positives, of(0, b))
                  - self.pair_scores(user_vectors, negatives, of(b, 2 * b)))
        review = self.review_loss(review_rows, of(2 * b, len(where))) if reviews else None
        return margin, review

    def all_scores(self, user_vectors, item_idx, users_per_step: int = 8):
        # Only the attention weights depend on user and item jointly. E has no bias, so
        # p_u . E(sum_k alpha_k f_k) = sum_k alpha_k (p_u . E f_k): the regions' keys W_f f_k and embeddings E f_k
        # are computed once per call, and each small group of users only runs the attention MLP.
        keys, embedded = self.projected(item_idx)
        clusters = self.cluster_of[item_idx]
        static = self.item(item_idx) + self.cluster(clusters)
        bias = self.item_bias(item_idx).squeeze(-1) + self.cluster_bias(clusters).squeeze(-1)
        pooled, visual_bias = self.pooled_side(item_idx)
        if pooled is not None:
            static, bias = torch.cat([static, pooled], dim=-1), bias + visual_bias
        rows = []
        for start in range(0, len(user_vectors), users_per_step):
            users = user_vectors[start : start + users_per_step]
            preference = self.preference(users)
            alpha = self._softmax_over_regions(self.W_u(preference)[:, None, None, :] * keys[None])
            region_scores = torch.einsum("mkd,bd->bmk", embedded, preference)
            rows.append((alpha * region_scores).sum(-1) + users @ static.T + bias[None, :])
        return torch.cat(rows)

    def regularized(self, user_vectors, item_idx):
        clusters = self.cluster_of[item_idx]
        return user_vectors.pow(2).sum() + self.item(item_idx).pow(2).sum() + self.cluster(clusters).pow(2).sum()

    def review_loss(self, rows: torch.Tensor, projected=None) -> torch.Tensor:
        """The review head's mean cosine loss on review ``rows`` ``(r,)`` (``projected``: their items' regions)."""
        users, items = self.review_users[rows], self.review_items[rows]
        user_vectors = self.user(users)
        attended, _ = self.attended(user_vectors, items, projected)
        predicted = self.review_head(torch.cat([attended, self.preference(user_vectors)], dim=-1))
        return (1.0 - F.cosine_similarity(predicted, self.review_targets[rows], dim=-1)).mean()

    def review_rows(self) -> torch.Tensor | None:
        """Review rows ``(r,)`` drawn for one training step, or None when the review loss is off."""
        if self.review_head is None or self.review_users is None or not self.training or self.review_weight == 0:
            return None
        return torch.randint(0, len(self.review_users), (min(self.review_batch, len(self.review_users)),))

    def extra_loss(self, users, positives):
        rows = self.review_rows()
        return None if rows is None else self.review_weight * self.review_loss(rows)

    def batch_margins(self, users, user_vectors, positives, negatives):
        """As :meth:`PairwiseModule.batch_margins`, with every distinct item of the step projected once."""
        rows = self.review_rows()
        margin, review = self.pair_margins(user_vectors, positives, negatives, rows)
        return margin, None if review is None else self.review_weight * review


class VECF(PairwiseRanker):
    """User-conditioned visual attention over CNN feature-map regions, with review supervision and K-means clusters.

    ``alpha_k = softmax_k(w2 ReLU(W1 (W_u p_u * W_f f_k)))`` over the ``7 x 7`` regions ``f_k`` of the item's
    feature map; ``F_ui = sum_k alpha_k f_k``; ``x_ui = p_u . (q_i + c_{k(i)} + E F_ui) + theta_u . (E' f_i) +
    beta' . f_i + b_i + b_{k(i)}`` where ``c_{k(i)}`` is the learned embedding of the item's K-means cluster of
    visual features and ``f_i`` the item's pooled visual feature. The pooled term is the paper's base preference
    model (VBPR's visual term, He & McAuley 2016, on which VECF builds its attention): what every region of an
    item shares -- its colour, its pattern -- is scored there, so that attention has only to find what lies at one
    place. ``n_visual_factors=0`` leaves it out (the attention-only form of earlier versions). A review head
    predicts the sentence embedding (Sentence-BERT style, here MiniLM) of the user's review of the item from
    ``[E F_ui, p_u]`` with a cosine loss, replacing the paper's LSTM review generator. Cold-start items (no
    training interactions) keep zero item factors and are scored through their cluster and attended features.

    Parameters
    ----------
    n_factors : int
        Dimension of the users' attending part ``p_u``, of items and of clusters.
    n_visual_factors : int
        Dimension of ``theta_u`` and ``E' f_i``, the pooled visual term (0: none).
    attention_dim : int
        Width of the attention network.
    n_clusters : int, optional
        K-means clusters of visual features; default one per ``items_per_cluster`` items.
    items_per_cluster : float
        Used when ``n_clusters`` is None (the paper found about three items per cluster best).
    review_weight : float
        Weight of the review loss (0 switches review supervision off).
    n_epochs, batch_size, learning_rate, reg, bias_reg, random_state
        Training settings, as in :class:`recsys.models.bpr.BPR`.

    Side inputs
    -----------
    feature_maps : ndarray (n_items, C, h, w)
        Given to ``fit`` and to ``load``.
    item_features : ndarray (n_items, d)
        The pooled visual features (the artifacts' image vectors), given to ``fit`` and to ``load``.

    References
    ----------
    X. Chen, H. Chen, H. Xu, Y. Zhang, Y. Cao, Z. Qin, H. Zha. Personalized Fashion Recommendation with Visual
    Explanations based on Multimodal Attention Network (VECF). SIGIR 2019; the visual-clustering extension for
    cold-start items with K-means over visual features.
    """

    _side_names = ("feature_maps", "item_features")
    explains_regions = True
    region_meaning = "attention weights, summing to 1"

    def __init__(self, *, n_factors: int = 32, n_visual_factors: int = 16, attention_dim: int = 16,
                 n_clusters: int | None = None, items_per_cluster: float = 3.0, review_weight: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.n_factors = n_factors
        self.n_visual_factors = n_visual_factors
        self.attention_dim = attention_dim
        self.n_clusters = n_clusters
        self.items_per_cluster = items_per_cluster
        self.review_weight = review_weight

    def fit(self, X, *, feature_maps, item_features=None, review_users=None, review_items=None, review_targets=None,
            on_epoch=None) -> "VECF":
        """Fit on interactions ``X``; reviews are ``(user_idx, item_idx, sentence embedding)`` rows of training pairs.

        Parameters
        ----------
        X : sparse matrix ``(n_users, n_items)``
        feature_maps : ndarray ``(n_items, C, h, w)``
        item_features : ndarray ``(n_items, d)``, optional
            Pooled visual vectors, what K-means clusters and the pooled term scores; default the mean of each
            feature map.
        review_users, review_items : ndarray ``(r,)`` of int; review_targets : ndarray ``(r, e)`` float32
            The review supervision (sentence embeddings of training pairs' reviews).
        on_epoch : callable, optional
            As in :meth:`recsys.models.pairwise.PairwiseRanker.fit`.

        Raises
        ------
        ValueError
            When a side input is missing.
        """
        maps = np.asarray(feature_maps)
        pooled = maps.reshape(len(maps), maps.shape[1], -1).mean(-1) if item_features is None else item_features
        self.fmap_scale_ = float(np.asarray(maps[: min(len(maps), 512)], dtype=np.float32).std()) or 1.0
        self.n_clusters_ = int(self.n_clusters or max(1, round(len(maps) / self.items_per_cluster)))
        self.cluster_of_ = kmeans_clusters(np.asarray(pooled, dtype=np.float32), self.n_clusters_, self.random_state)
        self.review_dim_ = int(review_targets.shape[1]) if review_targets is not None and len(review_targets) else None
        self._reviews = (review_users, review_items, review_targets) if self.review_dim_ else None
        return super().fit(X, on_epoch=on_epoch, feature_maps=feature_maps, item_features=pooled)

    def _build_module(self, n_users, n_items):
        module = _VECFModule(n_users, n_items, self.side_["feature_maps"], self.fmap_scale_, self.cluster_of_,
                             self.n_clusters_, self.n_factors, self.attention_dim, self.review_dim_,
                             pooled=self.side_["item_features"], n_visual_factors=self.n_visual_factors)
        return module

    def _before_training(self, X) -> None:
        if getattr(self, "_reviews", None):
            users, items, targets = self._reviews
            self.module_.review_users = torch.as_tensor(np.array(users), dtype=torch.int64)
            self.module_.review_items = torch.as_tensor(np.array(items), dtype=torch.int64)
            self.module_.review_targets = torch.as_tensor(np.asarray(targets), dtype=torch.float32)
            self.module_.review_weight = self.review_weight
            self.module_.review_batch = self.batch_size // 4

    def _after_training(self, X) -> None:
        super()._after_training(X)
        self.module_.review_users = self.module_.review_items = self.module_.review_targets = None

    def _extra_meta(self) -> dict:
        return {"fmap_scale": self.fmap_scale_, "n_clusters_fitted": self.n_clusters_, "review_dim": self.review_dim_}

    def _restore_meta(self, meta: dict) -> None:
        self.fmap_scale_ = float(meta["fmap_scale"])
        self.n_clusters_ = int(meta["n_clusters_fitted"])
        self.review_dim_ = meta.get("review_dim")
        self.cluster_of_ = np.zeros(self.n_items_, dtype=np.int64)  # replaced by the saved buffer

    def _set_state(self, tensors, meta, **inputs) -> None:
        if "pooled_embed.weight" not in tensors:
            self.n_visual_factors = 0  # saved before the pooled term: the attention-only form it was trained as
        super()._set_state(tensors, meta, **inputs)
        self.cluster_of_ = self.module_.cluster_of.numpy()

    # ------------------------------------------------------------------ explanations
    def can_explain(self, artifacts) -> bool:
        """Always True: the attention weights are the explanation, whatever the artifacts hold."""
        return True

    def region_scores(self, user_vector: np.ndarray, item_idx: int, artifacts=None) -> np.ndarray:
        """The attention weights ``(h, w)`` of ``user_vector`` over item ``item_idx``'s regions (they sum to 1).

        Raises
        ------
        ExplanationUnavailable
            For an item outside the model's items.
        """
        try:
            return self.attention_map(user_vector, item_idx)
        except IndexError as exc:
            raise ExplanationUnavailable(str(exc)) from None

    @torch.no_grad()
    def attention_map(self, user_vector: np.ndarray, item_idx: int) -> np.ndarray:
        """The attention weights of a user (vector) over an item's regions, shaped like the feature map's grid.

        Raises
        ------
        IndexError
            For an item outside the model's items.
        """
        self._check_fitted()
        if not 0 <= int(item_idx) < self.n_items_:
            raise IndexError(f"Item index {item_idx} has no feature map in this model of {self.n_items_} items.")
        vector = torch.as_tensor(np.asarray(user_vector, dtype=np.float32))[None, :]
        _, alpha = self.module_.attended(vector, torch.tensor([int(item_idx)]))
        return alpha[0].numpy().reshape(self.module_.grid)

    @torch.no_grad()
    def predict_review_embedding(self, user_vector: np.ndarray, item_idx: int) -> np.ndarray | None:
        """The review head's sentence embedding for (user, item), or None when trained without reviews."""
        if self.module_.review_head is None:
            return None
        vector = torch.as_tensor(np.asarray(user_vector, dtype=np.float32))[None, :]
        attended, _ = self.module_.attended(vector, torch.tensor([int(item_idx)]))
        return self.module_.review_head(torch.cat([attended, self.module_.preference(vector)], dim=-1))[0].numpy()

    @property
    def cluster_assignments(self) -> np.ndarray:
        """The K-means cluster ``(n_items,)`` int64 of every item."""
        return self.module_.cluster_of.numpy()


def kmeans_clusters(features: np.ndarray, n_clusters: int, random_state: int | None = 0) -> np.ndarray:
    """The K-means cluster (faiss) ``(n,)`` int64 of each row of ``features`` ``(n, d)``; ``n_clusters`` is capped
    at the number of rows. Lloyd's algorithm with 5 restarts (faiss ``Kmeans``)."""
    import faiss

    features = np.ascontiguousarray(features, dtype=np.float32)
    k = int(min(n_clusters, len(features)))
    if k <= 1:
        return np.zeros(len(features), dtype=np.int64)
    kmeans = faiss.Kmeans(features.shape[1], k, niter=20, nredo=5, seed=int(random_state or 0), verbose=False,
                          min_points_per_centroid=1, max_points_per_centroid=10_000)
    kmeans.train(features)
    _, assignment = kmeans.index.search(features, 1)
    return assignment[:, 0].astype(np.int64)
