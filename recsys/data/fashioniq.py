"""FashionIQ -> a catalog with relative-caption triples (``scripts/ingest.py --format fashioniq``).

The layout of the dataset's release::

    SRC/captions/cap.<category>.<split>.json        [{"target": ASIN, "candidate": ASIN, "captions": [str, str]}, ...]
    SRC/image_splits/split.<category>.<split>.json  [ASIN, ...]   the images of each category and split
    SRC/images/<ASIN>.jpg|png|...                   the product photos (downloaded separately; often incomplete)

Categories are ``dress``, ``shirt`` and ``toptee``; splits ``train``, ``val`` and ``test`` (the test
captions are not public, so a split without a file is simply absent). Every image is decoded with the
upload guards (:func:`recsys.imageio.load_upload`); a missing or unreadable photo is reported and its item
skipped, and so is every triple that names a skipped item. Items keep their split in an extra ``split``
column, which the composed-retrieval protocol uses as the gallery of the split.

Reference
---------
Wu et al., "Fashion IQ: A New Dataset Towards Retrieving Images by Natural Language Feedback", CVPR 2021.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable

import pandas as pd

from recsys.catalog import Catalog, CatalogError, CatalogWriter
from recsys.data import IngestReport
from recsys.data.photos import find_photo, store_photo
from recsys.utils import read_json

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SLOTS = {"dress": "onepiece", "shirt": "top", "toptee": "top"}
LABELS = {"dress": "dress", "shirt": "shirt", "toptee": "top or tee"}
_FILE = re.compile(r"^(cap|split)\.(?P<category>[A-Za-z0-9_-]+)\.(?P<split>train|val|test)\.json$")


def _read_json_list(path: Path) -> list:
    try:
        return read_json(path, list) or []
    except ValueError as exc:
        raise CatalogError(f"{path.name} cannot be read as a JSON list ({exc}).") from None


def _listed(folder: Path, kind: str) -> list[tuple[str, str, Path]]:
    """``(category, split, path)`` of the ``cap``/``split`` files in ``folder``."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        match = _FILE.match(path.name)
        if match and path.name.startswith(kind + "."):
            found.append((match["category"], match["split"], path))
    return found


def ingest_fashioniq(src, out, overwrite: bool = False, progress: Callable[[float, str], None] | None = None,
                     images: str | Path | None = None, name: str | None = None) -> tuple[Catalog, IngestReport]:
    """Turn a FashionIQ folder into a catalog at ``out`` (Wu et al., CVPR 2021; see the module docstring).

    Photos are stored as JPEG, at most 512 pixels on the longer side.

    Parameters
    ----------
    src : path
        The folder holding ``captions/`` and ``image_splits/``.
    out : path
        The catalog folder to write.
    images : path, optional
        The folder of ``<ASIN>.<ext>`` photos; default ``src/images``.

    Returns
    -------
    (Catalog, IngestReport)
        The report lists every skipped image and triple with the reason.

    Raises
    ------
    CatalogError
        When ``src`` does not exist or has no caption or split files, a file is not a JSON list, a caption entry lacks
        ``target``, ``candidate`` or ``captions``, no photo is found, ``out`` exists without ``overwrite``, or the
        written catalog does not validate.
    """
    src = Path(src).expanduser()
    if not src.is_dir():
        raise CatalogError(f"The FashionIQ folder {src} does not exist.")
    image_dir = Path(images).expanduser() if images else src / "images"
    split_files = _listed(src / "image_splits", "split")
    caption_files = _listed(src / "captions", "cap")
    if not split_files and not caption_files:
        raise CatalogError(f"The folder {src} has no captions/cap.<category>.<split>.json or image_splits/split.<category>.<split>.json files.")

    # ASIN -> (category, split): the image splits first, then anything only the captions name.
    wanted: dict[str, tuple[str, str]] = {}
    for category, split, path in split_files:
        for asin in _read_json_list(path):
            wanted.setdefault(str(asin), (category, split))
    raw_triples = []
    for category, split, path in caption_files:
        for number, record in enumerate(_read_json_list(path)):
            if not isinstance(record, dict) or not {"target", "candidate", "captions"} <= set(record):
                raise CatalogError(f"{path.name} entry {number} lacks target, candidate or captions.")
            raw_triples.append((category, split, record))
            for asin in (record["candidate"], record["target"]):
                wanted.setdefault(str(asin), (category, split))

    report = IngestReport()
    rows = []
    with CatalogWriter(out, overwrite=overwrite) as writer:
        for k, (asin, (category, split)) in enumerate(wanted.items()):
            if progress and k % 50 == 0:
                progress(0.9 * k / max(1, len(wanted)), f"Reading photos ({k}/{len(wanted)})")
            path = find_photo(image_dir, asin)
            if path is None:
                report.skipped.append((asin, f"no image file {asin}.jpg/.png in {image_dir}"))
                continue
            if store_photo(writer, path, asin, report) is None:
                continue
            relative = f"images/{asin}.jpg"
            label = LABELS.get(category, category)
            rows.append({"item_id": asin, "category": category, "slot": SLOTS.get(category, "top"),
                         "title": f"{label.capitalize()} {asin}",
                         "description": f"A {label} from FashionIQ (Amazon product {asin}).",
                         "image_path": relative, "split": split})
        missing_images = len(report.skipped)
        if not rows:
            raise CatalogError(f"None of the {len(wanted)} FashionIQ images was found in {image_dir}; download the "
                               f"photos there as <ASIN>.jpg (or pass another images folder).")
        kept = {r["item_id"] for r in rows}
        captions = []
        for category, split, record in raw_triples:
            ref, tgt = str(record["candidate"]), str(record["target"])
            if ref not in kept or tgt not in kept:
                report.skipped.append((f"{category}.{split} {ref}->{tgt}", "a triple whose image is missing"))
                continue
            captions.append({"reference_id": ref, "target_id": tgt, "split": split, "category": category,
                             "captions": [str(c) for c in record["captions"]]})
        report.items = len(rows)
        meta = {"name": name or f"fashioniq-{src.name}", "source": "fashioniq", "source_path": str(src.resolve()),
                "missing_images": missing_images, "skipped_triples": len(report.skipped) - missing_images}
        catalog = writer.finish(items=pd.DataFrame(rows), meta=meta, captions=captions)
    if progress:
        progress(1.0, "Done")
    logger.info("FashionIQ: %s", report.summary())
    return catalog, report
