"""``demo-clip``: the offline joint image-text space of a catalog (DESIGN section 5).

No CLIP weights can be downloaded on the machines the studio is built on, so the joint space is learned
per catalog: two small projection heads, one over the frozen default image encoder (``effnet-lite0``) and
one over the frozen default text encoder (``minilm``), trained with the CLIP objective (symmetric
InfoNCE, learnable temperature) on the catalog's (image, title) and (image, description) pairs, plus the
relative captions of the training split (the difference of target and reference image embeddings should
point along the caption's embedding, as in the text-guided retrieval recipe).

Because the heads are learned on one catalog, their weights live with that catalog, in
``<catalog>/artifacts/models/demo-clip.safetensors`` (+ ``.json``), written by
``python scripts/train.py --catalog DIR --task composed``. Spec forms:

``demo-clip``
    the heads of the catalog the studio shows (``RECSYS_CATALOG`` or the built-in world);
``demo-clip:<catalog folder>``
    the heads of that catalog;
``demo-clip:<path to demo-clip.safetensors>``
    a weight file (its ``.json`` beside it).

References
----------
Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021.
Wu et al., "Fashion IQ: A New Dataset Towards Retrieving Images by Natural Language Feedback", CVPR 2021.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recsys.encoders.base import Encoder, EncoderError, l2_normalize
from recsys.encoders.registry import create_encoder, register_encoder

logger = logging.getLogger(__name__)

NAME = "demo-clip"
MODEL_NAME = "demo-clip"
#: Texts whose base embeddings are this similar are the same sentence (generated titles repeat often).
_SAME_TEXT_COSINE = 0.999


class ProjectionHead(nn.Module):
    """Linear projection with a residual MLP and LayerNorm, the head of the simple CLIP recipe."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.1):
        super().__init__()
        self.projection = nn.Linear(in_dim, out_dim)
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(out_dim, out_dim), nn.Dropout(dropout))
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = self.projection(x)
        return self.norm(projected + self.mlp(projected))


@contextlib.contextmanager
def _one_torch_thread():
    # Small heads: on shared 2-core machines a second intra-op thread spin-waits and slows training ~50x.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _heads(image_dim: int, text_dim: int, embed_dim: int, dropout: float) -> nn.ModuleDict:
    return nn.ModuleDict({"image": ProjectionHead(image_dim, embed_dim, dropout), "text": ProjectionHead(text_dim, embed_dim, dropout)})


def multi_positive_targets(text_vectors: torch.Tensor) -> torch.Tensor:
    """Row-normalized target matrix: every in-batch text identical to row ``i``'s counts as its positive.

    Generated titles repeat (two red cotton t-shirts share one), and plain one-hot CLIP targets would push
    apart pairs that are in fact both right.
    """
    same = (text_vectors @ text_vectors.T) > _SAME_TEXT_COSINE
    same = same | torch.eye(len(text_vectors), dtype=torch.bool, device=text_vectors.device)
    return same.float() / same.float().sum(dim=1, keepdim=True)


