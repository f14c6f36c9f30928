"""Weight files into modules, one way for every encoder: read safely, unwrap training wrappers, load strictly.

Checkpoints written by training scripts rarely hold the bare state dict a module expects. The wrappers met in
practice, all removed by :func:`unwrap_state_dict`:

- a nested dict: ``{"state_dict": ...}`` (PyTorch Lightning, open_clip's training script), ``{"model": ...}`` (timm,
  DeiT, MAE, detectron2), ``{"model_state_dict": ...}`` (the PyTorch tutorials), ``{"module": ...}`` (DeepSpeed), with
  anything beside it (epoch, optimizer state) dropped;
- key prefixes: ``module.`` (``torch.nn.DataParallel`` / ``DistributedDataParallel``) and ``_orig_mod.``
  (``torch.compile``'s ``OptimizedModule``), in any order and combination.

Files are read with ``safetensors`` (``.safetensors``) or ``torch.load(weights_only=True)`` (anything else), so no
pickled code runs. A state dict that still does not fit is refused with an :class:`EncoderError` naming the first
few missing, unexpected and wrongly shaped keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch

from recsys.encoders.base import EncoderError

logger = logging.getLogger(__name__)

#: Keys under which training scripts nest the state dict, tried in this order.
NESTING_KEYS = ("state_dict", "model", "model_state_dict", "module")
#: Key prefixes that wrapping a module adds to every key of its state dict.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
#: How many keys of each kind a mismatch message names.
SHOWN_KEYS = 3
_MAX_NESTING = 4


def read_checkpoint(path: str | Path, spec: str):
    """What the file ``path`` holds, on the CPU: a state dict, wrapped or not (see :func:`unwrap_state_dict`).

    Parameters
    ----------
    path : str or Path
        A ``.safetensors`` file, or a ``torch.save`` file (``.pt``, ``.pth``, ``.bin``, ...).
    spec : str
        The encoder spec, named in messages.

    Returns
    -------
    Mapping
        Holding tensors, directly or under one of :data:`NESTING_KEYS`; the prefixes are removed by
        :func:`load_weights`, which knows the module's own keys.

    Raises
    ------
    EncoderError
        When the file does not exist, cannot be read safely (damaged, or a pickled object other than tensors and
        plain containers), or holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise EncoderError(f"The weight file {path} of encoder '{spec}' does not exist.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            checkpoint = load_file(str(path), device="cpu")
        else:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many types for damaged or pickled-object files
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise EncoderError(
            f"The weight file {path} of encoder '{spec}' cannot be read as a state dict ({first_line[:200]})."
        ) from None
    if not unwrap_state_dict(checkpoint):
        raise EncoderError(f"The weight file {path} of encoder '{spec}' holds no tensors{_found_keys(checkpoint)}.")
    return checkpoint


def unwrap_state_dict(checkpoint, expected_keys: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """The bare state dict inside ``checkpoint``: nesting dicts opened, wrapper prefixes removed, non-tensors dropped.

    Parameters
    ----------
    checkpoint : Mapping
        What ``torch.load`` or ``safetensors`` returned.
    expected_keys : iterable of str, optional
        The keys of the module it is for. Without them a prefix is removed whenever every key has it; with them, unless
        removing it matches fewer of them (a module whose own child is called ``module`` keeps its prefix).

    Returns
    -------
    dict of str to torch.Tensor
        Empty when ``checkpoint`` holds no tensors at all.
    """
    for _ in range(_MAX_NESTING):
        if not isinstance(checkpoint, Mapping):
            return {}
        nested = next((checkpoint[key] for key in NESTING_KEYS if isinstance(checkpoint.get(key), Mapping)), None)
        if nested is None:
            break
        checkpoint = nested
    state_dict = {key: value for key, value in checkpoint.items() if isinstance(value, torch.Tensor)}
    expected = set(expected_keys) if expected_keys is not None else None
    stripped = True
    while state_dict and stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if not all(key.startswith(prefix) for key in state_dict):
                continue
            candidate = {key[len(prefix):]: value for key, value in state_dict.items()}
            if expected is None or len(expected & candidate.keys()) >= len(expected & state_dict.keys()):
                state_dict, stripped = candidate, True
    return state_dict


def load_weights(module: torch.nn.Module, checkpoint, source: str | Path, spec: str,
                 describe: Callable[[dict], str | None] | None = None) -> torch.nn.Module:
    """Load ``checkpoint`` into ``module`` strictly, after :func:`unwrap_state_dict`; returns ``module``.

    Parameters
    ----------
    module : torch.nn.Module
    checkpoint : Mapping
        A state dict, wrapped or not.
    source : str or Path
        Where it came from (a file), named in messages.
    spec : str
        The encoder spec, named in messages.
    describe : callable, optional
        ``describe(state_dict)``: what architecture the weights look like, as a clause ("they look like
        ViT-B-32 (...)"), or None; it replaces the generic question in the mismatch message.

    Raises
    ------
    EncoderError
        When keys are missing, unexpected or of another shape; the one sentence names the first
        :data:`SHOWN_KEYS` of each kind and how many there are.
    """
    expected = module.state_dict()
    state_dict = unwrap_state_dict(checkpoint, expected_keys=expected.keys())
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    reshaped = [
        f"{key} {tuple(state_dict[key].shape)} for {tuple(expected[key].shape)}"
        for key in expected
        if key in state_dict and state_dict[key].shape != expected[key].shape
    ]
    problems = [
        _listed(f"missing key{'s' if len(missing) != 1 else ''}", missing),
        _listed(f"unexpected key{'s' if len(unexpected) != 1 else ''}", unexpected),
        _listed(f"key{'s' if len(reshaped) != 1 else ''} of another shape", reshaped),
    ]
    problems = [problem for problem in problems if problem]
    if problems:
        looks = describe(state_dict) if describe is not None else None
        raise EncoderError(
            f"The weight file {source} does not fit encoder '{spec}': {'; '.join(problems)} "
            f"({looks or 'is it a checkpoint of another architecture?'})."
        )
    module.load_state_dict(state_dict, strict=True)
    logger.debug("loaded %d tensors from %s into %s", len(state_dict), source, type(module).__name__)
    return module


def _listed(kind: str, keys: list[str]) -> str:
    if not keys:
        return ""
    more = ", ..." if len(keys) > SHOWN_KEYS else ""
    return f"{len(keys)} {kind} ({', '.join(keys[:SHOWN_KEYS])}{more})"


def _found_keys(checkpoint) -> str:
    if not isinstance(checkpoint, Mapping) or not checkpoint:
        return ""
    keys = [str(key) for key in list(checkpoint)[:SHOWN_KEYS]]
    return f" (its top-level keys: {', '.join(keys)}{', ...' if len(checkpoint) > SHOWN_KEYS else ''})"
