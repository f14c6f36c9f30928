"""The offline precompute pipeline (clip-retrieval's reader -> mapper -> writer): encode a catalog into its
artifacts, resumable shard by shard (DESIGN section 6).

``precompute(catalog)`` reads and encodes the images (and the titles and descriptions) shard by shard, reduces the
feature maps with a channel PCA, assembles the full arrays, draws the 2-D catalog map, and writes ``manifest.json``
last; :mod:`recsys.artifacts` describes the layout and reads it back. A rerun with the same settings skips finished
shards; other settings discard them.

Only the image reading and encoding is left to an *engine* (:mod:`recsys.precompute_engine`): ``"local"``
(:class:`LocalEngine`: a DataLoader decodes, this process encodes) or ``"ray"``
(:class:`recsys.precompute_ray.RayEngine`: a Ray Data pipeline over a local instance or a cluster). Planning the
shards, the PCA, the text, the assembly and the manifest are the same code for both, so both write the same files.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from recsys.artifacts import (
    FILES, MANIFEST_NAME, SCHEMA_VERSION, SHARDS_DIRNAME, SHARDS_STATE_NAME, TEXT_FIELDS, ArtifactError,
    default_artifacts_dir, first_non_finite_row, load_artifacts, read_manifest,
)
from recsys.catalog import Catalog
from recsys.config import DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER
from recsys.encoders import Encoder, create_encoder, resolve_device
from recsys.progress import ProgressCallback, progress_bar
from recsys.projections import catalog_map, fit_channel_pca, project_channels
from recsys.precompute_engine import (  # noqa: F401  (re-exported: recsys.artifacts names them)
    ENGINES, Engine, EngineError, LocalEngine, create_engine, default_num_workers, iter_rows, list_engines,
)
from recsys.shards import (
    Shard, assemble, collect_shards, load_npy, plan_shards, read_unavailable, save_npy, shard_done, unavailable_path,
    write_json,
)
from recsys.utils import read_json, torch_threads

logger = logging.getLogger(__name__)

#: Smallest text batch: sorted by length, MiniLM encodes the demo catalog's texts in 23 s at 128 a batch, 25 s at 64.
TEXT_BATCH_SIZE = 128
#: Unreadable images named one a line in the log; the rest are counted (the manifest lists every one).
NAMED_UNAVAILABLE = 20


def resolve_text_encoder(image_encoder: Encoder, text_encoder: str | Encoder | None) -> str | Encoder:
    """The text encoder to use: the one named, else the joint image encoder itself (so text and image vectors
    share one space), else :data:`recsys.config.DEFAULT_TEXT_ENCODER`."""
    if text_encoder is not None:
        return text_encoder
    if image_encoder.modality == "joint":
        return image_encoder
    return DEFAULT_TEXT_ENCODER


def _encoder_record(encoder: Encoder) -> dict:
    # The precision an encoder ran at (recsys.encoders.precision); "fp32" for encoders made outside the registry.
    return {"spec": encoder.spec, "dim": int(encoder.dim), "modality": encoder.modality,
            "precision": getattr(encoder, "precision", "fp32")}


# ---------------------------------------------------------------------- precompute
def precompute(
    catalog: Catalog,
    image_encoder: str | Encoder = DEFAULT_IMAGE_ENCODER,
    text_encoder: str | Encoder | None = None,
    device: str = "auto",
    batch_size: int = 32,
    num_workers: int | None = None,
    shard_size: int = 512,
    fmap_channels: int = 256,
    pca_sample: int = 256,
    seed: int = 0,
    artifacts_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: bool = True,
    callback: ProgressCallback | None = None,
    threads: int | None = None,
    engine: str | Engine = "local",
) -> dict:
    """Encode a catalog into ``<catalog>/artifacts`` (see the module docstring); resumable shard by shard.

    Parameters
    ----------
    catalog : Catalog
    image_encoder : str or Encoder
        Spec (or a ready encoder) for the images; ``effnet-lite0`` also yields feature maps.
    text_encoder : str or Encoder, optional
        Spec for titles and descriptions; default: the image encoder itself when it is joint, else ``minilm``.
    device : {"auto", "cpu", "cuda"}
        Where encoders built from specs run; fp16 autocast is used on CUDA.
    batch_size : int
        Images per forward pass (texts use twice as many).
    num_workers : int, optional
        DataLoader workers decoding images with the local engine; default :func:`default_num_workers`.
    shard_size : int
        Items per shard; finished shards are kept and skipped when the run is repeated.
    fmap_channels : int
        Channels kept by the feature-map PCA (1280 -> ``fmap_channels``); 0 stores no feature maps.
    pca_sample : int
        Items (drawn with ``seed``) whose feature maps fit the PCA.
    seed : int
        Seeds the PCA sample, the PCA and t-SNE.
    artifacts_dir : path, optional
        Default ``<catalog>/artifacts``.
    force : bool
        Recompute everything, even shards and a manifest that match.
    progress : bool
        Show progress bars (``recsys.progress``: live on a terminal, periodic lines in a log).
    callback : callable, optional
        ``callback(fraction_done, message)``, e.g. for a progress bar in the app.
    threads : int, optional
        torch CPU threads during the run (restored afterwards); None keeps torch's setting. On cores shared
        with other busy processes, 1 is often several times faster than more.
    engine : str or engine
        What reads and encodes the images: ``"local"`` (:class:`LocalEngine` with ``num_workers``), ``"ray"``
        (:class:`recsys.precompute_ray.RayEngine` on a local Ray instance), or an engine built with
        :func:`create_engine` (:class:`recsys.precompute_engine.Engine`). Every engine writes the same shards and manifest (its name is in ``timings``),
        so a run may resume the shards another engine left.

    Returns
    -------
    dict
        The manifest that was written (or the existing one, when everything was up to date).

    Raises
    ------
    ValueError
        For a shard or batch size below 1, an encoder that cannot encode images (or text) as asked, or an
        unknown engine name.
    EngineError
        When the engine cannot run (Ray not installed, a cluster that cannot be reached).
    recsys.encoders.EncoderError
        For an unknown encoder spec, missing weights, or a device that is not there (one sentence).
    OSError
        When the artifacts folder cannot be written or an image cannot be read.
    """
    with torch_threads(threads):
        return _precompute(
            catalog, image_encoder, text_encoder, device, batch_size, num_workers, shard_size,
            fmap_channels, pca_sample, seed, artifacts_dir, force, progress, callback, engine,
        )


def _precompute(
    catalog: Catalog,
    image_encoder: str | Encoder,
    text_encoder: str | Encoder | None,
    device: str,
    batch_size: int,
    num_workers: int | None,
    shard_size: int,
    fmap_channels: int,
    pca_sample: int,
    seed: int,
    artifacts_dir: str | os.PathLike | None,
    force: bool,
    progress: bool,
    callback: ProgressCallback | None,
    engine: str | Engine,
) -> dict:
    started = time.perf_counter()
    root = Path(artifacts_dir) if artifacts_dir is not None else default_artifacts_dir(catalog)
    shard_dir = root / SHARDS_DIRNAME
    report = callback or (lambda fraction, message: None)
    n_items = len(catalog)
    if shard_size < 1 or batch_size < 1:
        raise ValueError("shard_size and batch_size must be at least 1.")
    if isinstance(engine, str):
        engine = create_engine(engine, **({"num_workers": num_workers} if engine == "local" else {}))
    engine.check()  # a missing optional library is one sentence before any encoder loads

    device = resolve_device(device)
    image_enc = create_encoder(image_encoder, device) if isinstance(image_encoder, str) else image_encoder
    if not image_enc.encodes_images:
        raise ValueError(f"The encoder '{image_enc.spec}' cannot encode images; pass an image or joint encoder.")
    text_choice = resolve_text_encoder(image_enc, text_encoder)
    text_enc = create_encoder(text_choice, device) if isinstance(text_choice, str) else text_choice
    if not text_enc.encodes_text:
        raise ValueError(f"The encoder '{text_enc.spec}' cannot encode text; pass a text or joint encoder.")
    with_maps = image_enc.feature_map_shape is not None and fmap_channels > 0

    state = {
        "schema_version": SCHEMA_VERSION,
        "catalog_fingerprint": catalog.fingerprint(),
        "item_count": n_items,
        "image_encoder": image_enc.spec,
        "text_encoder": text_enc.spec,
        # Shards made at another precision are made again, so the manifest's precision is every shard's.
        "image_precision": getattr(image_enc, "precision", "fp32"),
        "text_precision": getattr(text_enc, "precision", "fp32"),
        "shard_size": shard_size,
        "fmap_channels": fmap_channels if with_maps else 0,
        "pca_sample": pca_sample if with_maps else 0,
        "seed": seed,
    }
    try:
        existing = None if force else read_manifest(root)
    except ArtifactError as exc:  # a damaged manifest vouches for nothing; the shards it lists may still be good
        logger.info("recomputing: %s", exc)
        existing = None
    if existing is not None and existing.get("shard_state") == state:
        try:
            load_artifacts(catalog, image_enc.spec, text_enc.spec, artifacts_dir=root)
        except ArtifactError as exc:
            logger.info("recomputing: %s", exc)
        else:
            logger.info("artifacts in %s are up to date", root)
            report(1.0, "Artifacts are up to date.")
            return existing

    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST_NAME).unlink(missing_ok=True)  # the old manifest must not vouch for arrays being rewritten
    previous_state = None
    try:
        previous_state = read_json(shard_dir / SHARDS_STATE_NAME)
    except (OSError, ValueError):  # damaged: the manifest, when it was readable, still says what made the shards
        previous_state = (existing or {}).get("shard_state")
    if force or previous_state != state:
        if shard_dir.exists():
            logger.info("discarding shards in %s: they were made with other settings", shard_dir)
            shutil.rmtree(shard_dir)
    shard_dir.mkdir(parents=True, exist_ok=True)
    write_json(shard_dir / SHARDS_STATE_NAME, state)

    shards = plan_shards(n_items, shard_size)
    timings: dict = {}

    # 1. the feature-map PCA (shards store reduced maps, so it must exist before an image shard is written)
    components = mean = explained = None
    if with_maps:
        components = load_npy(shard_dir / FILES["fmap_pca_components"])
        mean = load_npy(shard_dir / FILES["fmap_pca_mean"])
        pca_info = load_npy(shard_dir / "fmap_pca_explained.npy")
        if components is None or mean is None or pca_info is None:
            components = mean = None
        else:
            explained = float(pca_info[0])
    fit_pca = with_maps and components is None
    # A small catalog lies wholly inside the PCA sample: encode it once and fit on everything.
    fit_pca_on_all = fit_pca and n_items <= pca_sample

    def save_pca(fitted: tuple[np.ndarray, np.ndarray, float]) -> None:
        nonlocal components, mean, explained
        components, mean, explained = fitted
        save_npy(shard_dir / FILES["fmap_pca_components"], components)
        save_npy(shard_dir / FILES["fmap_pca_mean"], mean)
        save_npy(shard_dir / "fmap_pca_explained.npy", np.array([explained], dtype=np.float64))

    # 2. image shards
    image_kinds = ("image", "fmap") if with_maps else ("image",)
    # A new PCA makes every stored feature-map shard stale.
    widths = {"image": (image_enc.dim,), "text_title": (text_enc.dim,), "text_description": (text_enc.dim,)}
    if with_maps:
        widths["fmap"] = (fmap_channels, *image_enc.feature_map_shape[1:])
    todo = list(shards) if fit_pca else [s for s in shards if not shard_done(shard_dir, s, image_kinds, widths)]
    computed = {"image": [s.number for s in todo]}
    positions = np.concatenate([np.arange(s.start, s.stop) for s in todo]) if todo else np.zeros(0, np.int64)
    sample = np.zeros(0, dtype=np.int64)
    if fit_pca and not fit_pca_on_all:
        sample = np.sort(np.random.default_rng(seed).choice(n_items, size=pca_sample, replace=False))
    # One pass of the engine: the PCA sample first (the shards need the PCA), then the shards' other rows in order.
    order = np.concatenate([sample, np.setdiff1d(positions, sample, assume_unique=True)])
    tick = time.perf_counter()
    if todo:
        rows = iter_rows(engine.encode_images(catalog, image_enc, order, batch_size, with_maps))
        known: dict[int, tuple[np.ndarray, np.ndarray | None, str]] = {}
        if len(sample):
            report(0.0, "Fitting the feature-map PCA.")
            # Kept for the shards: the sample is not encoded a second time.
            known = {int(p): next(rows) for p in sample}
            readable = [maps for _, maps, error in known.values() if not error]  # a blank picture's maps are no sample
            save_pca(fit_channel_pca(np.stack(readable or [maps for _, maps, _ in known.values()]), fmap_channels, seed))
            timings["pca_seconds"] = round(time.perf_counter() - tick, 3)
            tick = time.perf_counter()
        bar = progress_bar(total=len(positions), desc="images", unit="img", disable=not progress)
        done = 0

        def write_shard(shard: Shard, pooled: np.ndarray, maps: np.ndarray | None, errors: list[str]) -> None:
            # An image that cannot be read leaves its row at zero (no vector: no similarity to anything) and is
            # listed first, so a shard on disk always has its list (DESIGN section 6, unavailable items).
            failed = [k for k, error in enumerate(errors) if error]
            ids = catalog.items["item_id"].iloc[shard.start:shard.stop].tolist()
            write_json(unavailable_path(shard_dir, shard), {ids[k]: errors[k] for k in failed})
            pooled = np.array(pooled, dtype=np.float32)
            pooled[failed] = 0.0
            _require_finite(pooled, catalog, shard, "image")
            save_npy(shard_dir / shard.name("image"), pooled)
            if with_maps:
                reduced = project_channels(maps, components, mean).astype(np.float16)
                reduced[failed] = 0
                save_npy(shard_dir / shard.name("fmap"), reduced)

        encoded = collect_shards(rows, todo, with_maps, known=known)
        if fit_pca_on_all:
            encoded = list(encoded)  # raw maps of a small catalog (n <= pca_sample) fit in memory
            readable = [maps[[not e for e in errors]] for _, _, maps, errors in encoded]
            if not sum(len(m) for m in readable):
                readable = [maps for _, _, maps, _ in encoded]
            save_pca(fit_channel_pca(np.concatenate(readable), fmap_channels, seed))
        for shard, pooled, maps, errors in encoded:
            write_shard(shard, pooled, maps, errors)
            done += shard.stop - shard.start
            bar.update(shard.stop - shard.start)
            report(0.8 * done / len(positions), f"Encoded {done} of {len(positions)} images.")
        bar.close()
    image_seconds = time.perf_counter() - tick
    timings["image_seconds"] = round(image_seconds, 3)
    # Items encoded in this step (the PCA sample's are counted in pca_seconds).
    timings["image_items_encoded"] = int(len(order) - len(sample)) if todo else 0
    if todo:
        timings["image_items_per_s"] = round(timings["image_items_encoded"] / max(image_seconds, 1e-9), 2)

    # 3. text shards (tokenizing is cheap, so no DataLoader)
    tick = time.perf_counter()
    text_encoded = 0
    for field in TEXT_FIELDS:
        kind = f"text_{field}"
        todo_text = [shard for shard in shards if not shard_done(shard_dir, shard, (kind,), widths)]
        computed[kind] = [s.number for s in todo_text]
        texts = catalog.items[field].fillna("").astype(str).tolist()
        for shard in progress_bar(todo_text, desc=field, unit="shard", disable=not progress):
            vectors = _encode_distinct(text_enc, texts[shard.start : shard.stop], max(2 * batch_size, TEXT_BATCH_SIZE))
            _require_finite(vectors, catalog, shard, field)
            save_npy(shard_dir / shard.name(kind), vectors)
            text_encoded += shard.stop - shard.start
    text_seconds = time.perf_counter() - tick
    timings["text_seconds"] = round(text_seconds, 3)
    timings["text_items_encoded"] = text_encoded
    if text_encoded:
        timings["text_items_per_s"] = round(text_encoded / max(text_seconds, 1e-9), 2)
    report(0.85, "Assembling the artifacts.")

    # 4. assemble the full arrays from the shards, with the items whose image could not be read
    unavailable = read_unavailable(shard_dir, shards, catalog)
    _report_unavailable(unavailable, n_items)
    files: dict[str, dict] = {}
    assembled = {"image": "image", "text_title": "text_title", "text_description": "text_description"}
    if with_maps:
        assembled["feature_maps"] = "fmap"
    for key, kind in assembled.items():
        files[key] = assemble(shard_dir, shards, kind, root / FILES[key])
    if with_maps:
        for key in ("fmap_pca_components", "fmap_pca_mean"):
            shutil.copyfile(shard_dir / FILES[key], root / FILES[key])
            values = np.load(root / FILES[key], mmap_mode="r", allow_pickle=False)
            files[key] = {"path": FILES[key], "shape": list(values.shape), "dtype": str(values.dtype)}
    for key in ("feature_maps", "fmap_pca_components", "fmap_pca_mean"):
        if key not in files:
            (root / FILES[key]).unlink(missing_ok=True)  # left from a run with another encoder

    # 5. the 2-D catalog map
    tick = time.perf_counter()
    report(0.9, "Drawing the catalog map.")
    image_vectors = np.load(root / FILES["image"], mmap_mode="r", allow_pickle=False)
    coordinates, map_info = catalog_map(np.asarray(image_vectors), seed=seed)
    save_npy(root / FILES["map2d"], coordinates)
    files["map2d"] = {"path": FILES["map2d"], "shape": list(coordinates.shape), "dtype": str(coordinates.dtype)}
    timings["map2d_seconds"] = round(time.perf_counter() - tick, 3)
    timings["total_seconds"] = round(time.perf_counter() - started, 3)
    timings["engine"] = engine.describe()

    manifest = {
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "catalog_name": catalog.name,
        "catalog_fingerprint": state["catalog_fingerprint"],
        "item_count": n_items,
        "image_encoder": _encoder_record(image_enc),
        "text_encoder": _encoder_record(text_enc),
        "files": files,
        "feature_maps": (
            {
                "channels": int(components.shape[0]),
                "source_channels": int(components.shape[1]),
                "grid": list(image_enc.feature_map_shape[1:]),
                "dtype": "float16",
                "reduction": "PCA over channels",
                "pca_sample_items": int(min(pca_sample, n_items)),
                "explained_variance_ratio": round(float(explained), 4),
            }
            if with_maps
            else None
        ),
        "map2d": map_info,
        "device": device,
        "batch_size": batch_size,
        "shards": {
            "size": shard_size,
            "count": len(shards),
            "computed": computed,
        },
        "shard_state": state,
        "timings": timings,
        "unavailable_items": unavailable,
    }
    write_json(root / MANIFEST_NAME, manifest)
    report(1.0, "Artifacts written.")
    logger.info("wrote artifacts for %d items to %s in %.1f s", n_items, root, timings["total_seconds"])
    return manifest


def _report_unavailable(unavailable: list[dict], n_items: int) -> None:
    """Name each item whose image could not be read (the first :data:`NAMED_UNAVAILABLE` in a line each, then a
    count); refuse a catalog none of whose images can be read, in one sentence."""
    if unavailable and len(unavailable) == n_items:
        first = unavailable[0]
        raise ArtifactError(f"None of the catalog's {n_items} images can be read (e.g. item {first['item_id']}: "
                            f"{first['reason']}); check the images folder.")
    for record in unavailable[:NAMED_UNAVAILABLE]:
        logger.warning("item %s: %s; it is marked unavailable", record["item_id"], record["reason"])
    if len(unavailable) > NAMED_UNAVAILABLE:
        logger.warning("%d more items' images cannot be read; manifest.json lists them all",
                       len(unavailable) - NAMED_UNAVAILABLE)


def _require_finite(vectors: np.ndarray, catalog: Catalog, shard: Shard, what: str) -> None:
    """Refuse, in one sentence naming the item, a shard whose vectors hold a NaN or an infinity (a broken image or
    encoder must not reach the artifacts, where it would sink every search it touches)."""
    row = first_non_finite_row(vectors)
    if row is not None:
        item = catalog.items["item_id"].iat[shard.start + row]
        raise ArtifactError(f"The {what} encoder gave item {item} NaN or infinite values; its {what} cannot be "
                            f"embedded as it is (check the file and the encoder).")


def _encode_distinct(encoder: Encoder, texts: list[str], batch_size: int) -> np.ndarray:
    """``(len(texts), dim)`` vectors, each distinct text encoded once (catalog titles repeat: the demo world's 3,300
    titles hold 2,311 distinct ones)."""
    distinct = list(dict.fromkeys(texts))
    vectors = encoder.encode_text(distinct, batch_size=batch_size)
    row = {text: k for k, text in enumerate(distinct)}
    return vectors[[row[text] for text in texts]]
