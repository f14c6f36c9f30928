"""The upload protocol: a user's own labelled photos, read and searched as the Similar items page does.

``python scripts/evaluate.py --catalog DIR --task upload --photos SRC [--label-map MAP.json] --json OUT``

``SRC`` is a folder of class sub-folders (the folder name is the photo's category label) or a CSV with a ``path``
column (relative to the CSV) and optional ``category`` and ``colour`` columns. ``MAP.json`` maps photo labels to the
catalog's names, ``{"category": {"<photo label>": ["<catalog category>", ...]}, "colour": {...}}``; without a map a
label is accepted as the catalog name it equals (case and spaces ignored). A label the map leaves out, or that names
no catalog value, is not applicable to this catalog: the photo is skipped for that attribute and counted.

For every photo: decode it as an upload is decoded, embed it with the catalog's image encoder, read it with the
studio's one photo reader (:meth:`recsys.tasks.base.TaskService.read_photo`) and search its top 5 as the page
searches (the predicted category and colour, the page model's default colour weight). Reported: ``n``,
``category_accuracy`` (the predicted category is one the label accepts), ``colour_accuracy``, ``category@5`` and
``colour@5`` (share of the top 5 whose catalog category / colour the label accepts), each with its standard error
(``*_se``, over photos) and its chance level (``*_chance``: a uniformly random category or colour of the catalog's
vocabulary, or 5 random catalog items). How the page states it: ``category_sure`` (share of photos whose category
the page states without asking), ``category_accuracy_sure`` (the accuracy of those statements: one minus it is how
often a wrong category is shown as certain), ``category_wrong_sure`` (share of all photos whose category is stated
without asking and wrong) and ``category_top3`` (the label's category is among the first three
of the page's category list, the choices a user sees first). ``confusion`` counts, per photo label, the categories
the page read; ``calibration`` is the reliability table of the stated confidence (:func:`recsys.metrics.
reliability_bins`) and ``calibration_error`` its expected calibration error.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.artifacts import load_artifacts
from recsys.catalog import Catalog
from recsys.imageio import ImageInputError, load_upload
from recsys.metrics import expected_calibration_error, reliability_bins
from recsys.progress import ProgressCallback
from recsys.store import ModelStore
from recsys.tables import TableError, decode_text, read_text_table

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
TOP_K = 5
#: The per-photo figures the protocol averages (those ending in ``_chance`` are reported without an error).
FIGURES = ("category_accuracy", "category@5", "colour_accuracy", "colour@5", "category_sure", "category_accuracy_sure",
           "category_top3", "category_accuracy_chance", "category@5_chance", "colour_accuracy_chance", "colour@5_chance",
           "category_wrong_sure")


class UploadSourceError(ValueError):
    """The photo source or the label map cannot be read; the message says why in one sentence."""


@dataclass(frozen=True)
class LabelledPhoto:
    """One photo of the source: its path and its category and colour labels ("" when the source gives none)."""

    path: Path
    category: str = ""
    colour: str = ""


def read_photos(source: str | Path) -> list[LabelledPhoto]:
    """The photos of a folder of class sub-folders or of a CSV (see the module docstring), in a stable order.

    The CSV may be what a spreadsheet saves (:func:`recsys.tables.read_text_table`: UTF-8 or UTF-16 "Unicode
    Text", comma, semicolon or tab separated, column names in any case); a path may use Windows separators
    (``tops\\a.jpg``), and an absolute path from another machine is looked for under the CSV's folder by its
    trailing parts. Hidden files (``.DS_Store``, macOS ``._`` copies) in a folder source are not photos.

    Raises
    ------
    UploadSourceError
        One sentence naming the file and, for a CSV, the row: the source does not exist, cannot be read, has no
        ``path`` column, a row has no path or names a photo that is not there, or no photo is found.
    """
    source = Path(source)
    if source.is_dir():
        photos = [LabelledPhoto(path, category=folder.name)
                  for folder in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
                  for path in sorted(folder.iterdir())
                  if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")]
    elif source.is_file():
        photos = _read_photo_table(source)
    else:
        raise UploadSourceError(f"The photo source {source} is neither a folder nor a CSV file.")
    if not photos:
        raise UploadSourceError(f"No photo was found in {source} (a folder of class sub-folders or a CSV).")
    return photos


def _read_photo_table(source: Path) -> list[LabelledPhoto]:
    try:
        table = read_text_table(source)
    except TableError as exc:
        raise UploadSourceError(str(exc)) from None
    if "path" not in table.columns:
        shown = ", ".join(repr(c) for c in table.columns if c) or "none"
        raise UploadSourceError(f"The CSV {source} has no 'path' column (its columns, read as "
                                f"{_SEPARATORS.get(table.delimiter, table.delimiter)}-separated: {shown}).")
    photos, missing = [], []
    for line, row in zip(table.line_numbers, table.rows):
        written = row.get("path", "")
        if not written:
            raise UploadSourceError(f"The CSV {source} row {line} has no path.")
        path = photo_path(source.parent, written)
        if path is None:
            missing.append((line, written))
            continue
        photos.append(LabelledPhoto(path, category=row.get("category", ""),
                                    colour=row.get("colour") or row.get("color") or ""))
    if missing:
        (line, written), others = missing[0], len(missing) - 1
        more = f" (and {others} other row{'s' if others != 1 else ''})" if others else ""
        raise UploadSourceError(f"The CSV {source} row {line} names the photo '{written}', which is not in "
                                f"{source.parent}{more}; paths are relative to the CSV's folder.")
    return photos


_SEPARATORS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "bar"}


def photo_path(folder: Path, written: str) -> Path | None:
    """The existing file a spreadsheet cell names, relative to ``folder``, or None.

    Tried in turn: the cell as written; with Windows separators (``\\``) as ``/``; in both Unicode forms of its
    accents (macOS stores decomposed names); and, for an absolute path (``C:\\Users\\me\\photos\\tops\\a.jpg``,
    ``/home/me/photos/tops/a.jpg``) that is not on this machine, its trailing parts under ``folder``, longest
    first (``tops/a.jpg``, then ``a.jpg``).
    """
    import unicodedata

    text = written.strip().strip('"').strip()
    candidates = [text, text.replace("\\", "/")]
    candidates += [unicodedata.normalize(form, c) for c in list(candidates) for form in ("NFC", "NFD")]
    for candidate in dict.fromkeys(candidates):
        path = Path(candidate) if Path(candidate).is_absolute() else folder / candidate
        if path.is_file():
            return path
    parts = [p for p in re.split(r"[\\/]+", text) if p]
    if re.match(r"^([A-Za-z]:|[\\/])", text):  # absolute here or on Windows: try its tails under the folder
        for start in range(1, len(parts)):
            for form in ("NFC", "NFD"):
                path = folder.joinpath(*(unicodedata.normalize(form, p) for p in parts[start:]))
                if path.is_file():
                    return path
    return None


def _key(text: str) -> str:
    return re.sub(r"[\s_-]+", "", str(text).lower())


def read_label_map(path: str | Path | None, categories, colours) -> dict:
    """``{"category": {label: set}, "colour": {label: set}}`` from ``MAP.json`` (None: every catalog name maps to
    itself, case and spaces ignored).

    Raises
    ------
    UploadSourceError
        When the file cannot be read as such a map, or names a category or colour the catalog does not have.
    """
    if path is None:
        return {"category": {_key(c): {c} for c in categories}, "colour": {_key(c): {c} for c in colours},
                "by_key": True}
    try:
        raw = json.loads(decode_text(Path(path).read_bytes(), path))  # an editor's UTF-16 or BOM is still JSON
    except TableError as exc:
        raise UploadSourceError(str(exc)) from None
    except OSError as exc:
        raise UploadSourceError(f"The label map {path} cannot be read ({exc.strerror or exc}).") from None
    except ValueError as exc:
        raise UploadSourceError(f"The label map {path} cannot be read as JSON ({exc}).") from None
    known = {"category": set(categories), "colour": set(colours)}
    out: dict = {"by_key": False}
    for part in ("category", "colour"):
        mapping = raw.get(part, {}) if isinstance(raw, dict) else None
        if not isinstance(mapping, dict):
            raise UploadSourceError(f"The label map {path} needs a '{part}' object of label -> list of names.")
        out[part] = {}
        for label, names in mapping.items():
            names = [names] if isinstance(names, str) else names
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise UploadSourceError(f"The label map {path} maps {label!r} to {json.dumps(names)}; give a "
                                        f"{part} name or a list of names.")
            unknown = sorted(set(names) - known[part])
            if unknown:
                raise UploadSourceError(f"The label map {path} maps {label!r} to {', '.join(unknown)}, which the "
                                        f"catalog has no {part} of.")
            out[part][label] = set(names)
    return out


def _accepted(label_map: dict, part: str, label: str) -> set:
    if not label:
        return set()
    return label_map[part].get(_key(label) if label_map["by_key"] else label, set())


def _summary(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    array = np.asarray(values, dtype=np.float64)
    se = float(array.std(ddof=1) / np.sqrt(len(array))) if len(array) > 1 else None
    return float(array.mean()), se


def _nothing_evaluated(photos, records: list[LabelledPhoto], counts: dict, evaluated: int) -> UploadSourceError:
    """The one sentence for a source of which no photo could be judged: none could be read (with the first one's
    reason), or none has a label this catalog can judge."""
    if evaluated == 0 and counts["unreadable"]:  # the labels were never tried: say why the photos were not read
        why = ""
        for record in records:  # the first one that fails again, for its reason (only on this failing path)
            try:
                load_upload(record.path.read_bytes(), name=record.path.name)
            except OSError as exc:
                why = f"the file {record.path} cannot be opened ({exc.strerror or exc})"
                break
            except ImageInputError as exc:
                why = str(exc).rstrip(".")
                break
        n = counts["unreadable"]
        judged = "" if n == len(records) else " whose labels this catalog can judge"
        return UploadSourceError(f"None of the {n} photo(s) of {photos}{judged} could be read as an image, so "
                                 f"nothing was evaluated" + (f"; for example, {why[:1].lower()}{why[1:]}."
                                                             if why else "."))
    return UploadSourceError(f"No photo of {photos} has a category or colour label this catalog can judge; "
                             f"pass --label-map to map the photos' labels to the catalog's names.")


def _reading_quality(confusion: dict, confidence: list[float], correct: list[float]) -> dict:
    """Per photo label, what the page read it as (most often first); and whether a stated confidence means what it
    says: the reliability table and its expected calibration error."""
    return {"confusion": {label: dict(sorted(row.items(), key=lambda kv: -kv[1]))
                          for label, row in sorted(confusion.items())},
            "calibration": reliability_bins(confidence, correct) if confidence else [],
            "calibration_error": expected_calibration_error(confidence, correct) if confidence else None}


def _add_category_figures(figures: dict, reading, accepted: set, item_categories: np.ndarray, top: np.ndarray,
                          categories: list[str]) -> None:
    """Append one photo's category figures (its reading against the ``accepted`` categories, its top results)."""
    hit = float(reading.category.category in accepted)
    figures["category_accuracy"].append(hit)
    figures["category_sure"].append(float(not reading.unsure))
    figures["category_wrong_sure"].append(float(not reading.unsure and not hit))
    if not reading.unsure:
        figures["category_accuracy_sure"].append(hit)
    figures["category_top3"].append(float(bool(set(reading.category_choices(categories)[:3]) & accepted)))
    figures["category@5"].append(float(np.isin(item_categories[top], list(accepted)).mean()))
    figures["category_accuracy_chance"].append(len(accepted) / len(categories))
    figures["category@5_chance"].append(float(np.isin(item_categories, list(accepted)).mean()))


def evaluate_upload(catalog: Catalog, photos: str | Path, label_map: str | Path | None = None, *,
                    device: str | None = None, progress: ProgressCallback | None = None) -> dict:
    """Run the upload protocol (module docstring) and return its figures.

    Raises
    ------
    UploadSourceError
        For an unreadable source or label map, when none of the photos can be read as an image (one named with
        why), or when no photo has a label the catalog can judge.
    recsys.artifacts.ArtifactError
        When the catalog has no usable artifacts.
    """
    from recsys.encoders.pool import shared_encoder
    from recsys.tasks.similar.service import SimilarService

    records = read_photos(photos)
    artifacts = load_artifacts(catalog)
    items = catalog.items
    colours = sorted(set(items["color"].dropna().astype(str))) if "color" in items.columns else []
    mapping = read_label_map(label_map, catalog.categories, colours)
    service = SimilarService(catalog, artifacts, ModelStore(catalog, artifacts))
    encoder = shared_encoder(artifacts.image_encoder_spec, device)
    item_categories = items["category"].astype(str).to_numpy()
    item_colours = items["color"].astype(str).to_numpy() if colours else None
    figures: dict[str, list[float]] = {k: [] for k in FIGURES}
    confusion: dict[str, dict[str, int]] = {}
    confidence: list[float] = []  # of each category_accuracy photo's reading, in that order
    counts = {"unreadable": 0, "category_not_applicable": 0, "colour_not_applicable": 0}
    evaluated = 0
    for number, record in enumerate(records):
        if progress:
            progress(number / len(records), f"Photo {number + 1} of {len(records)}")
        category_ok = _accepted(mapping, "category", record.category)
        colour_ok = _accepted(mapping, "colour", record.colour) if colours else set()
        counts["category_not_applicable"] += not category_ok
        counts["colour_not_applicable"] += bool(colours) and not colour_ok
        if not category_ok and not colour_ok:
            continue
        try:
            image = load_upload(record.path.read_bytes(), name=record.path.name)
        except (OSError, ImageInputError) as exc:
            logger.info("upload protocol: %s unreadable (%s)", record.path, exc)
            counts["unreadable"] += 1
            continue
        vector = encoder.encode_images([image])[0]
        evaluated += 1
        reading = service.read_photo(vector, image)
        colour = reading.colour.colour if reading.colour is not None else None
        result = service.similar(photo=vector, k=TOP_K, category=reading.category.category, colour=colour)
        top = np.asarray(result.positions)
        if category_ok:
            _add_category_figures(figures, reading, category_ok, item_categories, top, catalog.categories)
            row = confusion.setdefault(record.category, {})
            row[reading.category.category] = row.get(reading.category.category, 0) + 1
            confidence.append(reading.category.confidence)
        if colour_ok and colour is not None:
            figures["colour_accuracy"].append(float(colour in colour_ok))
            figures["colour@5"].append(float(np.isin(item_colours[top], list(colour_ok)).mean()))
            figures["colour_accuracy_chance"].append(len(colour_ok) / len(colours))
            figures["colour@5_chance"].append(float(np.isin(item_colours, list(colour_ok)).mean()))
    if not figures["category_accuracy"] and not figures["colour_accuracy"]:
        raise _nothing_evaluated(photos, records, counts, evaluated)
    report: dict = {"n": evaluated, "n_category": len(figures["category_accuracy"]),
                    "n_colour": len(figures["colour_accuracy"]), "photos": len(records), **counts}
    for name, values in figures.items():
        mean, se = _summary(values)
        report[name] = mean
        if not name.endswith("_chance"):
            report[f"{name}_se"] = se
    report |= _reading_quality(confusion, confidence, figures["category_accuracy"])
    if progress:
        progress(1.0, "Done")
    logger.info("upload protocol on %s: %s", photos, report)
    return report
