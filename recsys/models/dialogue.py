"""Dialogue-based coordi-set recommendation: FASCODE's projection net + transfer net, and a contrastive variant.

The method of the FASCODE paper (Kim et al., "FASCODE: Fashion Coordination Dataset and Dialogue-based
Coordi-set Recommendation", ETRI, 2021): every item is embedded from its image and its text, each vector is
projected and the two are fused into one reduced space (the *projection net*, 300-d by default); a dialogue
embedding is mapped into that space, one vector per slot, by the *transfer net* (four blocks of fully
connected + batch norm + ReLU + dropout); training regresses the transferred vectors onto the projected
items of the coordi-set that ended the dialogue (MSE) with an item-id classification head, and drops 15% of
the image or text vectors so the model copes with items missing one modality. At inference the nearest item
of each slot forms the proposed set, and candidate sets are ranked by their distance to the transferred
vectors.

The better variant follows the paper's own future work: an InfoNCE objective (the gold item against every
other item of its slot) instead of the regression, and a set score that adds an outfit-compatibility score.

Dialogues reach the model as vectors (:func:`recsys.tasks.dialogue.messages.dialogue_vectors`); the model knows
nothing of text encoders, chats or metrics (those live in :mod:`recsys.tasks.dialogue`).
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recsys.models.base import Estimator, StaleModelError
from recsys.progress import ProgressCallback
from recsys.utils import l2_normalize, top_n, torch_threads

logger = logging.getLogger(__name__)

#: Threads :meth:`DialogueCoordiRecommender.fit` uses. One: on the 2-core machines the studio targets, a second
#: intra-op thread gains little when the machine is idle, and when anything else runs (the app, another
#: training job) every small operation waits for it -- measured 10x slower per step than one thread.
TRAIN_THREADS = 1

#: The four positions of a FASCODE coordi-set, in the dataset's order.
FASCODE_SLOTS = ("outer", "top", "bottom", "shoes")
#: Where a catalog slot sits in a coordi-set (FASCODE puts a one-piece in the bottom position).
CATALOG_TO_FASCODE = {"outer": "outer", "top": "top", "bottom": "bottom", "onepiece": "bottom", "shoes": "shoes"}


# ====================================================================== networks
class ProjectionNet(nn.Module):
    """FASCODE's projection net: image and text item vectors, each projected, fused into ``dim`` (unit length).

    ``forward(image (n, d_image), text (n, d_text), image_mask (n,), text_mask (n,)) -> (n, dim)``. A missing
    modality (mask 0) contributes nothing; the fusion sees which one is missing through the zeroed half, as in
    the paper's missing-modality training.
    """

    def __init__(self, image_dim: int, text_dim: int, dim: int = 300):
        super().__init__()
        self.image_proj = nn.Linear(image_dim, dim)
        self.text_proj = nn.Linear(text_dim, dim)
        self.fuse = nn.Sequential(nn.ReLU(), nn.Linear(2 * dim, dim))

    def forward(self, image, text, image_mask, text_mask):
        """``image (n, d_image), text (n, d_text), image_mask (n,), text_mask (n,) -> (n, dim)`` unit item vectors."""
        parts = torch.cat([self._project(self.image_proj, image, image_mask),
                           self._project(self.text_proj, text, text_mask)], 1)
        return F.normalize(self.fuse(parts), dim=-1)

    @staticmethod
    def _project(layer: nn.Linear, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # A modality no row reads (the text-only ablation) is all zeros: skip its product.
        if not bool(mask.any()):
            return x.new_zeros(len(x), layer.out_features)
        return layer(x) * mask[:, None]


class TransferNet(nn.Module):
    """FASCODE's transfer net: ``blocks`` x (FC + batch norm + ReLU + dropout), then one unit vector per slot.

    ``forward(dialogues (m, in_dim)) -> (m, n_slots, dim)``.
    """

    def __init__(self, in_dim: int, dim: int = 300, n_slots: int = 4, hidden: int = 512, blocks: int = 4,
                 dropout: float = 0.2):
        super().__init__()
        layers, width = [], in_dim
        for _ in range(blocks):
            layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        self.blocks = nn.Sequential(*layers)
        # A plain linear read-out: a last ReLU would confine the targets to the positive orthant.
        self.out = nn.Linear(hidden, n_slots * dim)
        self.n_slots, self.dim = n_slots, dim

    def forward(self, x):
        """``(m, in_dim)`` dialogue features -> ``(m, n_slots, dim)``, one unit target vector per slot."""
        return F.normalize(self.out(self.blocks(x)).view(-1, self.n_slots, self.dim), dim=-1)


# ====================================================================== set scores
def cosine_agreement(vectors: np.ndarray, item_idx: Sequence[int]) -> float:
    """Mean pairwise cosine similarity of the items of a set: a world-agnostic stand-in for compatibility.

    ``vectors`` is ``(n_items, d)``; rows ``-1`` of ``item_idx`` (empty slots) are ignored; a set of fewer than
    two items scores 0.
    """
    idx = [int(i) for i in item_idx if i >= 0]
    if len(idx) < 2:
        return 0.0
    v = l2_normalize(vectors[idx])
    sims = v @ v.T
    a, b = np.triu_indices(len(idx), k=1)
    return float(sims[a, b].mean())


# ====================================================================== the model
class DialogueCoordiRecommender(Estimator):
    """Dialogue -> coordi-set recommender of FASCODE (projection net + transfer net), and its contrastive variant.

    Kim et al., "FASCODE: Fashion Coordination Dataset and Dialogue-based Coordi-set Recommendation" (2021).

    Parameters
    ----------
    objective : {"mse", "infonce"}
        ``"mse"``: the paper's regression of transferred vectors onto the gold items' projections, plus the
        item-id head. ``"infonce"``: cross-entropy of the gold item against all items of its slot with
        temperature ``temperature`` (the paper's future work), plus the same item-id head on the items.
    dim : int
        Size of the fused item space (the paper: 300).
    hidden, blocks, dropout : int, int, float
        Width, depth and dropout of the transfer net.
    modality_dropout : float
        Share of training items whose image or text vector is dropped (the paper: 0.15).
    use_image, use_text : bool
        Which item modalities the projection net reads (``use_image=False`` is the text-only ablation).
    id_head_weight : float
        Weight of the item-id classification loss.
    temperature : float
        InfoNCE temperature.
    compat_weight : float
        Weight of the compatibility term in :meth:`set_scores` (0: distance only, as in the paper).
    n_negatives : int
        Items sampled per batch besides the gold ones (InfoNCE negatives, rows of the item-id head).
    n_epochs, batch_size, learning_rate, reg : int, int, float, float
        Training schedule (Adam; ``reg`` is its weight decay).
    random_state : int
    text_encoder : str
        Spec of the text encoder the dialogue vectors are made with ("" when unknown). Loading checks it
        against the encoder the caller has (see :meth:`_set_state`).

    Attributes
    ----------
    item_embeddings_ : ndarray of shape (n_items, dim)
        Projected items (unit rows).
    item_slot_ : ndarray of shape (n_items,)
        The FASCODE slot position of each item (-1: none).
    image_available_ : bool ndarray of shape (n_items,)
    history_ : list of float
        Training loss per epoch.
    fit_seconds_ : float
    """

    def __init__(self, *, objective: str = "mse", dim: int = 300, hidden: int = 512, blocks: int = 4,
                 dropout: float = 0.2, modality_dropout: float = 0.15, use_image: bool = True, use_text: bool = True,
                 id_head_weight: float = 1.0, temperature: float = 0.07, compat_weight: float = 0.0,
                 n_negatives: int = 512, n_epochs: int = 60, batch_size: int = 64, learning_rate: float = 1e-3,
                 reg: float = 1e-4, random_state: int = 0, text_encoder: str = ""):
        self.objective = objective
        self.dim = dim
        self.hidden = hidden
        self.blocks = blocks
        self.dropout = dropout
        self.modality_dropout = modality_dropout
        self.use_image = use_image
        self.use_text = use_text
        self.id_head_weight = id_head_weight
        self.temperature = temperature
        self.compat_weight = compat_weight
        self.n_negatives = n_negatives
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.random_state = random_state
        self.text_encoder = text_encoder

    # ------------------------------------------------------------------ helpers
    def _masks(self, n: int, image_available: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
        image_mask = torch.full((n,), 1.0 if self.use_image else 0.0)
        if image_available is not None:
            image_mask = image_mask * torch.as_tensor(np.asarray(image_available, dtype=np.float32))
        text_mask = torch.full((n,), 1.0 if self.use_text else 0.0)
        return image_mask, text_mask

    def _build(self, image_dim: int, text_dim: int, dialogue_dim: int, n_items: int) -> None:
        self.projection_ = ProjectionNet(image_dim, text_dim, self.dim)
        self.transfer_ = TransferNet(dialogue_dim, self.dim, len(FASCODE_SLOTS), self.hidden, self.blocks, self.dropout)
        self.id_head_ = nn.Linear(self.dim, n_items)

    # ------------------------------------------------------------------ fitting
    def fit(self, dialogue_vectors: np.ndarray, coordis: np.ndarray, image: np.ndarray, text: np.ndarray,
            item_slots: Sequence[str], image_available: np.ndarray | None = None,
            progress: ProgressCallback | None = None) -> "DialogueCoordiRecommender":
        """Train on dialogues and the coordi-sets that ended them; returns ``self``.

        Parameters
        ----------
        dialogue_vectors : ndarray of shape (m, d)
            From :func:`recsys.tasks.dialogue.messages.dialogue_vectors`.
        coordis : int ndarray of shape (m, 4)
            Item row of each FASCODE slot (outer, top, bottom, shoes); -1 where the set leaves it empty.
        image, text : ndarray of shape (n_items, d_image) and (n_items, d_text)
            The catalog's item vectors (artifacts).
        item_slots : sequence of str, length n_items
            Catalog slot of each item (``onepiece`` counts as the bottom position).
        image_available : bool ndarray of shape (n_items,), optional
            False for items without a real image (a placeholder): their image vector is never read.
        progress : callable, optional
            ``progress(fraction, message)`` after every epoch.

        Raises
        ------
        ValueError
            For an unknown objective, no modality in use, mismatched inputs or fewer than two dialogues.
        """
        if self.objective not in ("mse", "infonce"):
            raise ValueError(f"Unknown objective '{self.objective}'; choose 'mse' or 'infonce'.")
        if not (self.use_image or self.use_text):
            raise ValueError("The projection net needs at least one of use_image and use_text.")
        dialogue_vectors = np.asarray(dialogue_vectors, dtype=np.float32)
        coordis = np.asarray(coordis, dtype=np.int64)
        if len(dialogue_vectors) != len(coordis) or coordis.ndim != 2 or coordis.shape[1] != len(FASCODE_SLOTS):
            raise ValueError("fit needs one coordi row of 4 item positions per dialogue vector.")
        if len(dialogue_vectors) < 2:
            raise ValueError("fit needs at least two training dialogues.")
        started = time.perf_counter()
        with torch_threads(TRAIN_THREADS):
            self._fit(dialogue_vectors, coordis, image, text, item_slots, image_available, progress)
        self.fit_seconds_ = time.perf_counter() - started
        logger.info("fit %s dialogue model on %d dialogues in %.1f s", self.objective, len(coordis), self.fit_seconds_)
        return self

    def _fit(self, dialogue_vectors, coordis, image, text, item_slots, image_available, progress) -> None:
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        self.item_slot_ = np.array([FASCODE_SLOTS.index(CATALOG_TO_FASCODE[s]) if s in CATALOG_TO_FASCODE else -1
                                    for s in item_slots], dtype=np.int64)
        n_items = len(self.item_slot_)
        self.image_available_ = (np.ones(n_items, bool) if image_available is None
                                 else np.asarray(image_available, dtype=bool))
        self._build(image.shape[1], text.shape[1], dialogue_vectors.shape[1], n_items)
        image_t = torch.from_numpy(np.array(image, dtype=np.float32))  # a copy: artifacts are read-only memmaps
        text_t = torch.from_numpy(np.array(text, dtype=np.float32))
        base_image_mask, base_text_mask = self._masks(n_items, self.image_available_)
        dialogues_t = torch.as_tensor(dialogue_vectors)
        coordis_t = torch.as_tensor(coordis)
        slot_of_item = torch.as_tensor(self.item_slot_)
        params = [*self.projection_.parameters(), *self.transfer_.parameters(), *self.id_head_.parameters()]
        optimizer = torch.optim.Adam(params, lr=self.learning_rate, weight_decay=self.reg)
        self.history_ = []
        m = len(dialogue_vectors)
        for epoch in range(self.n_epochs):
            self.projection_.train(), self.transfer_.train()
            order = rng.permutation(m)
            total = 0.0
            for start in range(0, m, self.batch_size):
                batch = order[start:start + self.batch_size]
                if len(batch) < 2:  # batch norm needs two rows
                    continue
                gold = coordis_t[batch]
                # Project the batch's gold items and a random sample of the others, not the whole catalog:
                # the sample serves as the negatives of InfoNCE and as the rows of the item-id head.
                sample = np.unique(np.concatenate([coordis[batch][coordis[batch] >= 0],
                                                   rng.choice(n_items, min(self.n_negatives, n_items), replace=False)]))
                sample_t = torch.as_tensor(sample)
                image_mask, text_mask = self._modality_dropout(base_image_mask[sample_t], base_text_mask[sample_t], rng)
                items = self.projection_(image_t[sample_t], text_t[sample_t], image_mask, text_mask)
                position = torch.as_tensor(np.searchsorted(sample, np.maximum(coordis[batch], 0)))
                position = torch.where(gold >= 0, position, torch.full_like(position, -1))
                predicted = self.transfer_(dialogues_t[batch])
                loss = self._loss(items, predicted, gold, position, slot_of_item[sample_t])
                # The item-id head keeps the projected items apart, so the space cannot collapse.
                loss = loss + self.id_head_weight * F.cross_entropy(self.id_head_(items), sample_t)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            self.history_.append(total / m)
            if progress:
                progress((epoch + 1) / self.n_epochs,
                         f"epoch {epoch + 1}/{self.n_epochs}, loss {self.history_[-1]:.3f}")
        self.projection_.eval(), self.transfer_.eval()
        with torch.no_grad():
            self.item_embeddings_ = self.projection_(image_t, text_t, base_image_mask, base_text_mask).numpy()

    def _modality_dropout(self, image_mask, text_mask, rng):
        n = len(image_mask)
        draw = rng.random(n)
        # Drop one modality of 15% of the items, never both: an item must keep something to be recognised.
        drop = draw < self.modality_dropout
        drop_image = torch.as_tensor(drop & (rng.random(n) < 0.5) & (text_mask.numpy() > 0))
        drop_text = torch.as_tensor(drop & ~drop_image.numpy() & (image_mask.numpy() > 0))
        return image_mask * (~drop_image).float(), text_mask * (~drop_text).float()

    def _loss(self, items, predicted, gold, position, sample_slot):
        losses = []
        for s in range(len(FASCODE_SLOTS)):
            present = gold[:, s] >= 0
            if not present.any():
                continue
            pred, target, at = predicted[present, s], gold[present, s], position[present, s]
            if self.objective == "mse":
                losses.append(F.mse_loss(pred, items[at], reduction="sum") / len(target))
                losses.append(F.cross_entropy(self.id_head_(pred), target))
            else:
                logits = pred @ items.T / self.temperature
                # Only the items of this slot compete: a top is never a wrong answer for the shoes.
                logits = logits.masked_fill(sample_slot[None, :] != s, float("-inf"))
                losses.append(F.cross_entropy(logits, at))
        return torch.stack(losses).sum()

    # ------------------------------------------------------------------ inference
    def transfer(self, dialogue_vectors: np.ndarray) -> np.ndarray:
        """Transferred slot vectors of dialogues ``(m, d)`` (or one ``(d,)``), shape ``(m, 4, dim)``.

        Raises
        ------
        AttributeError
            When the model is not fitted.
        """
        self.transfer_.eval()
        with torch.no_grad():
            return self.transfer_(torch.as_tensor(np.atleast_2d(np.asarray(dialogue_vectors, dtype=np.float32)))).numpy()

    def score(self, dialogue_vectors: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Negative Euclidean distance of every item (or ``item_idx``) to the transferred vector of its own slot.

        Returns ``(m, n_items)`` (or ``(m, len(item_idx))``); items in no FASCODE slot get ``-inf``.
        """
        slots = self.transfer(dialogue_vectors)
        items = self.item_embeddings_ if item_idx is None else self.item_embeddings_[np.asarray(item_idx)]
        item_slot = self.item_slot_ if item_idx is None else self.item_slot_[np.asarray(item_idx)]
        out = np.full((len(slots), len(items)), -np.inf, dtype=np.float32)
        for s in range(len(FASCODE_SLOTS)):
            mine = item_slot == s
            if mine.any():
                diff = slots[:, s, None, :] - items[None, mine, :]
                out[:, mine] = -np.linalg.norm(diff, axis=-1)
        return out

    def propose(self, dialogue_vector: np.ndarray, k: int = 1, slots: Sequence[str] = FASCODE_SLOTS) -> dict:
        """The ``k`` nearest items of each slot for one dialogue vector: ``{slot: [item rows, nearest first]}``."""
        scores = self.score(dialogue_vector)[0]
        out = {}
        for slot in slots:
            mine = np.flatnonzero(self.item_slot_ == FASCODE_SLOTS.index(slot))
            out[slot] = [int(i) for i in mine[top_n(scores[mine], k)]]
        return out

    def set_distances(self, dialogue_vector: np.ndarray, coordis: np.ndarray) -> np.ndarray:
        """Mean distance of each set's items to the transferred slot vectors, shape ``(c,)``.

        ``coordis`` is ``(c, 4)`` item rows in FASCODE slot order, -1 for an empty slot (left out of the mean).
        """
        slots = self.transfer(dialogue_vector)[0]
        coordis = np.asarray(coordis, dtype=np.int64)
        out = np.zeros(len(coordis))
        for j, row in enumerate(coordis):
            present = [s for s in range(len(FASCODE_SLOTS)) if row[s] >= 0]
            if present:
                d = np.linalg.norm(slots[present] - self.item_embeddings_[row[present]], axis=1)
                out[j] = float(d.mean())
        return out

    def set_scores(self, dialogue_vector: np.ndarray, coordis: np.ndarray,
                   compatibility: Callable[[Sequence[int]], float] | None = None) -> np.ndarray:
        """Score candidate sets ``(c, 4)`` (higher is better), shape ``(c,)``.

        Minus :meth:`set_distances`, plus ``compat_weight`` x ``compatibility(item rows of the set)`` when both
        are given (the paper's future work: distance and outfit compatibility together).
        """
        scores = -self.set_distances(dialogue_vector, coordis)
        if self.compat_weight and compatibility is not None:
            scores = scores + self.compat_weight * np.array([compatibility([i for i in row if i >= 0])
                                                             for row in np.asarray(coordis)])
        return scores

    # ------------------------------------------------------------------ persistence (Estimator.save / load)
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict]:
        if not hasattr(self, "item_embeddings_"):
            raise RuntimeError("The dialogue model is not fitted; call fit before saving it.")
        tensors = {f"projection.{k}": v.detach().numpy() for k, v in self.projection_.state_dict().items()}
        tensors.update({f"transfer.{k}": v.detach().numpy() for k, v in self.transfer_.state_dict().items()})
        tensors.update({f"id_head.{k}": v.detach().numpy() for k, v in self.id_head_.state_dict().items()})
        tensors["item_embeddings"] = self.item_embeddings_
        tensors["item_slot"] = self.item_slot_
        tensors["image_available"] = self.image_available_.astype(np.uint8)
        meta = {"history": [float(v) for v in getattr(self, "history_", [])],
                "fit_seconds": round(float(getattr(self, "fit_seconds_", 0.0)), 2)}
        return tensors, meta

    def _set_state(self, tensors: dict[str, np.ndarray], meta: dict, text_encoder: str | None = None,
                   **inputs) -> None:
        """Rebuild the networks from the saved arrays.

        Parameters
        ----------
        text_encoder : str, optional
            The text encoder spec the caller will encode dialogues with; it must be the one the model was
            trained with (a model reading another encoder's vectors of the same width would answer nonsense).

        Raises
        ------
        StaleModelError
            When ``text_encoder`` differs from the saved model's :attr:`text_encoder`.
        KeyError
            When an array is missing from the file.
        """
        if text_encoder and self.text_encoder and text_encoder != self.text_encoder:
            raise StaleModelError(f"The saved dialogue model reads dialogues with the text encoder "
                                  f"{self.text_encoder!r}, and the studio now has {text_encoder!r}.")
        weights = {k: torch.as_tensor(np.array(v)) for k, v in tensors.items()}
        image_dim = weights["projection.image_proj.weight"].shape[1]
        text_dim = weights["projection.text_proj.weight"].shape[1]
        dialogue_dim = weights["transfer.blocks.0.weight"].shape[1]
        n_items = weights["id_head.weight"].shape[0]
        self._build(image_dim, text_dim, dialogue_dim, n_items)
        for prefix, module in (("projection.", self.projection_), ("transfer.", self.transfer_),
                               ("id_head.", self.id_head_)):
            module.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
        self.projection_.eval(), self.transfer_.eval()
        self.item_embeddings_ = np.asarray(tensors["item_embeddings"], dtype=np.float32)
        self.item_slot_ = np.asarray(tensors["item_slot"], dtype=np.int64)
        self.image_available_ = np.asarray(tensors["image_available"]).astype(bool)
        self.history_ = list(meta.get("history", []))
        self.fit_seconds_ = float(meta.get("fit_seconds", 0.0))
