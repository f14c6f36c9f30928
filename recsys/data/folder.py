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

import functools
import logging
import re
import unicodedata
from pathlib import Path
from typing import Callable

import pandas as pd

from recsys.catalog import SLOTS, Catalog, CatalogError, CatalogWriter
from recsys.colour import BASIC_COLOURS, ColourNamer, load_photo_prototypes
from recsys.config import DEFAULT_TEXT_ENCODER
from recsys.data import IngestReport
from recsys.data.photos import IMAGE_SUFFIXES, store_photo
from recsys.tables import TableError, decode_text
from recsys.utils import l2_normalize

logger = logging.getLogger(__name__)

#: Words in a class name that tell its slot; the first match wins, checked in this order.
_SLOT_WORDS = (
    ("onepiece", ("dress", "jumpsuit", "romper", "onepiece", "gown")),
    ("outer", ("outwear", "outerwear", "coat", "jacket", "blazer", "parka", "cardigan", "vest")),
    ("shoes", ("shoe", "sneaker", "boot", "heel", "sandal", "loafer", "footwear", "slipper")),
    ("bottom", ("pant", "trouser", "jean", "short", "skirt", "legging", "bottom")),
    ("accessory", ("hat", "cap", "bag", "belt", "scarf", "glove", "jewel", "watch", "sunglass", "accessor")),
    ("top", ("shirt", "tee", "top", "sleeve", "blouse", "sweater", "hoodie", "polo", "tank")),
)


def slot_for(category: str) -> str | None:
    """The slot an English category name gives away (None when no word does: the caller must place it)."""
    name = category.lower()
    for slot, words in _SLOT_WORDS:
        if any(word in name for word in words):
            return slot
    return None


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "item"


def item_id_for(category: str, relative: str, taken: set) -> str:
    """A stable, unique item id for the photo at ``relative`` (``<class>/<file name>``), from that path alone:
    ``<class>-<file name>`` when both are plain ASCII names, else that name made safe plus 8 hex digits of the path's
    SHA-1 -- so Korean names, ``IMG_0001.jpg`` beside ``IMG_0001.png`` and ``shirt 1.jpg`` beside ``shirt_1.jpg``
    never collapse into one id."""
    import hashlib

    name = Path(relative).name
    readable = f"{_safe_name(category)}-{_safe_name(name)}"
    if readable == f"{category}-{name}" and readable not in taken:
        return readable
    return f"{readable}-{hashlib.sha1(relative.encode('utf-8')).hexdigest()[:8]}"


def read_slot_map(path) -> dict[str, str]:
    """``{category: slot}`` from a JSON file (category names as the class folders spell them).

    Raises
    ------
    CatalogError
        When the file cannot be read or names a slot the studio does not have.
    """
    import json

    try:
        mapping = json.loads(decode_text(Path(path).read_bytes(), path))  # an editor's UTF-16 or BOM is still JSON
    except TableError as exc:
        raise CatalogError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise CatalogError(f"The slot map {path} cannot be read as JSON ({exc}).") from None
    if not isinstance(mapping, dict):
        raise CatalogError(f"The slot map {path} must be an object of category -> slot.")
    bad = sorted({str(v) for v in mapping.values()} - set(SLOTS))
    if bad:
        raise CatalogError(f"The slot map {path} names unknown slot(s) {', '.join(bad)}; slots are {', '.join(SLOTS)}.")
    return {unicodedata.normalize("NFC", str(k)).lower(): str(v) for k, v in mapping.items()}


def slot_map_from(slot_map: dict | str | Path | None) -> dict[str, str]:
    """``{category: slot}`` with NFC, lower-case category names, from a mapping, a JSON file (:func:`read_slot_map`)
    or None (empty)."""
    if isinstance(slot_map, (str, Path)):
        return read_slot_map(slot_map)
    return {unicodedata.normalize("NFC", str(k)).lower(): v for k, v in (slot_map or {}).items()}


