"""A folder of class sub-folders of product photos -> a catalog ("bring your own folder").

The layout is the one of ``clothing-dataset-small``: ``SRC/<class>/<photo>.jpg``; the class folder names the
category. Every photo is decoded with the same guards as an upload (:func:`recsys.imageio.load_upload`):
unreadable files are reported and skipped, not fatal. Photos are stored upright as JPEG, at most 512 px.

A folder names no colours, so the ``color`` column is filled by the studio's photo understanding step
(:class:`recsys.colour.ColourNamer` over :data:`recsys.colour.BASIC_COLOURS`) and marked as predicted in the catalog's
metadata (``predicted_columns``); the Similar items page then ranks a photo's colour first as it does a labelled
catalog's. No pattern is predicted (the studio has no pattern reader for photos), so the column is left out.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable

import pandas as pd

from recsys.catalog import Catalog, CatalogError, CatalogWriter
from recsys.colour import BASIC_COLOURS, ColourNamer
from recsys.data import IngestReport
from recsys.imageio import ImageInputError, load_upload

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
STORED_SIDE = 512

#: Words in a class name that tell its slot; the first match wins, checked in this order.
_SLOT_WORDS = (
    ("onepiece", ("dress", "jumpsuit", "romper", "onepiece", "gown")),
    ("outer", ("outwear", "outerwear", "coat", "jacket", "blazer", "parka", "cardigan", "vest")),
    ("shoes", ("shoe", "sneaker", "boot", "heel", "sandal", "loafer", "footwear", "slipper")),
    ("bottom", ("pant", "trouser", "jean", "short", "skirt", "legging", "bottom")),
    ("accessory", ("hat", "cap", "bag", "belt", "scarf", "glove", "jewel", "watch", "sunglass", "accessor")),
    ("top", ("shirt", "tee", "top", "sleeve", "blouse", "sweater", "hoodie", "polo", "tank")),
)


def slot_for(category: str) -> str:
    """The slot a category name most likely belongs to (``top`` when no word gives it away)."""
    name = category.lower()
    for slot, words in _SLOT_WORDS:
        if any(word in name for word in words):
            return slot
    return "top"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "item"


def ingest_folder(src, out, overwrite: bool = False, name: str | None = None,
                  progress: Callable[[float, str], None] | None = None) -> tuple[Catalog, IngestReport]:
    """Turn ``src/<class>/<photo>`` into a catalog folder at ``out``: one item per readable photo, category = class.

    Photos are stored as JPEG, at most 512 pixels on the longer side; unreadable ones are skipped and reported.

    Returns
    -------
    (Catalog, IngestReport)

    Raises
    ------
    CatalogError
        When ``src`` does not exist, holds no class sub-folder with photos, none of its photos can be read, ``out``
        exists without ``overwrite``, or the written catalog does not validate.
    """
    src = Path(src).expanduser()
    if not src.is_dir():
        raise CatalogError(f"The source folder {src} does not exist.")
    classes = sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [(c, f) for c in classes for f in sorted(c.iterdir())
             if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise CatalogError(f"The folder {src} has no class sub-folders with photos ({', '.join(IMAGE_SUFFIXES)}).")
    report = IngestReport()
    rows = []
    colour_namer = ColourNamer().fit_names(BASIC_COLOURS)
    with CatalogWriter(out, overwrite=overwrite) as writer:
        for k, (class_dir, path) in enumerate(files):
            if progress and k % 20 == 0:
                progress(k / len(files), f"Reading photos ({k}/{len(files)})")
            try:
                image = load_upload(path.read_bytes(), max_side=STORED_SIDE, name=path.name)
            except ImageInputError as exc:
                report.skipped.append((f"{class_dir.name}/{path.name}", str(exc)))
                logger.warning("skipped %s: %s", path, exc)
                continue
            category = class_dir.name.lower()
            item_id = f"{_safe_name(category)}-{_safe_name(path.stem)}"
            relative = f"images/{_safe_name(category)}/{_safe_name(path.stem)}.jpg"
            writer.save_image(relative, _jpeg(image))
            label = category.replace("_", " ").replace("-", " ")
            rows.append({"item_id": item_id, "category": category, "slot": slot_for(category),
                         "color": colour_namer.read(image).colour,
                         "title": f"{label.capitalize()} {path.stem[:8]}",
                         "description": f"A photo of a {label} from the folder {class_dir.name}.",
                         "image_path": relative, "source_file": f"{class_dir.name}/{path.name}"})
        if not rows:
            raise CatalogError(f"None of the {len(files)} photos in {src} could be read; {report.skipped[0][1]}")
        report.items = len(rows)
        items = pd.DataFrame(rows)
        meta = {"name": name or src.name, "source": "folder", "source_path": str(src.resolve()),
                "predicted_columns": {"color": "read from each photo by recsys.colour.ColourNamer (basic colours)"},
                "skipped": [{"file": f, "reason": r} for f, r in report.skipped]}
        catalog = writer.finish(items=items, meta=meta)
    if progress:
        progress(1.0, "Done")
    return catalog, report


def _jpeg(image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
