"""Amazon product reviews -> a catalog with interactions (``scripts/ingest.py --format amazon``).

The data the visually-aware recommenders were measured on (VBPR, He & McAuley, AAAI 2016; DVBPR, Kang et al., ICDM
2017; VECF, Chen et al., SIGIR 2019): review JSON lines and product metadata JSON lines, as McAuley's group
publishes them, plus a local folder of product photos (images are never downloaded)::

    SRC/<Category>.json[.gz] | SRC/<Category>_5.json[.gz] | SRC/reviews_<Category>[_5].json[.gz]
        one review per line: reviewerID, asin, overall, unixReviewTime, reviewText, summary
    SRC/meta_<Category>.json[.gz]
        one product per line: asin, title, category (2018: a list) or categories (2014: a list of lists),
        imageURLHighRes / imUrl (not fetched), optional brand and description
    SRC/images/<ASIN>.jpg (or .png, .webp, ...)

Both releases read: the 2018 files are strict JSON, the 2014 files Python-literal dicts (single quotes), read with
:func:`ast.literal_eval`, which evaluates literals only. A product becomes an item when it has metadata and a readable
photo; its category is the most specific entry of its category path. Reviews are deduplicated, reviews of products
that did not become items are dropped, and users with fewer than ``min_interactions`` distinct products are removed,
as the papers do (5 by default); the report counts each.
"""

from __future__ import annotations

import ast
import gzip
import html
import json
import logging
import re
import unicodedata
from pathlib import Path
from typing import Iterator

import pandas as pd

from recsys.catalog import Catalog, CatalogError, CatalogWriter
from recsys.data import IngestReport
from recsys.data.folder import place_class, slot_for, slot_map_from
from recsys.data.photos import find_photo, store_photo
from recsys.progress import ProgressCallback

logger = logging.getLogger(__name__)

#: The papers keep users with at least this many interactions (VBPR and DVBPR: 5).
DEFAULT_MIN_INTERACTIONS = 5
_META = re.compile(r"^meta_(?P<category>.+?)\.json(\.gz)?$")
_REVIEWS = re.compile(r"^(reviews_)?(?P<category>.+?)(?P<core>_5)?\.json(\.gz)?$")
_TAG = re.compile(r"<[^>]+>")


def _text(value) -> str:
    """Display text: HTML entities and tags gone, NFC, whitespace collapsed (titles come HTML-escaped)."""
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    text = _TAG.sub(" ", html.unescape(str(value or "")))
    return " ".join(unicodedata.normalize("NFC", text).split())


