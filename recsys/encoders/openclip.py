"""``open_clip:...``: joint image-text encoders loaded with open_clip.

Spec forms
----------
``open_clip:<arch>:<pretrained tag>``
    e.g. ``open_clip:ViT-B-32:laion2b_s34b_b79k``; the weights come from open_clip's download cache.
``open_clip:<arch>:<path to checkpoint>``
    a local ``.pt``/``.bin`` (read with ``torch.load(weights_only=True)``) or ``.safetensors`` file, loaded strictly
    by :mod:`recsys.encoders.checkpoints`: training wrappers (``module.``/``_orig_mod.`` prefixes, a nested
    ``state_dict``/``model`` dict) are removed, and a checkpoint that does not fit names its first mismatching keys;
    big_vision's ``.npz`` (SigLIP) is converted by open_clip itself.
``open_clip:hf-hub:<org/repo>``
    a model (config, weights, tokenizer) from the Hugging Face hub cache, e.g. a fashion-tuned CLIP.
``open_clip:local-dir:<folder>``
    the same layout as a hub repo, in a local folder.

``HF_HUB_OFFLINE=1`` (the studio's default, set in :mod:`recsys.config`) is respected: weights that are
not already cached raise :class:`EncoderError` instead of being downloaded.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from recsys.encoders.base import Encoder, EncoderError
from recsys.encoders.checkpoints import load_weights, read_checkpoint, unwrap_state_dict

logger = logging.getLogger(__name__)

NAME = "open_clip"
_SCHEMAS = ("hf-hub", "local-dir")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _how_to_supply(arch: str) -> str:
    download = "unset HF_HUB_OFFLINE to let open_clip download them once" if _offline() else "check the network"
    return f"{download}, or pass a local checkpoint as 'open_clip:{arch}:/path/to/checkpoint.pt'"


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``(model_name, pretrained)`` for open_clip from a spec; ``pretrained`` is None for hub/local-dir models.

    Raises
    ------
    EncoderError
        When the spec names no model, a ``hf-hub``/``local-dir`` spec names no location, or an architecture is
        given without a pretrained tag or checkpoint path.
    """
    _, _, rest = spec.partition(":")
    first, _, second = rest.partition(":")
    if not first:
        raise EncoderError(f"The encoder spec '{spec}' names no model; write 'open_clip:<arch>:<pretrained tag or checkpoint path>'.")
    if first in _SCHEMAS:
        if not second:
            raise EncoderError(f"The encoder spec '{spec}' names no {first} location; write 'open_clip:{first}:<location>'.")
        return f"{first}:{second}", None
    if not second:
        raise EncoderError(
            f"The encoder spec '{spec}' names no weights; write 'open_clip:{first}:<pretrained tag or checkpoint path>' "
            f"(a model without weights would embed at random)."
        )
    return first, second


def load_open_clip_checkpoint(model: torch.nn.Module, path: Path, spec: str) -> torch.nn.Module:
    """Load the local checkpoint ``path`` into the open_clip ``model`` (on the CPU); returns ``model``.

    The checkpoint is read and unwrapped by :mod:`recsys.encoders.checkpoints`, then adapted as open_clip's own
    ``load_checkpoint`` adapts it (third-party layouts, the old text-tower layout, scalar logit scale or bias, a
    position-ids buffer of older transformers, position embeddings resized to the model's grid and context), then
    loaded strictly.

    Raises
    ------
    EncoderError
        When the file cannot be read or does not fit the model (naming the first mismatching keys).
    """
    from open_clip.convert import convert_state_dict
    from open_clip.model import convert_to_custom_text_state_dict, resize_pos_embed, resize_text_pos_embed

    state_dict = unwrap_state_dict(read_checkpoint(path, spec), expected_keys=model.state_dict().keys())
    state_dict = convert_state_dict(model, state_dict)
    if "positional_embedding" in state_dict and not hasattr(model, "positional_embedding"):
        state_dict = convert_to_custom_text_state_dict(state_dict)
    for name in ("logit_scale", "logit_bias"):
        own = getattr(model, name, None)
        if name in state_dict and isinstance(own, torch.Tensor) and state_dict[name].ndim != own.ndim:
            state_dict[name] = state_dict[name].reshape(own.shape)
    position_ids = "text.transformer.embeddings.position_ids"
    if position_ids in state_dict and position_ids not in model.state_dict():
        del state_dict[position_ids]
    resize_pos_embed(state_dict, model)
    resize_text_pos_embed(state_dict, model)
    return load_weights(model, state_dict, path, spec)


