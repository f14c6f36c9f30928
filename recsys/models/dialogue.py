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

Dialogues reach the model as vectors (:func:`dialogue_vectors`); the model knows nothing of metrics.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

logger = logging.getLogger(__name__)

#: The four positions of a FASCODE coordi-set, in the dataset's order.
FASCODE_SLOTS = ("outer", "top", "bottom", "shoes")
#: Where a catalog slot sits in a coordi-set (FASCODE puts a one-piece in the bottom position).
CATALOG_TO_FASCODE = {"outer": "outer", "top": "top", "bottom": "bottom", "onepiece": "bottom", "shoes": "shoes"}
#: Words that name a slot in a message (English, and the Korean of the FASCODE data).
SLOT_WORDS = {
    "outer": ("outer", "jacket", "coat", "cardigan", "blazer", "parka", "vest", "아우터", "자켓", "재킷", "코트",
              "점퍼", "가디건", "카디건", "조끼"),
    "top": ("top", "shirt", "tee", "blouse", "sweater", "knit", "hoodie", "polo", "tank", "상의", "셔츠",
            "블라우스", "니트", "티셔츠", "맨투맨"),
    "bottom": ("bottom", "pants", "trousers", "jeans", "skirt", "shorts", "leggings", "dress", "하의", "바지",
               "치마", "스커트", "원피스", "청바지"),
    "shoes": ("shoes", "shoe", "sneaker", "boot", "heel", "sandal", "loafer", "신발", "구두", "운동화",
              "부츠", "샌들"),
}
MAX_MESSAGE_CHARS = 1000


# ====================================================================== dialogue text
def user_turns(turns: Iterable[dict], speakers: Sequence[str] = ("US",)) -> list[str]:
    """The non-empty texts of the turns spoken by ``speakers`` (default: the user), in order."""
    return [str(t.get("text") or "").strip() for t in turns
            if t.get("speaker") in speakers and str(t.get("text") or "").strip()]


def dialogue_vectors(encoder, dialogues: Sequence[Sequence[dict]], speakers: Sequence[str] = ("US",)) -> np.ndarray:
    """Embed dialogues as ``[mean of the user turns, last user turn]``, shape ``(m, 2 * encoder.dim)``.

    Each turn is encoded on its own, so one very long message is cut at the encoder's limit without
    pushing the rest of the conversation out. A dialogue without user text gets zeros.
    """
    texts, owner = [], []
    for k, turns in enumerate(dialogues):
        for text in user_turns(turns, speakers):
            texts.append(text)
            owner.append(k)
    dim = int(encoder.dim)
    out = np.zeros((len(dialogues), 2 * dim), dtype=np.float32)
    if not texts:
        return out
    vectors = encoder.encode_text(texts)
    owner = np.asarray(owner)
    for k in range(len(dialogues)):
        rows = vectors[owner == k]
        if len(rows):
            out[k, :dim] = rows.mean(axis=0)
            out[k, dim:] = rows[-1]
    return out


def named_slots(text: str) -> list[str]:
    """The FASCODE slots a message names (``[]`` when it names none)."""
    lowered = text.lower()
    found = []
    for slot, words in SLOT_WORDS.items():
        for word in words:
            # Latin words must stand alone ("top" is not "laptop"); Korean words are matched inside eojeol.
            pattern = rf"\b{re.escape(word)}s?\b" if word.isascii() else re.escape(word)
            if re.search(pattern, lowered):
                found.append(slot)
                break
    return found


