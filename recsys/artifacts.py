"""Precomputed embeddings of a catalog, written once and read by everything else (DESIGN section 6).

Layout of ``<catalog>/artifacts/``::

    manifest.json                  written last: schema, encoders, dims, item count, catalog fingerprint, timings
    image.npy                      (n, d_image) float32, L2-normalized pooled image embeddings
    text_title.npy                 (n, d_text)  float32, L2-normalized embeddings of the titles
    text_description.npy           (n, d_text)  float32, L2-normalized embeddings of the descriptions
    feature_maps.npy               (n, C, 7, 7) float16 spatial feature maps reduced by PCA over channels
    fmap_pca_components.npy        (C, 1280) float32 } the PCA, so an upload's feature map can be reduced
    fmap_pca_mean.npy              (1280,)   float32 } the same way (:meth:`Artifacts.project_feature_maps`)
    map2d.npy                      (n, 2) float32, a t-SNE map of the image embeddings (after PCA to 50)
    shards/                        per-shard pieces of the above; what makes a rerun resume

Row ``i`` of every array is row ``i`` of the catalog's items table. Feature maps exist only for encoders
that have them (``effnet-lite0``). Text vectors come from the text encoder; when the image encoder is a joint
one (``open_clip:...``) and no text encoder is named, they come from the same joint model, so text and image
vectors share one space.

Everything is ``.npy`` and JSON, read with ``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from recsys.catalog import Catalog
from recsys.config import DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER
from recsys.encoders import Encoder, create_encoder, resolve_device

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
ARTIFACTS_DIRNAME = "artifacts"
MANIFEST_NAME = "manifest.json"
SHARDS_DIRNAME = "shards"
SHARDS_STATE_NAME = "state.json"
TEXT_FIELDS = ("title", "description")
FILES = {
    "image": "image.npy",
    "text_title": "text_title.npy",
    "text_description": "text_description.npy",
    "feature_maps": "feature_maps.npy",
    "fmap_pca_components": "fmap_pca_components.npy",
    "fmap_pca_mean": "fmap_pca_mean.npy",
    "map2d": "map2d.npy",
}

ProgressCallback = Callable[[float, str], None]
#: Below this many items the catalog map is computed on one thread.
SMALL_MAP_ITEMS = 2000


class ArtifactError(ValueError):
    """Artifacts are missing, damaged, or do not belong to the catalog/encoder asked for; one sentence says which."""


# ---------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Artifacts:
    """The read-only arrays of one catalog's artifacts; build with :func:`load_artifacts`.

    Attributes
    ----------
    root : Path
        The artifacts folder.
    manifest : dict
        The parsed ``manifest.json``.
    image : numpy.ndarray
        ``(n, d)`` float32 L2-normalized image embeddings.
    text_title, text_description : numpy.ndarray
        ``(n, d_text)`` float32 L2-normalized text embeddings.
    map2d : numpy.ndarray
        ``(n, 2)`` float32 coordinates of the catalog map.
    feature_maps : numpy.ndarray or None
        ``(n, C, 7, 7)`` float16 PCA-reduced feature maps (memory-mapped), None for encoders without maps.
    fmap_pca_components, fmap_pca_mean : numpy.ndarray or None
        The channel PCA used for ``feature_maps``.
    """

    root: Path
    manifest: dict
    image: np.ndarray
    text_title: np.ndarray
    text_description: np.ndarray
    map2d: np.ndarray
    feature_maps: np.ndarray | None = None
    fmap_pca_components: np.ndarray | None = None
    fmap_pca_mean: np.ndarray | None = None

    @property
    def image_encoder_spec(self) -> str:
        return self.manifest["image_encoder"]["spec"]

    @property
    def text_encoder_spec(self) -> str:
        return self.manifest["text_encoder"]["spec"]

    @property
    def item_count(self) -> int:
        return int(self.manifest["item_count"])

    def text(self, field: str) -> np.ndarray:
        """Text embeddings of ``field`` (``"title"`` or ``"description"``)."""
        if field not in TEXT_FIELDS:
            raise KeyError(f"Unknown text field {field!r}; artifacts hold {', '.join(TEXT_FIELDS)}.")
        return getattr(self, f"text_{field}")

    def project_feature_maps(self, feature_maps: np.ndarray) -> np.ndarray:
        """Reduce raw encoder feature maps ``(m, 1280, h, w)`` to the stored ``(m, C, h, w)`` space (float32)."""
        if self.fmap_pca_components is None:
            raise ArtifactError(f"The artifacts in {self.root} hold no feature maps (encoder {self.image_encoder_spec}).")
        return project_channels(feature_maps, self.fmap_pca_components, self.fmap_pca_mean)


def project_channels(feature_maps: np.ndarray, components: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Apply a channel PCA to ``(m, C_in, h, w)`` maps: ``(m, C_out, h, w)`` float32."""
    maps = np.asarray(feature_maps, dtype=np.float32)
    m, channels, height, width = maps.shape
    # One (cells, C_in) matrix so the product runs in BLAS; a strided 4-D matmul would loop in numpy.
    cells = np.ascontiguousarray(np.moveaxis(maps, 1, -1)).reshape(-1, channels)
    projected = (cells - mean) @ np.asarray(components, dtype=np.float32).T
    return np.ascontiguousarray(np.moveaxis(projected.reshape(m, height, width, -1), -1, 1))