class OpenCLIPEncoder(Encoder):
    """A joint image-text encoder from open_clip (CLIP, SigLIP, ...).

    Parameters
    ----------
    spec : str
        See the module docstring for the accepted forms.
    device : str
        ``"cpu"`` or ``"cuda"``.

    Attributes
    ----------
    model : open_clip.CLIP or open_clip.CustomTextCLIP
    tokenizer : callable
        open_clip's tokenizer for the model (``open_clip.get_tokenizer``).
    preprocess : torchvision transform
        open_clip's validation transform for the model.
    max_tokens : int
        The text context length (start and end tokens included).
    """

    modality = "joint"

    def __init__(self, spec: str, device: str = "cpu"):
        try:
            import open_clip
        except ImportError:
            raise EncoderError(f"Encoder '{spec}' needs open_clip; install it with `pip install open_clip_torch`.") from None
        model_name, pretrained = parse_spec(spec)
        self.spec = spec
        self.device = device
        if pretrained is not None:
            self._check_weights_exist(open_clip, spec, model_name, pretrained)
        local_file = Path(pretrained).expanduser() if pretrained is not None else None
        try:
            if local_file is not None and local_file.is_file() and local_file.suffix not in (".npz", ".npy"):
                # Built without weights (no tower downloads either), then loaded by the studio's one checkpoint helper;
                # big_vision's numpy archives (SigLIP) are not state dicts and stay with open_clip's own converter.
                model, _, preprocess = open_clip.create_model_and_transforms(
                    model_name, pretrained=None, device="cpu", pretrained_image=False, pretrained_text=False
                )
                model = load_open_clip_checkpoint(model, local_file, spec).to(device)
            else:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    model_name, pretrained=pretrained, device=device, require_pretrained=True, weights_only=True
                )
            tokenizer = open_clip.get_tokenizer(model_name)
        except EncoderError:
            raise
        except Exception as exc:  # open_clip wraps hub, file and state-dict problems in assorted exception types
            raise EncoderError(self._describe_failure(spec, model_name, exc)) from None
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.max_tokens = int(getattr(tokenizer, "context_length", None) or model.context_length)
        self.dim = self._embedding_dim()
        logger.info("loaded %s on %s (dim %d)", spec, device, self.dim)

    @staticmethod
    def _check_weights_exist(open_clip, spec: str, arch: str, pretrained: str) -> None:
        if arch not in open_clip.list_models():
            raise EncoderError(
                f"The encoder spec '{spec}' names the unknown open_clip architecture '{arch}'; "
                f"open_clip.list_models() lists the known ones (e.g. ViT-B-32)."
            )
        if Path(pretrained).expanduser().is_file():
            return
        known_tags = open_clip.list_pretrained_tags_by_model(arch)
        if pretrained in known_tags:
            return
        looks_like_path = os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))
        if looks_like_path:
            raise EncoderError(
                f"The checkpoint file {pretrained} of encoder '{spec}' does not exist; give an existing checkpoint path "
                f"or one of open_clip's pretrained tags for {arch} (open_clip.list_pretrained_tags_by_model)."
            )
        raise EncoderError(
            f"'{pretrained}' is neither a pretrained tag of open_clip {arch} ({', '.join(known_tags) or 'none'}) "
            f"nor an existing checkpoint file, so encoder '{spec}' has no weights."
        )

    @staticmethod
    def _describe_failure(spec: str, model_name: str, exc: Exception) -> str:
        logger.debug("open_clip failed to load %s", spec, exc_info=exc)
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        lowered = message.lower()
        if not any(word in lowered for word in ("download", "offline", "cache", "not found", "no such file", "connect")):
            return f"Encoder '{spec}' cannot be loaded ({message[:200]})."
        if model_name.startswith("hf-hub:"):
            how = "unset HF_HUB_OFFLINE to let open_clip download it once" if _offline() else "check the network"
            return (
                f"The model of encoder '{spec}' is not in the local Hugging Face cache; {how}, "
                f"or save the repository to a folder and pass 'open_clip:local-dir:/path/to/folder'."
            )
        if model_name.startswith("local-dir:"):
            return f"The folder of encoder '{spec}' holds no complete open_clip model ({message[:200]})."
        return f"The weights of encoder '{spec}' are not in open_clip's local cache; {_how_to_supply(model_name)}."

    def _embedding_dim(self) -> int:
        output_dim = getattr(getattr(self.model, "visual", None), "output_dim", None)
        if isinstance(output_dim, int):
            return output_dim
        return int(self.encode_text(["a"]).shape[1])

    def _forward_pixels(self, pixels: torch.Tensor, return_feature_maps: bool):
        return self.model.encode_image(pixels), None

    def _forward_text(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts).to(self.device)
        return self.model.encode_text(tokens)

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes, start- and end-of-text tokens included, before any truncation."""
        inner = getattr(self.tokenizer, "tokenizer", None)
        if inner is not None and callable(inner):  # open_clip.HFTokenizer wraps a Hugging Face tokenizer
            return len(inner(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])
        return len(self.tokenizer.encode(text)) + 2  # open_clip's BPE adds start- and end-of-text tokens


def create(spec: str, device: str) -> OpenCLIPEncoder:
    """Registry hook: build the open_clip encoder of ``spec`` (see the module docstring) on ``device``.

    Raises
    ------
    EncoderError
        When open_clip is missing, the spec is malformed, or the model or its weights cannot be loaded.
    """
    return OpenCLIPEncoder(spec, device)
