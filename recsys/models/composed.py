"""Composed-query retrieval: a reference image plus a modification caption -> target items (FashionIQ task).

Every model here works on frozen features (the catalog's precomputed image vectors and the text encoder's
caption vectors) and shares one interface, so the protocol, the benchmark and the page treat them alike:

``gallery_vectors(image_features)``
    the search-space vectors of catalog items (unit rows; inner product is the score);
``compose(query_vectors, caption_features)``
    the next query from the current one and one caption; the first query is the reference's gallery
    vector, so multi-turn search is composing caption after caption (:func:`compose_turns`);
``score(query_vectors, gallery)``
    inner products, higher is better.

Models
------
:class:`ImageOnly`             the reference image alone (the caption is ignored), a baseline;
:class:`TextOnly`              the caption alone in the joint space, a baseline;
:class:`ZeroShotSum`           ``normalize(ref image + caption)`` in the joint space, no composition training;
:class:`ImageDifference`       the text-guided retrieval paper's model: projections trained so that the
                               target-minus-reference image embedding matches the caption embedding,
                               symmetric cross-entropy with soft targets;
:class:`Combiner`              a CLIP4Cir-style learned combiner of the joint image and text features.

The joint space is :class:`JointSpace`: the catalog's ``demo-clip`` heads, or the identity when the
artifacts were computed with an ``open_clip`` encoder (whose image and text spaces already coincide).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recsys.encoders.base import l2_normalize

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def torch_threads(n: int = 1):
    """Run torch on ``n`` threads inside the block, then restore the previous count.

    These models are small MLPs: on the shared 2-core machines, two intra-op threads made a training step
    about 50x slower than one (threads spin-waiting for a core), so training runs single-threaded.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------- the joint space
@dataclass(frozen=True)
class JointSpace:
    """Maps frozen image and text features into one space where they can be compared.

    Attributes
    ----------
    name : str
        ``"demo-clip"`` or the ``open_clip`` spec.
    image : callable
        ``(n, d_image) -> (n, d)`` unit rows.
    text : callable
        ``(n, d_text) -> (n, d)`` unit rows.
    """

    name: str
    image: Callable[[np.ndarray], np.ndarray]
    text: Callable[[np.ndarray], np.ndarray]

    @classmethod
    def identity(cls, name: str) -> "JointSpace":
        """The space of a real joint encoder (open_clip): its image and text vectors are already comparable."""
        return cls(name=name, image=l2_normalize, text=l2_normalize)

    @classmethod
    def from_democlip(cls, clip) -> "JointSpace":
        """The space of trained :class:`recsys.encoders.democlip.DemoClip` heads."""
        return cls(name="demo-clip", image=clip.project_images, text=clip.project_text)


# ---------------------------------------------------------------------- shared pieces
class ComposedModel:
    """Base of the composed-retrieval models (see the module docstring for the interface)."""

    name = "composed"
    trainable = False

    def gallery_vectors(self, image_features) -> np.ndarray:
        raise NotImplementedError

    def compose(self, query_vectors, caption_features) -> np.ndarray:
        raise NotImplementedError

    def score(self, query_vectors, gallery) -> np.ndarray:
        """``(m, n)`` inner products of queries and gallery vectors."""
        return np.asarray(query_vectors, dtype=np.float32) @ np.asarray(gallery, dtype=np.float32).T

    def fit(self, *args, **kwargs) -> "ComposedModel":
        return self


def compose_turns(model: ComposedModel, reference_features, caption_turns: Sequence[np.ndarray]) -> np.ndarray:
    """Multi-turn query: start from the references' gallery vectors and apply each turn's captions in order.

    Parameters
    ----------
    reference_features : array (m, d_image)
    caption_turns : sequence of arrays (m, d_text)
        One array per turn (row ``i`` is query ``i``'s caption of that turn).
    """
    query = model.gallery_vectors(reference_features)
    for caption_features in caption_turns:
        query = model.compose(query, caption_features)
    return query


class ImageOnly(ComposedModel):
    """Baseline: rank by similarity to the reference image alone (the caption is ignored)."""

    name = "image-only"

    def gallery_vectors(self, image_features) -> np.ndarray:
        return l2_normalize(image_features)

    def compose(self, query_vectors, caption_features) -> np.ndarray:
        return np.asarray(query_vectors, dtype=np.float32)


class TextOnly(ComposedModel):
    """Baseline: rank by the caption alone, in the joint image-text space (the reference is ignored)."""

    name = "text-only"

    def __init__(self, joint: JointSpace):
        self.joint = joint

    def gallery_vectors(self, image_features) -> np.ndarray:
        return self.joint.image(image_features)

    def compose(self, query_vectors, caption_features) -> np.ndarray:
        return self.joint.text(caption_features)


