"""Every Streamlit cache of the studio: settings, catalog, manifest, thumbnails, artifacts, the studio context, the
task services, the warm-up thread and the job registry (DESIGN section 11).

Each cache is keyed by what invalidates it -- the ``RECSYS_*`` environment, a catalog's folder and the modification
times of its ``items.parquet`` and manifest -- so a rebuilt catalog gets new entries without a server restart.
Encoders are not cached here: the studio context's pool (:mod:`recsys.encoders.pool`) holds them, shared with the
warm-up thread, which cannot fill a Streamlit cache.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import streamlit as st

from recsys import viz
from recsys.browse import ArtifactSummary
from recsys.catalog import Catalog
from recsys.config import Settings, get_settings
from recsys.context import StudioContext
from recsys.utils import file_damage

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = 224

#: The facade class of each task's ``service`` module.
SERVICE_CLASSES = {"similar": "SimilarService", "compat": "OutfitService", "personal": "PersonalService",
                   "dialogue": "StylistService", "composed": "SearchService"}


# ---------------------------------------------------------------------- settings
@st.cache_resource(show_spinner=False)
def _settings_for(environment: tuple[tuple[str, str], ...]) -> Settings:
    return get_settings(dict(environment))


def settings() -> Settings:
    """The studio's settings, re-read whenever a ``RECSYS_*`` environment variable changes."""
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("RECSYS_")))
    return _settings_for(environment)


@st.cache_resource(show_spinner=False)
def builtin_build_lock() -> threading.Lock:
    """One lock per server process: two browser sessions opening a fresh install must not build twice."""
    return threading.Lock()


# ---------------------------------------------------------------------- catalog
def _items_mtime(folder: Path) -> int:
    try:
        return (folder / "items.parquet").stat().st_mtime_ns
    except OSError:
        return 0


def catalog_version(folder: Path) -> tuple[str, int, int]:
    """``(folder, items.parquet mtime, manifest mtime)`` in nanoseconds (0 for a missing file): the key of every
    cache that depends on a catalog version."""
    manifest = folder / "artifacts" / "manifest.json"
    try:
        manifest_mtime = manifest.stat().st_mtime_ns
    except OSError:
        manifest_mtime = 0
    return str(folder), _items_mtime(folder), manifest_mtime


@st.cache_resource(show_spinner="Loading the catalog ...", max_entries=4)
def _load_catalog(folder: str, items_mtime_ns: int) -> Catalog:
    # items_mtime_ns is part of the cache key only: a rebuilt catalog gets a new entry.
    return Catalog.load(folder)


def load_catalog(folder: str | os.PathLike) -> Catalog:
    """The catalog in ``folder``, loaded once per server and again whenever its items.parquet changes.

    Raises :class:`recsys.catalog.CatalogError` (never cached, so a repaired catalog loads on the next rerun).
    """
    folder = Path(folder).expanduser().absolute()
    return _load_catalog(str(folder), _items_mtime(folder))


def current_catalog() -> Catalog:
    """The catalog the app shows (``RECSYS_CATALOG`` or the built-in world)."""
    return load_catalog(settings().catalog_dir)


