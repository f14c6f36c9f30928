"""What the pages call: cached settings, catalog and thumbnails, and the browsing helpers behind the grid.

This is the only module of ``recsys`` that imports Streamlit: the caches live here so that the rest of the
library stays importable and testable without it (DESIGN section 2).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd
import streamlit as st
from PIL import Image

from recsys import reports, viz  # noqa: F401  (reports: for the Model report page)
from recsys.catalog import ATTRIBUTE_COLUMNS, Catalog, CatalogError
from recsys.config import PROJECT_ROOT, Settings, get_settings

logger = logging.getLogger(__name__)

#: The preset and seed of the built-in world; the Makefile's `make run` builds the same one.
BUILTIN_PRESET = "demo"
BUILTIN_SEED = 0

#: Columns the browse page offers as filters, in the order shown; only those a catalog has are offered.
FILTER_COLUMNS = ("category", "color", "pattern", "style")

THUMBNAIL_SIZE = 224
PAGES_DIR = PROJECT_ROOT / "pages"

ProgressCallback = Callable[[float, str], None]


# ---------------------------------------------------------------------- settings
@st.cache_resource(show_spinner=False)
def _settings_for(environment: tuple[tuple[str, str], ...]) -> Settings:
    return get_settings(dict(environment))


def settings() -> Settings:
    """The studio's settings, re-read whenever a ``RECSYS_*`` environment variable changes."""
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("RECSYS_")))
    return _settings_for(environment)


# ---------------------------------------------------------------------- catalog
def catalog_is_built(folder: Path) -> bool:
    """True when ``folder`` holds an ``items.parquet`` (built, though not yet validated)."""
    return (Path(folder) / "items.parquet").is_file()


@st.cache_resource(show_spinner=False)
def _builtin_build_lock() -> threading.Lock:
    # One lock per server process: two browser sessions opening a fresh install must not build twice.
    return threading.Lock()


def build_builtin_catalog(config: Settings, progress: ProgressCallback | None = None) -> None:
    """Generate the built-in demo world into ``config.catalog_dir`` unless it is already there.

    Raises
    ------
    CatalogError
        With one sentence, if the world cannot be generated.
    """
    with _builtin_build_lock():
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


def _items_mtime(folder: Path) -> int:
    try:
        return (folder / "items.parquet").stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_resource(show_spinner="Loading the catalog ...", max_entries=4)
def _load_catalog(folder: str, items_mtime_ns: int) -> Catalog:
    # items_mtime_ns is part of the cache key only: a rebuilt catalog gets a new entry.
    return Catalog.load(folder)


def load_catalog(folder: str | os.PathLike) -> Catalog:
    """The catalog in ``folder``, loaded once per server and again whenever its items.parquet changes.

    Raises :class:`CatalogError` (never cached, so a repaired catalog loads on the next rerun).
    """
    folder = Path(folder).expanduser().absolute()
    return _load_catalog(str(folder), _items_mtime(folder))


def current_catalog() -> Catalog:
    """The catalog the app shows (``RECSYS_CATALOG`` or the built-in world)."""
    return load_catalog(settings().catalog_dir)


# ---------------------------------------------------------------------- artifacts
@dataclass(frozen=True)
class ArtifactSummary:
    """What the sidebar says about ``<catalog>/artifacts/manifest.json``."""

    present: bool
    encoders: dict[str, str]
    item_count: int | None = None
    created: str | None = None
    problem: str | None = None


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
    except (OSError, json.JSONDecodeError) as exc:
        return ArtifactSummary(present=True, encoders={}, problem=f"{path.name} cannot be read ({exc}).")
    if not isinstance(manifest, dict):
        return ArtifactSummary(present=True, encoders={}, problem=f"{path.name} is not a JSON object.")
    return ArtifactSummary(
        present=True,
        encoders=_encoder_specs(manifest),
        item_count=manifest.get("item_count") if isinstance(manifest.get("item_count"), int) else None,
        created=str(manifest["created_at"]) if manifest.get("created_at") else None,
    )


def _encoder_specs(manifest: Mapping) -> dict[str, str]:
    """``{"image encoder": spec, ...}`` from the manifest's ``*_encoder`` keys or its ``encoders`` mapping."""
    specs: dict[str, str] = {}
    nested = manifest.get("encoders")
    if isinstance(nested, Mapping):
        for role, value in nested.items():
            spec = value.get("spec") if isinstance(value, Mapping) else value
            if spec:
                specs[f"{role} encoder"] = str(spec)
    for key, value in manifest.items():
        if key.endswith("_encoder") and isinstance(value, (str, Mapping)):
            spec = value.get("spec") if isinstance(value, Mapping) else value
            if spec:
                specs[key.replace("_", " ")] = str(spec)
    return specs


# ---------------------------------------------------------------------- images
@st.cache_data(show_spinner=False, max_entries=2048)
def _thumbnail_bytes(path: str, mtime_ns: int, size: int) -> bytes:
    with Image.open(path) as image:
        # Small PNG/JPEG files (the generated world's 224 px illustrations) go out as they are: no re-encoding.
        if image.format in ("PNG", "JPEG") and image.mode == "RGB" and max(image.size) <= size:
            return Path(path).read_bytes()
        image.load()
        photo_like = image.format == "JPEG"
        thumb = viz.square_thumbnail(image, size)
    return viz.encode_image(thumb, "JPEG" if photo_like else "PNG")


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