def is_mostly_latin(text: str) -> bool:
    """True when at least half of the letters of ``text`` are Latin (the default text encoder reads English)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return True
    latin = sum(1 for c in letters if "LATIN" in unicodedata.name(c, ""))
    return latin >= len(letters) / 2


@dataclass
class MessageCheck:
    """A user message made ready for the model, and what the user should be told about it."""

    text: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return bool(self.text)


def check_message(text: str | None, english_only_encoder: bool = True, max_chars: int = MAX_MESSAGE_CHARS) -> MessageCheck:
    """Clean a chat message and list what is wrong or worth saying about it, one sentence each.

    An empty message is unusable; a very long one is cut to ``max_chars``; a message in another language is
    kept, with a note when the text encoder reads English only; a message naming no slot is kept, with a
    note that the proposal covers every slot.
    """
    cleaned = " ".join(str(text or "").split())
    check = MessageCheck(text=cleaned)
    if not cleaned:
        check.problems.append("The message is empty; tell the stylist what you are looking for.")
        return check
    if len(cleaned) > max_chars:
        check.text = cleaned[:max_chars]
        check.notes.append(f"The message is very long; only its first {max_chars} characters are read.")
    if english_only_encoder and not is_mostly_latin(cleaned):
        check.notes.append(
            "The message is not in English, and the text encoder in use reads English only, so it is matched poorly; "
            "name a multilingual sentence-transformers folder with RECSYS_TEXT_ENCODER=minilm:/path/to/model."
        )
    if not named_slots(cleaned):
        check.notes.append("The message names no slot (outer, top, bottom, shoes); the proposal covers all four.")
    return check


# ====================================================================== networks
class ProjectionNet(nn.Module):
    """FASCODE's projection net: image and text item vectors, each projected, fused into ``dim`` (unit length).

    A missing modality (masked out) contributes nothing; the fusion sees which one is missing through the
    zeroed half, as in the paper's missing-modality training.
    """

    def __init__(self, image_dim: int, text_dim: int, dim: int = 300):
        super().__init__()
        self.image_proj = nn.Linear(image_dim, dim)
        self.text_proj = nn.Linear(text_dim, dim)
        self.fuse = nn.Sequential(nn.ReLU(), nn.Linear(2 * dim, dim))

    def forward(self, image, text, image_mask, text_mask):
        parts = torch.cat([self.image_proj(image) * image_mask[:, None], self.text_proj(text) * text_mask[:, None]], 1)
        return F.normalize(self.fuse(parts), dim=-1)


class TransferNet(nn.Module):
    """FASCODE's transfer net: four blocks of FC + batch norm + ReLU + dropout, then one vector per slot."""

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
        return F.normalize(self.out(self.blocks(x)).view(-1, self.n_slots, self.dim), dim=-1)


# ====================================================================== set scores
def cosine_agreement(vectors: np.ndarray, item_idx: Sequence[int]) -> float:
    """Mean pairwise cosine similarity of the items of a set: a world-agnostic stand-in for compatibility."""
    idx = [int(i) for i in item_idx if i >= 0]
    if len(idx) < 2:
        return 0.0
    v = vectors[idx]
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    sims = v @ v.T
    a, b = np.triu_indices(len(idx), k=1)
    return float(sims[a, b].mean())


