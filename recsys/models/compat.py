"""Learned compatibility spaces for "complete the look": which items of other categories go together.

Two models, both trained with triplets drawn from outfits, on precomputed item features (image vectors,
and title/description text vectors where a catalog has them; see :func:`recsys.tasks.compat.data.compatibility_features`):

* :class:`TripletCompatibility` -- the style embedding of Complete the Look (Kang et al., CVPR 2019): two
  fully connected layers with batch normalisation and dropout map an item to a 128-d L2-normalised style
  vector; a triplet loss with margin 0.2 pulls an item towards another-category item of the same outfit and
  pushes it away from an item of that category taken from another outfit.
* :class:`TypeAwareCompatibility` -- type-aware embedding (Vasileva et al., "Learning Type-Aware Embeddings
  for Fashion Compatibility", ECCV 2018): the same shared embedding, but each pair of types (here: slots)
  compares items in its own subspace, selected by a learned non-negative mask, so "goes with shoes" and
  "goes with a bottom" need not be the same notion of closeness.

Both expose the scoring interface the evaluation protocol and the outfit builder use, shared with the
untrained rows of :mod:`recsys.models.compat_baselines`: ``pair_compatibility`` (higher = goes better
together, in ``[0, 1]``), ``outfit_score`` (the mean over the set's pairs), and ``score(query_idx,
item_idx=None)`` for all items of the catalog. Models know nothing of metrics or splits;
:mod:`recsys.tasks.compat` owns those.
"""

from __future__ import annotations

import logging
import time
from typing import Sequence

import numpy as np
import torch
from torch import nn

from recsys.models.base import Estimator
from recsys.models.compat_triplets import TripletSampler, category_pools, triplets_from_outfits  # noqa: F401
from recsys.progress import ProgressCallback
from recsys.utils import l2_normalize, torch_threads

logger = logging.getLogger(__name__)

#: Threads ``fit`` uses. One: on the 2-core machines the studio targets, a second intra-op thread gains about 20%
#: when the machine is idle, and when anything else runs (the app, another training job) every small operation
#: waits for it -- measured 5-30x slower per training step than one thread.
TRAIN_THREADS = 1


# ---------------------------------------------------------------------- networks
class StyleEmbedder(nn.Module):
    """Two fully connected layers with batch normalisation and dropout to an L2-normalised style vector.

    Maps ``(batch, input_dim)`` features to ``(batch, embedding_dim)`` unit vectors (Kang et al. 2019).
    """

    def __init__(self, input_dim: int, hidden_dim: int = 256, embedding_dim: int = 128, dropout: float = 0.3):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(input_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, embedding_dim),
            nn.BatchNorm1d(embedding_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, input_dim)`` features -> ``(batch, embedding_dim)`` unit style vectors."""
        return nn.functional.normalize(self.layers(x), dim=-1)

    def forward_rows(self, table: torch.Tensor, *rows: torch.Tensor) -> list[torch.Tensor]:
        """Style vectors of several row sets of a feature ``table`` ``(n_items, input_dim)``: one
        ``(len(r), embedding_dim)`` tensor per ``r`` in ``rows`` (int64 row indices).

        The same as ``[self(table[r]) for r in rows]`` (batch norm and dropout still see each set on its own),
        but the first layer, which holds nearly all of the arithmetic, runs once on the distinct rows: a
        triplet batch names many items more than once.

        Raises
        ------
        IndexError
            For a row outside ``table``.
        """
        distinct, inverse = torch.unique(torch.cat(rows), return_inverse=True)
        hidden = self.layers[0](table[distinct])[inverse]
        out, start = [], 0
        for r in rows:
            out.append(nn.functional.normalize(self.layers[1:](hidden[start:start + len(r)]), dim=-1))
            start += len(r)
        return out


class _TypeMasks(nn.Module):
    """One non-negative mask per unordered pair of types (Vasileva et al. 2018, learned masks)."""

    def __init__(self, n_types: int, embedding_dim: int):
        super().__init__()
        self.n_types = n_types
        n_pairs = n_types * (n_types + 1) // 2
        self.masks = nn.Embedding(n_pairs, embedding_dim)
        # The paper's initialisation: around 0.9 with spread, so every subspace starts as most of the space.
        nn.init.normal_(self.masks.weight, mean=0.9, std=0.7)

    def pair_index(self, type_a: torch.Tensor, type_b: torch.Tensor) -> torch.Tensor:
        low, high = torch.minimum(type_a, type_b), torch.maximum(type_a, type_b)
        return low * self.n_types - low * (low - 1) // 2 + (high - low)

    def forward(self, type_a: torch.Tensor, type_b: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.masks(self.pair_index(type_a, type_b)))


# ---------------------------------------------------------------------- scoring shared by every compat model
class PairScorer:
    """``score`` and ``outfit_score`` from a model's ``pair_compatibility`` (mixin of every compat model)."""

    def score(self, query_idx: int, item_idx=None) -> np.ndarray:
        """Compatibility ``(len(item_idx),)`` of item ``query_idx`` with every item (or with ``item_idx``)."""
        item_idx = np.arange(len(self.item_embeddings_)) if item_idx is None else np.asarray(item_idx)
        return self.pair_compatibility(np.full(len(item_idx), int(query_idx)), item_idx)

    def outfit_score(self, item_idx) -> float:
        """Score of a whole set: the mean compatibility over its pairs (0 for fewer than two items)."""
        idx = np.asarray(item_idx, dtype=np.int64)
        if len(idx) < 2:
            return 0.0
        a, b = np.triu_indices(len(idx), k=1)
        return float(self.pair_compatibility(idx[a], idx[b]).mean())