# ---------------------------------------------------------------------- browsing
def filter_columns(items: pd.DataFrame) -> list[str]:
    """The columns of :data:`FILTER_COLUMNS` that ``items`` has (a folder of photos has only ``category``)."""
    return [c for c in FILTER_COLUMNS if c in items.columns and items[c].notna().any()]


def filter_options(items: pd.DataFrame, column: str) -> list[str]:
    """The distinct non-empty values of ``items[column]`` as sorted strings (the choices of a filter widget)."""
    return sorted(str(v) for v in items[column].dropna().unique())


def filter_items(items: pd.DataFrame, selections: Mapping[str, Sequence[str]], search: str = "") -> pd.DataFrame:
    """Rows of ``items`` holding one of the selected values in each column and every word of ``search`` in the title.

    An empty selection leaves its column unfiltered; the search ignores case.
    """
    keep = pd.Series(True, index=items.index)
    for column, chosen in selections.items():
        if chosen:
            keep &= items[column].isin(list(chosen))
    titles = items["title"].fillna("").str.lower()
    for word in search.lower().split():
        keep &= titles.str.contains(word, regex=False)
    return items[keep]


def page_count(total: int, page_size: int) -> int:
    """Number of pages needed for ``total`` rows; at least one, so an empty result still has a page 1."""
    return max(1, -(-total // page_size))


def page_of(items: pd.DataFrame, page_number: int, page_size: int) -> pd.DataFrame:
    """Rows of page ``page_number`` (1-based) of ``items``."""
    start = (page_number - 1) * page_size
    return items.iloc[start : start + page_size]


def page_exists(name: str) -> bool:
    """True when ``pages/<name>.py`` exists, so a page only links to pages that are there."""
    return (PAGES_DIR / f"{name}.py").is_file()


# ---------------------------------------------------------------------- embeddings, encoders
def _manifest_mtime(catalog: Catalog) -> int:
    try:
        return (Path(catalog.root) / "artifacts" / "manifest.json").stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_resource(show_spinner="Loading the precomputed embeddings ...", max_entries=4)
def _load_artifacts(root: str, items_mtime_ns: int, manifest_mtime_ns: int, _catalog: Catalog):
    from recsys.artifacts import load_artifacts

    return load_artifacts(_catalog)


def artifacts(catalog: Catalog):
    """The catalog's precomputed artifacts, loaded once and again when they are recomputed.

    Raises ``recsys.artifacts.ArtifactError`` (one sentence, never cached) when they are missing or do not match.
    """
    return _load_artifacts(str(catalog.root), _items_mtime(Path(catalog.root)), _manifest_mtime(catalog), catalog)


def compute_artifacts(catalog: Catalog, progress: ProgressCallback | None = None) -> None:
    """Precompute the catalog's embeddings with the default encoders on the ``RECSYS_DEVICE`` device (what
    ``scripts/precompute.py`` does)."""
    from recsys.artifacts import precompute

    precompute(catalog, device=settings().device, progress=False, callback=progress)


@st.cache_resource(show_spinner="Loading the encoder ...", max_entries=4)
def _encoder(spec: str, device: str):
    from recsys.encoders import create_encoder

    return create_encoder(spec, device=device)


def encoder(spec: str):
    """The registry's encoder for ``spec`` on the ``RECSYS_DEVICE`` device (``auto``: a GPU when there is one),
    loaded once per spec and device; raises ``EncoderError`` with one sentence."""
    return _encoder(spec, settings().device)


@st.cache_data(show_spinner="Reading the photo ...", max_entries=16)
def embed_upload(data: bytes, spec: str, name: str | None = None):
    """Decode uploaded bytes safely and embed them with the encoder ``spec``: ``(RGB image, vector)``.

    ``name`` (the file's name) only makes the error message clearer. Raises ``recsys.imageio.ImageInputError``
    (one sentence) for anything that is not a usable image.
    """
    from recsys.imageio import load_upload

    image = load_upload(data, name=name)
    return image, encoder(spec).encode_images([image])[0]


# ---------------------------------------------------------------------- one context per catalog, task services
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
            from recsys.artifacts import ArtifactError

            raise ArtifactError(self.artifact_problem or "The catalog has no precomputed embeddings.")
        return self.artifacts


def _context_key(folder: Path) -> tuple[str, int, int]:
    manifest = folder / "artifacts" / "manifest.json"
    try:
        manifest_mtime = manifest.stat().st_mtime_ns
    except OSError:
        manifest_mtime = 0
    return str(folder), _items_mtime(folder), manifest_mtime


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
    return _context(*_context_key(folder), config)


_SERVICE_CLASSES = {"similar": "SimilarService", "compat": "OutfitService", "personal": "PersonalService",
                    "dialogue": "StylistService", "composed": "SearchService"}


@st.cache_resource(show_spinner=False, max_entries=20)
def _task_service(task: str, folder: str, items_mtime_ns: int, manifest_mtime_ns: int, _ctx: StudioContext):
    from recsys.tasks import task_part

    cls = getattr(task_part(task, "service"), _SERVICE_CLASSES[task])
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
    return _task_service(task, *_context_key(folder), ctx)