class ZeroShotSum(ComposedModel):
    """Zero-shot composition: ``normalize(reference image embedding + text_weight * caption embedding)``.

    Parameters
    ----------
    joint : JointSpace
    text_weight : float
        Weight of the caption against the reference (both unit vectors).

    References
    ----------
    Baldrati et al., "Effective Conditioned and Composed Image Retrieval Combining CLIP-Based Features",
    CVPR 2022 (the sum of CLIP features as the training-free baseline).
    """

    name = "zero-shot"

    def __init__(self, joint: JointSpace, text_weight: float = 1.0):
        self.joint = joint
        self.text_weight = text_weight

    def gallery_vectors(self, image_features) -> np.ndarray:
        return self.joint.image(image_features)

    def compose(self, query_vectors, caption_features) -> np.ndarray:
        return l2_normalize(np.asarray(query_vectors, dtype=np.float32) + self.text_weight * self.joint.text(caption_features))


# ---------------------------------------------------------------------- training data
@dataclass
class Triples:
    """Training triples in feature form: reference and target rows of the image features, and caption features.

    Attributes
    ----------
    reference, target : array of int (m,)
        Rows of the catalog's image features.
    captions : array (m, d_text)
        Frozen text features of each triple's caption.
    """

    reference: np.ndarray
    target: np.ndarray
    captions: np.ndarray

    def __len__(self) -> int:
        return len(self.reference)