def default_artifacts_dir(catalog: Catalog) -> Path:
    return Path(catalog.root) / ARTIFACTS_DIRNAME


def _rerun_hint(catalog: Catalog, image_encoder: str | None = None, text_encoder: str | None = None) -> str:
    command = f"python scripts/precompute.py --catalog {catalog.root}"
    if image_encoder:
        command += f" --image-encoder {image_encoder}"
    if text_encoder:
        command += f" --text-encoder {text_encoder}"
    return command


def read_manifest(artifacts_dir: str | os.PathLike) -> dict | None:
    """The parsed manifest, or None when there is none; :class:`ArtifactError` if it is unreadable."""
    path = Path(artifacts_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} cannot be read ({exc}); delete it and run precompute again.") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path} is not a JSON object; delete it and run precompute again.")
    return manifest


def load_artifacts(
    catalog: Catalog,
    image_encoder: str | None = None,
    text_encoder: str | None = None,
    artifacts_dir: str | os.PathLike | None = None,
    mmap: bool = True,
) -> Artifacts:
    """Open a catalog's artifacts read-only, refusing ones that do not match.

    Parameters
    ----------
    catalog : Catalog
        The catalog the artifacts must belong to (same item count and fingerprint).
    image_encoder, text_encoder : str, optional
        Specs the artifacts must have been computed with; None accepts whatever the manifest says.
    artifacts_dir : path, optional
        Default ``<catalog>/artifacts``.
    mmap : bool
        Memory-map the large arrays instead of reading them into memory.

    Raises
    ------
    ArtifactError
        One sentence: missing artifacts (with the command that makes them), another catalog, another
        encoder, an old schema, or a missing/damaged file.
    """
    root = Path(artifacts_dir) if artifacts_dir is not None else default_artifacts_dir(catalog)
    manifest = read_manifest(root)
    if manifest is None:
        raise ArtifactError(f"There are no precomputed artifacts in {root}; run {_rerun_hint(catalog, image_encoder, text_encoder)}.")
    hint = _rerun_hint(catalog, image_encoder, text_encoder)
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ArtifactError(
            f"The artifacts in {root} use schema version {manifest.get('schema_version')}, not {SCHEMA_VERSION}; run {hint}."
        )
    if manifest.get("item_count") != len(catalog):
        raise ArtifactError(
            f"The artifacts in {root} cover {manifest.get('item_count')} items but the catalog has {len(catalog)}; run {hint}."
        )
    if manifest.get("catalog_fingerprint") != catalog.fingerprint():
        raise ArtifactError(f"The artifacts in {root} were computed for a different version of the catalog; run {hint}.")
    for role, wanted in (("image", image_encoder), ("text", text_encoder)):
        stored = (manifest.get(f"{role}_encoder") or {}).get("spec")
        if wanted is not None and stored != wanted:
            raise ArtifactError(
                f"The artifacts in {root} were computed with {role} encoder '{stored}', not '{wanted}'; run {hint}."
            )

    n = len(catalog)
    files = manifest.get("files") or {}

    def array(key: str, required: bool = True, memory_map: bool = False) -> np.ndarray | None:
        entry = files.get(key)
        if entry is None:
            if required:
                raise ArtifactError(f"The manifest in {root} lists no '{key}' array; run {hint}.")
            return None
        path = root / entry["path"]
        try:
            values = np.load(path, mmap_mode="r" if (memory_map and mmap) else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"The artifact file {path} is missing or damaged ({exc}); run {hint}.") from None
        if list(values.shape) != list(entry["shape"]) or str(values.dtype) != entry["dtype"]:
            raise ArtifactError(
                f"The artifact file {path} holds {values.dtype}{list(values.shape)}, not the "
                f"{entry['dtype']}{entry['shape']} its manifest lists; run {hint}."
            )
        if not memory_map:
            values.flags.writeable = False
        return values

    arrays = {
        "image": array("image", memory_map=True),
        "text_title": array("text_title", memory_map=True),
        "text_description": array("text_description", memory_map=True),
        "map2d": array("map2d"),
        "feature_maps": array("feature_maps", required=False, memory_map=True),
        "fmap_pca_components": array("fmap_pca_components", required=False),
        "fmap_pca_mean": array("fmap_pca_mean", required=False),
    }
    for key in ("image", "text_title", "text_description", "map2d", "feature_maps"):
        if arrays[key] is not None and arrays[key].shape[0] != n:
            raise ArtifactError(f"The artifact {FILES[key]} in {root} has {arrays[key].shape[0]} rows, not {n}; run {hint}.")
    return Artifacts(root=root, manifest=manifest, **arrays)


