"""FashionIQ -> a catalog with relative-caption triples (``scripts/ingest.py --format fashioniq``).

The layout of the dataset's release::

    SRC/captions/cap.<category>.<split>.json        [{"target": ASIN, "candidate": ASIN, "captions": [str, str]}, ...]
    SRC/image_splits/split.<category>.<split>.json  [ASIN, ...]   the images of each category and split
    SRC/images/<ASIN>.jpg|png|...                   the product photos (downloaded separately; often incomplete)

Categories are ``dress``, ``shirt`` and ``toptee``; splits ``train``, ``val`` and ``test``. The release's test
captions have no ``target`` (the answers are withheld): a triple without a target cannot be evaluated, so it is left
out and counted per file, as is an entry that is no triple at all, and the rest is ingested; a split without a
file is simply absent. Every image is decoded with the
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

import pandas as pd

from recsys.catalog import Catalog, CatalogError, CatalogWriter
from recsys.data import IngestReport
from recsys.data.photos import find_photo, store_photo
from recsys.progress import ProgressCallback
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


def _triples(records: list) -> tuple[list[dict], int, list[int]]:
    """``(triples, withheld, malformed)`` of a caption file's entries: the complete triples (captions as a list of
    strings), the count of entries without a ``target`` (a split whose answers are withheld), and the positions of
    entries that are no triple (not an object, or without ``candidate`` or captions)."""
    kept, withheld, malformed = [], 0, []
    for number, record in enumerate(records):
        if not isinstance(record, dict) or not record.get("candidate") or record.get("captions") in (None, "", []):
            malformed.append(number)
        elif not record.get("target"):
            withheld += 1
        else:
            captions = record["captions"]
            captions = [captions] if isinstance(captions, str) else captions
            if not isinstance(captions, list):
                malformed.append(number)
                continue
            kept.append({**record, "captions": [str(c) for c in captions]})
    return kept, withheld, malformed


def _left_out_note(name: str, kept: int, withheld: int, malformed: list[int]) -> str:
    parts = []
    if withheld:
        parts.append(f"{withheld} triple(s) without a target (their answers are withheld, as in FashionIQ's public "
                     f"test split)")
    if malformed:
        parts.append(f"{len(malformed)} entr{'y' if len(malformed) == 1 else 'ies'} that are no triple (e.g. entry "
                     f"{malformed[0]}: no candidate or captions)")
    return f"{name}: left out {' and '.join(parts)}; {kept} triple(s) of it kept"


def ingest_fashioniq(src, out, overwrite: bool = False, progress: ProgressCallback | None = None,
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
        When ``src`` does not exist or has no caption or split files, a file is not a JSON list, no photo is found,
        ``out`` exists without ``overwrite``, or the written catalog does not validate. Caption entries without a
        target, and entries that are no triple, are left out and counted in the report's notes, not refused.
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
    report = IngestReport()
    raw_triples, left_out = [], {}
    for category, split, path in caption_files:
        kept, withheld, malformed = _triples(_read_json_list(path))
        raw_triples += [(category, split, record) for record in kept]
        for record in kept:
            for asin in (record["candidate"], record["target"]):
                wanted.setdefault(str(asin), (category, split))
        if withheld or malformed:
            left_out[path.name] = withheld + len(malformed)
            report.notes.append(_left_out_note(path.name, len(kept), withheld, malformed))
    if not wanted:
        raise CatalogError(f"The FashionIQ folder {src} lists no image: it has no image_splits and no caption "
                           f"file holds a triple with a target.")
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
                             "captions": record["captions"]})
        report.items = len(rows)
        meta = {"name": name or f"fashioniq-{src.name}", "source": "fashioniq", "source_path": str(src.resolve()),
                "missing_images": missing_images, "skipped_triples": len(report.skipped) - missing_images,
                "left_out_triples": left_out}
        catalog = writer.finish(items=pd.DataFrame(rows), meta=meta, captions=captions)
    if progress:
        progress(1.0, "Done")
    logger.info("FashionIQ: %s", report.summary())
    return catalog, report
