"""The ``demo-clip`` encoder: a catalog's trained joint-space heads over the frozen base encoders (DESIGN section 5).

The heads are a model of the ``composed`` task (:class:`recsys.models.democlip.DemoClip`), trained and saved by
the model store as ``<catalog>/artifacts/models/composed-demo-clip.*``. The encoder registry keeps a lazy factory
for the name, so this module (and torch) is imported only when a ``demo-clip`` spec is created. Spec forms:

``demo-clip``
    the heads of the catalog the studio shows (``RECSYS_CATALOG`` or the built-in world);
``demo-clip:<catalog folder>``
    the heads of that catalog;
``demo-clip:<path to composed-demo-clip.safetensors>``
    a weight file (its ``.json`` beside it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError

from recsys.encoders.base import Encoder, EncoderError
from recsys.encoders.registry import create_encoder
from recsys.models.democlip import MODEL_NAME, DemoClip
from recsys.models.registry import saved_model_path

NAME = "demo-clip"


def weights_path(location: str | None = None) -> Path:
    """The weight-file prefix (no suffix) a spec's location names: a catalog folder, a weight file, or (None)
    the studio's catalog."""
    if not location:
        from recsys.config import get_settings

        return saved_model_path(get_settings().catalog_dir, "composed", MODEL_NAME)
    path = Path(location).expanduser()
    if path.suffix in (".safetensors", ".json"):
        return path.with_suffix("")
    return saved_model_path(path, "composed", MODEL_NAME)


class DemoClipEncoder(Encoder):
    """The ``demo-clip`` joint encoder: frozen base encoders followed by a catalog's trained projection heads.

    Images: ``(n, C, H, W)`` pixels -> base image encoder -> heads -> ``(n, dim)`` unit rows; text likewise.

    Parameters
    ----------
    spec : str
        ``demo-clip``, ``demo-clip:<catalog folder>`` or ``demo-clip:<weights.safetensors>``.
    device : str
        Device of the base encoders (the heads are tiny and run on the CPU).

    Attributes
    ----------
    clip : recsys.models.democlip.DemoClip
        The trained heads.
    image_encoder, text_encoder : Encoder
        The frozen base encoders the heads were trained over (specs from the weights' provenance).

    Raises
    ------
    EncoderError
        When the weights are missing (naming the train command) or cannot be read.
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
            self.clip = DemoClip.load(path)
        except EncoderError:  # already one sentence (recsys.encoders.checkpoints)
            raise
        except (OSError, KeyError, ValueError, RuntimeError, SafetensorError) as exc:
            # torch's state-dict errors run over many lines: keep the first
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(":. ")
            weights = path.with_suffix(".safetensors")
            raise EncoderError(f"The weights {weights} of encoder '{spec}' cannot be read ({first_line[:200]}).") from None
        provenance = self.clip.provenance_
        self.weights_path = path
        self.image_encoder = create_encoder((provenance.image_encoder if provenance else "") or "effnet-lite0", device)
        self.text_encoder = create_encoder((provenance.text_encoder if provenance else "") or "minilm", device)
        self.preprocess = self.image_encoder.preprocess
        self.max_tokens = self.text_encoder.max_tokens
        self.dim = self.clip.embed_dim

    def encode_pixels(self, pixels: torch.Tensor, return_feature_maps: bool = False):
        """``(n, dim)`` unit rows of preprocessed pixels ``(n, C, H, W)``.

        Raises
        ------
        EncoderError
            When feature maps are asked for (the joint space has none).
        """
        if return_feature_maps:
            raise EncoderError(f"The encoder '{self.spec}' has no spatial feature map; use effnet-lite0 for attention models.")
        return self.clip.project_images(self.image_encoder.encode_pixels(pixels))

    def encode_text(self, texts, batch_size: int = 64) -> np.ndarray:
        """``(n, dim)`` unit rows of ``n`` texts."""
        return self.clip.project_text(self.text_encoder.encode_text(texts, batch_size=batch_size))

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the base text encoder's tokenizer."""
        return self.text_encoder.count_tokens(text)


def create(spec: str, device: str) -> DemoClipEncoder:
    """The registry's factory for ``demo-clip`` specs (see :class:`DemoClipEncoder`; raises ``EncoderError``)."""
    return DemoClipEncoder(spec, device)
