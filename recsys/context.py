"""What every page works on: one catalog version with its settings, artifacts and model store (built and cached
once per catalog version by :func:`recsys.services.context`)."""

from __future__ import annotations

from dataclasses import dataclass

from recsys.artifacts import ArtifactError
from recsys.catalog import Catalog
from recsys.config import Settings


@dataclass
class StudioContext:
    """What every page works on, built once per catalog version: settings, catalog, artifacts and model store.

    ``artifacts`` is None when the catalog has no usable precomputed embeddings; ``artifact_problem`` then says
    why in one sentence.
    """

    settings: Settings
    catalog: Catalog
    artifacts: object | None
    artifact_problem: str | None
    store: object

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
