"""Composed-query retrieval: a reference image plus a modification caption -> target items (FashionIQ task).

Every model here works on frozen features (the catalog's precomputed image vectors and the text encoder's
caption vectors) and shares one interface, so the protocol, the benchmark and the page treat them alike:

``fit(image_features, triples, *, joint=None, validation=None, candidates=None)``
    learn from training :class:`Triples` (the baselines only keep the joint space);
``gallery_vectors(image_features)``
    the search-space vectors of catalog items (unit rows; inner product is the score);
``compose(query_vectors, caption_features)``
    the next query from the current one and one caption; the first query is the reference's gallery
    vector, so multi-turn search is composing caption after caption (:func:`compose_turns`);
``score(query_vectors, gallery)``
    inner products, higher is better.

Capabilities are flags: ``reads_reference`` (False: the reference is ignored, so the model answers free text),
``reads_caption`` (False: the caption is ignored) and ``uses_joint_space`` (True: ``fit`` and ``load`` need the
catalog's :class:`JointSpace`).

Models
------
:class:`ImageOnly`             the reference image alone (the caption is ignored), a baseline;
:class:`TextOnly`              the caption alone in the joint space, a baseline;
:class:`ZeroShotSum`           ``normalize(ref image + caption)`` in the joint space, no composition training;
:class:`ImageDifference`       the text-guided retrieval paper's model: projections trained so that the
                               target-minus-reference image embedding matches the caption embedding,
                               symmetric cross-entropy with soft targets;
:class:`recsys.models.combiner.Combiner`  a CLIP4Cir-style learned combiner of the joint image and text features.

The joint space is :class:`JointSpace`: the catalog's ``demo-clip`` heads (:mod:`recsys.models.democlip`), or
the identity when the artifacts were computed with an ``open_clip`` encoder (whose spaces already coincide).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recsys.models.base import Estimator
from recsys.utils import l2_normalize, torch_threads


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
    key : str
        Names this very space (for demo-clip, a digest of its weights): a model trained in it records the key,
        so it is never paired with a retrained space.
    """

    name: str
    image: Callable[[np.ndarray], np.ndarray]
    text: Callable[[np.ndarray], np.ndarray]
    key: str = ""

    @classmethod
    def identity(cls, name: str) -> "JointSpace":
        """The space of a real joint encoder (open_clip): its image and text vectors are already comparable."""
        return cls(name=name, image=l2_normalize, text=l2_normalize, key=name)

    @classmethod
    def from_democlip(cls, clip) -> "JointSpace":
        """The space of trained :class:`recsys.models.democlip.DemoClip` heads.

        Raises
        ------
        RuntimeError
            When the heads are not trained.
        """
        return cls(name="demo-clip", image=clip.project_images, text=clip.project_text, key=f"demo-clip:{clip.digest()}")


# ---------------------------------------------------------------------- shared pieces
class ComposedModel(Estimator):
    """Base of the composed-retrieval models (see the module docstring for the interface).

    The base :meth:`fit` keeps the joint space (``joint_``) and learns nothing: the training-free baselines use it.
    """

    #: The model turns a reference and captions into a query vector (the protocol ranks its gallery).
    composes_queries = True
    #: False when the reference is ignored: the model answers free text.
    reads_reference = True
    #: False when the captions are ignored.
    reads_caption = True
    #: True when the model works in the catalog's joint image-text space (given to ``fit`` and ``load``).
    uses_joint_space = True

    def fit(self, image_features=None, triples: "Triples | None" = None, *, joint: JointSpace | None = None,
            validation: Callable[["ComposedModel"], float] | None = None, candidates=None) -> "ComposedModel":
        """Keep the joint space (nothing is learned; the other arguments are the trained models'); returns ``self``."""
        self.joint_ = joint
        return self

    def _joint(self) -> JointSpace:
        joint = getattr(self, "joint_", None)
        if joint is None:
            raise RuntimeError(f"{type(self).__name__} works in a joint image-text space; call fit(joint=...) first.")
        return joint

    def gallery_vectors(self, image_features) -> np.ndarray:
        """``(n, d)`` search-space vectors (unit rows) of image features ``(n, d_image)``.

        Raises
        ------
        NotImplementedError
            In this base class; every model overrides it.
        """
        raise NotImplementedError

    def compose(self, query_vectors, caption_features) -> np.ndarray:
        """The next ``(m, d)`` queries from ``(m, d)`` queries and ``(m, d_text)`` caption features.

        Raises
        ------
        NotImplementedError
            In this base class; every model overrides it.
        """
        raise NotImplementedError

    def score(self, query_vectors, gallery) -> np.ndarray:
        """``(m, n)`` inner products of ``(m, d)`` queries and ``(n, d)`` gallery vectors."""
        return np.asarray(query_vectors, dtype=np.float32) @ np.asarray(gallery, dtype=np.float32).T


