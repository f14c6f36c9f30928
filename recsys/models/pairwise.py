"""The shared machinery of the pairwise personalized rankers (BPR, VBPR, DVBPR, VECF).

Every ranker here scores a user-item pair as a function of a learned *user vector* and the item, is trained
with the BPR loss on sampled (user, positive, negative) triples, and can *fold in* a new user: learn a user
vector from a handful of liked items while every item-side parameter stays fixed.

Models follow the house's scikit-learn/cornac style (:class:`recsys.models.base.Estimator`): the constructor
stores keyword arguments, ``fit(X, ...)`` takes the training interactions as a ``(n_users, n_items)`` sparse
matrix and returns ``self``, learned state ends in ``_``, and ``score(user_idx, item_idx=None)`` returns the
scores of all (or the given) items. Explanations are methods: a model that can split a score over image regions
sets ``explains_regions`` and implements ``can_explain`` / ``region_scores``.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from recsys.models.base import Estimator
from recsys.models.bpr_sampling import sample_triples  # noqa: F401  (part of this module's interface)
from recsys.utils import as_csr, torch_threads

logger = logging.getLogger(__name__)

#: Called after each epoch with ``(epoch, model)``; returns a validation score (higher is better) or None.
EpochCallback = Callable[[int, "PairwiseRanker"], float | None]


class UnknownUserError(KeyError):
    """A user index outside the users the model was fitted on; the message is one sentence."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ExplanationUnavailable(ValueError):
    """A model cannot explain an item (no visual regions, or no feature map for it); one sentence says why."""


