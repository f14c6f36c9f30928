"""The warm-up: at server start, a background thread loads what the slowest pages' first result needs.

``streamlit_app.py`` calls :func:`warm_up` on every run; the thread starts once per server and catalog version
(tests/test_warm_up.py checks that the app starts it).
"""

from __future__ import annotations

import logging
from pathlib import Path

from recsys.encoders.pool import EncoderWarmUp
from recsys.ui.caches import catalog_version, context, settings, task_service, warm_up_thread

logger = logging.getLogger(__name__)

#: Tasks whose page waits seconds on its first visit or first upload for models and encoders (the Stylist's text
#: encoder, dialogue and compatibility models; the search's joint space, combiner and text encoder; the photo reader
#: and classifier of Similar items' uploads): :func:`warm_up` loads them early.
WARM_TASKS = ("dialogue", "composed", "similar")


def warm_up() -> None:
    """Start, once per server and catalog version, a thread loading what the :data:`WARM_TASKS` pages' first result
    needs (under the services' locks: a page asking meanwhile waits for that load), after the image encoder a first
    upload is embedded with (into the context's encoder pool). ``RECSYS_WARM_UP=0``: off. Never raises."""
    try:
        if not settings().warm_up:
            return
        ctx = context()
        if ctx.artifacts is None:
            return
        folder = Path(ctx.catalog.root).expanduser().absolute()
        steps = (EncoderWarmUp(ctx.artifacts.image_encoder_spec, ctx.settings.device, ctx.encoders),)
        warm_up_thread(*catalog_version(folder), steps + tuple(task_service(task) for task in WARM_TASKS))
    except Exception as exc:  # a page that needs the same thing says what is wrong in one sentence
        logger.info("warm-up not started: %s", exc)
