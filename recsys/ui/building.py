"""What the studio builds in the foreground, with the page waiting: the built-in world on a fresh install, and a
catalog's embeddings when the user asks for them on the Similar items page."""

from __future__ import annotations

import logging
from pathlib import Path

from recsys.catalog import Catalog, CatalogError
from recsys.config import DEFAULT_IMAGE_ENCODER, Settings
from recsys.jobs import ProgressCallback
from recsys.ui.caches import builtin_build_lock, settings

logger = logging.getLogger(__name__)

#: The preset and seed of the built-in world; the Makefile's `make run` builds the same one.
BUILTIN_PRESET = "demo"
BUILTIN_SEED = 0


def catalog_is_built(folder: Path) -> bool:
    """True when ``folder`` holds an ``items.parquet`` (built, though not yet validated)."""
    return (Path(folder) / "items.parquet").is_file()


def build_builtin_catalog(config: Settings, progress: ProgressCallback | None = None) -> None:
    """Generate the built-in demo world into ``config.catalog_dir`` unless it is already there.

    Raises
    ------
    CatalogError
        With one sentence, if the world cannot be generated.
    """
    with builtin_build_lock():
        if catalog_is_built(config.catalog_dir):
            return
        try:
            from recsys.data.demo_world import build_demo_catalog
        except ImportError as exc:
            raise CatalogError(f"The built-in demo world cannot be generated because {exc}.") from None
        logger.info("building the built-in world (%s, seed %d) in %s", BUILTIN_PRESET, BUILTIN_SEED, config.catalog_dir)
        try:
            build_demo_catalog(config.catalog_dir, preset=BUILTIN_PRESET, seed=BUILTIN_SEED, progress=progress)
        except CatalogError:
            raise
        except Exception as exc:  # the page must show a sentence, not a traceback; the log keeps the details
            logger.exception("building the built-in world failed")
            raise CatalogError(f"Generating the built-in demo world in {config.catalog_dir} failed ({exc}).") from None


def compute_artifacts(catalog: Catalog, progress: ProgressCallback | None = None) -> None:
    """Precompute the catalog's embeddings with the settings' encoders on the ``RECSYS_DEVICE`` device (what
    ``scripts/precompute.py`` does)."""
    from recsys.artifacts import precompute

    config = settings()
    precompute(catalog, config.image_encoder or DEFAULT_IMAGE_ENCODER, config.text_encoder, device=config.device,
               progress=False, callback=progress)
