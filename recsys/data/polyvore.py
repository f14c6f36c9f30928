"""Polyvore Outfits (Vasileva et al., ECCV 2018) -> a catalog with outfits and the dataset's own questions.

Reads the files of the released dataset, in either layout::

    SRC/                                   or   SRC/ (one split folder, e.g. nondisjoint/, with the rest beside it)
      polyvore_item_metadata.json               item_id -> {title, url_name, description, category_id, semantic_category}
      categories.csv                            category_id, fine category, broad category (no header)
      images/<item_id>.jpg
      nondisjoint/ (or disjoint/)
        train.json, valid.json, test.json      [{"set_id", "items": [{"item_id", "index"}]}]
        compatibility_<split>.txt              "label setid_index setid_index ..." (1 compatible, 0 not)
        fill_in_blank_<split>.json             [{"question": [setid_index...], "answers": [4 x setid_index], "blank_position"}]
        *category*.json                        item_id -> category_id (used when the metadata lacks an item)

Items without a known category or without a readable image are reported and skipped, not fatal; outfits
keep the items that remain (an outfit left with fewer than two is dropped), and a question naming a skipped
item is dropped. The catalog gets ``outfits.jsonl`` (with each outfit's ``split``) and
``polyvore/compatibility_<split>.jsonl`` / ``polyvore/fitb_<split>.jsonl`` in item ids, which
:mod:`recsys.tasks.compat.protocol` evaluates on.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pandas as pd

from recsys.catalog import Catalog, CatalogError, CatalogWriter
from recsys.data import IngestReport
from recsys.data.photos import store_photo
from recsys.progress import ProgressCallback

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
SPLIT_FOLDERS = ("nondisjoint", "disjoint")
#: Polyvore's broad ("semantic") categories -> the studio's slots.
BROAD_TO_SLOT = {
    "tops": "top", "bottoms": "bottom", "all-body": "onepiece", "outerwear": "outer", "shoes": "shoes",
    "bags": "accessory", "accessories": "accessory", "jewellery": "accessory", "sunglasses": "accessory",
    "hats": "accessory", "scarves": "accessory",
}
#: How many skipped items ``catalog.json`` lists by name (the full dataset misses thousands in samples).
LISTED_SKIPS = 200


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogError(f"{path.name} in {path.parent} cannot be read as JSON ({exc}).") from None


def read_categories(path: Path) -> dict[str, tuple[str, str]]:
    """``category_id -> (fine name, broad name)`` from ``categories.csv`` (no header; fields may carry spaces)."""
    table = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle):
            if len(row) < 2 or not row[0].strip():
                continue
            fine = row[1].strip()
            broad = row[2].strip().lower() if len(row) > 2 else ""
            table[row[0].strip()] = (fine, broad)
    return table


def _find(src: Path, name: str) -> Path | None:
    """``name`` in ``src`` or its parent (a split folder sits next to the shared files)."""
    for folder in (src, src.parent):
        if (folder / name).exists():
            return folder / name
    return None


def _split_folder(src: Path) -> Path:
    if any((src / f"{s}.json").is_file() for s in SPLITS):
        return src
    for name in SPLIT_FOLDERS:
        if any((src / name / f"{s}.json").is_file() for s in SPLITS):
            return src / name
    raise CatalogError(
        f"The folder {src} holds no Polyvore outfit files (train.json, valid.json or test.json, "
        f"directly or under {' or '.join(SPLIT_FOLDERS)}/)."
    )


def parse_compatibility(path: Path) -> list[tuple[int, list[str]]]:
    """``[(label, [setid_index, ...]), ...]`` from a ``compatibility_<split>.txt`` (label 1 compatible, 0 not).

    Raises
    ------
    CatalogError
        When a non-empty line does not start with a 0/1 label.
    OSError
        When the file cannot be read.
    """
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if fields[0] not in ("0", "1"):
            raise CatalogError(f"{path.name} line {number} does not start with a 0/1 label.")
        questions.append((int(fields[0]), fields[1:]))
    return questions


def parse_fitb(path: Path) -> list[dict]:
    """FITB questions with the answer's position: ``{"question", "candidates", "answer", "blank_position"}``.

    The correct candidate is the one from the question's own outfit (the dataset's convention).
    """
    records = []
    for entry in _read_json(path):
        question, answers = entry.get("question", []), entry.get("answers", [])
        if not question or not answers:
            continue
        outfit = question[0].split("_")[0]
        correct = [k for k, a in enumerate(answers) if a.split("_")[0] == outfit]
        records.append({"question": question, "candidates": answers, "answer": correct[0] if correct else 0,
                        "blank_position": entry.get("blank_position")})
    return records


def ingest_polyvore(src, out, overwrite: bool = False, progress: ProgressCallback | None = None,
                    name: str | None = None) -> tuple[Catalog, IngestReport]:
    """Turn a Polyvore Outfits folder into a catalog folder at ``out`` (Vasileva et al., ECCV 2018; see the module
    docstring). Photos are stored as JPEG, at most 512 pixels on the longer side.

    Returns
    -------
    (Catalog, IngestReport)
        The report lists every skipped item with the reason.

    Raises
    ------
    CatalogError
        When ``src`` does not exist, holds no outfit files, lacks ``categories.csv``, a JSON file cannot be read,
        a compatibility file is malformed, no item can be ingested, ``out`` exists without ``overwrite``, or the
        written catalog does not validate.
    """
    src = Path(src).expanduser()
    if not src.is_dir():
        raise CatalogError(f"The source folder {src} does not exist.")
    split_dir = _split_folder(src)
    categories_path = _find(split_dir, "categories.csv")
    if categories_path is None:
        raise CatalogError(f"categories.csv is missing from {split_dir} and its parent; it names Polyvore's categories.")
    categories = read_categories(categories_path)
    metadata_path = _find(split_dir, "polyvore_item_metadata.json")
    metadata = _read_json(metadata_path) if metadata_path else {}
    category_of: dict[str, str] = {}
    for path in sorted(split_dir.glob("*category*.json")):
        category_of.update({str(k): str(v) for k, v in _read_json(path).items()})
    for item_id, record in metadata.items():
        if isinstance(record, dict) and record.get("category_id") is not None:
            category_of[str(item_id)] = str(record["category_id"])
    images_dir = _find(split_dir, "images")

    outfits = []
    for split in SPLITS:
        path = split_dir / f"{split}.json"
        if path.is_file():
            for entry in _read_json(path):
                members = sorted(entry.get("items", []), key=lambda i: int(i.get("index", 0)))
                outfits.append({"outfit_id": str(entry["set_id"]), "split": split,
                                "members": [(int(i["index"]), str(i["item_id"])) for i in members]})
    by_position = {f"{o['outfit_id']}_{index}": item for o in outfits for index, item in o["members"]}
    wanted = sorted({item for o in outfits for _, item in o["members"]}, key=lambda i: (len(i), i))

    report = IngestReport()
    rows = []
    with CatalogWriter(out, overwrite=overwrite) as writer:
        for k, item_id in enumerate(wanted):
            if progress and k % 50 == 0:
                progress(0.9 * k / max(len(wanted), 1), f"Reading items ({k}/{len(wanted)})")
            category_id = category_of.get(item_id)
            if category_id is None or category_id not in categories:
                report.skipped.append((item_id, "no category in the metadata or the category files"))
                continue
            fine, broad = categories[category_id]
            slot = BROAD_TO_SLOT.get(broad)
            if slot is None:
                report.skipped.append((item_id, f"category {category_id} ({fine}) has no known broad category"))
                continue
            image_path = images_dir / f"{item_id}.jpg" if images_dir else None
            if image_path is None or not image_path.is_file():
                report.skipped.append((item_id, "image missing"))
                continue
            if store_photo(writer, image_path, item_id, report) is None:
                continue
            relative = f"images/{item_id}.jpg"
            record = metadata.get(item_id) if isinstance(metadata.get(item_id), dict) else {}
            title = str(record.get("title") or record.get("url_name") or f"{fine} {item_id}").strip()
            description = str(record.get("description") or f"A {fine} ({broad}) from a Polyvore outfit.").strip()
            rows.append({"item_id": item_id, "category": fine.lower(), "slot": slot, "title": title,
                         "description": description, "image_path": relative, "polyvore_category_id": category_id})
        if not rows:
            reasons = pd.Series([r for _, r in report.skipped]).value_counts()
            raise CatalogError(
                f"None of the {len(wanted)} items in {src} could be ingested (most common reason: {reasons.index[0]})."
            )
        kept = {r["item_id"] for r in rows}
        catalog_outfits, dropped = [], 0
        for outfit in outfits:
            items = [item for _, item in outfit["members"] if item in kept]
            if len(items) >= 2:
                catalog_outfits.append({"outfit_id": outfit["outfit_id"], "item_ids": items, "split": outfit["split"]})
            else:
                dropped += 1

        def ids(positions: list[str]) -> list[str] | None:
            found = [by_position.get(p) for p in positions]
            return found if all(f in kept for f in found) else None

        question_counts = {}
        (writer.path / "polyvore").mkdir(exist_ok=True)
        for split in SPLITS:
            compat_path = split_dir / f"compatibility_{split}.txt"
            if compat_path.is_file():
                parsed = parse_compatibility(compat_path)
                records = [{"label": label, "item_ids": found} for label, positions in parsed
                           if (found := ids(positions)) is not None]
                writer.write_jsonl(f"polyvore/compatibility_{split}.jsonl", records)
                question_counts[f"compatibility_{split}"] = {"read": len(parsed), "kept": len(records)}
            fitb_path = split_dir / f"fill_in_blank_{split}.json"
            if fitb_path.is_file():
                parsed = parse_fitb(fitb_path)
                records = []
                for q in parsed:
                    question, candidates = ids(q["question"]), ids(q["candidates"])
                    if question is not None and candidates is not None:
                        records.append({"question": question, "candidates": candidates, "answer": q["answer"]})
                writer.write_jsonl(f"polyvore/fitb_{split}.jsonl", records)
                question_counts[f"fitb_{split}"] = {"read": len(parsed), "kept": len(records)}
        report.items = len(rows)
        reasons = pd.Series([r for _, r in report.skipped], dtype=object).value_counts().to_dict()
        meta = {"name": name or f"polyvore-{split_dir.name}", "source": "polyvore", "source_path": str(src.resolve()),
                "skipped_count": len(report.skipped), "skipped_reasons": {str(k): int(v) for k, v in reasons.items()},
                "skipped": [{"item_id": i, "reason": r} for i, r in report.skipped[:LISTED_SKIPS]],
                "outfits_dropped": dropped, "questions": question_counts}
        catalog = writer.finish(items=pd.DataFrame(rows), meta=meta, outfits=catalog_outfits)
    if progress:
        progress(1.0, "Done")
    logger.info("polyvore: %s", report.summary())
    return catalog, report
