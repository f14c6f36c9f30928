"""The numeric precision an encoder runs at: chosen per encoder and machine, overridable (DESIGN section 5).

A precision is ``fp32`` (the reference), ``bf16`` (``torch.autocast`` to bfloat16), ``int8`` (``torch.ao`` dynamic
quantization of the Linear layers) or ``fp16`` (autocast on a GPU only). Every encoder lists the precisions it offers
(:attr:`recsys.encoders.base.Encoder.precisions`) and, fastest first, the reduced ones that were measured *faithful*
to fp32 on the CPU (:attr:`~recsys.encoders.base.Encoder.faithful_cpu_precisions`: every catalog item's embedding at
cosine >= :data:`FAITHFUL_COSINE` to its fp32 one). The default on a CPU is the first faithful precision whose matrix
instructions the CPU has (bf16: AVX512-BF16 or AMX-BF16; int8: AVX512-VNNI, AVX-VNNI or AMX-INT8), else fp32; on a
GPU it is fp16, as before.

Overrides, strongest first: a spec suffix (``minilm@fp32``, ``effnet-lite0:/path/w.pth@bf16``), then the
``RECSYS_PRECISION`` setting (fp32|bf16|int8|fp16; an encoder that does not offer it keeps its default, with a log
line). A reduced precision asked for on a CPU without its instructions falls back to fp32 (emulated bf16 is slower
than fp32), with a log line saying so.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

from recsys.encoders.base import EncoderError, autocast_dtype  # noqa: F401 (part of this module's API)

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "int8", "fp16")
#: Per-item cosine to the fp32 embedding that makes a reduced precision faithful (issue 29).
FAITHFUL_COSINE = 0.995
#: /proc/cpuinfo flags whose presence gives a precision fast CPU kernels (oneDNN bf16, fbgemm/oneDNN VNNI int8).
CPU_FLAGS = {
    "bf16": ("avx512_bf16", "amx_bf16"),
    "int8": ("avx512_vnni", "avx_vnni", "amx_int8"),
}


class PrecisionError(EncoderError):
    """An unknown precision, or one the encoder or device cannot run (one sentence)."""


def split_spec(spec: str) -> tuple[str, str | None]:
    """``("effnet-lite0", "bf16")`` from ``"effnet-lite0@bf16"``; ``(spec, None)`` without a precision suffix.

    Only a last ``@`` followed by a known precision is a suffix, so a path holding ``@`` stays a path.
    """
    spec = str(spec).strip()
    base, sep, tail = spec.rpartition("@")
    if sep and tail.strip().lower() in PRECISIONS and base.strip():
        return base.strip(), tail.strip().lower()
    return spec, None


def check_precision(name: str | None, where: str = "RECSYS_PRECISION") -> str | None:
    """``name`` lower-cased, None for empty or ``auto``.

    Raises
    ------
    PrecisionError
        For a name outside :data:`PRECISIONS` (one sentence naming ``where`` it came from).
    """
    if name is None or not str(name).strip() or str(name).strip().lower() == "auto":
        return None
    value = str(name).strip().lower()
    if value not in PRECISIONS:
        raise PrecisionError(f"Unknown precision '{name}' in {where}; use one of {', '.join(PRECISIONS)} or auto.")
    return value


@functools.lru_cache(maxsize=1)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags of the first CPU in ``/proc/cpuinfo``; empty where it cannot be read (not Linux),
    which makes every reduced precision fall back to fp32."""
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_supports(precision: str, flags: frozenset[str] | set[str] | None = None) -> bool:
    """True when the CPU runs ``precision`` natively: always for fp32; bf16 and int8 need the flags of
    :data:`CPU_FLAGS` (``flags`` default :func:`cpu_flags`); never fp16."""
    if precision == "fp32":
        return True
    if precision not in CPU_FLAGS:
        return False
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in CPU_FLAGS[precision])


def choose_precision(
    device: str,
    offered: tuple[str, ...],
    faithful_cpu: tuple[str, ...],
    requested: str | None = None,
    setting: str | None = None,
    flags: frozenset[str] | set[str] | None = None,
    name: str = "the encoder",
) -> tuple[str, str]:
    """The precision an encoder runs at, and why (a short phrase for the log).

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"cuda[:n]"``.
    offered : tuple of str
        The precisions the encoder implements.
    faithful_cpu : tuple of str
        Reduced precisions measured faithful on the CPU, fastest first.
    requested : str, optional
        From the spec suffix: must be offered.
    setting : str, optional
        ``RECSYS_PRECISION``: used when offered, else ignored.
    flags : set of str, optional
        CPU flags (default: this machine's, :func:`cpu_flags`); tests pass a simulated CPU.
    name : str
        The encoder, for messages.

    Raises
    ------
    PrecisionError
        When the spec asks for a precision the encoder does not offer, or for fp16/int8 where they cannot run.
    """
    on_gpu = str(device).startswith("cuda")
    if requested is not None and requested not in offered:
        raise PrecisionError(f"Encoder '{name}' does not offer {requested}; it runs at {', '.join(offered)}.")
    wanted, source = requested, "the spec"
    if wanted is None and setting is not None:
        if setting in offered and (on_gpu or setting != "fp16"):
            wanted, source = setting, "RECSYS_PRECISION"
        else:
            logger.info("%s does not run at %s (RECSYS_PRECISION) on %s; it keeps its default", name, setting, device)
    if on_gpu:
        if wanted == "int8":
            raise PrecisionError(f"int8 runs on the CPU only; use fp16, bf16 or fp32 for '{name}' on {device}.")
        if wanted == "bf16" and not torch.cuda.is_bf16_supported():
            logger.warning("%s: this GPU has no bf16; running at fp16", name)
            return "fp16", "no bf16 on this GPU"
        return (wanted, source) if wanted else ("fp16", "GPU default")
    if wanted == "fp16":
        raise PrecisionError(f"fp16 runs on a GPU only (slower than fp32 on a CPU); use fp32, bf16 or int8 for '{name}'.")
    if wanted is not None:
        if cpu_supports(wanted, flags):
            return wanted, source
        logger.warning("%s: this CPU lacks the %s instructions (%s); running at fp32", name, wanted,
                       " or ".join(CPU_FLAGS[wanted]))
        return "fp32", f"no {wanted} instructions"
    for precision in faithful_cpu:
        if precision in offered and cpu_supports(precision, flags):
            return precision, "fastest faithful on this CPU"
    return "fp32", "no faithful reduced precision on this CPU"
