"""What every page works on: one catalog version with its settings, artifacts, model store and the process's encoder
pool (built and cached once per catalog version by :func:`recsys.ui.caches.context`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from recsys.artifacts import ArtifactError
from recsys.catalog import Catalog
from recsys.config import Settings
from recsys.encoders.pool import POOL, EncoderPool


@dataclass
class StudioContext:
    """What every page works on, built once per catalog version: settings, catalog, artifacts, model store and
    the encoder pool.

    ``artifacts`` is None when the catalog has no usable precomputed embeddings; ``artifact_problem`` then says
    why in one sentence. ``encoders`` is the process's one pool (:data:`recsys.encoders.pool.POOL`): a new catalog
    version keeps the encoders already loaded, and the task services, the photo reader and the warm-up ask the same
    pool, so a server holds one instance per encoder spec and device.
    """

    settings: Settings
    catalog: Catalog
    artifacts: object | None
    artifact_problem: str | None
    store: object
    encoders: EncoderPool = field(default=POOL)

    def encoder(self, spec: str):
        """The pool's encoder ``spec`` on the settings' device; raises ``EncoderError`` with one sentence."""
        return self.encoders.get(spec, self.settings.device)

    def require_artifacts(self):
        """The artifacts (precomputed embeddings) of the catalog.

        Raises
        ------
        ArtifactError
            With the sentence that says why they are missing.
        """
        if self.artifacts is None:
            raise ArtifactError(self.artifact_problem or "The catalog has no precomputed embeddings.")
        return self.artifacts
