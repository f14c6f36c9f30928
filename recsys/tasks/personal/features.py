"""Side inputs of the personal models that are not precomputed artifacts, each cached in the catalog's folder.

* review embeddings (VECF's review supervision): MiniLM sentence embeddings of the reviews' texts, cached per
  distinct text under ``artifacts/reviews_minilm.*``;
* the catalog's images downscaled for the autoencoder (``artifacts/images64.npy``);
* the conv autoencoder trained on those images (DVBPR's autoencoder variant): the registered model
  ``personal/autoencoder`` the model store trains and saves; its codes;
* one-hot codes of the labelled attributes (the ``vbpr-attributes`` ceiling).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.catalog import ATTRIBUTE_COLUMNS, Catalog
from recsys.models.registry import get_model
from recsys.utils import load_array, read_json

logger = logging.getLogger(__name__)

REVIEW_CACHE = "reviews_minilm"
IMAGE_CACHE = "images{size}.npy"
AE_IMAGE_SIZE = 64


def review_embeddings(catalog: Catalog, texts: list[str], encoder_spec: str = "minilm") -> np.ndarray:
    """MiniLM sentence embeddings ``(len(texts), 384)`` float32 of ``texts``, cached per distinct text under the
    catalog's ``artifacts/`` (only texts not yet cached are encoded).

    Raises
    ------
    recsys.encoders.EncoderError
        When the text encoder cannot be built (one sentence).
    OSError
        When the cache cannot be written.
    """
    folder = Path(catalog.root) / "artifacts"
    vectors_path, texts_path = folder / f"{REVIEW_CACHE}.npy", folder / f"{REVIEW_CACHE}.json"
    cached: dict[str, int] = {}
    vectors = np.zeros((0, 0), dtype=np.float32)
    if vectors_path.is_file() and texts_path.is_file():
        try:
            stored = read_json(texts_path)
            vectors = load_array(vectors_path)
            if (stored.get("encoder") == encoder_spec and isinstance(stored.get("texts"), list)
                    and vectors.ndim == 2 and len(stored["texts"]) == len(vectors)):
                cached = {t: k for k, t in enumerate(stored["texts"])}
        except (OSError, ValueError) as exc:  # a damaged cache is encoded again
            logger.info("the review cache in %s is not used: %s", folder, exc)
            cached = {}
    missing = sorted(set(texts) - set(cached))
    if missing:
        from recsys.encoders import create_encoder

        encoder = create_encoder(encoder_spec)  # on the RECSYS_DEVICE device
        new = encoder.encode_text(missing)
        all_texts = list(cached) + missing
        vectors = np.concatenate([vectors, new]) if cached else new
        cached = {t: k for k, t in enumerate(all_texts)}
        folder.mkdir(parents=True, exist_ok=True)
        np.save(vectors_path, vectors.astype(np.float32), allow_pickle=False)
        texts_path.write_text(json.dumps({"encoder": encoder_spec, "texts": all_texts}), encoding="utf-8")
        logger.info("encoded %d review texts with %s", len(missing), encoder_spec)
    if not texts:
        return np.zeros((0, vectors.shape[-1] if vectors.ndim == 2 else 384), np.float32)
    return vectors[[cached[t] for t in texts]]


def downscale_images(catalog: Catalog, size: int = AE_IMAGE_SIZE) -> np.ndarray:
    """The catalog's images as ``(n_items, size, size, 3)`` uint8, letterboxed on white so nothing is cropped.

    An image that cannot be read (an item the precompute marked unavailable) is a blank white square, logged.
    """
    from PIL import Image, ImageOps

    from recsys.precompute_engine import IMAGE_ERRORS

    out = np.full((len(catalog), size, size, 3), 255, dtype=np.uint8)
    for row, item_id in enumerate(catalog.items["item_id"]):
        try:
            image = catalog.load_image(item_id)
        except IMAGE_ERRORS as exc:
            logger.warning("item %s: its image cannot be read (%s); the autoencoder sees a blank square", item_id, exc)
            continue
        image = ImageOps.pad(image, (size, size), method=Image.Resampling.BILINEAR, color=(255, 255, 255))
        out[row] = np.asarray(image, dtype=np.uint8)
    return out


def small_images(catalog: Catalog, size: int = AE_IMAGE_SIZE) -> np.ndarray:
    """:func:`downscale_images`, cached as ``artifacts/images<size>.npy`` (re-made when the item count changes).

    Raises
    ------
    OSError
        When the cache cannot be written.
    """
    path = Path(catalog.root) / "artifacts" / IMAGE_CACHE.format(size=size)
    if path.is_file():
        try:
            images = load_array(path)
        except (OSError, ValueError) as exc:  # a damaged cache is made again
            logger.info("the image cache %s is not used: %s", path.name, exc)
            images = None
        if images is not None and images.shape == (len(catalog), size, size, 3) and images.dtype == np.uint8:
            return images
    images = downscale_images(catalog, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, images, allow_pickle=False)
    return images


# ---------------------------------------------------------------------- the conv autoencoder
def fit_autoencoder(store, name: str = "autoencoder", *, quick: bool = False, progress=None):
    """What the model store calls for the ``autoencoder`` spec: the conv autoencoder trained on the store's
    catalog's downscaled images (:func:`small_images`), seeded with the store's seed; 12 epochs (3 when ``quick``).
    About 3 s on the tiny world's 248 images on two cores (12 epochs).
    """
    images = small_images(store.catalog)
    autoencoder = get_model("personal", name, quick=quick, random_state=store.seed).fit(images)
    logger.info("trained the personal autoencoder of %s", store.catalog.name)
    return autoencoder


def autoencoder_codes(store, quick: bool = False) -> np.ndarray:
    """Codes ``(n_items, 128)`` float32 of the store's catalog's images from its autoencoder: the one the store has
    saved when it was trained on the schedule asked (quick or full), else trained and saved by the store now.

    Raises
    ------
    OSError
        When the model cannot be written.
    """
    autoencoder = store.get("personal", "autoencoder")
    if autoencoder is None or store.schedule(autoencoder) != ("quick" if quick else "full"):
        autoencoder = store.fit("personal", "autoencoder", quick=quick)
    return autoencoder.transform(small_images(store.catalog))


def attribute_features(catalog: Catalog) -> np.ndarray | None:
    """One-hot codes ``(n_items, n_values)`` float32 of the catalog's labelled attributes (colour, pattern, ...),
    or None when it has none.

    On the built-in world users' true tastes are linear in exactly these codes, so VBPR fitted on them is the
    ceiling of what any image encoder's features can give VBPR there (the ``vbpr-attributes`` report row).
    """
    columns = [c for c in ATTRIBUTE_COLUMNS if c in catalog.items.columns and catalog.items[c].notna().any()]
    if not columns:
        return None
    table = catalog.items[columns].astype("string")
    if "detail_place" in catalog.items.columns:
        # Where a detail sits is part of what a taste can be over; it is one attribute with the detail, so a linear
        # model can like a pocket near the hem and not one on the chest.
        from recsys.data.truth import detail_at

        table["detail_at"] = detail_at(catalog.items).replace("", pd.NA).astype("string")
    codes = pd.get_dummies(table, dummy_na=False)
    return codes.to_numpy(dtype=np.float32)