# ====================================================================== the model
class DialogueCoordiRecommender:
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
    epochs, batch_size, lr, weight_decay : training schedule (Adam).
    random_state : int

    Attributes
    ----------
    item_embeddings_ : ndarray of shape (n_items, dim)
        Projected items (unit rows).
    item_slot_ : ndarray of shape (n_items,)
        The FASCODE slot position of each item (-1: none).
    history_ : list of float
        Training loss per epoch.
    fit_seconds_ : float
    """

    def __init__(self, *, objective: str = "mse", dim: int = 300, hidden: int = 512, blocks: int = 4,
                 dropout: float = 0.2, modality_dropout: float = 0.15, use_image: bool = True, use_text: bool = True,
                 id_head_weight: float = 1.0, temperature: float = 0.07, compat_weight: float = 0.0,
                 n_negatives: int = 512, epochs: int = 60, batch_size: int = 64, lr: float = 1e-3,
                 weight_decay: float = 1e-4, random_state: int = 0):
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
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.random_state = random_state

    # ------------------------------------------------------------------ helpers
    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in (
            "objective", "dim", "hidden", "blocks", "dropout", "modality_dropout", "use_image", "use_text",
            "id_head_weight", "temperature", "compat_weight", "n_negatives", "epochs", "batch_size", "lr", "weight_decay",
            "random_state")}

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
            progress: Callable[[float, str], None] | None = None) -> "DialogueCoordiRecommender":
        """Train on dialogues and the coordi-sets that ended them.

        Parameters
        ----------
        dialogue_vectors : ndarray of shape (m, d)
            From :func:`dialogue_vectors`.
        coordis : int ndarray of shape (m, 4)
            Item row of each FASCODE slot (outer, top, bottom, shoes); -1 where the set leaves it empty.
        image, text : ndarray of shape (n_items, d_image) and (n_items, d_text)
            The catalog's item vectors (artifacts).
        item_slots : sequence of str, length n_items
            Catalog slot of each item (``onepiece`` counts as the bottom position).
        image_available : bool ndarray of shape (n_items,), optional
            False for items without a real image (a placeholder): their image vector is never read.
        """
        if self.objective not in ("mse", "infonce"):
            raise ValueError(f"Unknown objective '{self.objective}'; choose 'mse' or 'infonce'.")
        if not (self.use_image or self.use_text):
            raise ValueError("The projection net needs at least one of use_image and use_text.")
        started = time.perf_counter()
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        torch.set_num_threads(2)
        dialogue_vectors = np.asarray(dialogue_vectors, dtype=np.float32)
        coordis = np.asarray(coordis, dtype=np.int64)
        if len(dialogue_vectors) != len(coordis) or coordis.ndim != 2 or coordis.shape[1] != len(FASCODE_SLOTS):
            raise ValueError("fit needs one coordi row of 4 item positions per dialogue vector.")
        if len(dialogue_vectors) < 2:
            raise ValueError("fit needs at least two training dialogues.")
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
        optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        self.history_ = []
        m = len(dialogue_vectors)
        for epoch in range(self.epochs):
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
                progress((epoch + 1) / self.epochs, f"epoch {epoch + 1}/{self.epochs}, loss {self.history_[-1]:.3f}")
        self.projection_.eval(), self.transfer_.eval()
        with torch.no_grad():
            self.item_embeddings_ = self.projection_(image_t, text_t, base_image_mask, base_text_mask).numpy()
        self.fit_seconds_ = time.perf_counter() - started
        logger.info("fit %s dialogue model on %d dialogues in %.1f s", self.objective, m, self.fit_seconds_)
        return self

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
        """Transferred slot vectors of dialogues, shape ``(m, 4, dim)``."""
        self.transfer_.eval()
        with torch.no_grad():
            return self.transfer_(torch.as_tensor(np.atleast_2d(np.asarray(dialogue_vectors, dtype=np.float32)))).numpy()

    def score(self, dialogue_vectors: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Negative distance of every item (or ``item_idx``) to the transferred vector of its own slot.

        Returns ``(m, n_items)``; items in no FASCODE slot get ``-inf``.
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
        """The ``k`` nearest items of each slot: ``{slot: [item rows, nearest first]}``."""
        scores = self.score(dialogue_vector)[0]
        out = {}
        for slot in slots:
            mine = np.flatnonzero(self.item_slot_ == FASCODE_SLOTS.index(slot))
            out[slot] = [int(i) for i in mine[np.argsort(-scores[mine], kind="stable")[:k]]]
        return out

    def set_distances(self, dialogue_vector: np.ndarray, coordis: np.ndarray) -> np.ndarray:
        """Mean distance of each set's items to the transferred slot vectors; ``coordis`` is ``(c, 4)``, -1 empty."""
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
        """Score candidate sets (higher is better): minus the distance, plus ``compat_weight`` x compatibility."""
        scores = -self.set_distances(dialogue_vector, coordis)
        if self.compat_weight and compatibility is not None:
            scores = scores + self.compat_weight * np.array([compatibility([i for i in row if i >= 0])
                                                             for row in np.asarray(coordis)])
        return scores

    # ------------------------------------------------------------------ persistence
    def to_tensors(self) -> dict[str, np.ndarray]:
        tensors = {f"projection.{k}": v.detach().numpy() for k, v in self.projection_.state_dict().items()}
        tensors.update({f"transfer.{k}": v.detach().numpy() for k, v in self.transfer_.state_dict().items()})
        tensors.update({f"id_head.{k}": v.detach().numpy() for k, v in self.id_head_.state_dict().items()})
        tensors["item_embeddings"] = self.item_embeddings_
        tensors["item_slot"] = self.item_slot_
        tensors["image_available"] = self.image_available_.astype(np.uint8)
        return tensors

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], params: dict) -> "DialogueCoordiRecommender":
        model = cls(**params)
        weights = {k: torch.as_tensor(np.array(v)) for k, v in tensors.items()}
        image_dim = weights["projection.image_proj.weight"].shape[1]
        text_dim = weights["projection.text_proj.weight"].shape[1]
        dialogue_dim = weights["transfer.blocks.0.weight"].shape[1]
        n_items = weights["id_head.weight"].shape[0]
        model._build(image_dim, text_dim, dialogue_dim, n_items)
        for prefix, module in (("projection.", model.projection_), ("transfer.", model.transfer_),
                               ("id_head.", model.id_head_)):
            module.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
        model.projection_.eval(), model.transfer_.eval()
        model.item_embeddings_ = np.asarray(tensors["item_embeddings"], dtype=np.float32)
        model.item_slot_ = np.asarray(tensors["item_slot"], dtype=np.int64)
        model.image_available_ = np.asarray(tensors["image_available"]).astype(bool)
        return model