# ---------------------------------------------------------------------- writing helpers
def _save_npy(path: Path, values: np.ndarray) -> None:
    """Write ``values`` to ``path`` atomically, so an interrupted run never leaves a half-written array behind."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        np.save(handle, values, allow_pickle=False)
    os.replace(tmp, path)


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _load_npy(path: Path) -> np.ndarray | None:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None


class _CatalogImages(torch.utils.data.Dataset):
    """Catalog images at given row positions, decoded and preprocessed inside DataLoader workers."""

    def __init__(self, catalog: Catalog, positions: np.ndarray, preprocess: Callable):
        self.catalog = catalog
        self.positions = positions
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> torch.Tensor:
        item_id = self.catalog.items["item_id"].iloc[int(self.positions[index])]
        return self.preprocess(self.catalog.load_image(item_id))


@dataclass
class _Shard:
    number: int
    start: int
    stop: int

    def name(self, kind: str) -> str:
        return f"{kind}_{self.number:05d}.npy"


def _shards(n_items: int, shard_size: int) -> list[_Shard]:
    return [_Shard(i, start, min(start + shard_size, n_items)) for i, start in enumerate(range(0, n_items, shard_size))]


def _shard_done(shard_dir: Path, shard: _Shard, kinds: tuple[str, ...]) -> bool:
    # Only the shape is checked: shards are written atomically, and the state file pins what made them.
    for kind in kinds:
        path = shard_dir / shard.name(kind)
        try:
            values = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return False
        if values.shape[0] != shard.stop - shard.start:
            return False
    return True


def default_num_workers() -> int:
    """DataLoader workers: one per spare core, at most 4 (decoding 224 px images is cheap next to the network)."""
    return min(4, max(0, (os.cpu_count() or 1) - 1))


def resolve_text_encoder(image_encoder: Encoder, text_encoder: str | Encoder | None) -> str | Encoder:
    """The text encoder to use: the one named, else the joint image encoder itself, else the default."""
    if text_encoder is not None:
        return text_encoder
    if image_encoder.modality == "joint":
        return image_encoder
    return DEFAULT_TEXT_ENCODER


def _encoder_record(encoder: Encoder) -> dict:
    return {"spec": encoder.spec, "dim": int(encoder.dim), "modality": encoder.modality}


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
        DataLoader workers decoding images; default :func:`default_num_workers`.
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
        Show tqdm progress bars.
    callback : callable, optional
        ``callback(fraction_done, message)``, e.g. for a progress bar in the app.
    threads : int, optional
        torch CPU threads during the run (restored afterwards); None keeps torch's setting. On cores shared
        with other busy processes, 1 is often several times faster than more.

    Returns
    -------
    dict
        The manifest that was written (or the existing one, when everything was up to date).
    """
    with torch_threads(threads):
        return _precompute(
            catalog, image_encoder, text_encoder, device, batch_size, num_workers, shard_size,
            fmap_channels, pca_sample, seed, artifacts_dir, force, progress, callback,
        )


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)`` (None: unchanged), restoring the setting after."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
) -> dict:
    started = time.perf_counter()
    root = Path(artifacts_dir) if artifacts_dir is not None else default_artifacts_dir(catalog)
    shard_dir = root / SHARDS_DIRNAME
    report = callback or (lambda fraction, message: None)
    n_items = len(catalog)
    if shard_size < 1 or batch_size < 1:
        raise ValueError("shard_size and batch_size must be at least 1.")

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
        "shard_size": shard_size,
        "fmap_channels": fmap_channels if with_maps else 0,
        "pca_sample": pca_sample if with_maps else 0,
        "seed": seed,
    }
    existing = None if force else read_manifest(root)
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
    if (shard_dir / SHARDS_STATE_NAME).is_file():
        try:
            previous_state = json.loads((shard_dir / SHARDS_STATE_NAME).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            previous_state = None
    if force or previous_state != state:
        if shard_dir.exists():
            logger.info("discarding shards in %s: they were made with other settings", shard_dir)
            shutil.rmtree(shard_dir)
    shard_dir.mkdir(parents=True, exist_ok=True)
    _write_json(shard_dir / SHARDS_STATE_NAME, state)

    shards = _shards(n_items, shard_size)
    timings: dict[str, float] = {}

    # 1. the feature-map PCA (shards store reduced maps, so it must exist before an image shard is written)
    components = mean = explained = None
    if with_maps:
        components = _load_npy(shard_dir / FILES["fmap_pca_components"])
        mean = _load_npy(shard_dir / FILES["fmap_pca_mean"])
        pca_info = _load_npy(shard_dir / "fmap_pca_explained.npy")
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
        _save_npy(shard_dir / FILES["fmap_pca_components"], components)
        _save_npy(shard_dir / FILES["fmap_pca_mean"], mean)
        _save_npy(shard_dir / "fmap_pca_explained.npy", np.array([explained], dtype=np.float64))

    if fit_pca and not fit_pca_on_all:
        tick = time.perf_counter()
        report(0.0, "Fitting the feature-map PCA.")
        sample = np.sort(np.random.default_rng(seed).choice(n_items, size=pca_sample, replace=False))
        _, sample_maps = image_enc.encode_images(
            [catalog.load_image(item_id) for item_id in catalog.items["item_id"].iloc[sample]],
            batch_size=batch_size,
            return_feature_maps=True,
        )
        save_pca(fit_channel_pca(sample_maps, fmap_channels, seed))
        timings["pca_seconds"] = round(time.perf_counter() - tick, 3)

    # 2. image shards
    image_kinds = ("image", "fmap") if with_maps else ("image",)
    # A new PCA makes every stored feature-map shard stale.
    todo = list(shards) if fit_pca else [s for s in shards if not _shard_done(shard_dir, s, image_kinds)]
    computed = {"image": [s.number for s in todo]}
    tick = time.perf_counter()
    if todo:
        workers = default_num_workers() if num_workers is None else num_workers
        positions = np.concatenate([np.arange(s.start, s.stop) for s in todo])
        loader = torch.utils.data.DataLoader(
            _CatalogImages(catalog, positions, image_enc.preprocess),
            batch_size=batch_size,
            shuffle=False,
            num_workers=workers,
            pin_memory=device.startswith("cuda"),
            persistent_workers=False,
        )
        bar = tqdm(total=len(positions), desc="images", unit="img", disable=not progress)
        done = 0

        def write_shard(shard: _Shard, pooled: np.ndarray, maps: np.ndarray | None) -> None:
            _save_npy(shard_dir / shard.name("image"), pooled)
            if with_maps:
                _save_npy(shard_dir / shard.name("fmap"), project_channels(maps, components, mean).astype(np.float16))

        encoded = _collect_shards(loader, image_enc, todo, with_maps)
        if fit_pca_on_all:
            encoded = list(encoded)  # raw maps of a small catalog (n <= pca_sample) fit in memory
            save_pca(fit_channel_pca(np.concatenate([maps for _, _, maps in encoded]), fmap_channels, seed))
        for shard, pooled, maps in encoded:
            write_shard(shard, pooled, maps)
            done += shard.stop - shard.start
            bar.update(shard.stop - shard.start)
            report(0.8 * done / len(positions), f"Encoded {done} of {len(positions)} images.")
        bar.close()
    image_seconds = time.perf_counter() - tick
    timings["image_seconds"] = round(image_seconds, 3)
    timings["image_items_encoded"] = int(sum(s.stop - s.start for s in todo))
    if todo:
        timings["image_items_per_s"] = round(timings["image_items_encoded"] / max(image_seconds, 1e-9), 2)

    # 3. text shards (tokenizing is cheap, so no DataLoader)
    tick = time.perf_counter()
    text_encoded = 0
    for field in TEXT_FIELDS:
        kind = f"text_{field}"
        todo_text = [shard for shard in shards if not _shard_done(shard_dir, shard, (kind,))]
        computed[kind] = [s.number for s in todo_text]
        texts = catalog.items[field].fillna("").astype(str).tolist()
        for shard in tqdm(todo_text, desc=field, unit="shard", disable=not progress):
            vectors = text_enc.encode_text(texts[shard.start : shard.stop], batch_size=2 * batch_size)
            _save_npy(shard_dir / shard.name(kind), vectors)
            text_encoded += shard.stop - shard.start
    text_seconds = time.perf_counter() - tick
    timings["text_seconds"] = round(text_seconds, 3)
    timings["text_items_encoded"] = text_encoded
    if text_encoded:
        timings["text_items_per_s"] = round(text_encoded / max(text_seconds, 1e-9), 2)
    report(0.85, "Assembling the artifacts.")

    # 4. assemble the full arrays from the shards
    files: dict[str, dict] = {}
    assembled = {"image": "image", "text_title": "text_title", "text_description": "text_description"}
    if with_maps:
        assembled["feature_maps"] = "fmap"
    for key, kind in assembled.items():
        files[key] = _assemble(shard_dir, shards, kind, root / FILES[key])
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
    _save_npy(root / FILES["map2d"], coordinates)
    files["map2d"] = {"path": FILES["map2d"], "shape": list(coordinates.shape), "dtype": str(coordinates.dtype)}
    timings["map2d_seconds"] = round(time.perf_counter() - tick, 3)
    timings["total_seconds"] = round(time.perf_counter() - started, 3)

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
    }
    _write_json(root / MANIFEST_NAME, manifest)
    report(1.0, "Artifacts written.")
    logger.info("wrote artifacts for %d items to %s in %.1f s", n_items, root, timings["total_seconds"])
    return manifest


