"""The photo step every ingest adapter shares: find an item's photo, decode it with the upload guards, store it in the
catalog as a JPEG, and report the ones that cannot be used."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from recsys.data import IngestReport
from recsys.imageio import ImageInputError, load_upload

#: Photo file suffixes the adapters look for, in order of preference.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
#: Longest side (px) of a stored catalog photo: encoders work at 224 px and pages show thumbnails.
STORED_SIDE = 512


def find_photo(folder: Path | None, stem: str) -> Path | None:
    """``folder/<stem><suffix>`` for the first of :data:`IMAGE_SUFFIXES` that exists, else None."""
    if folder is None:
        return None
    for suffix in IMAGE_SUFFIXES:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    """``image`` encoded as a JPEG file."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def store_photo(writer, path: Path, item_id: str, report: IngestReport, key: str | None = None) -> Image.Image | None:
    """Decode ``path`` (:func:`recsys.imageio.load_upload`, at most :data:`STORED_SIDE` px) and store it as
    ``images/<item_id>.jpg`` through the :class:`recsys.catalog.CatalogWriter` ``writer``; returns the decoded RGB
    image, or None after adding ``(key or item_id, reason)`` to ``report.skipped`` when it cannot be used."""
    try:
        image = load_upload(path.read_bytes(), max_side=STORED_SIDE, name=path.name)
    except (ImageInputError, OSError) as exc:
        report.skipped.append((key or item_id, str(exc)))
        return None
    writer.save_image(f"images/{item_id}.jpg", jpeg_bytes(image))
    return image