def symmetric_clip_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric cross-entropy between unit rows ``a`` and ``b`` with (soft) ``targets``."""
    logits = logit_scale * a @ b.T
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets.T))


class DemoClip:
    """Projection heads that map frozen image and text features into one joint space (CLIP-style).

    Parameters
    ----------
    embed_dim : int
        Size of the joint space.
    epochs : int
        Passes over the catalog's items.
    batch_size : int
        Items per contrastive batch (the negatives of each pair).
    lr, weight_decay : float
        AdamW settings.
    temperature : float
        Initial softmax temperature; learned during training (as ``logit_scale = 1 / temperature``).
    caption_weight : float
        Weight of the relative-caption term (target minus reference image embedding vs caption embedding).
    dropout : float
        Dropout inside the heads.
    random_state : int
        Seed of the initialisation and the batch order.

    Attributes
    ----------
    heads_ : torch.nn.ModuleDict
        ``"image"`` and ``"text"`` :class:`ProjectionHead` s.
    logit_scale_ : float
        The learned inverse temperature.
    history_ : list of float
        Mean loss of each epoch.
    fit_seconds_ : float

    References
    ----------
    Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021.
    """

    def __init__(self, embed_dim: int = 256, epochs: int = 40, batch_size: int = 256, lr: float = 2e-3,
                 weight_decay: float = 1e-4, temperature: float = 0.07, caption_weight: float = 0.5,
                 dropout: float = 0.1, random_state: int = 0):
        self.embed_dim = embed_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.temperature = temperature
        self.caption_weight = caption_weight
        self.dropout = dropout
        self.random_state = random_state

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in ("embed_dim", "epochs", "batch_size", "lr", "weight_decay", "temperature",
                                              "caption_weight", "dropout", "random_state")}

    def fit(self, image_features, title_features, description_features, items=None,
            caption_reference=None, caption_target=None, caption_features=None) -> "DemoClip":
        """Learn the heads.

        Parameters
        ----------
        image_features : array (n, d_image)
            Frozen image embeddings of the catalog (``Artifacts.image``).
        title_features, description_features : array (n, d_text)
            Frozen text embeddings of the titles and descriptions.
        items : array of int, optional
            Rows that may be used for training (e.g. without the evaluation's held-out targets); all by default.
        caption_reference, caption_target : array of int (m,), optional
            Rows of the reference and target of each training caption.
        caption_features : array (m, d_text), optional
            Frozen text embeddings of those captions.
        """
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        images = torch.tensor(np.asarray(image_features, dtype=np.float32))  # a copy: artifacts are read-only memory maps
        texts = torch.stack([torch.tensor(np.asarray(title_features, dtype=np.float32)),
                             torch.tensor(np.asarray(description_features, dtype=np.float32))])
        rows = np.arange(len(images)) if items is None else np.asarray(items, dtype=np.int64)
        has_captions = caption_features is not None and len(caption_features) > 0 and self.caption_weight > 0
        if has_captions:
            cap_ref = torch.as_tensor(np.asarray(caption_reference, dtype=np.int64))
            cap_tgt = torch.as_tensor(np.asarray(caption_target, dtype=np.int64))
            cap_text = torch.as_tensor(np.asarray(caption_features, dtype=np.float32))
        self.heads_ = _heads(images.shape[1], texts.shape[2], self.embed_dim, self.dropout)
        log_scale = nn.Parameter(torch.tensor(float(np.log(1.0 / self.temperature))))
        optimizer = torch.optim.AdamW([*self.heads_.parameters(), log_scale], lr=self.lr, weight_decay=self.weight_decay)
        steps_per_epoch = max(1, int(np.ceil(len(rows) / self.batch_size)))
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=self.epochs * steps_per_epoch)
        self.history_ = []
        started = time.perf_counter()
        self.heads_.train()
        with _one_torch_thread():
            self._train_epochs(rows, rng, images, texts, log_scale, optimizer, scheduler,
                               (cap_ref, cap_tgt, cap_text) if has_captions else None)
        self.heads_.eval()
        self.logit_scale_ = float(log_scale.detach().exp().clamp(max=100.0))
        self.fit_seconds_ = time.perf_counter() - started
        logger.info("demo-clip trained in %.1f s, final loss %.3f", self.fit_seconds_, self.history_[-1])
        return self

    def _train_epochs(self, rows, rng, images, texts, log_scale, optimizer, scheduler, captions) -> None:
        has_captions = captions is not None
        if has_captions:
            cap_ref, cap_tgt, cap_text = captions
        for _ in range(self.epochs):
            order = rng.permutation(rows)
            losses = []
            for start in range(0, len(order), self.batch_size):
                batch = torch.as_tensor(order[start : start + self.batch_size])
                if len(batch) < 2:
                    continue
                # Each item shows either its title or its description, so both kinds of text land in the space.
                field = torch.as_tensor(rng.integers(0, 2, size=len(batch)))
                text = texts[field, batch]
                image_emb = F.normalize(self.heads_["image"](images[batch]), dim=-1)
                text_emb = F.normalize(self.heads_["text"](text), dim=-1)
                scale = log_scale.exp().clamp(max=100.0)
                loss = symmetric_clip_loss(image_emb, text_emb, scale, multi_positive_targets(F.normalize(text, dim=-1)))
                if has_captions:
                    pick = torch.as_tensor(rng.choice(len(cap_text), size=min(len(cap_text), self.batch_size), replace=False))
                    ref = F.normalize(self.heads_["image"](images[cap_ref[pick]]), dim=-1)
                    tgt = F.normalize(self.heads_["image"](images[cap_tgt[pick]]), dim=-1)
                    diff = F.normalize(tgt - ref, dim=-1)
                    cap = F.normalize(self.heads_["text"](cap_text[pick]), dim=-1)
                    loss = loss + self.caption_weight * symmetric_clip_loss(
                        diff, cap, scale, multi_positive_targets(F.normalize(cap_text[pick], dim=-1)))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
            self.history_.append(float(np.mean(losses)) if losses else float("nan"))

    # ------------------------------------------------------------------ projecting
    def _project(self, head: str, features) -> np.ndarray:
        features = np.asarray(features, dtype=np.float32)
        if len(features) == 0:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        with torch.inference_mode(), _one_torch_thread():
            parts = [self.heads_[head](torch.as_tensor(features[s : s + 4096])).numpy() for s in range(0, len(features), 4096)]
        return l2_normalize(np.concatenate(parts))

    def project_images(self, image_features) -> np.ndarray:
        """Joint-space embeddings (unit rows) of frozen image features."""
        return self._project("image", l2_normalize(image_features))

    def project_text(self, text_features) -> np.ndarray:
        """Joint-space embeddings (unit rows) of frozen text features."""
        return self._project("text", l2_normalize(text_features))

    # ------------------------------------------------------------------ saving
    def save(self, path, extra: dict | None = None) -> None:
        from recsys.models.base import save_model

        tensors = {k: v.detach().numpy() for k, v in self.heads_.state_dict().items()}
        params = {"model": MODEL_NAME, "params": self.get_params(), "logit_scale": self.logit_scale_,
                  "image_dim": int(self.heads_["image"].projection.in_features),
                  "text_dim": int(self.heads_["text"].projection.in_features),
                  "fit_seconds": self.fit_seconds_, "history": self.history_, **(extra or {})}
        save_model(path, tensors, params)

    @classmethod
    def load(cls, path) -> tuple["DemoClip", dict]:
        """The heads saved at ``path`` (without suffix) and their JSON metadata."""
        from recsys.models.base import load_model

        tensors, meta = load_model(path)
        model = cls(**meta["params"])
        model.heads_ = _heads(meta["image_dim"], meta["text_dim"], model.embed_dim, model.dropout)
        model.heads_.load_state_dict({k: torch.as_tensor(v) for k, v in tensors.items()})
        model.heads_.eval()
        model.logit_scale_ = float(meta["logit_scale"])
        model.history_ = list(meta.get("history", []))
        model.fit_seconds_ = float(meta.get("fit_seconds", 0.0))
        return model, meta


# ---------------------------------------------------------------------- the registry's encoder
def weights_path(location: str | None = None) -> Path:
    """The weight-file prefix a spec's location names (a catalog folder, a weight file, or the studio's catalog)."""
    from recsys.models.base import model_path

    if not location:
        from recsys.config import get_settings

        return model_path(get_settings().catalog_dir, MODEL_NAME)
    path = Path(location).expanduser()
    if path.suffix in (".safetensors", ".json"):
        return path.with_suffix("")
    return model_path(path, MODEL_NAME)


class DemoClipEncoder(Encoder):
    """The ``demo-clip`` joint encoder: frozen base encoders followed by a catalog's trained projection heads.

    Parameters
    ----------
    spec : str
        ``demo-clip``, ``demo-clip:<catalog folder>`` or ``demo-clip:<weights.safetensors>``.
    device : str
        Device of the base encoders (the heads are tiny and run on the CPU).

    Attributes
    ----------
    clip : DemoClip
        The trained heads.
    image_encoder, text_encoder : Encoder
        The frozen base encoders the heads were trained over (specs from the weights' metadata).
    """

    modality = "joint"

    def __init__(self, spec: str = NAME, device: str = "cpu"):
        _, _, location = spec.partition(":")
        self.spec = spec
        self.device = device
        path = weights_path(location or None)
        if not path.with_suffix(".safetensors").is_file():
            raise EncoderError(
                f"Encoder '{spec}' has no trained weights at {path.with_suffix('.safetensors')}; train them with "
                f"`python scripts/train.py --catalog <catalog folder> --task composed`."
            )
        try:
            self.clip, meta = DemoClip.load(path)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise EncoderError(f"The weights {path.with_suffix('.safetensors')} of encoder '{spec}' cannot be read ({exc}).") from None
        self.weights_path = path
        self.image_encoder = create_encoder(meta.get("image_encoder", "effnet-lite0"), device)
        self.text_encoder = create_encoder(meta.get("text_encoder", "minilm"), device)
        self.preprocess = self.image_encoder.preprocess
        self.max_tokens = self.text_encoder.max_tokens
        self.dim = self.clip.embed_dim

    def encode_pixels(self, pixels: torch.Tensor, return_feature_maps: bool = False):
        if return_feature_maps:
            raise EncoderError(f"The encoder '{self.spec}' has no spatial feature map; use effnet-lite0 for attention models.")
        return self.clip.project_images(self.image_encoder.encode_pixels(pixels))

    def encode_text(self, texts, batch_size: int = 64) -> np.ndarray:
        return self.clip.project_text(self.text_encoder.encode_text(texts, batch_size=batch_size))

    def count_tokens(self, text: str) -> int:
        return self.text_encoder.count_tokens(text)


def create(spec: str, device: str) -> DemoClipEncoder:
    return DemoClipEncoder(spec, device)


# overwrite=True: a re-import (e.g. importlib.reload in a dev session) must not fail on the existing entry.
register_encoder(NAME, create, overwrite=True)
