"""The encoder interface shared by every entry of the registry, and the helpers the encoders have in common."""

from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

# Defined once in recsys.utils; imported here so ``recsys.encoders.l2_normalize`` keeps working for callers.
from recsys.utils import l2_normalize

logger = logging.getLogger(__name__)

MODALITIES = ("image", "text", "joint")



def autocast_dtype(device: str, precision: str) -> torch.dtype | None:
    """The ``torch.autocast`` dtype of ``precision`` on ``device``; None where the forward runs as loaded (fp32,
    int8: the quantized modules carry their own arithmetic)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

class EncoderError(ValueError):
    """An encoder spec cannot be turned into a working encoder; the message is one sentence saying why and what to do."""


def resolve_device(device: str | torch.device | None = "auto") -> str:
    """``"auto"`` becomes ``"cuda"`` when a GPU is visible, else ``"cpu"``; None means the ``RECSYS_DEVICE`` setting;
    anything else is checked and returned.

    Raises
    ------
    EncoderError
        For an unknown device, or CUDA when no GPU is visible (one sentence).
    """
    if device is None:
        from recsys.config import get_settings

        device = get_settings().device
    name = str(device)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EncoderError(f"Device '{name}' was requested but no CUDA GPU is visible; use --device cpu or auto.")
    if name != "cpu" and not name.startswith("cuda"):
        raise EncoderError(f"Unknown device '{name}'; use auto, cpu or cuda.")
    return name


def batched(sequence: Sequence, batch_size: int) -> Iterator[Sequence]:
    """Consecutive slices of ``sequence`` of ``batch_size`` elements (the last one may be shorter).

    Raises
    ------
    ValueError
        When ``batch_size`` is less than 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    for start in range(0, len(sequence), batch_size):
        yield sequence[start : start + batch_size]