def _collect_shards(
    loader: torch.utils.data.DataLoader, encoder: Encoder, shards: list[_Shard], with_maps: bool
) -> Iterator[tuple[_Shard, np.ndarray, np.ndarray | None]]:
    """Run the encoder over the loader (which yields the shards' items in order) and yield each shard when complete."""
    pending = list(shards)
    pooled_parts: list[np.ndarray] = []
    map_parts: list[np.ndarray] = []
    buffered = 0
    for pixels in loader:
        if with_maps:
            pooled, maps = encoder.encode_pixels(pixels, return_feature_maps=True)
            map_parts.append(maps)
        else:
            pooled = encoder.encode_pixels(pixels)
        pooled_parts.append(pooled)
        buffered += len(pooled)
        while pending and buffered >= pending[0].stop - pending[0].start:
            shard = pending.pop(0)
            size = shard.stop - shard.start
            all_pooled = np.concatenate(pooled_parts)
            all_maps = np.concatenate(map_parts) if with_maps else None
            yield shard, all_pooled[:size], (all_maps[:size] if with_maps else None)
            pooled_parts = [all_pooled[size:]]
            map_parts = [all_maps[size:]] if with_maps else []
            buffered -= size


def _assemble(shard_dir: Path, shards: list[_Shard], kind: str, target: Path) -> dict:
    """Concatenate a kind's shards into ``target`` through a memory map (the full array never sits in RAM)."""
    first = np.load(shard_dir / shards[0].name(kind), mmap_mode="r", allow_pickle=False)
    shape = (shards[-1].stop, *first.shape[1:])
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=first.dtype, shape=shape)
    for shard in shards:
        out[shard.start : shard.stop] = np.load(shard_dir / shard.name(kind), mmap_mode="r", allow_pickle=False)
    out.flush()
    del out
    os.replace(tmp, target)
    return {"path": target.name, "shape": list(shape), "dtype": str(first.dtype)}