def read_records(path: Path, report: IngestReport) -> Iterator[dict]:
    """The dict records of a JSON-lines file, gzipped or not, strict JSON (2018) or Python literals (2014).

    Lines that are neither are skipped and counted in ``report`` (one entry per file).

    Raises
    ------
    CatalogError
        When the file cannot be opened or decompressed.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    bad = 0
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    try:
                        record = ast.literal_eval(line)
                    except (ValueError, SyntaxError, MemoryError, RecursionError):
                        record = None
                if isinstance(record, dict):
                    yield record
                else:
                    bad += 1
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path.name} cannot be read as (gzipped) JSON lines ({exc}).") from None
    if bad:
        report.skipped.append((path.name, f"{bad} line(s) that are neither JSON nor a Python-literal record"))


def find_files(src: Path) -> tuple[list[Path], list[Path], list[str]]:
    """``(review files, metadata files, notes)`` in ``src`` by Amazon's names; when a category has both its full and its
    5-core review file, the full one is read (the 5-core is a subset) and a note says so."""
    meta, reviews = [], {}
    for path in sorted(p for p in src.iterdir() if p.is_file()):
        if _META.match(path.name):
            meta.append(path)
            continue
        match = _REVIEWS.match(path.name)
        if match:
            reviews.setdefault(match["category"], []).append((bool(match["core"]), path))
    chosen, notes = [], []
    for category, paths in sorted(reviews.items()):
        paths.sort(key=lambda entry: (entry[0], entry[1].suffix == ".gz"))
        chosen.append(paths[0][1])
        if len(paths) > 1:
            notes.append(f"{category}: read {paths[0][1].name}, not {', '.join(p.name for _, p in paths[1:])}")
    return chosen, meta, notes


def category_of(record: dict) -> str:
    """The most specific category of a metadata record (2018 ``category`` list, 2014 ``categories`` lists), lower
    case; ``"product"`` when it has none."""
    path = record.get("category")
    if not path and record.get("categories"):
        first = record["categories"][0]
        path = first if isinstance(first, (list, tuple)) else record["categories"]
    if isinstance(path, str):
        path = [path]
    names = [_text(p) for p in (path or []) if _text(p)]
    return names[-1].lower() if names else "product"


def ingest_amazon(src, out, overwrite: bool = False, progress: ProgressCallback | None = None,
                  min_interactions: int = DEFAULT_MIN_INTERACTIONS, images: str | Path | None = None,
                  name: str | None = None, slot_map: dict | str | Path | None = None) -> tuple[Catalog, IngestReport]:
    """Turn Amazon review and metadata files into a catalog at ``out`` (see the module docstring).

    Parameters
    ----------
    src : path
        The folder holding the review and ``meta_`` files under Amazon's names.
    out : path
        The catalog folder to write.
    min_interactions : int
        Users with fewer distinct reviewed products (after the other filters) are removed.
    images : path, optional
        The folder of ``<ASIN>.<ext>`` photos; default ``src/images``.
    slot_map : dict or path, optional
        ``{category: slot}`` (or a JSON file of it) for categories whose name does not say their slot; the others are
        placed from their photos (:func:`recsys.data.folder.place_class`) with a note.

    Returns
    -------
    (Catalog, IngestReport)
        Items with ``asin`` ids, category, slot, title, description, brand and image; interactions with ``user_id``,
        ``item_id``, ``timestamp`` (Unix seconds), ``rating``, ``review`` and ``summary``.

    Raises
    ------
    CatalogError
        When ``src`` has no metadata file, no product has a readable photo, ``out`` exists without ``overwrite``, or
        the written catalog does not validate.
    """
    src = Path(src).expanduser()
    if not src.is_dir():
        raise CatalogError(f"The Amazon folder {src} does not exist.")
    if min_interactions < 1:
        raise ValueError(f"min_interactions must be at least 1, not {min_interactions}.")
    image_dir = Path(images).expanduser() if images else src / "images"
    review_files, meta_files, notes = find_files(src)
    if not meta_files:
        raise CatalogError(f"The folder {src} has no meta_<Category>.json[.gz] file of product metadata.")
    report = IngestReport(notes=notes)
    slots = slot_map_from(slot_map)

    products: dict[str, dict] = {}
    for path in meta_files:
        for record in read_records(path, report):
            asin = _text(record.get("asin"))
            if asin and asin not in products:
                products[asin] = record
    rows, unplaced = [], {}
    with CatalogWriter(out, overwrite=overwrite) as writer:
        for k, (asin, record) in enumerate(products.items()):
            if progress and k % 50 == 0:
                progress(0.8 * k / max(1, len(products)), f"Reading photos ({k}/{len(products)})")
            path = find_photo(image_dir, asin)
            if path is None:
                report.skipped.append((asin, f"no photo {asin}.jpg in {image_dir} (images are never downloaded)"))
                continue
            image = store_photo(writer, path, asin, report)
            if image is None:
                continue
            category = category_of(record)
            slot = slots.get(category) or slot_for(category)
            if slot is None and len(unplaced.setdefault(category, [])) < 16:
                unplaced[category].append(image)
            title = _text(record.get("title")) or f"Amazon product {asin}"
            rows.append({"item_id": asin, "category": category, "slot": slot, "title": title,
                         "description": _text(record.get("description")) or title,
                         "brand": _text(record.get("brand")) or None, "image_path": f"images/{asin}.jpg"})
        if not rows:
            raise CatalogError(f"None of the {len(products)} products has a readable photo in {image_dir}; put them "
                               f"there as <ASIN>.jpg.")
        items = pd.DataFrame(rows)
        for category, examples in unplaced.items():
            items.loc[items["category"] == category, "slot"] = place_class(category, examples, report)
        if progress:
            progress(0.85, "Reading reviews")
        interactions, counts = _interactions(review_files, set(items["item_id"]), min_interactions, report)
        report.items = len(items)
        meta = {"name": name or f"amazon-{src.name}", "source": "amazon", "source_path": str(src.resolve()),
                "min_interactions": int(min_interactions), "review_files": [p.name for p in review_files],
                "filtered": counts}
        catalog = writer.finish(items=items, meta=meta, interactions=interactions)
    if progress:
        progress(1.0, "Done")
    logger.info("Amazon: %s", report.summary())
    return catalog, report


def _interactions(files: list[Path], kept: set, min_interactions: int,
                  report: IngestReport) -> tuple[pd.DataFrame | None, dict]:
    """The review table after deduplication, the kept-product filter and the user filter, and what each removed."""
    rows = []
    for path in files:
        for record in read_records(path, report):
            user, asin, when = record.get("reviewerID"), record.get("asin"), record.get("unixReviewTime")
            if not user or not asin or not isinstance(when, (int, float)):
                continue
            rows.append((_text(user), _text(asin), int(when), float(record.get("overall") or 0.0),
                         _text(record.get("reviewText")), _text(record.get("summary"))))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating", "review", "summary"])
    counts = {"reviews_read": len(frame)}
    frame = frame.drop_duplicates()
    counts["duplicates"] = counts["reviews_read"] - len(frame)
    known = frame["item_id"].isin(kept)
    counts["unknown_products"] = int((~known).sum())
    frame = frame[known]
    distinct = frame.groupby("user_id")["item_id"].transform("nunique")
    counts["users_below_min"] = int(frame.loc[distinct < min_interactions, "user_id"].nunique())
    frame = frame[distinct >= min_interactions].sort_values(["user_id", "timestamp"], kind="stable")
    counts["users"] = int(frame["user_id"].nunique())
    for what, n in (("duplicate reviews", counts["duplicates"]),
                    ("reviews of products without metadata or photo", counts["unknown_products"]),
                    (f"users with fewer than {min_interactions} products", counts["users_below_min"])):
        if n:
            report.notes.append(f"removed {n} {what}")
    if frame.empty:
        report.notes.append("no review is left, so the catalog has no interactions (For you needs them)")
        return None, counts
    return frame.reset_index(drop=True), counts
