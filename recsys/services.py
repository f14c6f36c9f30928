"""What the pages call: cached settings, catalog and thumbnails, and the browsing helpers behind the grid.

This is the only module of ``recsys`` that imports Streamlit: the caches live here so that the rest of the
library stays importable and testable without it (DESIGN section 2).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Callable, Sequence

import streamlit as st

from recsys import reports, viz  # noqa: F401  (reports: for the Model report page)
from recsys.catalog import ATTRIBUTE_COLUMNS, Catalog, CatalogError
from recsys.browse import (  # noqa: F401  (re-exported for the pages)
    FILTER_COLUMNS, ArtifactSummary, filter_columns, filter_items, filter_options, page_count, page_of, title_search,
)
from recsys.config import DEFAULT_IMAGE_ENCODER, PROJECT_ROOT, Settings, get_settings
from recsys.context import StudioContext
from recsys.encoders.pool import EncoderWarmUp, shared_encoder
from recsys.jobs import evaluation_work, job_key, setup_work, training_work
from recsys.utils import file_damage

logger = logging.getLogger(__name__)

#: The preset and seed of the built-in world; the Makefile's `make run` builds the same one.
BUILTIN_PRESET = "demo"
BUILTIN_SEED = 0


THUMBNAIL_SIZE = 224
PAGES_DIR = PROJECT_ROOT / "pages"

ProgressCallback = Callable[[float, str], None]


# ---------------------------------------------------------------------- routing (deep links; DESIGN section 12)
_router = threading.local()


def route(navigation) -> None:
    """Run the page ``navigation`` (``st.navigation``'s result) selected, marked as drawn inside the router."""
    _router.running = True
    st.session_state["_router_seen"] = True
    try:
        navigation.run()
    finally:
        _router.running = False


def run_inside_router() -> None:
    """Rerun the app through ``streamlit_app.py`` when Streamlit ran this page without it.

    Called first thing by every file in ``pages/``. When Streamlit's legacy ``pages/`` discovery is still on (no
    session of this server has called ``st.navigation`` yet), this turns it off for the whole server, exactly as
    the router's own ``st.navigation`` call would, and reruns the session: the rerun executes
    ``streamlit_app.py``, whose ``st.navigation`` resolves the same page, since Streamlit derives a page's id from
    its URL path alone and each page's ``url_path`` is its file name. Inside the router, and outside Streamlit
    altogether, it does nothing.

    Raises:
        streamlit's ``RerunException`` (through ``st.rerun``) to end the bare run; Streamlit catches it and
        starts the rerun, so a page never sees it.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(_router, "running", False):  # drawn by the router: nothing to do
        return
    if st.session_state.get("_router_seen"):
        # This session has been through the router, so the server switched the legacy mode off already; only a
        # test harness that resets it per run (AppTest) gets here, and a rerun would drop the run's click or message.
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


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


def page_exists(name: str) -> bool:
    """True when ``pages/<name>.py`` exists, so a page only links to pages that are there."""
    return (PAGES_DIR / f"{name}.py").is_file()


# ---------------------------------------------------------------------- embeddings, encoders
@st.cache_resource(show_spinner="Loading the precomputed embeddings ...", max_entries=4)
def _load_artifacts(root: str, items_mtime_ns: int, manifest_mtime_ns: int, _catalog: Catalog):
    from recsys.artifacts import load_artifacts

    return load_artifacts(_catalog)


def artifacts(catalog: Catalog):
    """The catalog's precomputed artifacts, loaded once and again when they are recomputed.

    Raises ``recsys.artifacts.ArtifactError`` (one sentence, never cached) when they are missing or do not match.
    """
    return _load_artifacts(*_context_key(Path(catalog.root)), catalog)


def compute_artifacts(catalog: Catalog, progress: ProgressCallback | None = None) -> None:
    """Precompute the catalog's embeddings with the settings' encoders on the ``RECSYS_DEVICE`` device (what
    ``scripts/precompute.py`` does)."""
    from recsys.artifacts import precompute

    config = settings()
    precompute(catalog, config.image_encoder or DEFAULT_IMAGE_ENCODER, config.text_encoder, device=config.device,
               progress=False, callback=progress)


@st.cache_resource(show_spinner="Loading the encoder ...", max_entries=4)
def _encoder(spec: str, device: str):
    return shared_encoder(spec, device)


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


#: Tasks whose page waits seconds on its first visit or first upload for models and encoders (the Stylist's text
#: encoder, dialogue and compatibility models; the search's joint space, combiner and text encoder; the photo reader
#: and classifier of Similar items' uploads): :func:`warm_up` loads them early.
WARM_TASKS = ("dialogue", "composed", "similar")


@st.cache_resource(show_spinner=False, max_entries=4)
def _warm_up(folder: str, items_mtime_ns: int, manifest_mtime_ns: int, _services: tuple) -> threading.Thread:
    from recsys.tasks.base import warm_in_background

    return warm_in_background(_services)


def warm_up() -> None:
    """Start, once per server and catalog version, a thread loading what the :data:`WARM_TASKS` pages' first result
    needs (under the services' locks: a page asking meanwhile waits for that load). ``RECSYS_WARM_UP=0``: off."""
    try:
        if not settings().warm_up:
            return
        ctx = context()
        if ctx.artifacts is None:
            return
        folder = Path(ctx.catalog.root).expanduser().absolute()
        _warm_up(*_context_key(folder), (EncoderWarmUp(ctx.artifacts.image_encoder_spec, settings().device),)
                 + tuple(task_service(task) for task in WARM_TASKS))
    except Exception as exc:  # a page that needs the same thing says what is wrong in one sentence
        logger.info("warm-up not started: %s", exc)


# ---------------------------------------------------------------------- background jobs: set-up, training, evaluation
@st.cache_resource(show_spinner=False)
def jobs():
    """The server's one :class:`recsys.jobs.JobRegistry` (shared by every browser session)."""
    from recsys.jobs import JobRegistry

    return JobRegistry()


def setup_key(catalog: Catalog) -> tuple:
    """The key of a catalog's set-up job."""
    return job_key(catalog, "setup")


def start_setup(catalog: Catalog, all_models: bool = False):
    """Start (or join) the catalog's set-up job: embeddings, the pages' models, the quick report."""
    return jobs().start(setup_key(catalog), "Setting up this catalog", setup_work(catalog, settings().device, all_models))


def start_training(catalog: Catalog, task: str, names: Sequence[str], again: bool = True):
    """Start (or join) a job that trains ``names`` of ``task`` through the model store; with ``again=False`` a job
    that already ran under this key (even one that failed) is returned instead of being started again."""
    key = job_key(catalog, f"train {task}/{'+'.join(names)}")
    if not again and jobs().get(key) is not None:
        return jobs().get(key)
    return jobs().start(key, f"Training {', '.join(names)}", training_work(catalog, artifacts(catalog), task, names))


def evaluation_key(catalog: Catalog) -> tuple:
    """The key of a catalog's full-evaluation job."""
    return job_key(catalog, "evaluation")


def start_evaluation(catalog: Catalog):
    """Start (or join) the full evaluation of every task in the background; it replaces the catalog's report."""
    return jobs().start(evaluation_key(catalog), "Running the full evaluation", evaluation_work(catalog))


def refresh_after_job() -> None:
    """Forget the cached services so that pages see what a finished job trained or wrote."""
    _task_service.clear()
    _context.clear()


def show_job(job) -> None:
    """Draw a job's progress, refreshing every second while it runs; rerun the page once it has finished."""

    @st.fragment(run_every=1.0)
    def progress_box():
        current = jobs().get(job.key) or job
        if current.running:
            st.progress(current.fraction, text=f"{current.title}: {current.message}")
            return
        refresh_after_job()
        st.rerun(scope="app")

    progress_box()


def models_ready(task: str, names: Sequence[str], *, what: str = "This page's model") -> bool:
    """True when the catalog has embeddings and every model in ``names`` of ``task`` is trained for them.

    Otherwise the page shows what is happening instead of a command to run: the progress of the set-up or training
    job (started here automatically for the built-in world and for a model the user picked; for a catalog of the
    user's own, after a click on "Train models for this catalog"), or the job's one-sentence error, and False is
    returned -- the page stops drawing its result, and reruns by itself when the job is done.
    """
    from recsys.tasks import task_part

    ctx = context()
    if ctx.artifacts is not None and all(ctx.store.model_status(task, n).ready for n in names):
        return True
    page_models = set(getattr(task_part(task, "models"), "PAGE_MODELS", ()))
    needs_setup = ctx.artifacts is None or any(n in page_models for n in names)
    key = setup_key(ctx.catalog) if needs_setup else (str(Path(ctx.catalog.root).absolute()),
                                                      f"train {task}/{'+'.join(names)}")
    job = jobs().get(key)
    if job is not None and job.running:
        show_job(job)
        return False
    if job is not None and job.error:
        st.error(f"{job.title} failed: {job.error}", icon=":material/error:")
    if job is not None and not job.error:
        refresh_after_job()  # it finished in another session: load what it wrote
        ctx = context()
        if ctx.artifacts is not None and all(ctx.store.model_status(task, n).ready for n in names):
            return True
        skipped = getattr(job.result, "skipped", {}) or {}
        reasons = [reason for step, reason in skipped.items() if any(step.endswith(f"{task}/{n}") for n in names)]
        if reasons:  # the catalog cannot support it: say why once, never start the same job again by itself
            st.info(f"{what} cannot be trained on this catalog: {reasons[0]}", icon=":material/info:")
            return False
    automatic = (ctx.settings.catalog_is_builtin or not needs_setup) and job is None
    if automatic or st.button("Train models for this catalog", key=f"setup_{task}", type="primary",
                              icon=":material/model_training:"):
        job = start_setup(ctx.catalog) if needs_setup else start_training(ctx.catalog, task, list(names))
        show_job(job)
        return False
    problem = ctx.artifact_problem if ctx.artifacts is None else None
    st.info(f"{what} is not trained for this catalog yet" + (f" ({problem})" if problem else "") +
            "; the button trains it here in the background (a few minutes at most on the built-in world).",
            icon=":material/model_training:")
    return False