def fit_channel_pca(feature_maps: np.ndarray, channels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """PCA over the channel vectors of every cell of ``(m, C, h, w)`` maps.

    Returns
    -------
    components : numpy.ndarray
        ``(channels', C)`` float32, ``channels' = min(channels, cells, C)``.
    mean : numpy.ndarray
        ``(C,)`` float32.
    explained : float
        Share of the variance the kept channels explain.
    """
    from sklearn.decomposition import PCA

    from threadpoolctl import threadpool_limits

    cells = np.moveaxis(np.asarray(feature_maps, dtype=np.float32), 1, -1).reshape(-1, feature_maps.shape[1])
    n_components = int(min(channels, cells.shape[0], cells.shape[1]))
    # The sample is small (a few seconds on one core); BLAS threads busy-waiting on shared cores cost minutes.
    with threadpool_limits(1):
        pca = PCA(n_components=n_components, svd_solver="randomized", random_state=seed).fit(cells)
    explained = float(pca.explained_variance_ratio_.sum())
    logger.info("feature-map PCA %d -> %d channels keeps %.1f%% of the variance", cells.shape[1], n_components, 100 * explained)
    return pca.components_.astype(np.float32), pca.mean_.astype(np.float32), explained


def catalog_map(vectors: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> tuple[np.ndarray, dict]:
    """2-D coordinates of embeddings: PCA to 50 dimensions, then t-SNE (perplexity capped below n/3).

    Returns
    -------
    coordinates : numpy.ndarray
        ``(n, 2)`` float32.
    info : dict
        How the map was made (for the manifest).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    if n < 5:  # t-SNE needs a few neighbours; a handful of points is shown by its principal plane
        components = min(2, n, vectors.shape[1])
        coordinates = np.zeros((n, 2), dtype=np.float32)
        if n > 1:
            coordinates[:, :components] = PCA(n_components=components, random_state=seed).fit_transform(vectors)
        return coordinates, {"method": "pca", "dimensions": 2}
    reduced_dim = int(min(50, n, vectors.shape[1]))
    used_perplexity = float(min(perplexity, max(2.0, (n - 1) / 3.0)))
    # Small maps gain nothing from threads, and on shared cores OpenMP's spin-waiting makes them crawl.
    with threadpool_limits(1) if n < SMALL_MAP_ITEMS else contextlib.nullcontext():
        reduced = PCA(n_components=reduced_dim, random_state=seed).fit_transform(vectors)
        coordinates = TSNE(
            n_components=2, perplexity=used_perplexity, init="pca", learning_rate="auto", random_state=seed
        ).fit_transform(reduced)
    return coordinates.astype(np.float32), {"method": "pca+tsne", "pca_dimensions": reduced_dim, "perplexity": used_perplexity}
