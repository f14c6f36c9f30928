"""CLIP4Cir's combiner for composed retrieval: a learned mix of joint-space image and caption features.

It has the interface of :mod:`recsys.models.composed` (``fit``, ``gallery_vectors``, ``compose``, ``score``) and
works in a :class:`recsys.models.composed.JointSpace` given to :meth:`Combiner.fit` (and to ``load``): the space is
another model (the catalog's ``demo-clip`` heads), so the combiner records its key and refuses any other space.

References
----------
Baldrati et al., "Effective Conditioned and Composed Image Retrieval Combining CLIP-Based Features", CVPR 2022.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recsys.models.base import StaleModelError
from recsys.models.composed import ComposedModel, JointSpace, TrainedComposedModel, Triples
from recsys.utils import torch_threads


class CombinerNet(nn.Module):
    """CLIP4Cir's combiner: a learned mix of image and text features plus a residual MLP of both.

    ``out = normalize(mlp([img', txt']) + lambda * txt + (1 - lambda) * img)`` where ``lambda`` is predicted
    per query from the two projected features; ``(m, dim), (m, dim) -> (m, dim)`` unit rows.
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
        """Combined unit rows ``(m, dim)`` from image features ``(m, dim)`` and text features ``(m, dim)``."""
        both = torch.cat([self.text_projection(text), self.image_projection(image)], dim=-1)
        weight = self.dynamic_scalar(both)
        return F.normalize(self.combiner(both) + weight * text + (1 - weight) * image, dim=-1)


