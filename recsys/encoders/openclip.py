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

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from recsys.encoders.base import Encoder, EncoderError
from recsys.encoders.checkpoints import load_weights, read_checkpoint, unwrap_state_dict
from recsys.progress import no_library_bars

logger = logging.getLogger(__name__)

NAME = "open_clip"
_SCHEMAS = ("hf-hub", "local-dir")
#: How many matching architectures a mismatch message names.
SHOWN_MATCHES = 3
#: Weight files of a hub-style folder, in the order open_clip prefers them.
FOLDER_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
                  "open_clip_pytorch_model.pth", "model.safetensors", "pytorch_model.bin", "pytorch_model.pth",
                  "model.pth")


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
    own = weights_signature(model.state_dict())
    return load_weights(model, state_dict, path, spec, describe=lambda weights: describe_weights(weights, own))


class _RandomInitNote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No pretrained weights loaded for model")


@contextlib.contextmanager
def _weights_follow() -> Iterator[None]:
    """Build an open_clip model whose weights the studio loads right after: open_clip's warning (on the root logger)
    that the model is "initialized randomly" is true for a moment only, and would be noise in every log."""
    note = _RandomInitNote()
    logging.getLogger().addFilter(note)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(note)


# ---------------------------------------------------------------------- what a state dict's architecture is
def _layer_count(state_dict, prefix: str) -> int | None:
    found = {key[len(prefix):].split(".", 1)[0] for key in state_dict if key.startswith(prefix)}
    return len({n for n in found if n.isdigit()}) or None


def _shape(state_dict, *keys) -> tuple | None:
    return next((tuple(state_dict[k].shape) for k in keys if k in state_dict), None)


def weights_signature(state_dict) -> dict:
    """What an open_clip state dict's shapes say about its architecture: ``embed_dim``, the image tower's ``tower``
    (``vit``, ``resnet`` or ``timm``), ``width``, ``layers``, ``patch_size``, ``image_size``, and the text tower's
    ``text_width`` and ``text_layers`` -- each only when the weights show it."""
    sig: dict = {}
    projection = _shape(state_dict, "text_projection", "visual.proj")
    if projection is not None and len(projection) == 2:
        sig["embed_dim"] = projection[1]
    conv1 = _shape(state_dict, "visual.conv1.weight")
    if "visual.transformer.resblocks.0.ln_1.weight" in state_dict and conv1 is not None and len(conv1) == 4:
        sig.update(tower="vit", width=conv1[0], patch_size=conv1[2],
                   layers=_layer_count(state_dict, "visual.transformer.resblocks."))
        positions = _shape(state_dict, "visual.positional_embedding")
        if positions is not None and round((positions[0] - 1) ** 0.5) ** 2 == positions[0] - 1:
            sig["image_size"] = round((positions[0] - 1) ** 0.5) * conv1[2]
    elif "visual.layer1.0.conv1.weight" in state_dict:
        stem = _shape(state_dict, "visual.conv3.weight")
        sig.update(tower="resnet", layers=tuple(_layer_count(state_dict, f"visual.layer{k}.") for k in range(1, 5)),
                   width=stem[0] if stem else None)
    elif any(key.startswith("visual.trunk.") for key in state_dict):
        sig["tower"] = "timm"
    token = _shape(state_dict, "token_embedding.weight", "text.token_embedding.weight")
    if token is not None:
        sig["text_width"] = token[1]
        sig["text_layers"] = _layer_count(state_dict, "transformer.resblocks.") or _layer_count(
            state_dict, "text.transformer.resblocks.")
    return {key: value for key, value in sig.items() if value is not None}


def config_signature(config: dict) -> dict:
    """:func:`weights_signature`'s fields as an open_clip model config (``open_clip.get_model_config``) sets them."""
    vision, text = config.get("vision_cfg") or {}, config.get("text_cfg") or {}
    layers = vision.get("layers")
    size = vision.get("image_size")
    sig = {"embed_dim": config.get("embed_dim"), "text_width": text.get("width"), "text_layers": text.get("layers"),
           "image_size": size[0] if isinstance(size, (list, tuple)) and len(set(size)) == 1 else size}
    if text.get("hf_model_name"):
        sig.update(text_width=None, text_layers=None)
    if vision.get("timm_model_name"):
        sig["tower"] = "timm"
    elif isinstance(layers, (list, tuple)):
        sig.update(tower="resnet", layers=tuple(layers), width=vision.get("width"))
    else:
        sig.update(tower="vit", layers=layers, width=vision.get("width"), patch_size=vision.get("patch_size"))
    return {key: value for key, value in sig.items() if value is not None}