def soft_targets(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft targets of the simple-CLIP recipe: softmax of the mean of the two modalities' self-similarities.

    Two captions that say the same thing (or two pairs with the same change) share the credit instead of
    being pushed apart as negatives.
    """
    return F.softmax(((a @ a.T) + (b @ b.T)) / (2.0 * temperature), dim=-1)


def _symmetric_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets.T))


class _Trainable(ComposedModel):
    trainable = True

    def _early_stopping_fit(self, step: Callable[[np.ndarray], float], n: int, validate: Callable[[], float] | None,
                            modules: nn.Module, rng: np.random.Generator) -> None:
        """Run epochs of ``step`` over shuffled batches; keep the weights of the best validation epoch."""
        best, best_state, stale = -np.inf, None, 0
        self.history_ = []
        for epoch in range(self.epochs):
            modules.train()
            order = rng.permutation(n)
            losses = [step(order[s : s + self.batch_size]) for s in range(0, n, self.batch_size) if len(order[s : s + self.batch_size]) > 1]
            modules.eval()
            entry = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else float("nan")}
            if validate is not None:
                entry["val"] = validate()
                if entry["val"] > best:
                    best, stale = entry["val"], 0
                    best_state = {k: v.detach().clone() for k, v in modules.state_dict().items()}
                else:
                    stale += 1
            self.history_.append(entry)
            if validate is not None and stale >= self.patience:
                break
        if best_state is not None:
            modules.load_state_dict(best_state)
        modules.eval()
        self.best_epoch_ = int(np.argmax([h.get("val", -np.inf) for h in self.history_])) if validate else len(self.history_) - 1


class ImageDifference(_Trainable):
    """The text-guided retrieval paper's model: image-difference <-> caption matching.

    Two projections, ``f`` over image features and ``g`` over caption features, are trained so that the
    difference ``f(target) - f(reference)`` of unit image embeddings points along ``g(caption)``, with a
    symmetric cross-entropy over the batch (every caption against every pair's difference) and soft targets.
    A query is ``f(reference) + alpha * g(caption)``, where ``alpha`` is the mean length of the training
    differences, so the nearest gallery image is the one the caption says the reference should move to.

    Parameters
    ----------
    embed_dim : int
    hidden_dim : int or None
        Hidden width of the projections; None makes them linear.
    temperature : float
        Softmax temperature of the logits and of the soft targets.
    epochs, batch_size, lr, weight_decay, patience : training settings (early stopping on validation recall).
    random_state : int

    Attributes
    ----------
    image_proj_, text_proj_ : torch.nn.Module
    alpha_ : float
    history_ : list of dict
    fit_seconds_ : float

    References
    ----------
    Wu et al., "Fashion IQ: A New Dataset Towards Retrieving Images by Natural Language Feedback", CVPR 2021;
    Radford et al., ICML 2021 (the symmetric contrastive objective).
    """

    name = "image-difference"

    def __init__(self, embed_dim: int = 256, hidden_dim: int | None = 512, temperature: float = 0.1, epochs: int = 60,
                 batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 1e-3, patience: int = 10,
                 random_state: int = 0):
        self.embed_dim = embed_dim
        self.hidden_dim = hidden_dim
        self.temperature = temperature
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.random_state = random_state

    def _projection(self, in_dim: int) -> nn.Module:
        if self.hidden_dim is None:
            return nn.Linear(in_dim, self.embed_dim)
        return nn.Sequential(nn.Linear(in_dim, self.hidden_dim), nn.GELU(), nn.Dropout(0.1), nn.Linear(self.hidden_dim, self.embed_dim))

    def fit(self, image_features, triples: Triples, validation: Callable[["ComposedModel"], float] | None = None) -> "ImageDifference":
        """Train on ``triples`` (rows of ``image_features``); ``validation(model) -> recall`` drives early stopping."""
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        images = torch.as_tensor(l2_normalize(image_features))
        captions = torch.as_tensor(l2_normalize(triples.captions))
        reference = torch.as_tensor(triples.reference)
        target = torch.as_tensor(triples.target)
        self.image_proj_ = self._projection(images.shape[1])
        self.text_proj_ = self._projection(captions.shape[1])
        modules = nn.ModuleList([self.image_proj_, self.text_proj_])
        optimizer = torch.optim.AdamW(modules.parameters(), lr=self.lr, weight_decay=self.weight_decay)

        def step(batch: np.ndarray) -> float:
            batch = torch.as_tensor(batch)
            ref = F.normalize(self.image_proj_(images[reference[batch]]), dim=-1)
            tgt = F.normalize(self.image_proj_(images[target[batch]]), dim=-1)
            diff = F.normalize(tgt - ref, dim=-1)
            text = F.normalize(self.text_proj_(captions[batch]), dim=-1)
            logits = diff @ text.T / self.temperature
            targets = soft_targets(diff.detach(), text.detach(), self.temperature)
            loss = _symmetric_cross_entropy(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return float(loss.detach())

        started = time.perf_counter()
        self.alpha_ = 1.0
        validate = (lambda: self._refresh_alpha(images, reference, target) or validation(self)) if validation else None
        with torch_threads(1):
            self._early_stopping_fit(step, len(triples), validate, modules, rng)
        self._refresh_alpha(images, reference, target)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _refresh_alpha(self, images, reference, target) -> None:
        with torch.inference_mode(), torch_threads(1):
            ref = F.normalize(self.image_proj_(images[reference]), dim=-1)
            tgt = F.normalize(self.image_proj_(images[target]), dim=-1)
            self.alpha_ = float((tgt - ref).norm(dim=-1).mean())

    def _forward(self, module: nn.Module, features) -> np.ndarray:
        with torch.inference_mode(), torch_threads(1):
            return l2_normalize(module(torch.as_tensor(l2_normalize(features))).numpy())

    def gallery_vectors(self, image_features) -> np.ndarray:
        return self._forward(self.image_proj_, image_features)

    def compose(self, query_vectors, caption_features) -> np.ndarray:
        # Not re-normalized: gallery rows are unit vectors, so the inner product ranks like the Euclidean distance.
        return np.asarray(query_vectors, dtype=np.float32) + self.alpha_ * self._forward(self.text_proj_, caption_features)

    # saving
    def state(self) -> tuple[dict, dict]:
        tensors = {f"image.{k}": v.numpy() for k, v in self.image_proj_.state_dict().items()}
        tensors |= {f"text.{k}": v.numpy() for k, v in self.text_proj_.state_dict().items()}
        params = {"embed_dim": self.embed_dim, "hidden_dim": self.hidden_dim, "temperature": self.temperature,
                  "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "weight_decay": self.weight_decay,
                  "patience": self.patience, "random_state": self.random_state}
        return tensors, {"params": params, "alpha": self.alpha_}

    @classmethod
    def from_state(cls, tensors: dict, meta: dict, image_dim: int, text_dim: int) -> "ImageDifference":
        model = cls(**meta["params"])
        model.image_proj_, model.text_proj_ = model._projection(image_dim), model._projection(text_dim)
        model.image_proj_.load_state_dict({k[6:]: torch.as_tensor(v) for k, v in tensors.items() if k.startswith("image.")})
        model.text_proj_.load_state_dict({k[5:]: torch.as_tensor(v) for k, v in tensors.items() if k.startswith("text.")})
        model.image_proj_.eval()
        model.text_proj_.eval()
        model.alpha_ = float(meta["alpha"])
        return model


class CombinerNet(nn.Module):
    """CLIP4Cir's combiner: a learned mix of image and text features plus a residual MLP of both.

    ``out = normalize(mlp([img', txt']) + lambda * txt + (1 - lambda) * img)`` where ``lambda`` is predicted
    per query from the two projected features.
    """

    def __init__(self, dim: int, projection_dim: int = 512, hidden_dim: int = 1024, dropout: float = 0.3):
        super().__init__()
        self.text_projection = nn.Sequential(nn.Linear(dim, projection_dim), nn.ReLU(), nn.Dropout(dropout))
        self.image_projection = nn.Sequential(nn.Linear(dim, projection_dim), nn.ReLU(), nn.Dropout(dropout))
        self.combiner = nn.Sequential(nn.Linear(2 * projection_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout * 2 / 3),
                                      nn.Linear(hidden_dim, dim))
        self.dynamic_scalar = nn.Sequential(nn.Linear(2 * projection_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout * 2 / 3),
                                            nn.Linear(hidden_dim, 1), nn.Sigmoid())
        # Start as the plain mix of image and text (the zero-shot sum when lambda = 1/2): the residual MLP
        # then only has to learn corrections, which the few hundred training triples can support.
        nn.init.zeros_(self.combiner[-1].weight)
        nn.init.zeros_(self.combiner[-1].bias)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        both = torch.cat([self.text_projection(text), self.image_projection(image)], dim=-1)
        weight = self.dynamic_scalar(both)
        return F.normalize(self.combiner(both) + weight * text + (1 - weight) * image, dim=-1)


class Combiner(_Trainable):
    """A learned combiner of the joint-space reference image and caption features (CLIP4Cir, stage two).

    Trained with cross-entropy over the training gallery: the combined query must pick its target among all
    catalog items available for training (scaled cosine logits).

    Parameters
    ----------
    joint : JointSpace
    projection_dim, hidden_dim, dropout : sizes of :class:`CombinerNet`.
    logit_scale : float
        Inverse temperature of the logits (CLIP4Cir uses 100).
    epochs, batch_size, lr, weight_decay, patience : training settings (early stopping on validation recall).
    random_state : int

    Attributes
    ----------
    net_ : CombinerNet
    history_ : list of dict
    fit_seconds_ : float

    References
    ----------
    Baldrati et al., "Effective Conditioned and Composed Image Retrieval Combining CLIP-Based Features", CVPR 2022.
    """

    name = "combiner"

    def __init__(self, joint: JointSpace, projection_dim: int = 512, hidden_dim: int = 1024, dropout: float = 0.3,
                 logit_scale: float = 30.0, epochs: int = 80, batch_size: int = 128, lr: float = 5e-4,
                 weight_decay: float = 1e-2, patience: int = 12, random_state: int = 0):
        self.joint = joint
        self.projection_dim = projection_dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.logit_scale = logit_scale
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.random_state = random_state

    def _net(self, dim: int) -> CombinerNet:
        return CombinerNet(dim, self.projection_dim, self.hidden_dim, self.dropout)

    def fit(self, image_features, triples: Triples, candidates=None,
            validation: Callable[["ComposedModel"], float] | None = None) -> "Combiner":
        """Train on ``triples``; ``candidates`` are the rows the target is picked among (default: all)."""
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        gallery = torch.as_tensor(self.joint.image(image_features))
        captions = torch.as_tensor(self.joint.text(triples.captions))
        candidates = np.arange(len(gallery)) if candidates is None else np.asarray(candidates, dtype=np.int64)
        # Position of each target among the candidates: the class the cross-entropy asks for.
        position = {int(row): k for k, row in enumerate(candidates)}
        labels = torch.as_tensor([position[int(t)] for t in triples.target])
        candidate_vectors = gallery[torch.as_tensor(candidates)]
        reference = gallery[torch.as_tensor(triples.reference)]
        self.net_ = self._net(gallery.shape[1])
        optimizer = torch.optim.AdamW(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)

        def step(batch: np.ndarray) -> float:
            batch = torch.as_tensor(batch)
            query = self.net_(reference[batch], captions[batch])
            loss = F.cross_entropy(self.logit_scale * query @ candidate_vectors.T, labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return float(loss.detach())

        started = time.perf_counter()
        with torch_threads(1):
            self._early_stopping_fit(step, len(triples), (lambda: validation(self)) if validation else None, self.net_, rng)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def gallery_vectors(self, image_features) -> np.ndarray:
        return self.joint.image(image_features)

    def compose(self, query_vectors, caption_features) -> np.ndarray:
        with torch.inference_mode(), torch_threads(1):
            out = self.net_(torch.as_tensor(np.asarray(query_vectors, dtype=np.float32)),
                            torch.as_tensor(self.joint.text(caption_features)))
        return out.numpy()

    def state(self) -> tuple[dict, dict]:
        tensors = {k: v.numpy() for k, v in self.net_.state_dict().items()}
        params = {"projection_dim": self.projection_dim, "hidden_dim": self.hidden_dim, "dropout": self.dropout,
                  "logit_scale": self.logit_scale, "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                  "weight_decay": self.weight_decay, "patience": self.patience, "random_state": self.random_state}
        return tensors, {"params": params, "dim": int(self.net_.combiner[-1].out_features)}

    @classmethod
    def from_state(cls, tensors: dict, meta: dict, joint: JointSpace) -> "Combiner":
        model = cls(joint, **meta["params"])
        model.net_ = model._net(int(meta["dim"]))
        model.net_.load_state_dict({k: torch.as_tensor(v) for k, v in tensors.items()})
        model.net_.eval()
        return model