# ====================================================================== serving a chat
@dataclass
class Proposal:
    """What the stylist answers after a user turn.

    Attributes
    ----------
    coordi : dict
        ``{slot: item row}``, the nearest item of each slot (the paper's predicted set).
    candidates : list of dict
        ``{"coordi": {slot: item row or -1}, "score": float, "rank": int, "true_rank": int or None}``,
        best first.
    seconds : float
        Time from the turns to the proposal (encoding, transfer, search and ranking).
    """

    coordi: dict
    candidates: list
    seconds: float


class Stylist:
    """A dialogue model served to a chat: encode the turns, propose a coordi-set, rank candidate sets.

    Parameters
    ----------
    model : DialogueCoordiRecommender
        Fitted.
    encoder : recsys.encoders.Encoder
        The text encoder the model's dialogue vectors were made with.
    compatibility : callable, optional
        ``compatibility(item rows) -> float`` for the set score (used when ``model.compat_weight`` is set).
    """

    def __init__(self, model: DialogueCoordiRecommender, encoder, compatibility=None):
        self.model = model
        self.encoder = encoder
        self.compatibility = compatibility

    def respond(self, turns: Sequence[dict], candidates: np.ndarray | None = None,
                true_ranks: Sequence[int] | None = None, n_alternatives: int = 3) -> Proposal:
        """Propose a set for the dialogue so far and rank ``candidates`` (``(c, 4)`` item rows, -1 empty).

        Without candidates, the ``n_alternatives`` sets made of the 1st, 2nd, ... nearest item of every slot
        are ranked.
        """
        started = time.perf_counter()
        vector = dialogue_vectors(self.encoder, [list(turns)])
        nearest = self.model.propose(vector, k=n_alternatives)
        coordi = {slot: rows[0] for slot, rows in nearest.items() if rows}
        if candidates is None:
            width = min(len(rows) for rows in nearest.values())
            candidates = np.array([[nearest[s][j] for s in FASCODE_SLOTS] for j in range(width)], dtype=np.int64)
        candidates = np.asarray(candidates, dtype=np.int64)
        scores = self.model.set_scores(vector, candidates, self.compatibility)
        order = np.argsort(-scores, kind="stable")
        ranked = [{"coordi": {s: int(candidates[j][k]) for k, s in enumerate(FASCODE_SLOTS)},
                   "score": float(scores[j]), "rank": rank + 1,
                   "true_rank": int(true_ranks[j]) if true_ranks is not None else None}
                  for rank, j in enumerate(order)]
        return Proposal(coordi=coordi, candidates=ranked, seconds=time.perf_counter() - started)