def describe_weights(state_dict, expected: dict | None = None) -> str | None:
    """A clause saying what architecture the weights ``state_dict`` look like: the open_clip architectures whose
    configuration matches their shapes, else the shapes themselves; None when nothing can be read from them.
    ``expected``: the :func:`weights_signature` of the model they were loaded into, when its shapes are theirs too
    (keys renamed or dropped, not another architecture), the clause says so instead."""
    sig = weights_signature(state_dict)
    if not sig:
        return None
    if expected and _shared(sig, expected) >= 3 and sig.get("tower") == expected.get("tower") and sig.keys() >= (
            expected.keys() - {"embed_dim"}):
        return "their shapes are this architecture's: keys were renamed or dropped, by another version of the code?"
    towers = {"vit": "a ViT", "resnet": "a ResNet", "timm": "a timm image tower"}
    parts = [towers.get(sig.get("tower"), "an image tower")]
    if "layers" in sig:
        layers = sig["layers"]
        parts.append(f"{'x'.join(map(str, layers)) if isinstance(layers, tuple) else layers} "
                     f"layer{'' if layers == 1 else 's'} of width {sig.get('width', '?')}")
    if "patch_size" in sig:
        parts.append(f"patch {sig['patch_size']}")
    if "image_size" in sig:
        parts.append(f"{sig['image_size']} px")
    if "text_layers" in sig:
        parts.append(f"a text tower of {sig['text_layers']} layer{'' if sig['text_layers'] == 1 else 's'} of width "
                     f"{sig.get('text_width', '?')}")
    if "embed_dim" in sig:
        parts.append(f"a {sig['embed_dim']}-d joint space")
    shapes = ", ".join(parts)
    try:
        import open_clip

        scored = [(_shared(sig, config_signature(open_clip.get_model_config(name) or {})), name)
                  for name in open_clip.list_models()]
        # The closest first: the most fields compared (a text tower of Hugging Face's compares none), the plainest name.
        known = [name for shared, name in sorted(scored, key=lambda x: (-x[0], len(x[1]), x[1])) if shared >= 3]
    except Exception as exc:  # a name of this open_clip's list without a readable config: describe the shapes only
        logger.debug("open_clip configs not compared: %s", exc)
        known = []
    if known:
        more = f" (or {', '.join(known[1:SHOWN_MATCHES])}{', ...' if len(known) > SHOWN_MATCHES else ''})" if len(
            known) > 1 else ""
        return f"the weights look like open_clip's {known[0]}{more}: {shapes}"
    return f"the weights look like {shapes}, which no open_clip architecture matches"


def _shared(weights: dict, config: dict) -> int:
    """How many fields the two signatures share, all equal, of the same kind of image tower (0: they differ)."""
    shared = (weights.keys() & config.keys()) - {"tower"}
    same = weights.get("tower") == config.get("tower") and all(weights[key] == config[key] for key in shared)
    return len(shared) if same else 0


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
            if pretrained is None:
                # A hub-style folder or hub repo: its config builds the model, and the studio's one checkpoint helper
                # loads the weights, so a mismatch names keys and architectures rather than "Error(s) in loading".
                with no_library_bars(), _weights_follow():
                    model, _, preprocess = open_clip.create_model_and_transforms(
                        model_name, load_weights=False, device="cpu", pretrained_image=False, pretrained_text=False)
                model = load_open_clip_checkpoint(model, self._schema_weights(model_name, spec), spec).to(device)
            elif local_file is not None and local_file.is_file() and local_file.suffix not in (".npz", ".npy"):
                # Built without weights (no tower downloads either), then loaded by the studio's one checkpoint helper;
                # big_vision's numpy archives (SigLIP) are not state dicts and stay with open_clip's own converter.
                with _weights_follow():
                    model, _, preprocess = open_clip.create_model_and_transforms(
                        model_name, pretrained=None, device="cpu", pretrained_image=False, pretrained_text=False)
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
    def _schema_weights(model_name: str, spec: str) -> Path:
        """The weight file of a ``local-dir:`` folder (open_clip's preferred names first) or a cached ``hf-hub:``
        repo (open_clip's own lookup, which honours ``HF_HUB_OFFLINE``)."""
        schema, _, location = model_name.partition(":")
        if schema == "hf-hub":
            from open_clip.pretrained import download_pretrained_from_hf

            return Path(download_pretrained_from_hf(location))
        folder = Path(location).expanduser()
        found = [folder / name for name in FOLDER_WEIGHTS if (folder / name).is_file()] or sorted(
            path for suffix in ("*.safetensors", "*.bin", "*.pth") for path in folder.glob(suffix))
        if not found:
            raise EncoderError(f"The folder {folder} of encoder '{spec}' holds no weights file ({FOLDER_WEIGHTS[0]}, "
                               f"{FOLDER_WEIGHTS[2]}, ...).")
        return found[0]

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
