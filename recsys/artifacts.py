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

This module is the reading side (clip-retrieval's split of the offline pipeline from its readers): layout,
:class:`Artifacts`, :func:`load_artifacts`, :func:`read_manifest`. The writing side, :func:`precompute`, lives in
:mod:`recsys.precompute` (with :mod:`recsys.shards` and :mod:`recsys.projections`) and is re-exported here on
first use, so reading artifacts never imports torch or the encoders.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.catalog import Catalog
from recsys.projections import project_channels
from recsys.utils import load_array, read_json

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


#: Names of the precompute pipeline still importable from here (``from recsys.artifacts import precompute``).
_PIPELINE = {"precompute": "recsys.precompute", "default_num_workers": "recsys.precompute",
             "resolve_text_encoder": "recsys.precompute", "catalog_map": "recsys.projections",
             "fit_channel_pca": "recsys.projections"}


def __getattr__(name: str):
    # Lazy (PEP 562): recsys.precompute imports this module, and the loading side must stay free of torch.
    if name in _PIPELINE:
        import importlib

        return getattr(importlib.import_module(_PIPELINE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        """The spec of the encoder that made :attr:`image` (e.g. ``"effnet-lite0"``)."""
        return self.manifest["image_encoder"]["spec"]

    @property
    def text_encoder_spec(self) -> str:
        """The spec of the encoder that made the text vectors."""
        return self.manifest["text_encoder"]["spec"]

    @property
    def item_count(self) -> int:
        """Rows of every array (the catalog's item count)."""
        return int(self.manifest["item_count"])

    @property
    def unavailable(self) -> dict[str, str]:
        """``{item_id: reason}`` of the items whose image could not be read when the embeddings were computed: their
        image rows are zero, and every page leaves them out (DESIGN section 6). Empty for most catalogs."""
        return {record["item_id"]: record["reason"] for record in self.manifest.get("unavailable_items") or []}

    @property
    def unavailable_rows(self) -> np.ndarray:
        """``(m,)`` int64 catalog rows of :attr:`unavailable`, sorted."""
        return np.array(sorted(record["row"] for record in self.manifest.get("unavailable_items") or []), np.int64)

    def text(self, field: str) -> np.ndarray:
        """Text embeddings of ``field`` (``"title"`` or ``"description"``): ``(n, d_text)`` float32.

        Raises
        ------
        KeyError
            For another field.
        """
        if field not in TEXT_FIELDS:
            raise KeyError(f"Unknown text field {field!r}; artifacts hold {', '.join(TEXT_FIELDS)}.")
        return getattr(self, f"text_{field}")

    def project_feature_maps(self, feature_maps: np.ndarray) -> np.ndarray:
        """Reduce raw encoder feature maps ``(m, 1280, h, w)`` to the stored ``(m, C, h, w)`` space (float32).

        Raises
        ------
        ArtifactError
            When the artifacts hold no feature maps (an encoder without them).
        """
        if self.fmap_pca_components is None:
            raise ArtifactError(f"The artifacts in {self.root} hold no feature maps (encoder {self.image_encoder_spec}).")
        return project_channels(feature_maps, self.fmap_pca_components, self.fmap_pca_mean)


def default_artifacts_dir(catalog: Catalog) -> Path:
    """``<catalog>/artifacts``."""
    return Path(catalog.root) / ARTIFACTS_DIRNAME


def needs_embedding(manifest: dict | None, image_encoder: str | None, text_encoder: str | None) -> bool:
    """True when a catalog has no artifact ``manifest``, or its embeddings come from another image encoder than
    ``image_encoder`` or another text encoder than ``text_encoder`` (None: any, as the settings leave it open)."""
    if not manifest:
        return True
    image, text = manifest_spec(manifest, "image"), manifest_spec(manifest, "text")
    return (image is None or text is None  # a manifest of another tool's: embed again
            or (image_encoder is not None and image != image_encoder)
            or (text_encoder is not None and text != text_encoder))


def embedding_step(catalog: Catalog, image_encoder: str | None,
                   text_encoder: str | None) -> tuple[str, str | None, str | None] | None:
    """What the set-up must compute of a catalog's embeddings, or None when the ones it has are usable:
    ``(progress message, image encoder, text encoder)`` -- none yet, made by other encoders than the settings name
    (None: any), or damaged (a manifest or array that cannot be read, logged in one line). The encoders are the
    settings' own, else, for damaged embeddings, those that made them (manifest or shard state; the finished
    shards are kept), else None (the defaults)."""
    root = default_artifacts_dir(catalog)
    try:
        manifest = read_manifest(root)
        if manifest is None:
            return "Computing the embeddings", image_encoder, text_encoder
        named = manifest_spec(manifest, "image") is not None and manifest_spec(manifest, "text") is not None
        if named and needs_embedding(manifest, image_encoder, text_encoder):
            return (f"Computing the embeddings again with {image_encoder or manifest_spec(manifest, 'image')}",
                    image_encoder, text_encoder)
        problem = None if named else f"The manifest in {root} names no encoders (another tool's file?)."
        if named:
            load_artifacts(catalog)
    except ArtifactError as exc:
        problem = str(exc)
    if problem:
        logger.warning("%s", problem)
        try:
            made = read_manifest(root) or {}
        except ArtifactError:
            made = {}
        try:
            state = read_json(root / SHARDS_DIRNAME / SHARDS_STATE_NAME) or {}
        except (OSError, ValueError):
            state = {}
        image = image_encoder or manifest_spec(made, "image") or _text_or_none(state.get("image_encoder"))
        text = text_encoder or manifest_spec(made, "text") or _text_or_none(state.get("text_encoder"))
        return "Repairing the embeddings", image, text
    return None


def _text_or_none(value) -> str | None:
    return value if isinstance(value, str) and value else None


def manifest_spec(manifest: dict, role: str) -> str | None:
    """The ``role`` (``"image"`` or ``"text"``) encoder spec a manifest names, None when it names none."""
    record = manifest.get(f"{role}_encoder")
    return record.get("spec") if isinstance(record, dict) and isinstance(record.get("spec"), str) else None


def _rerun_hint(catalog: Catalog, image_encoder: str | None = None, text_encoder: str | None = None) -> str:
    command = f"python scripts/precompute.py --catalog {catalog.root}"
    if image_encoder:
        command += f" --image-encoder {image_encoder}"
    if text_encoder:
        command += f" --text-encoder {text_encoder}"
    return command


def read_manifest(artifacts_dir: str | os.PathLike) -> dict | None:
    """The parsed ``manifest.json`` of ``artifacts_dir``, or None when there is none.

    Raises
    ------
    ArtifactError
        When the manifest cannot be read or is not a JSON object (one sentence).
    """
    path = Path(artifacts_dir) / MANIFEST_NAME
    try:
        return read_json(path)
    except ValueError as exc:
        raise ArtifactError(f"The manifest {path} cannot be read ({exc}); run scripts/precompute.py again (the "
                            f"finished shards are kept).") from None


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
        stored = (manifest.get(f"{role}_encoder") or {}).get("spec") if isinstance(
            manifest.get(f"{role}_encoder"), dict) else None
        if wanted is not None and stored != wanted:
            raise ArtifactError(
                f"The artifacts in {root} were computed with {role} encoder '{stored}', not '{wanted}'; run {hint}."
            )

    n = len(catalog)
    files = manifest.get("files") or {}
    if not isinstance(files, dict) or not all(isinstance(manifest.get(f"{role}_encoder"), dict)
                                              and isinstance(manifest[f"{role}_encoder"].get("spec"), str)
                                              for role in ("image", "text")):
        # A JSON object of another tool's under this name: nothing in it can be trusted.
        raise ArtifactError(f"The manifest in {root} is not a precompute manifest (no encoders or files); run {hint}.")

    def array(key: str, required: bool = True, memory_map: bool = False) -> np.ndarray | None:
        entry = files.get(key)
        if entry is None:
            if required:
                raise ArtifactError(f"The manifest in {root} lists no '{key}' array; run {hint}.")
            return None
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), t) for k, t in (("path", str), ("shape", list),
                                                                                          ("dtype", str))):
            raise ArtifactError(f"The manifest in {root} does not describe its '{key}' array; run {hint}.")
        path = root / entry["path"]
        try:
            values = load_array(path, mmap_mode="r" if (memory_map and mmap) else None)
        except OSError as exc:
            raise ArtifactError(f"The artifact file {path} is missing ({exc.strerror or exc}); run {hint}.") from None
        except ValueError as exc:
            raise ArtifactError(f"The artifact file {path} is damaged ({exc}); run {hint}.") from None
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
    listed = manifest.get("unavailable_items") or []
    ids = catalog.items["item_id"]
    if not isinstance(listed, list) or not all(
            isinstance(r, dict) and isinstance(r.get("row"), int) and 0 <= r["row"] < n and ids.iat[r["row"]] == r.get(
                "item_id") and isinstance(r.get("reason"), str) for r in listed):
        raise ArtifactError(f"The manifest in {root} lists unavailable items that are not this catalog's; run {hint}.")
    for key in ("image", "text_title", "text_description", "map2d"):
        row = first_non_finite_row(arrays[key])
        if row is not None:
            item = catalog.items["item_id"].iat[row] if row < len(catalog) else row
            raise ArtifactError(f"The artifact {FILES[key]} in {root} holds NaN or infinite values (item {item}); "
                                f"run {hint} --force.")
    return Artifacts(root=root, manifest=manifest, **arrays)


def first_non_finite_row(values: np.ndarray, chunk: int = 65_536) -> int | None:
    """The first row of a 2-D array holding a NaN or an infinity, or None; read ``chunk`` rows at a time, so a
    memory-mapped array is checked without loading it whole."""
    for start in range(0, len(values), chunk):
        bad = ~np.isfinite(np.asarray(values[start:start + chunk])).reshape(min(chunk, len(values) - start), -1).all(axis=1)
        if bad.any():
            return start + int(np.flatnonzero(bad)[0])
    return None