class Combiner(TrainedComposedModel):
    """A learned combiner of the joint-space reference image and caption features (CLIP4Cir, stage two).

    Trained with cross-entropy over the training gallery: the combined query must pick its target among all
    catalog items available for training (scaled cosine logits).

    Parameters
    ----------
    projection_dim, hidden_dim, dropout : sizes of :class:`CombinerNet`. CLIP4Cir's 2560 / 5120 are for 640-d
        CLIP features; over the 256-d demo-clip space 256 / 512 is taken for time: an epoch costs a third, and
        validation recall (mean of R@1, 5, 10, 50) on the demo world was close (0.853 with 1,500 mined triples
        vs 0.866 for 512 / 1024 with 2,000).
    logit_scale : float
        Inverse temperature of the logits (CLIP4Cir uses 100).
    n_epochs, batch_size, learning_rate, reg, patience : training settings (AdamW with weight decay ``reg``;
        early stopping on validation recall after ``patience`` epochs without progress). A learning rate of 2e-3
        rather than 5e-4: on the demo world's relative captions the validation recall rose slowly at 5e-4 (0.795
        after 27 epochs) and higher at 2e-3 (0.828 after 25; 1,500 mined triples).
    random_state : int

    Attributes
    ----------
    joint_ : JointSpace
        The space it was trained in (given to :meth:`fit`, or to ``load`` as ``joint=``).
    net_ : CombinerNet
    history_ : list of dict
    fit_seconds_ : float

    References
    ----------
    Baldrati et al., "Effective Conditioned and Composed Image Retrieval Combining CLIP-Based Features", CVPR 2022.
    """

    def __init__(self, *, projection_dim: int = 256, hidden_dim: int = 512, dropout: float = 0.3,
                 logit_scale: float = 30.0, n_epochs: int = 80, batch_size: int = 128, learning_rate: float = 2e-3,
                 reg: float = 1e-2, patience: int = 4, random_state: int = 0):
        self.projection_dim = projection_dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.logit_scale = logit_scale
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.reg = reg
        self.patience = patience
        self.random_state = random_state

    def _net(self, dim: int) -> CombinerNet:
        return CombinerNet(dim, self.projection_dim, self.hidden_dim, self.dropout)

    def fit(self, image_features, triples: Triples, *, joint: JointSpace | None = None,
            validation: Callable[[ComposedModel], float] | None = None, candidates=None) -> "Combiner":
        """Train on ``triples`` in the ``joint`` space; returns ``self``.

        Parameters
        ----------
        image_features : array (n, d_image)
        triples : Triples
            Rows of ``image_features`` and caption features.
        joint : JointSpace
        validation : callable, optional
            ``validation(model) -> recall``, for early stopping.
        candidates : array of int, optional
            The rows a target is picked among (default: all).

        Raises
        ------
        ValueError
            Without a joint space.
        KeyError
            When a triple's target is not among ``candidates``.
        """
        if joint is None:
            raise ValueError("The combiner works in a joint image-text space; pass joint=.")
        self.joint_ = joint
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        gallery = torch.as_tensor(joint.image(image_features))
        captions = torch.as_tensor(joint.text(triples.captions))
        candidates = np.arange(len(gallery)) if candidates is None else np.asarray(candidates, dtype=np.int64)
        # Position of each target among the candidates: the class the cross-entropy asks for.
        position = {int(row): k for k, row in enumerate(candidates)}
        labels = torch.as_tensor([position[int(t)] for t in triples.target])
        candidate_vectors = gallery[torch.as_tensor(candidates)]
        reference = gallery[torch.as_tensor(triples.reference)]
        self.net_ = self._net(gallery.shape[1])
        optimizer = torch.optim.AdamW(self.net_.parameters(), lr=self.learning_rate, weight_decay=self.reg)

        def step(batch: np.ndarray) -> float:
            batch = torch.as_tensor(batch)
            query = self.net_(reference[batch], captions[batch])
            loss = F.cross_entropy(self.logit_scale * query @ candidate_vectors.T, labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return float(loss.detach())

        started = time.perf_counter()
        # Small MLPs: on shared 2-core machines a second intra-op thread made a step ~50x slower (spin-waiting).
        with torch_threads(1):
            self._early_stopping_fit(step, len(triples), (lambda: validation(self)) if validation else None, self.net_, rng)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def gallery_vectors(self, image_features) -> np.ndarray:
        """``(n, d)`` joint-space unit rows of image features ``(n, d_image)``.

        Raises
        ------
        RuntimeError
            Before the model was fitted or loaded in a joint space.
        """
        return self._joint().image(image_features)

    def compose(self, query_vectors, caption_features) -> np.ndarray:
        """Combined ``(m, d)`` unit rows from ``(m, d)`` joint-space queries and ``(m, d_text)`` caption features.

        Raises
        ------
        AttributeError
            Before the model is fitted or loaded (it has no ``net_`` yet).
        """
        with torch.inference_mode(), torch_threads(1):
            out = self.net_(torch.as_tensor(np.asarray(query_vectors, dtype=np.float32)),
                            torch.as_tensor(self._joint().text(caption_features)))
        return out.numpy()

    # ------------------------------------------------------------------ saving (Estimator.save / load)
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict]:
        if not hasattr(self, "net_"):
            raise RuntimeError("The combiner is not trained; call fit first.")
        tensors = {k: v.numpy() for k, v in self.net_.state_dict().items()}
        return tensors, {"dim": int(self.net_.combiner[-1].out_features), "joint": self._joint().key,
                         **self._training_state()}

    def _set_state(self, tensors: dict[str, np.ndarray], meta: dict, joint: JointSpace | None = None, **inputs) -> None:
        """Restore the net in ``joint``, the space it was trained in.

        Raises
        ------
        ValueError
            Without ``joint``.
        StaleModelError
            When ``joint`` is another space (e.g. the demo-clip heads were trained again).
        """
        if joint is None:
            raise ValueError("The combiner is loaded in the joint space it was trained in; pass joint=.")
        if meta.get("joint") != joint.key:
            raise StaleModelError(f"The saved combiner was trained in the joint space {meta.get('joint')!r}, and the "
                                  f"studio now has {joint.key!r}; train it again.")
        self.joint_ = joint
        self.net_ = self._net(int(meta["dim"]))
        self.net_.load_state_dict({k: torch.as_tensor(v) for k, v in tensors.items()})
        self.net_.eval()
        self._restore_training_state(meta)
