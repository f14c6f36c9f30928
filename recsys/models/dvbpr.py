"""DVBPR-style rankers: a frozen image encoder plus a trainable layer to K dimensions, trained with BPR.

Two variants of the encoder, as in the paper's comparisons:

* pretrained: the artifacts' pooled EfficientNet-Lite0 vectors (ImageNet weights, frozen) -- the paper's
  "ImageNet features + trainable layer" variant;
* autoencoder: a small convolutional autoencoder trained on the catalog's own images (downscaled, e.g. to
  64x64), its encoder then frozen -- the paper's autoencoder baseline.

End-to-end CNN training (the full DVBPR) costs about ten minutes an epoch on a GPU at Amazon scale; these
variants keep the frozen features and learn only the layer on top, which fits on two CPU cores.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recsys.models.base import Estimator
from recsys.models.pairwise import PairwiseModule, PairwiseRanker
from recsys.models.vbpr import LinearVisualRegions
from recsys.utils import FIT_THREADS, torch_threads

logger = logging.getLogger(__name__)


class _DVBPRModule(PairwiseModule):
    def __init__(self, n_users: int, features: np.ndarray, n_factors: int):
        super().__init__(n_users, n_factors)
        # Memory-mapped artifacts are read-only; torch wants writable memory, so only those are copied.
        self.register_buffer("features", torch.as_tensor(np.require(features, np.float32, ["W"])), persistent=False)
        self.phi = nn.Linear(self.features.shape[1], n_factors)  # the trainable layer on the frozen encoder

    def item_side(self, item_idx):
        vectors = self.phi(self.features[item_idx])
        return vectors, torch.zeros(len(item_idx))

    def regularized(self, user_vectors, item_idx):
        return user_vectors.pow(2).sum()


class DVBPR(LinearVisualRegions, PairwiseRanker):
    """Visually-aware ranking with a frozen image encoder and a trainable layer: ``x_ui = theta_u . Phi(f_i)``.

    As in DVBPR there are no item factors: an item is its image, so cold-start items are scored like any other.

    Parameters
    ----------
    n_factors : int
        K, the dimension of ``theta_u`` and of the trainable layer's output.
    save_features : bool
        Save the item features with the weights, so that loading needs no side input: for features that are not
        precomputed artifacts (the autoencoder's codes), which a saved model must not depend on being re-made.
    n_epochs, batch_size, learning_rate, reg, bias_reg, random_state
        Training settings, as in :class:`recsys.models.bpr.BPR`.

    Side inputs
    -----------
    item_features : ndarray (n_items, d)
        The frozen encoder's output per item (pretrained CNN vectors or autoencoder codes).

    References
    ----------
    W.-C. Kang, C. Fang, Z. Wang, J. McAuley. Visually-Aware Fashion Recommendation and Design with
    Generative Image Models. ICDM 2017.
    """

    _side_names = ("item_features",)

    def __init__(self, *, n_factors: int = 32, save_features: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.n_factors = n_factors
        self.save_features = save_features

    def _build_module(self, n_users, n_items):
        return _DVBPRModule(n_users, self.side_["item_features"], self.n_factors)

    def visual_direction(self, user_vector: np.ndarray) -> np.ndarray:
        """``w_u = W^T theta_u``: the score is ``w_u . f_i`` plus a constant, linear in the image features."""
        theta = torch.as_tensor(np.asarray(user_vector, dtype=np.float32))
        with torch.no_grad():
            return (self.module_.phi.weight.T @ theta).numpy()

    def _get_state(self):
        tensors, meta = super()._get_state()
        if self.save_features:
            tensors["item_features"] = np.asarray(self.side_["item_features"], dtype=np.float32)
        return tensors, meta

    def _set_state(self, tensors, meta, **inputs) -> None:
        tensors = dict(tensors)
        saved = tensors.pop("item_features", None)
        if self.save_features and saved is not None:
            inputs = {**inputs, "item_features": saved}
        super()._set_state(tensors, meta, **inputs)


# ---------------------------------------------------------------------- the autoencoder encoder
class _ConvAE(nn.Module):
    def __init__(self, image_size: int, code_dim: int):
        super().__init__()
        widths = (3, 16, 32, 64, 64)
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.ReLU()]
        self.encoder_conv = nn.Sequential(*layers)
        self.side = image_size // 16
        self.encoder_fc = nn.Linear(64 * self.side * self.side, code_dim)
        self.decoder_fc = nn.Linear(code_dim, 64 * self.side * self.side)
        layers = []
        for a, b in zip(widths[::-1][:-1], widths[::-1][1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), nn.ReLU()]
        layers[-1] = nn.Sigmoid()
        self.decoder_conv = nn.Sequential(*layers)

    def encode(self, x):
        return self.encoder_fc(self.encoder_conv(x).flatten(1))

    def forward(self, x):
        code = self.encode(x)
        return self.decoder_conv(self.decoder_fc(code).view(-1, 64, self.side, self.side))


class ConvAutoencoder(Estimator):
    """A small convolutional autoencoder of the catalog's images; its encoder is DVBPR's frozen encoder variant.

    Four stride-2 convolutions to a ``code_dim`` code and a mirrored decoder, trained with the pixel MSE.

    Parameters
    ----------
    code_dim : int
        Length of the code (the features the DVBPR layer sees).
    image_size : int
        Side of the (downscaled) square input images; a multiple of 16.
    n_epochs, batch_size, learning_rate, random_state
        Adam training settings.

    References
    ----------
    W.-C. Kang et al., ICDM 2017 (the autoencoder baseline of the visually-aware ranking comparison);
    J. Masci et al. Stacked Convolutional Auto-Encoders for Hierarchical Feature Extraction. ICANN 2011.
    """

    def __init__(self, *, code_dim: int = 128, image_size: int = 64, n_epochs: int = 12, batch_size: int = 64,
                 learning_rate: float = 2e-3, random_state: int | None = 0):
        self.code_dim = code_dim
        self.image_size = image_size
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state

    @staticmethod
    def _tensor(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0

    def fit(self, images: np.ndarray) -> "ConvAutoencoder":
        """Fit on ``(n, image_size, image_size, 3)`` uint8 images (on :data:`recsys.utils.FIT_THREADS` threads).

        Raises
        ------
        ValueError
            When the images are not ``image_size`` pixels square.
        """
        if images.shape[1:3] != (self.image_size, self.image_size):
            raise ValueError(f"The autoencoder expects {self.image_size}x{self.image_size} images, got {images.shape[1:3]}.")
        with torch_threads(FIT_THREADS):
            return self._fit(images)

    def _fit(self, images: np.ndarray) -> "ConvAutoencoder":
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(int(rng.integers(2**31)))
        self.module_ = _ConvAE(self.image_size, self.code_dim)
        optimizer = torch.optim.Adam(self.module_.parameters(), lr=self.learning_rate)
        pixels = self._tensor(images)
        self.history_ = []
        started = time.perf_counter()
        for epoch in range(self.n_epochs):
            order = torch.from_numpy(rng.permutation(len(pixels)))
            total = 0.0
            for start in range(0, len(order), self.batch_size):
                batch = pixels[order[start : start + self.batch_size]]
                loss = F.mse_loss(self.module_(batch), batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(batch)
            self.history_.append({"epoch": epoch + 1, "mse": total / len(pixels)})
            logger.debug("autoencoder epoch %d mse %.5f", epoch + 1, total / len(pixels))
        self.fit_seconds_ = time.perf_counter() - started
        self.module_.eval()
        return self

    @torch.no_grad()
    def transform(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Codes ``(n, code_dim)`` float32 of ``(n, size, size, 3)`` uint8 images.

        Raises
        ------
        AttributeError
            When the autoencoder is not fitted.
        """
        pixels = self._tensor(images)
        return torch.cat([self.module_.encode(pixels[s : s + batch_size]) for s in range(0, len(pixels), batch_size)]).numpy()

    @torch.no_grad()
    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """The decoded images ``(n, size, size, 3)`` uint8 of ``(n, size, size, 3)`` uint8 images."""
        return (self.module_(self._tensor(images)).permute(0, 2, 3, 1).numpy() * 255).clip(0, 255).astype(np.uint8)

    def _get_state(self):
        if not hasattr(self, "module_"):
            raise RuntimeError("This ConvAutoencoder is not fitted yet; call fit first.")
        tensors = {k: v.numpy() for k, v in self.module_.state_dict().items()}
        return tensors, {"history": self.history_, "fit_seconds": round(self.fit_seconds_, 3)}

    def _set_state(self, tensors, meta, **inputs) -> None:
        self.module_ = _ConvAE(self.image_size, self.code_dim)
        self.module_.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()})
        self.module_.eval()
        self.history_ = meta.get("history", [])
        self.fit_seconds_ = meta.get("fit_seconds", 0.0)
