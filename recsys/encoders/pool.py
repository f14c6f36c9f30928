"""The one pool of encoders a process holds: every page, task service, the photo reader, the folder ingest and the
warm-up thread ask it, so a server keeps one instance per encoder spec and device.

:data:`POOL` is the process's pool; the studio context (:class:`recsys.context.StudioContext`) hands it to the pages as
``context.encoders``, and library code that runs outside the studio (an ingest, a protocol) asks it through
:func:`shared_encoder`. The warm-up (:class:`EncoderWarmUp`) fills it at server start, so the encoder it loads is the
one the first upload uses.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

logger = logging.getLogger(__name__)


class EncoderPool:
    """Encoders by ``(spec, device)``, each built once (:func:`recsys.encoders.create_encoder`) on first request.

    Thread-safe: a page asking while the warm-up builds the same encoder waits for that build instead of starting
    a second one.
    """

    def __init__(self):
        self._loaded: dict = {}
        self._lock = threading.Lock()

    def get(self, spec: str, device: str | None = None):
        """The encoder ``spec`` on ``device`` (``None`` or ``"auto"``: a GPU when there is one).

        Raises
        ------
        recsys.encoders.EncoderError
            One sentence, when the spec cannot be turned into an encoder or the device is unknown (nothing is kept).
        """
        from recsys import encoders
        from recsys.encoders.base import resolve_device

        device = resolve_device(device)  # "auto" and None name the same device as what they resolve to
        with self._lock:
            if (spec, device) not in self._loaded:
                self._loaded[(spec, device)] = encoders.create_encoder(spec, device=device)
            return self._loaded[(spec, device)]

    def specs(self) -> Counter:
        """How many encoders the pool holds per spec (one per device it was asked for)."""
        with self._lock:
            return Counter(spec for spec, _ in self._loaded)

    def __len__(self) -> int:
        return len(self._loaded)

    def clear(self) -> None:
        """Forget every encoder (tests that fake the registry)."""
        with self._lock:
            self._loaded.clear()


#: The process's pool.
POOL = EncoderPool()


def shared_encoder(spec: str, device: str | None = None):
    """``POOL.get(spec, device)``: the process's encoder for ``spec`` on ``device``.

    Raises
    ------
    recsys.encoders.EncoderError
        As :meth:`EncoderPool.get`.
    """
    return POOL.get(spec, device)


def clear() -> None:
    """Forget every encoder of the process's pool (tests that fake the registry)."""
    POOL.clear()


class EncoderWarmUp:
    """A warm-up step (``warm()``, as :meth:`recsys.tasks.base.TaskService.warm`): the image encoder an upload is
    embedded with -- a first upload otherwise waits about 2 s on 2 cores for it."""

    def __init__(self, spec: str, device: str | None, pool: EncoderPool | None = None):
        self.spec, self.device, self.pool = spec, device, pool or POOL

    def warm(self) -> None:
        """Load the encoder; never raises (a page that needs it says what is wrong in one sentence)."""
        try:
            self.pool.get(self.spec, self.device)
        except Exception as exc:
            logger.info("warming the encoder %s failed: %s", self.spec, exc)