def as_rgb(image: Image.Image) -> Image.Image:
    """RGB view of ``image``; transparent parts become white, as on a product page."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "P", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


class Encoder:
    """Base class of the registry's encoders: embeddings are L2-normalized float32 rows.

    Subclasses are built by :func:`recsys.encoders.create_encoder` and set the attributes below; they
    implement the ``_forward_*`` hooks, and this class does batching, no-grad/inference mode, autocast at the
    chosen :attr:`precision` and normalisation.

    Attributes
    ----------
    spec : str
        The spec string the encoder was created from (what manifests record).
    dim : int
        Length of an embedding.
    modality : {"image", "text", "joint"}
        What it encodes; a joint encoder embeds images and text into one space.
    device : str
        ``"cpu"`` or ``"cuda[:n]"``.
    preprocess : callable or None
        PIL image -> float tensor (C, H, W) ready for :meth:`encode_pixels`; ``None`` for text encoders.
        Picklable, so a DataLoader's workers can run it.
    feature_map_shape : tuple of int or None
        ``(channels, height, width)`` of the spatial feature map when the encoder provides one.
    max_tokens : int or None
        Longest text the text side reads (in its own tokens); longer text is cut, see :meth:`truncates`.
    cpu_micro_batch : int or None
        On CPU, run the network on this many images at a time, whatever the batch size asked for:
        small convolutional batches stay in the CPU caches and are faster per image. None: whole batches.
    precision : str
        What the forward runs at (:mod:`recsys.encoders.precision`): ``fp32``, ``bf16``, ``int8`` or ``fp16``;
        set by :func:`~recsys.encoders.create_encoder` through :meth:`set_precision`.
    precisions : tuple of str
        The precisions this encoder offers (autocast gives every encoder bf16 and, on a GPU, fp16).
    faithful_cpu_precisions : tuple of str
        Reduced precisions measured faithful to fp32 on the CPU (per-item cosine >= 0.995), fastest first: the
        CPU default is the first the CPU has instructions for. Empty: fp32 by default.
    """

    spec: str
    dim: int
    modality: str
    device: str
    preprocess: Callable[[Image.Image], torch.Tensor] | None = None
    feature_map_shape: tuple[int, int, int] | None = None
    max_tokens: int | None = None
    cpu_micro_batch: int | None = None
    precision: str = "fp32"
    precisions: tuple[str, ...] = ("fp32", "bf16", "fp16")
    faithful_cpu_precisions: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(spec={self.spec!r}, dim={self.dim}, modality={self.modality!r}, "
                f"device={self.device!r}, precision={self.precision!r})")

    # ------------------------------------------------------------------ capabilities
    @property
    def encodes_images(self) -> bool:
        """True for an image or joint encoder."""
        return self.modality in ("image", "joint")

    @property
    def encodes_text(self) -> bool:
        """True for a text or joint encoder."""
        return self.modality in ("text", "joint")

    def set_precision(self, precision: str) -> "Encoder":
        """Run later forwards at ``precision`` (one of :attr:`precisions`); int8 quantizes the model in place
        (:meth:`_quantize_int8`), so it is set once. Returns the encoder.

        Raises
        ------
        EncoderError
            For a precision this encoder does not offer, or a second change after int8.
        """
        if precision not in self.precisions:
            raise EncoderError(f"Encoder '{self.spec}' does not offer {precision}; it runs at {', '.join(self.precisions)}.")
        if precision == self.precision:
            return self
        if self.precision == "int8":
            raise EncoderError(f"Encoder '{self.spec}' was quantized to int8; create it again for {precision}.")
        if precision == "int8":
            self._quantize_int8()
        self.precision = precision
        return self

    def _quantize_int8(self) -> None:
        """Turn the model into its int8 form in place (encoders that list ``int8`` in :attr:`precisions`)."""
        raise NotImplementedError

    def _autocast(self):
        # bf16/fp16 autocast: the convolutions and matrix products in the reduced type, reductions and norms in fp32.
        dtype = autocast_dtype(self.device, self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda" if self.device.startswith("cuda") else "cpu", dtype=dtype)

    # ------------------------------------------------------------------ images
    def encode_pixels(self, pixels: torch.Tensor, return_feature_maps: bool = False):
        """Embed a batch already run through :attr:`preprocess` (``(n, C, H, W)``).

        Returns
        -------
        numpy.ndarray or tuple
            ``(n, dim)`` L2-normalized float32; with ``return_feature_maps`` also the raw ``(n, C, h, w)``
            float32 feature maps.

        Raises
        ------
        EncoderError
            When the encoder encodes text only, or ``return_feature_maps`` is asked of an encoder without a
            spatial feature map.
        """
        if not self.encodes_images:
            raise EncoderError(f"The encoder '{self.spec}' encodes text only, not images.")
        if return_feature_maps and self.feature_map_shape is None:
            raise EncoderError(f"The encoder '{self.spec}' has no spatial feature map; use effnet-lite0 for attention models.")
        step = self.cpu_micro_batch if (self.device == "cpu" and self.cpu_micro_batch) else max(len(pixels), 1)
        pooled_parts, map_parts = [], []
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(pixels), step):
                chunk = pixels[start : start + step].to(self.device, non_blocking=True)
                pooled, feature_maps = self._forward_pixels(chunk, return_feature_maps)
                pooled_parts.append(pooled.float().cpu().numpy())
                if return_feature_maps:
                    map_parts.append(feature_maps.float().cpu().numpy())
        pooled = l2_normalize(np.concatenate(pooled_parts)) if pooled_parts else np.zeros((0, self.dim), np.float32)
        if return_feature_maps:
            maps = np.concatenate(map_parts) if map_parts else np.zeros((0, *self.feature_map_shape), np.float32)
            return pooled, maps
        return pooled

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 32, return_feature_maps: bool = False):
        """Embed PIL images (any mode; transparency becomes white).

        Returns
        -------
        numpy.ndarray or tuple
            ``(n, dim)`` L2-normalized float32; with ``return_feature_maps`` also ``(n, C, h, w)`` float32.

        Raises
        ------
        EncoderError
            When the encoder encodes text only, or ``return_feature_maps`` is asked of an encoder without a
            spatial feature map.
        ValueError
            When ``batch_size`` is less than 1.
        """
        if not self.encodes_images:
            raise EncoderError(f"The encoder '{self.spec}' encodes text only, not images.")
        pooled_parts, map_parts = [], []
        for chunk in batched(list(images), batch_size):
            pixels = torch.stack([self.preprocess(as_rgb(image)) for image in chunk])
            result = self.encode_pixels(pixels, return_feature_maps)
            if return_feature_maps:
                pooled_parts.append(result[0])
                map_parts.append(result[1])
            else:
                pooled_parts.append(result)
        if not pooled_parts:
            pooled = np.zeros((0, self.dim), dtype=np.float32)
            if return_feature_maps:
                return pooled, np.zeros((0, *self.feature_map_shape), dtype=np.float32)
            return pooled
        pooled = np.concatenate(pooled_parts)
        if return_feature_maps:
            return pooled, np.concatenate(map_parts)
        return pooled

    def _forward_pixels(self, pixels: torch.Tensor, return_feature_maps: bool):
        """(pooled embedding tensor, feature-map tensor or None) for a preprocessed batch on :attr:`device`."""
        raise NotImplementedError

    # ------------------------------------------------------------------ text
    def encode_text(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed strings; returns ``(n, dim)`` L2-normalized float32. Text past :attr:`max_tokens` is cut.

        ``None`` is embedded as the empty string.

        Raises
        ------
        EncoderError
            When the encoder encodes images only.
        ValueError
            When ``batch_size`` is less than 1.
        """
        if not self.encodes_text:
            raise EncoderError(f"The encoder '{self.spec}' encodes images only, not text.")
        texts = ["" if text is None else str(text) for text in texts]
        # Batches of texts of similar length pad little: on the demo catalog's 5,438 distinct titles and descriptions
        # MiniLM takes 25 s sorted instead of 31 s in catalog order (the same vectors to 1e-7).
        order = np.argsort([len(text) for text in texts], kind="stable")
        parts = []
        for chunk in batched([texts[k] for k in order], batch_size):
            with torch.inference_mode(), self._autocast():
                parts.append(l2_normalize(self._forward_text(list(chunk)).float().cpu().numpy()))
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.concatenate(parts)
        restored = np.empty_like(vectors)
        restored[order] = vectors
        return restored

    def _forward_text(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes, special tokens included.

        Raises
        ------
        NotImplementedError
            In this base class; text encoders override it.
        """
        raise NotImplementedError

    def truncates(self, text: str) -> bool:
        """True when ``text`` is longer than :attr:`max_tokens`, so only its beginning is encoded.

        Raises
        ------
        EncoderError
            When the encoder encodes images only.
        """
        if not self.encodes_text:
            raise EncoderError(f"The encoder '{self.spec}' encodes images only, not text.")
        return self.max_tokens is not None and self.count_tokens(text) > self.max_tokens


def cached_text_vectors(text_encoder, spec: str, texts: list[str], cache_dir=None) -> np.ndarray:
    """``(len(texts), d)`` float32 vectors of ``texts`` by ``text_encoder`` (spec ``spec``), kept in ``cache_dir``
    (default ``<RECSYS_DATA_DIR>/cache``) under a hash of the spec and the texts, for fixed texts every catalog
    shares: the photo reader's 1000 ImageNet glosses took 12 of its 14 s to build on 2 cores."""
    import hashlib
    import os
    from pathlib import Path

    from recsys.config import get_settings

    folder = Path(cache_dir) if cache_dir is not None else get_settings().data_dir / "cache"
    key = hashlib.sha1("\n".join([spec, *texts]).encode("utf-8")).hexdigest()[:16]
    path = folder / f"label-vectors-{key}.npy"
    from recsys.utils import load_array

    try:
        cached = load_array(path)
        if (cached.ndim == 2 and cached.dtype.kind == "f" and cached.shape == (len(texts), getattr(
                text_encoder, "dim", cached.shape[1])) and np.isfinite(cached).all()):
            return cached
    except (OSError, ValueError):  # missing, or damaged (empty, a git-lfs pointer, cut short): encoded again
        pass
    vectors = np.asarray(text_encoder.encode_text(texts), dtype=np.float32)
    try:  # a cache that cannot be written only costs the next build its 12 s
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
        np.save(partial, vectors)
        os.replace(partial, path)
    except OSError as exc:
        logger.info("label vectors not cached: %s", exc)
    return vectors