def ingest_folder(src, out, overwrite: bool = False, name: str | None = None,
                  progress: Callable[[float, str], None] | None = None,
                  slot_map: dict | str | Path | None = None) -> tuple[Catalog, IngestReport]:
    """Turn ``src/<class>/<photo>`` into a catalog folder at ``out``: one item per readable photo, category = class.

    Photos are stored as JPEG, at most 512 pixels on the longer side; unreadable ones are skipped and reported. Every
    photo gets a unique, stable id (:func:`item_id_for`) and its file name as its title. A class's slot comes from
    ``slot_map`` (``{category: slot}`` or a JSON file of it), else from the words of its name (:func:`slot_for`), else
    from its photos (:func:`predict_slot`), which the report then says in a note.

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
    slots = slot_map_from(slot_map)
    taken: set = set()
    unplaced: dict[str, list] = {}
    colour_namer = ColourNamer().fit_names(BASIC_COLOURS, photo_prototypes=load_photo_prototypes())
    with CatalogWriter(out, overwrite=overwrite) as writer:
        for k, (class_dir, path) in enumerate(files):
            if progress and k % 20 == 0:
                progress(k / len(files), f"Reading photos ({k}/{len(files)})")
            # NFC: a Mac writes Hangul and accents decomposed, and one class must not become two.
            category = unicodedata.normalize("NFC", class_dir.name).lower()
            file_name = unicodedata.normalize("NFC", path.name)
            item_id = item_id_for(category, f"{category}/{file_name}", taken)
            image = store_photo(writer, path, item_id, report, key=f"{class_dir.name}/{path.name}")
            if image is None:
                logger.warning("skipped %s: %s", path, report.skipped[-1][1])
                continue
            taken.add(item_id)
            relative = f"images/{item_id}.jpg"
            label = category.replace("_", " ").replace("-", " ")
            slot = slots.get(category) or slot_for(category)
            if slot is None and len(unplaced.setdefault(category, [])) < 16:
                unplaced[category].append(image)
            rows.append({"item_id": item_id, "category": category, "slot": slot,
                         "color": colour_namer.read(image).colour,
                         "title": Path(file_name).stem,
                         "description": f"A photo of a {label} from the folder {class_dir.name}.",
                         "image_path": relative, "source_file": f"{class_dir.name}/{path.name}"})
        if not rows:
            raise CatalogError(f"None of the {len(files)} photos in {src} could be read; {report.skipped[0][1]}")
        report.items = len(rows)
        items = pd.DataFrame(rows)
        for category, images in unplaced.items():
            items.loc[items["category"] == category, "slot"] = place_class(category, images, report)
        meta = {"name": name or src.name, "source": "folder", "source_path": str(src.resolve()),
                "predicted_columns": {"color": "read from each photo by recsys.colour.ColourNamer (basic colours)"},
                "skipped": [{"file": f, "reason": r} for f, r in report.skipped]}
        catalog = writer.finish(items=items, meta=meta)
    if progress:
        progress(1.0, "Done")
    return catalog, report


def place_class(category: str, images: list, report: IngestReport) -> str:
    """The slot of a category no word or map entry places: predicted from some of its decoded photos
    (:func:`predict_slot`), and said in a note of ``report`` (``"accessory"`` when the classifier is absent)."""
    predicted = predict_slot(images)
    slot, share = predicted if predicted is not None else ("accessory", 0.0)
    how = f"its photos look like '{slot}' ({share:.0%})" if predicted is not None else \
        "the image classifier is not installed, so it was put in 'accessory'"
    report.notes.append(f"the class '{category}' names no slot; {how} -- set it with --slot-map if that is wrong")
    logger.warning("class %s: slot %s predicted from its photos", category, slot)
    return slot




# ---------------------------------------------------------------------- slots of classes no name or map places
#: The studio's slots as sentences a text encoder can relate ImageNet's labels to (the slot vocabulary itself, not a
#: catalog's categories).
SLOT_TEXTS = {
    "top": "a top worn on the upper body: a shirt, t-shirt, blouse, jersey or sweater",
    "bottom": "a garment worn on the lower body: trousers, jeans, shorts or a skirt",
    "outer": "outerwear worn over other clothes: a coat, jacket or parka",
    "onepiece": "a one-piece garment: a dress, gown or jumpsuit",
    "shoes": "footwear: shoes, sneakers, boots, heels or sandals",
    "accessory": "an accessory: a bag, hat, cap, belt, scarf or jewellery",
}


@functools.lru_cache(maxsize=2)
def _slot_experts(device: str | None):
    """The classifier, the ``(n_labels, n_slots)`` text similarity of its labels to :data:`SLOT_TEXTS`, and the
    garment recognizer with the same similarity for its labels (None, None without a usable one), made once per
    process (encoding the 1000 label texts is most of a prediction's time, and an ingest may place many classes).

    Raises
    ------
    recsys.encoders.EncoderError
        When the classifier or the text encoder is not installed.
    """
    from recsys.encoders.pool import shared_encoder
    from recsys.photo import imagenet_label_texts
    from recsys.photo_store import CLASSIFIER_SPEC
    from recsys.recognizer import recognizer_for

    classifier_model = shared_encoder(CLASSIFIER_SPEC, device)  # the process's pool: one instance per spec
    text_encoder = shared_encoder(DEFAULT_TEXT_ENCODER, device)
    slots = text_encoder.encode_text(list(SLOT_TEXTS.values()))
    similarity = text_encoder.encode_text(imagenet_label_texts()) @ slots.T
    recognizer = recognizer_for([CLASSIFIER_SPEC])
    recognized = None
    if recognizer is not None:
        recognized = text_encoder.encode_text([recognizer.label_texts_[c] for c in recognizer.classes_]) @ slots.T
    return classifier_model, similarity, recognizer, recognized


def predict_slot(images, device: str | None = None, label_temperature: float = 0.03,
                 recognizer_weight: float = 0.8) -> tuple[str, float] | None:
    """The slot a set of photos of one class most likely shows and its probability: the shipped ImageNet classifier's
    mean label probabilities over the photos, related to :data:`SLOT_TEXTS` by the default text encoder, times
    (geometric weight ``recognizer_weight``) the garment recognizer's mean label probabilities related the same way
    -- the experts of :class:`recsys.photo.PhotoReader`. None when the classifier or the text encoder is not
    installed; without a usable recognizer, the classifier alone.
    """
    import numpy as np
    from scipy.special import softmax

    from recsys.encoders import EncoderError

    try:
        classifier_model, similarity, recognizer, recognized = _slot_experts(device)
    except EncoderError as exc:
        logger.warning("no slot prediction: %s", exc)
        return None
    parts = [classifier_model.classify_images(images[k:k + 16]) for k in range(0, len(images), 16)]
    probabilities = np.concatenate([p for p, _ in parts]).mean(axis=0)
    slots = list(SLOT_TEXTS)
    votes = probabilities @ softmax(similarity / label_temperature, axis=1)
    votes = votes / votes.sum()
    if recognizer is not None:
        pooled = l2_normalize(np.concatenate([maps.mean(axis=(2, 3)) for _, maps in parts]))
        garment = recognizer.predict_proba(pooled).mean(axis=0) @ softmax(recognized / label_temperature, axis=1)
        votes = softmax((1 - recognizer_weight) * np.log(votes + 1e-12)
                        + recognizer_weight * np.log(garment / garment.sum() + 1e-12))
    best = int(np.argmax(votes))
    return slots[best], float(votes[best])
