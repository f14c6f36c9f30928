"""Encoders shared by a server's pages and its warm-up thread (which cannot fill a Streamlit cache).

:func:`shared_encoder` loads an encoder once per spec and device; ``recsys.services.encoder`` takes its encoders from
here, so the one the warm-up loads at server start (:class:`EncoderWarmUp`) is the one the first upload uses.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)

_LOADED: dict = {}
_LOCK = threading.Lock()


def shared_encoder(spec: str, device: str | None = None):
    """The registry's encoder for ``spec`` on ``device``, loaded once per process.

    Raises
    ------
    recsys.encoders.EncoderError
        One sentence, when the spec cannot be turned into an encoder or the device is unknown (nothing is kept).
    """
    from recsys import encoders
    from recsys.encoders.base import resolve_device

    device = resolve_device(device)  # "auto" and None name the same device as what they resolve to
    with _LOCK:  # a page asking while the warm-up loads it waits for that load instead of starting a second one
        if (spec, device) not in _LOADED:
            _LOADED[(spec, device)] = encoders.create_encoder(spec, device=device)
        return _LOADED[(spec, device)]


def clear() -> None:
    """Forget every loaded encoder (tests that fake the registry)."""
    with _LOCK:
        _LOADED.clear()


class EncoderWarmUp:
    """A warm-up step (``warm()``, as :meth:`recsys.tasks.base.TaskService.warm`): the image encoder an upload is
    embedded with -- a first upload otherwise waits about 2 s on 2 cores for it."""

    def __init__(self, spec: str, device: str | None):
        self.spec, self.device = spec, device

    def warm(self) -> None:
        """Load the encoder; never raises (a page that needs it says what is wrong in one sentence)."""
        try:
            shared_encoder(self.spec, self.device)
        except Exception as exc:
            logger.info("warming the encoder %s failed: %s", self.spec, exc)