def compose_turns(model: ComposedModel, reference_features, caption_turns: Sequence[np.ndarray]) -> np.ndarray:
    """Multi-turn query ``(m, d)``: start from the references' gallery vectors and apply each turn's captions in order.

    Parameters
    ----------
    reference_features : array (m, d_image)
    caption_turns : sequence of arrays (m, d_text)
        One array per turn (row ``i`` is query ``i``'s caption of that turn).

    Raises
    ------
    RuntimeError
        When the model is not fitted.
    """
    query = model.gallery_vectors(reference_features)
    for caption_features in caption_turns:
        query = model.compose(query, caption_features)
    return query


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
    """Soft targets ``(n, n)`` of the simple-CLIP recipe: softmax of the mean of the two modalities' self-similarities.

    Two captions that say the same thing (or two pairs with the same change) share the credit instead of
    being pushed apart as negatives. ``a`` and ``b`` are unit rows ``(n, d)``.
    """
    return F.softmax(((a @ a.T) + (b @ b.T)) / (2.0 * temperature), dim=-1)


def _symmetric_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets.T))


class TrainedComposedModel(ComposedModel):
    """A composed model trained with early stopping on validation recall (``n_epochs``, ``batch_size``,
    ``patience`` are the subclass's parameters); sets ``history_`` (one dict per epoch) and ``best_epoch_``."""

    def _early_stopping_fit(self, step: Callable[[np.ndarray], float], n: int, validate: Callable[[], float] | None,
                            modules: nn.Module, rng: np.random.Generator) -> None:
        """Run epochs of ``step`` over shuffled batches; keep the weights of the best validation epoch."""
        best, best_state, stale = -np.inf, None, 0
        self.history_ = []
        for epoch in range(self.n_epochs):
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

    def _training_state(self) -> dict:
        return {"history": self.history_, "best_epoch": self.best_epoch_, "fit_seconds": self.fit_seconds_}

    def _restore_training_state(self, meta: dict) -> None:
        self.history_ = list(meta.get("history", []))
        self.best_epoch_ = int(meta.get("best_epoch", len(self.history_) - 1))
        self.fit_seconds_ = float(meta.get("fit_seconds", 0.0))