# ---------------------------------------------------------------------- models
class TripletCompatibility(PairScorer, Estimator):
    """Complete-the-look style embedding trained with a triplet loss (Kang et al., CVPR 2019).

    Parameters
    ----------
    embedding_dim : int, default 128
        Length of the style vector.
    hidden_dim : int, default 256
        Width of the first fully connected layer.
    dropout : float, default 0.3
    margin : float, default 0.2
        Margin of :class:`torch.nn.TripletMarginLoss` (the paper's value).
    n_epochs, batch_size, learning_rate, reg
        Adam training schedule (``reg`` is Adam's weight decay); fresh negatives are drawn every epoch.
    max_triplets_per_outfit : int or None
        Cap on the (anchor, positive) pairs an outfit contributes per epoch.
    random_state : int
        Seeds triplet sampling, initialisation and dropout.

    Attributes
    ----------
    net_ : StyleEmbedder
    item_embeddings_ : ndarray of shape (n_items, embedding_dim)
        The style vectors of the items ``fit`` was given features for.
    item_types_ : ndarray of shape (n_items,)
        Type code of every item (used by type-aware subclasses).
    types_ : list of str
        The type names, position = code.
    history_ : list of float
        Mean training loss per epoch.
    n_triplets_per_epoch_ : int
    fit_seconds_ : float
    """

    name = "triplet"

    def __init__(self, *, embedding_dim: int = 128, hidden_dim: int = 256, dropout: float = 0.3, margin: float = 0.2,
                 n_epochs: int = 30, batch_size: int = 256, learning_rate: float = 1e-3, reg: float = 1e-5,
                 max_triplets_per_outfit: int | None = 24, random_state: int = 0):
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.margin = margin
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.max_triplets_per_outfit = max_triplets_per_outfit
        self.random_state = random_state

    def _build(self, input_dim: int, n_types: int) -> None:
        self.net_ = StyleEmbedder(input_dim, self.hidden_dim, self.embedding_dim, self.dropout)

    def _parameters(self):
        return list(self.net_.parameters())

    def _triplet_loss(self, fa, fp, fn, types) -> torch.Tensor:
        """The loss of a batch from the style vectors ``(b, embedding_dim)`` of its anchors, positives, negatives."""
        return nn.TripletMarginLoss(margin=self.margin)(fa, fp, fn)

    # ------------------------------------------------------------------ fitting
    def fit(self, features: np.ndarray, outfits: Sequence[Sequence[int]], categories: Sequence[str],
            types: Sequence[str] | None = None, progress: ProgressCallback | None = None) -> "TripletCompatibility":
        """Learn the space from outfits; returns ``self``.

        Parameters
        ----------
        features : ndarray of shape (n_items, d)
            Item features (see :func:`recsys.tasks.compat.data.compatibility_features`); row = catalog row.
        outfits : sequence of sequences of int
            Training outfits as item rows.
        categories : sequence of str, length n_items
            Fine categories: the negative of a triplet has the positive's category.
        types : sequence of str, length n_items, optional
            Coarse types (slots) for type-aware models; default: the categories.
        progress : callable ``(fraction, message)``, optional
            Called after every epoch.

        Raises
        ------
        ValueError
            When no outfit has two items, or the outfits give no triplets (one sentence).
        """
        started = time.perf_counter()
        with torch_threads(TRAIN_THREADS):
            self._fit(features, outfits, categories, types, progress)
        self.fit_seconds_ = time.perf_counter() - started
        logger.info("%s fitted on %d outfits in %.1f s (final loss %.4f)", self.name, len(outfits),
                    self.fit_seconds_, self.history_[-1])
        return self

    def _fit(self, features, outfits, categories, types, progress) -> None:
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        features = np.ascontiguousarray(features, dtype=np.float32)
        categories = np.asarray(categories)
        types = categories if types is None else np.asarray(types)
        self.types_ = sorted(set(types.tolist()))
        self.item_types_ = np.searchsorted(self.types_, types).astype(np.int64)
        outfits = [np.asarray(o, dtype=np.int64) for o in outfits if len(o) >= 2]
        if not outfits:
            raise ValueError("A compatibility model needs outfits of at least two items to learn from; the catalog has none.")
        sampler = TripletSampler(outfits, categories)  # pairs and negative pools once; fresh draws every epoch
        self._build(features.shape[1], len(self.types_))
        optimiser = torch.optim.Adam(self._parameters(), lr=self.learning_rate, weight_decay=self.reg)
        x = torch.from_numpy(features)
        item_types = torch.from_numpy(self.item_types_)
        self.history_ = []
        for epoch in range(self.n_epochs):
            triplets = sampler.draw(rng, self.max_triplets_per_outfit)
            if len(triplets) == 0:
                raise ValueError("The outfits give no triplets: each needs items of two categories and other outfits to draw negatives from.")
            triplets = torch.from_numpy(triplets[rng.permutation(len(triplets))])
            self._train_mode(True)
            total, count = 0.0, 0
            for start in range(0, len(triplets), self.batch_size):
                batch = triplets[start:start + self.batch_size]
                if len(batch) < 2:  # batch norm needs two rows
                    continue
                a, p, n = batch[:, 0], batch[:, 1], batch[:, 2]
                loss = self._triplet_loss(*self.net_.forward_rows(x, a, p, n), (item_types[a], item_types[p]))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
                count += len(batch)
            self.history_.append(total / max(count, 1))
            if progress:
                progress((epoch + 1) / self.n_epochs,
                         f"{self.name}: epoch {epoch + 1}/{self.n_epochs}, loss {self.history_[-1]:.4f}")
        self._train_mode(False)
        self.item_embeddings_ = self.transform(features)
        self.n_triplets_per_epoch_ = int(len(triplets))

    def _train_mode(self, training: bool) -> None:
        self.net_.train(training)

    # ------------------------------------------------------------------ scoring
    def transform(self, features: np.ndarray) -> np.ndarray:
        """Style vectors ``(n, embedding_dim)`` of ``(n, d)`` feature rows (e.g. of an uploaded photo)."""
        self._train_mode(False)
        with torch.inference_mode():
            return self.net_(torch.as_tensor(np.asarray(features, dtype=np.float32))).numpy()

    def type_code(self, type_name: str) -> int:
        """Code of a type name; an unseen type gets the first code's space (the general one for masks)."""
        try:
            return self.types_.index(type_name)
        except ValueError:
            return 0

    def compatibility(self, emb_a: np.ndarray, types_a: np.ndarray, emb_b: np.ndarray, types_b: np.ndarray) -> np.ndarray:
        """Elementwise compatibility in ``[0, 1]`` of embedding rows (broadcastable): ``1 - distance / 2``."""
        distance = np.linalg.norm(np.asarray(emb_a) - np.asarray(emb_b), axis=-1)
        return 1.0 - distance / 2.0

    def pair_compatibility(self, a_idx, b_idx) -> np.ndarray:
        """Compatibility of catalog item pairs (row arrays, broadcastable), in ``[0, 1]``."""
        a_idx, b_idx = np.asarray(a_idx), np.asarray(b_idx)
        return self.compatibility(self.item_embeddings_[a_idx], self.item_types_[a_idx],
                                  self.item_embeddings_[b_idx], self.item_types_[b_idx])

    # ------------------------------------------------------------------ persistence (Estimator.save/load)
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict]:
        if not hasattr(self, "net_"):
            raise RuntimeError(f"The {self.name} compatibility model is not fitted; call fit first.")
        tensors = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        tensors["item_embeddings"] = self.item_embeddings_.astype(np.float32)
        tensors["item_types"] = self.item_types_
        meta = {"types": self.types_, "input_dim": int(self.net_.layers[0].in_features), "history": self.history_,
                "fit_seconds": self.fit_seconds_, "n_triplets_per_epoch": self.n_triplets_per_epoch_}
        return tensors, meta

    def _set_state(self, tensors: dict[str, np.ndarray], meta: dict, **inputs) -> None:
        self.types_ = list(meta["types"])
        self._build(int(meta["input_dim"]), len(self.types_))
        self._load_tensors({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
        self._train_mode(False)
        self.item_embeddings_ = np.asarray(tensors["item_embeddings"], dtype=np.float32)
        self.item_types_ = np.asarray(tensors["item_types"], dtype=np.int64)
        self.history_ = list(meta.get("history", []))
        self.fit_seconds_ = float(meta.get("fit_seconds", 0.0))
        self.n_triplets_per_epoch_ = int(meta.get("n_triplets_per_epoch", 0))

    def _load_tensors(self, tensors: dict) -> None:
        self.net_.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})