@st.cache_data(show_spinner=False, max_entries=8)
def _read_manifest(path: str, mtime_ns: int) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def artifact_summary(catalog_dir: Path) -> ArtifactSummary:
    """Encoder specs and counts written by ``scripts/precompute.py``, or ``present=False`` before it ran."""
    path = Path(catalog_dir) / "artifacts" / "manifest.json"
    try:
        manifest = _read_manifest(str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        return ArtifactSummary(present=False, encoders={})
    except (OSError, ValueError) as exc:  # ValueError: not JSON, not UTF-8 (empty, a git-lfs pointer, cut short)
        problem = f"{path.name} cannot be read ({file_damage(path) or exc})."
        return ArtifactSummary(present=True, encoders={}, problem=problem)
    return ArtifactSummary.from_manifest(manifest, path.name)


# ---------------------------------------------------------------------- images
@st.cache_data(show_spinner=False, max_entries=2048)
def _thumbnail_bytes(path: str, mtime_ns: int, size: int) -> bytes:
    return viz.thumbnail_bytes(path, size)


@st.cache_data(show_spinner=False)
def _placeholder_bytes(size: int) -> bytes:
    return viz.encode_image(viz.placeholder(size))


def thumbnail(catalog: Catalog, item_id: str, size: int = THUMBNAIL_SIZE) -> bytes:
    """Encoded square thumbnail of an item's image, cached per file (and re-made when the file changes).

    A file deleted or damaged after the catalog was loaded shows as a placeholder rather than breaking the page.
    """
    path = catalog.image_path(item_id)
    try:
        return _thumbnail_bytes(str(path), path.stat().st_mtime_ns, size)
    except (OSError, SyntaxError, ValueError) as exc:  # PIL reports some damaged files as SyntaxError/ValueError
        logger.warning("cannot read the image of item %s (%s): %s", item_id, path, exc)
        return _placeholder_bytes(size)


@st.cache_data(show_spinner="Reading the photo ...", max_entries=16)
def embed_upload(data: bytes, spec: str, name: str | None = None):
    """Decode uploaded bytes safely and embed them with the pool's encoder ``spec``: ``(RGB image, vector)``.

    ``name`` (the file's name) only makes the error message clearer. Raises ``recsys.imageio.ImageInputError``
    (one sentence) for anything that is not a usable image or is under ``MIN_PHOTO_SIDE`` pixels a side, ``EncoderError`` when the encoder cannot be built.
    """
    from recsys.imageio import load_upload, require_photo_size

    image = load_upload(data, name=name)
    require_photo_size(image, name)
    return image, context().encoder(spec).encode_images([image])[0]


# ---------------------------------------------------------------------- artifacts, the studio context, task services
@st.cache_resource(show_spinner="Loading the precomputed embeddings ...", max_entries=4)
def _load_artifacts(root: str, items_mtime_ns: int, manifest_mtime_ns: int, _catalog: Catalog):
    from recsys.artifacts import load_artifacts

    return load_artifacts(_catalog)


def artifacts(catalog: Catalog):
    """The catalog's precomputed artifacts, loaded once and again when they are recomputed.

    Raises ``recsys.artifacts.ArtifactError`` (one sentence, never cached) when they are missing or do not match.
    """
    return _load_artifacts(*catalog_version(Path(catalog.root)), catalog)


@st.cache_resource(show_spinner="Loading the catalog and its embeddings ...", max_entries=4)
def _context(folder: str, items_mtime_ns: int, manifest_mtime_ns: int, _settings: Settings) -> StudioContext:
    from recsys.artifacts import ArtifactError
    from recsys.store import ModelStore

    catalog = load_catalog(folder)
    try:
        loaded, problem = artifacts(catalog), None
    except ArtifactError as exc:
        loaded, problem = None, str(exc)
    return StudioContext(_settings, catalog, loaded, problem, ModelStore(catalog, loaded))


def context() -> StudioContext:
    """The current catalog's context, cached per catalog version (items table and manifest modification times).

    Raises
    ------
    CatalogError
        When the catalog cannot be loaded (one sentence; never cached).
    """
    config = settings()
    folder = Path(config.catalog_dir).expanduser().absolute()
    return _context(*catalog_version(folder), config)


@st.cache_resource(show_spinner=False, max_entries=20)
def _task_service(task: str, folder: str, items_mtime_ns: int, manifest_mtime_ns: int, _ctx: StudioContext):
    from recsys.tasks import task_part

    cls = getattr(task_part(task, "service"), SERVICE_CLASSES[task])
    return cls(_ctx.catalog, _ctx.artifacts, _ctx.store, settings=_ctx.settings)


def task_service(task: str):
    """The facade of ``task`` (``SimilarService``, ``OutfitService``, ``PersonalService``, ``StylistService``,
    ``SearchService``) for the current catalog, built once per catalog version.

    Raises
    ------
    CatalogError
        When the catalog cannot be loaded.
    """
    ctx = context()
    folder = Path(ctx.catalog.root).expanduser().absolute()
    return _task_service(task, *catalog_version(folder), ctx)


@st.cache_resource(show_spinner=False, max_entries=4)
def warm_up_thread(folder: str, items_mtime_ns: int, manifest_mtime_ns: int, _steps: tuple) -> threading.Thread:
    """The warm-up thread of one catalog version (:func:`recsys.ui.warm_up.warm_up`), started on the first call."""
    from recsys.tasks.base import warm_in_background

    return warm_in_background(_steps)


# ---------------------------------------------------------------------- background jobs
@st.cache_resource(show_spinner=False)
def jobs():
    """The server's one :class:`recsys.jobs.JobRegistry` (shared by every browser session)."""
    from recsys.jobs import JobRegistry

    return JobRegistry()


def refresh_after_job() -> None:
    """Forget the cached context and services so that pages see what a finished job trained or wrote."""
    _task_service.clear()
    _context.clear()