class PairwiseModule(nn.Module):
    """A scorer ``x(user_vector, item)``; subclasses say how an item turns into a score for a user vector."""

    #: True when an item's vector depends on the user (VECF's attention), so it cannot be computed once.
    user_dependent_items = False
    #: Items scored per step when item vectors depend on the user (bounds the memory of one step).
    items_per_step = 8192

    def __init__(self, n_users: int, user_dim: int):
        super().__init__()
        self.user = nn.Embedding(n_users, user_dim)
        nn.init.normal_(self.user.weight, std=0.1)

    def pair_scores(self, user_vectors: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        """Scores of ``(B, d)`` user vectors with ``(B,)`` items."""
        vectors, bias = self.item_side(item_idx)
        return (user_vectors * vectors).sum(-1) + bias

    def all_scores(self, user_vectors: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, m)`` of every user vector with every one of ``m`` items."""
        vectors, bias = self.item_side(item_idx)
        return user_vectors @ vectors.T + bias[None, :]

    def item_side(self, item_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Item vectors ``(m, d)`` and biases ``(m,)`` of ``(m,)`` items (for models whose items need no user).

        Raises
        ------
        NotImplementedError
            In this base class, and in modules whose item vectors depend on the user (``user_dependent_items``).
        """
        raise NotImplementedError

    def regularized(self, user_vectors: torch.Tensor, item_idx: torch.Tensor) -> torch.Tensor:
        """The squared norm of the user and item vectors a batch touches (the L2 term of the BPR criterion)."""
        vectors, _ = self.item_side(item_idx)
        return user_vectors.pow(2).sum() + vectors.pow(2).sum()

    def bias_penalty(self, item_idx: torch.Tensor) -> torch.Tensor | float:
        """The squared item biases a batch touches, regularized on their own (VBPR's lambda_beta)."""
        table = getattr(self, "item_bias", None)
        return table(item_idx).pow(2).sum() if isinstance(table, nn.Embedding) else 0.0

    def extra_loss(self, users: torch.Tensor, positives: torch.Tensor) -> torch.Tensor | None:
        """A model's auxiliary loss on a batch of observed pairs (VECF's review supervision), or None."""
        return None

    def batch_margins(self, users: torch.Tensor, user_vectors: torch.Tensor, positives: torch.Tensor,
                      negatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One training step's BPR margins ``x_ui - x_uj`` ``(B,)`` for ``(B,)`` users with vectors ``(B, d)`` and
        ``(B,)`` positive and negative items, and the model's auxiliary loss (:meth:`extra_loss`) or None.

        Items whose vectors do not depend on the user are computed once per distinct item of the step (an item
        drawn several times, or both as a positive and a negative, costs one row of the item side); a module whose
        items depend on the user overrides it (VECF) or scores each side on its own.
        """
        if self.user_dependent_items:
            margin = self.pair_scores(user_vectors, positives) - self.pair_scores(user_vectors, negatives)
            return margin, self.extra_loss(users, positives)
        b = len(positives)
        items, where = torch.unique(torch.cat([positives, negatives]), return_inverse=True)
        vectors, bias = self.item_side(items)
        scores = (user_vectors.repeat(2, 1) * vectors[where]).sum(-1) + bias[where]
        return scores[:b] - scores[b:], self.extra_loss(users, positives)

    @torch.no_grad()
    def forget_items(self, unseen: torch.Tensor) -> None:
        """Zero the item-specific parameters of items never seen in training.

        Their rows were only ever moved by regularization from a random start; zeroing them makes a cold-start
        item's score come from its shared (visual, cluster) terms alone, as the papers intend.
        """
        for name in ("item", "item_bias"):
            table = getattr(self, name, None)
            if isinstance(table, nn.Embedding):
                table.weight[unseen] = 0.0


class PairwiseRanker(Estimator):
    """Base of the rankers trained with BPR (Rendle et al., 2009); see the module docstring.

    Subclasses implement ``_build_module(n_users, n_items)`` and declare their side inputs in ``_side_names``
    (arrays given to ``fit`` and again to ``load``, never saved with the weights).

    Parameters
    ----------
    n_epochs : int
        Epochs of BPR; each samples every observed pair once.
    batch_size : int
        Triples per Adam step.
    learning_rate : float
        Adam's step size.
    reg : float
        L2 weight of the user and item vectors a batch touches.
    bias_reg : float, optional
        L2 weight of the item biases (VBPR's lambda_beta); default ``reg``.
    random_state : int, optional
        Seeds the triple sampling and torch's initialisation.
    """

    _side_names: tuple[str, ...] = ()
    #: Intra-op threads of ``fit``. One: a step is many small products (a few ms each); on an idle 2-core machine a
    #: second thread makes training 1.4x faster, but as soon as anything else runs it spin-waits for the busy core
    #: (demo world: VECF 32 s on one thread against 43 s on two beside one busy process; VBPR 17 s against 129 s
    #: on a loaded machine). ``None`` keeps torch's setting.
    fit_threads: int | None = 1
    #: What :meth:`region_scores` returns means, for a page to say in a few words (None: no region scores).
    region_meaning: str | None = None

    def __init__(self, *, n_epochs: int = 30, batch_size: int = 1024, learning_rate: float = 0.01,
                 reg: float = 1e-4, bias_reg: float | None = None, random_state: int | None = 0):
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.bias_reg = bias_reg
        self.random_state = random_state

    # ------------------------------------------------------------------ parameters
    def _build_module(self, n_users: int, n_items: int) -> PairwiseModule:
        raise NotImplementedError

    def _set_side(self, side: dict) -> None:
        missing = [name for name in self._side_names if side.get(name) is None]
        if missing:
            raise ValueError(f"{type(self).__name__} needs {', '.join(missing)}.")
        self.side_ = {name: side[name] for name in self._side_names}

    # ------------------------------------------------------------------ training
    def fit(self, X, *, on_epoch: EpochCallback | None = None, **side) -> "PairwiseRanker":
        """Fit on the interactions ``X`` (users x items); ``on_epoch`` may return a validation score.

        When ``on_epoch`` returns scores, the parameters of the best epoch are kept (early stopping on
        validation; the caller never hands test data here). Runs on :attr:`fit_threads` intra-op threads.

        Parameters
        ----------
        X : sparse matrix ``(n_users, n_items)``
            Training interactions; any non-zero is an observed pair.
        on_epoch : callable, optional
            ``on_epoch(epoch, model) -> float | None`` after each epoch (1-based).
        **side
            The model's side inputs (``_side_names``), e.g. ``item_features`` ``(n_items, d)``.

        Raises
        ------
        ValueError
            When a side input the model needs is missing.
        """
        with torch_threads(self.fit_threads):
            return self._fit(X, on_epoch, side)

    def _fit(self, X, on_epoch: EpochCallback | None, side: dict) -> "PairwiseRanker":
        X = as_csr(X)
        self.n_users_, self.n_items_ = X.shape
        self._set_side(side)
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(int(rng.integers(2**31)))
        self.module_ = self._build_module(self.n_users_, self.n_items_)
        self.item_counts_ = np.asarray(X.sum(axis=0)).ravel()
        self._before_training(X)
        optimizer = torch.optim.Adam([p for p in self.module_.parameters() if p.requires_grad], lr=self.learning_rate)
        best_score, best_state, best_epoch = -np.inf, None, self.n_epochs
        self.history_ = []
        started = time.perf_counter()
        for epoch in range(1, self.n_epochs + 1):
            loss = self._train_epoch(X, rng, optimizer)
            record = {"epoch": epoch, "loss": loss}
            if on_epoch is not None:
                score = on_epoch(epoch, self)
                if score is not None:
                    record["validation"] = float(score)
                    if score > best_score:
                        best_score, best_epoch = score, epoch
                        best_state = {k: v.detach().clone() for k, v in self.module_.state_dict().items()}
            self.history_.append(record)
            logger.debug("%s epoch %d loss %.4f", type(self).__name__, epoch, loss)
        if best_state is not None:
            self.module_.load_state_dict(best_state)
        self.best_epoch_ = best_epoch
        self.fit_seconds_ = time.perf_counter() - started
        self._after_training(X)
        self.module_.eval()
        self._item_cache = None
        return self

    def _before_training(self, X: sp.csr_matrix) -> None:
        """Hook run once the module exists (VECF clusters items here)."""

    def _after_training(self, X: sp.csr_matrix) -> None:
        """Run after the best parameters are restored: cold-start items lose their untrained item factors."""
        self.module_.forget_items(torch.from_numpy(self.item_counts_ == 0))

    def _train_epoch(self, X: sp.csr_matrix, rng: np.random.Generator, optimizer) -> float:
        self._item_cache = None
        self.module_.train()
        users, positives, negatives = (torch.from_numpy(a) for a in sample_triples(X, rng, self.n_items_))
        bias_reg = self.reg if self.bias_reg is None else self.bias_reg
        total, batches = 0.0, 0
        for start in range(0, len(users), self.batch_size):
            u = users[start : start + self.batch_size]
            i = positives[start : start + self.batch_size]
            j = negatives[start : start + self.batch_size]
            user_vectors = self.module_.user(u)
            margin, extra = self.module_.batch_margins(u, user_vectors, i, j)
            loss = -F.logsigmoid(margin).mean()
            loss = loss + self.reg * (self.module_.regularized(user_vectors, i)
                                      + self.module_.regularized(user_vectors[:0], j)) / len(u)
            loss = loss + bias_reg * (self.module_.bias_penalty(i) + self.module_.bias_penalty(j)) / len(u)
            if extra is not None:
                loss = loss + extra
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        return total / max(batches, 1)

    # ------------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise RuntimeError(f"This {type(self).__name__} is not fitted yet; call fit first.")

    def user_vectors(self, user_idx) -> np.ndarray:
        """The learned vectors ``(len(user_idx), d)`` float32 of the users ``user_idx`` (an int or a list).

        Raises
        ------
        UnknownUserError
            For an index outside the fitted users (one sentence).
        RuntimeError
            When the model is not fitted.
        """
        self._check_fitted()
        user_idx = np.atleast_1d(np.asarray(user_idx, dtype=np.int64))
        bad = user_idx[(user_idx < 0) | (user_idx >= self.n_users_)]
        if len(bad):
            raise UnknownUserError(f"User index {int(bad[0])} is not one of the {self.n_users_} users the model was fitted on.")
        return self.module_.user.weight[torch.from_numpy(user_idx)].detach().numpy()

    @torch.no_grad()
    def score_vectors(self, user_vectors: np.ndarray, item_idx=None, chunk: int | None = None) -> np.ndarray:
        """Scores of explicit user vectors (``(d,)`` or ``(B, d)``, e.g. folded-in users) with all or given items.

        Returns ``(n_items,)`` (or ``(len(item_idx),)``) for one vector, ``(B, ...)`` for several.

        Raises
        ------
        RuntimeError
            When the model is not fitted.
        """
        self._check_fitted()
        vectors = torch.as_tensor(np.atleast_2d(user_vectors), dtype=torch.float32)
        if not self.module_.user_dependent_items and not self.module_.training:
            # The item side does not depend on the user: compute it once for all items, then score by a product.
            if getattr(self, "_item_cache", None) is None:
                self._item_cache = self.module_.item_side(torch.arange(self.n_items_))
            item_vectors, bias = self._item_cache
            if item_idx is not None:
                index = torch.as_tensor(np.atleast_1d(item_idx))
                item_vectors, bias = item_vectors[index], bias[index]
            scores = (vectors @ item_vectors.T + bias[None, :]).numpy()
            return scores[0] if np.ndim(user_vectors) == 1 else scores
        items = torch.arange(self.n_items_) if item_idx is None else torch.as_tensor(np.atleast_1d(item_idx))
        chunk = chunk or self.module_.items_per_step
        parts = [self.module_.all_scores(vectors, items[s : s + chunk]) for s in range(0, len(items), chunk)]
        scores = torch.cat(parts, dim=1).numpy()
        return scores[0] if np.ndim(user_vectors) == 1 else scores

    def score(self, user_idx, item_idx=None) -> np.ndarray:
        """Scores of user ``user_idx`` (an int: shape ``(n_items,)``; a list: ``(len, n_items)``) for all or given items.

        Raises
        ------
        UnknownUserError
            For a user index outside the fitted users.
        """
        vectors = self.user_vectors(user_idx)
        scores = self.score_vectors(vectors, item_idx)
        return scores[0] if np.ndim(user_idx) == 0 else scores

    # ------------------------------------------------------------------ new users
    def fold_in(self, liked_item_idx, n_steps: int = 150, n_negatives: int = 64, learning_rate: float = 0.05,
                random_state: int | None = 0) -> np.ndarray:
        """Learn a new user's vector from the items they liked, every item-side parameter fixed.

        The BPR criterion of the new user alone: each liked item against uniformly drawn other items.

        Returns the user vector ``(d,)`` float32, to pass to :meth:`score_vectors`.

        Raises
        ------
        ValueError
            When no liked item is given, or an index is outside the catalog.
        """
        self._check_fitted()
        liked = np.unique(np.asarray(liked_item_idx, dtype=np.int64))
        if len(liked) == 0:
            raise ValueError("Pick at least one item you like to get recommendations as a new user.")
        if liked.min() < 0 or liked.max() >= self.n_items_:
            raise ValueError(f"Item index {int(liked.max())} is outside the catalog of {self.n_items_} items.")
        rng = np.random.default_rng(random_state)
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        dim = self.module_.user.embedding_dim
        vector = (torch.randn(1, dim, generator=generator) * 0.1).requires_grad_(True)
        optimizer = torch.optim.Adam([vector], lr=learning_rate)
        candidates = np.setdiff1d(np.arange(self.n_items_), liked)
        positives = torch.from_numpy(np.repeat(liked, max(1, n_negatives // len(liked))))
        for p in self.module_.parameters():
            p.requires_grad_(False)
        try:
            for _ in range(n_steps):
                negatives = torch.from_numpy(rng.choice(candidates, size=len(positives)))
                expanded = vector.expand(len(positives), dim)
                margin = self.module_.pair_scores(expanded, positives) - self.module_.pair_scores(expanded, negatives)
                loss = -F.logsigmoid(margin).mean() + self.reg * vector.pow(2).sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        finally:
            for p in self.module_.parameters():
                p.requires_grad_(True)
            self._freeze()
        return vector.detach().numpy()[0]

    def _freeze(self) -> None:
        """Re-freeze parameters that are never trained (the frozen encoders' buffers are not parameters)."""

    # ------------------------------------------------------------------ explanations
    def can_explain(self, artifacts) -> bool:
        """True when :meth:`region_scores` can split this model's scores over the regions of ``artifacts``' maps."""
        return False

    def region_scores(self, user_vector: np.ndarray, item_idx: int, artifacts) -> np.ndarray:
        """Which regions of item ``item_idx``'s image drove its score for ``user_vector``, on the feature-map grid.

        Raises
        ------
        ExplanationUnavailable
            Always here: this model has no image regions (VBPR, DVBPR and VECF override it).
        """
        raise ExplanationUnavailable(f"{type(self).__name__} has no image regions to explain its score with; "
                                     "pick VECF, VBPR or DVBPR (ImageNet).")

    def score_terms(self, user_vector: np.ndarray, item_idx: int) -> dict[str, float]:
        """One item's score split into named terms (empty for a model whose score has no readable terms)."""
        return {}

    # ------------------------------------------------------------------ persistence (Estimator.save / load)
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict]:
        self._check_fitted()
        tensors = {k: v.detach().numpy() for k, v in self.module_.state_dict().items()}
        tensors["item_counts_"] = self.item_counts_.astype(np.float32)
        meta = {"n_users": self.n_users_, "n_items": self.n_items_, "best_epoch": self.best_epoch_,
                "fit_seconds": round(self.fit_seconds_, 3), "history": self.history_, **self._extra_meta()}
        return tensors, meta

    def _extra_meta(self) -> dict:
        return {}

    def _set_state(self, tensors: dict[str, np.ndarray], meta: dict, *, n_users: int | None = None,
                   n_items: int | None = None, **side) -> None:
        """Rebuild the module from saved weights; ``side`` are the side inputs ``fit`` had.

        ``n_users`` / ``n_items``, when given, are what the catalog has now: a model fitted on other interactions
        (the catalog fingerprint covers the items only) is refused.

        Raises
        ------
        ValueError
            When the saved model has other users or items than the catalog, or a side input is missing.
        """
        saved_users, saved_items = int(meta["n_users"]), int(meta["n_items"])
        if (n_users is not None and n_users != saved_users) or (n_items is not None and n_items != saved_items):
            raise ValueError(f"The saved {type(self).__name__} was trained on {saved_users} users and {saved_items} "
                             f"items, and the catalog now has {n_users} users and {n_items} items; retrain it.")
        tensors = dict(tensors)
        self.n_users_, self.n_items_ = saved_users, saved_items
        self._set_side(side)
        self._restore_meta(meta)
        self.module_ = self._build_module(self.n_users_, self.n_items_)
        self.item_counts_ = tensors.pop("item_counts_")
        self.module_.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()})
        self.module_.eval()
        self._item_cache = None
        self.best_epoch_ = meta.get("best_epoch")
        self.fit_seconds_ = meta.get("fit_seconds", 0.0)
        self.history_ = meta.get("history", [])

    def _restore_meta(self, meta: dict) -> None:
        """Restore what :meth:`_extra_meta` wrote, before the module is built."""
