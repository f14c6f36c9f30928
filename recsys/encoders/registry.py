"""Spec strings -> encoders: the one registry of image and text encoders (DESIGN section 5).

A spec is ``<name>`` or ``<name>:<options>``, optionally followed by ``@<precision>`` (``effnet-lite0@bf16``,
:mod:`recsys.encoders.precision`); the name before the first colon picks the factory, which receives the spec
without the precision, and the device. Factories import their heavy dependencies lazily, so listing or
checking specs costs nothing.
"""

from __future__ import annotations

import importlib
import logging
from typing import Callable

from recsys.encoders.base import Encoder, EncoderError, resolve_device
from recsys.encoders.precision import check_precision, choose_precision, split_spec

logger = logging.getLogger(__name__)

EncoderFactory = Callable[[str, str], Encoder]

# name -> factory, or "module:function" resolved on first use so importing the registry stays cheap.
_FACTORIES: dict[str, EncoderFactory | str] = {
    "effnet-lite0": "recsys.encoders.effnet:create",
    "minilm": "recsys.encoders.minilm:create",
    "open_clip": "recsys.encoders.openclip:create",
    # A model trained per catalog (the composed task's joint space): imported only when such a spec is created.
    "demo-clip": "recsys.encoders.democlip:create",
}


def register_encoder(name: str, factory: EncoderFactory, overwrite: bool = False) -> None:
    """Make ``create_encoder("<name>[:options]")`` call ``factory(spec, device)``.

    Parameters
    ----------
    name : str
        The spec prefix, without a colon (e.g. ``"demo-clip"``).
    factory : callable
        ``factory(spec: str, device: str) -> Encoder``; it should raise :class:`EncoderError` for missing weights.
    overwrite : bool
        Replace an existing registration instead of raising ``ValueError``.
    """
    if not name or ":" in name:
        raise ValueError(f"An encoder name must be non-empty and contain no colon, got {name!r}.")
    if name in _FACTORIES and not overwrite:
        raise ValueError(f"An encoder named {name!r} is already registered; pass overwrite=True to replace it.")
    _FACTORIES[name] = factory


def list_encoders() -> list[str]:
    """Names of the registered encoders (spec prefixes)."""
    return sorted(_FACTORIES)


def spec_name(spec: str) -> str:
    """The registry name of a spec: the part before the first colon (a precision suffix removed)."""
    return split_spec(spec)[0].split(":", 1)[0].strip()


def _factory(spec: str) -> EncoderFactory:
    name = spec_name(spec)
    entry = _FACTORIES.get(name)
    if entry is None:
        raise EncoderError(
            f"Unknown encoder spec '{spec}'; known encoders are {', '.join(list_encoders())} "
            f"(e.g. effnet-lite0, minilm, open_clip:ViT-B-32:/path/to/checkpoint.pt)."
        )
    if isinstance(entry, str):
        module_name, _, function_name = entry.partition(":")
        try:
            entry = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as exc:
            raise EncoderError(f"The code of encoder '{spec}' cannot be imported ({exc}).") from None
        if isinstance(_FACTORIES[name], str):  # the module may have registered itself while being imported
            _FACTORIES[name] = entry
        entry = _FACTORIES[name]
    return entry


def check_spec(spec: str) -> None:
    """Raise :class:`EncoderError` if no registered encoder handles ``spec`` (without loading any weights)."""
    _factory(spec)


def create_encoder(spec: str, device: str | None = None) -> Encoder:
    """Build the encoder a spec names, with its preprocessing, ready for inference.

    Parameters
    ----------
    spec : str
        ``effnet-lite0``, ``minilm``, ``open_clip:<arch>:<tag or checkpoint path>``,
        ``open_clip:hf-hub:<repo>``, or any name added with :func:`register_encoder`; ``@fp32``, ``@bf16``,
        ``@int8`` or ``@fp16`` at the end picks the precision, which is otherwise the ``RECSYS_PRECISION`` setting
        or the encoder's default on this machine (:func:`recsys.encoders.precision.choose_precision`).
    device : str, optional
        ``"auto"``, ``"cpu"`` or ``"cuda"``; None (the default) follows the ``RECSYS_DEVICE`` setting
        (:class:`recsys.config.Settings`), so every encoder the studio builds honours it.

    Returns
    -------
    Encoder
        With ``spec`` (without the precision suffix: the vectors of every faithful precision share one space),
        ``dim``, ``modality``, ``device``, ``precision`` and, for images, ``preprocess``.

    Raises
    ------
    EncoderError
        One sentence naming the spec: unknown spec, missing weights (and how to supply them), bad device, a
        precision the encoder or the device cannot run, an unknown ``RECSYS_PRECISION``.
    """
    from recsys.config import get_settings

    spec, requested = split_spec(spec)
    setting = check_precision(get_settings().precision)
    factory = _factory(spec)
    encoder = factory(spec, resolve_device(device))
    if encoder.modality not in ("image", "text", "joint"):
        raise EncoderError(f"The factory of encoder '{spec}' returned an unknown modality {encoder.modality!r}.")
    precision, why = choose_precision(encoder.device, tuple(encoder.precisions), tuple(encoder.faithful_cpu_precisions),
                                      requested, setting, name=spec)
    logger.info("%s runs at %s on %s (%s)", spec, precision, encoder.device, why)
    return encoder.set_precision(precision)