class TypeAwareCompatibility(TripletCompatibility):
    """Type-aware compatibility embedding (Vasileva et al., ECCV 2018).

    A shared embedding (the same two-layer network as :class:`TripletCompatibility`) followed, for each
    unordered pair of types ``(u, v)``, by a learned non-negative mask ``m_uv``: items ``x`` of type ``u``
    and ``y`` of type ``v`` are compared by ``|| norm(f(x) * m_uv) - norm(f(y) * m_uv) ||``. The triplet
    loss is the paper's -- anchor of type ``u``, positive and negative of type ``v``, distances in the
    ``(u, v)`` subspace -- plus an L1 penalty that keeps the masks sparse and a small general-space term
    so the shared embedding stays meaningful on its own.

    Parameters
    ----------
    mask_l1 : float, default 5e-4
        Weight of the L1 penalty on the masks.
    general_weight : float, default 0.1
        Weight of the triplet loss in the unmasked shared space.
    others
        As :class:`TripletCompatibility`.

    Attributes
    ----------
    masks_ : _TypeMasks
        The learned masks, one per type pair.
    """

    name = "type-aware"

    def __init__(self, *, embedding_dim: int = 128, hidden_dim: int = 256, dropout: float = 0.3, margin: float = 0.2,
                 n_epochs: int = 30, batch_size: int = 256, learning_rate: float = 1e-3, reg: float = 1e-5,
                 max_triplets_per_outfit: int | None = 24, random_state: int = 0, mask_l1: float = 5e-4,
                 general_weight: float = 0.1):
        super().__init__(embedding_dim=embedding_dim, hidden_dim=hidden_dim, dropout=dropout, margin=margin,
                         n_epochs=n_epochs, batch_size=batch_size, learning_rate=learning_rate, reg=reg,
                         max_triplets_per_outfit=max_triplets_per_outfit, random_state=random_state)
        self.mask_l1 = mask_l1
        self.general_weight = general_weight

    def _build(self, input_dim: int, n_types: int) -> None:
        super()._build(input_dim, n_types)
        self.masks_ = _TypeMasks(n_types, self.embedding_dim)

    def _parameters(self):
        return list(self.net_.parameters()) + list(self.masks_.parameters())

    def _train_mode(self, training: bool) -> None:
        self.net_.train(training)
        self.masks_.train(training)

    def _triplet_loss(self, fa, fp, fn, types) -> torch.Tensor:
        type_a, type_p = types
        mask = self.masks_(type_a, type_p)
        masked = [nn.functional.normalize(f * mask, dim=-1) for f in (fa, fp, fn)]
        loss = nn.TripletMarginLoss(margin=self.margin)
        value = loss(*masked) + self.general_weight * loss(fa, fp, fn)
        return value + self.mask_l1 * self.masks_.masks.weight.abs().mean()

    def compatibility(self, emb_a, types_a, emb_b, types_b) -> np.ndarray:
        """Elementwise compatibility in ``[0, 1]`` in the subspace of each pair's types (broadcastable)."""
        emb_a, emb_b = np.asarray(emb_a, dtype=np.float32), np.asarray(emb_b, dtype=np.float32)
        types_a, types_b = np.broadcast_arrays(np.asarray(types_a, dtype=np.int64), np.asarray(types_b, dtype=np.int64))
        with torch.inference_mode():
            mask = self.masks_(torch.from_numpy(np.ascontiguousarray(types_a)),
                               torch.from_numpy(np.ascontiguousarray(types_b))).numpy()
        a = l2_normalize(emb_a * mask)
        b = l2_normalize(emb_b * mask)
        return 1.0 - np.linalg.norm(a - b, axis=-1) / 2.0

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict]:
        tensors, meta = super()._get_state()
        tensors["masks"] = self.masks_.masks.weight.detach().cpu().numpy()
        return tensors, meta

    def _load_tensors(self, tensors: dict) -> None:
        super()._load_tensors(tensors)
        self.masks_.masks.weight.data.copy_(tensors["masks"])