class ImageDifference(TrainedComposedModel):
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
    n_epochs, batch_size, learning_rate, reg, patience : training settings (AdamW with weight decay ``reg``;
        early stopping on validation recall after ``patience`` epochs without progress; on the demo world the
        best validation epoch is the third, and 10 epochs of patience only added time).
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

    uses_joint_space = False  # it learns its own image and caption projections

    def __init__(self, *, embed_dim: int = 256, hidden_dim: int | None = 512, temperature: float = 0.1,
                 n_epochs: int = 60, batch_size: int = 128, learning_rate: float = 1e-3, reg: float = 1e-3,
                 patience: int = 4, random_state: int = 0):
        self.embed_dim = embed_dim
        self.hidden_dim = hidden_dim
        self.temperature = temperature
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.patience = patience
        self.random_state = random_state

    def _projection(self, in_dim: int) -> nn.Module:
        if self.hidden_dim is None:
            return nn.Linear(in_dim, self.embed_dim)
        return nn.Sequential(nn.Linear(in_dim, self.hidden_dim), nn.GELU(), nn.Dropout(0.1), nn.Linear(self.hidden_dim, self.embed_dim))

    def fit(self, image_features, triples: Triples, *, joint: JointSpace | None = None,
            validation: Callable[[ComposedModel], float] | None = None, candidates=None) -> "ImageDifference":
        """Train on ``triples`` (rows of ``image_features`` ``(n, d_image)``); returns ``self``.

        ``validation(model) -> recall`` drives early stopping; ``joint`` and ``candidates`` are not used (the model
        learns its own space from the triples alone).

        Raises
        ------
        IndexError
            When a triple's row is outside ``image_features``.
        """
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        images = torch.as_tensor(l2_normalize(image_features))
        captions = torch.as_tensor(l2_normalize(triples.captions))
        reference = torch.as_tensor(triples.reference)
        target = torch.as_tensor(triples.target)
        self.image_proj_ = self._projection(images.shape[1])
        self.text_proj_ = self._projection(captions.shape[1])
        modules = nn.ModuleList([self.image_proj_, self.text_proj_])
        optimizer = torch.optim.AdamW(modules.parameters(), lr=self.learning_rate, weight_decay=self.reg)

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
        # Small MLPs: on shared 2-core machines a second intra-op thread made a step ~50x slower (spin-waiting).
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
        """``(n, embed_dim)`` unit rows ``f(image)`` of image features ``(n, d_image)``.

        Raises
        ------
        AttributeError
            Before the model is fitted or loaded.
        """
        return self._forward(self.image_proj_, image_features)

    def compose(self, query_vectors, caption_features) -> np.ndarray:
        """``query + alpha * g(caption)``: ``(m, embed_dim)`` from ``(m, embed_dim)`` queries and ``(m, d_text)``
        caption features; not re-normalized (see the comment in the body).

        Raises
        ------
        AttributeError
            Before the model is fitted or loaded.
        """
        # Not re-normalized: gallery rows are unit vectors, so the inner product ranks like the Euclidean distance.
        return np.asarray(query_vectors, dtype=np.float32) + self.alpha_ * self._forward(self.text_proj_, caption_features)

    # ------------------------------------------------------------------ saving (Estimator.save / load)
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict]:
        if not hasattr(self, "image_proj_"):
            raise RuntimeError("The image-difference model is not trained; call fit first.")
        tensors = {f"image.{k}": v.numpy() for k, v in self.image_proj_.state_dict().items()}
        tensors |= {f"text.{k}": v.numpy() for k, v in self.text_proj_.state_dict().items()}
        in_dims = [next(m for m in module.modules() if isinstance(m, nn.Linear)).in_features
                   for module in (self.image_proj_, self.text_proj_)]
        return tensors, {"alpha": self.alpha_, "image_dim": int(in_dims[0]), "text_dim": int(in_dims[1]),
                         **self._training_state()}

    def _set_state(self, tensors: dict[str, np.ndarray], meta: dict, **inputs) -> None:
        self.image_proj_ = self._projection(int(meta["image_dim"]))
        self.text_proj_ = self._projection(int(meta["text_dim"]))
        self.image_proj_.load_state_dict({k[6:]: torch.as_tensor(v) for k, v in tensors.items() if k.startswith("image.")})
        self.text_proj_.load_state_dict({k[5:]: torch.as_tensor(v) for k, v in tensors.items() if k.startswith("text.")})
        self.image_proj_.eval()
        self.text_proj_.eval()
        self.alpha_ = float(meta["alpha"])
        self._restore_training_state(meta)
