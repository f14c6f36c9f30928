"""FASCODE (ETRI fashion coordination dialogues) -> a catalog with dialogues and evaluation records.

The source folder holds the files as the dataset ships them (EUC-KR or UTF-8 text, either is read):

``mdata.wst.txt*`` -- item metadata
    One line per description phrase, tab-separated: item id (``BL-001``: the prefix names the category),
    part (``O`` outer, ``T`` top, ``B`` bottom, ``S`` shoes), the phrase's number, attribute type (``F``
    shape, ``M`` material, ``C`` colour, ``E`` emotion) and the phrase. An item has several lines; the
    phrases of one type are joined.
``*ddata.wst.txt*`` -- training dialogues
    One line per utterance: turn number, speaker (``<US>`` user, ``<CO>`` coordinator, ``<AC>`` the items
    the coordinator shows), utterance and tags (``;``-separated, e.g. ``INTRO``, ``USER_SUCCESS``). A turn
    number 0 starts a new dialogue. An ``<AC>`` line lists item ids; each replaces the item in its position
    of the running coordi-set (a one-piece fills the bottom position and empties the top), and the set that
    stands at the end of the dialogue is its coordi.
``*eval*`` -- evaluation dialogues
    ``; <n>`` starts a record and ``; end`` ends the file; ``US``/``CO`` lines are utterances; ``R1`` ..
    ``R3`` list the items of three candidate coordi-sets, ``R<k>`` being the candidate of true rank ``k``.
``images/<item id>.<jpg|png|...>`` (optional)
    Item photos. The released data has none for many items: an item without a photo gets a generated
    placeholder tile (its part and id) and ``image_is_placeholder = True``, which the dialogue models read
    as a missing image modality (they never read its image vector).

Items whose part cannot be told, dialogue items with unknown ids, and evaluation records naming an unknown
item are reported in the :class:`IngestReport` and skipped.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw

from recsys.catalog import Catalog, CatalogError, CatalogWriter
from recsys.data import IngestReport
from recsys.imageio import ImageInputError, load_upload
from recsys.progress import ProgressCallback

logger = logging.getLogger(__name__)

PARTS = {"O": "outer", "T": "top", "B": "bottom", "S": "shoes"}
ATTRIBUTE_TYPES = {"F": "shape", "M": "material", "C": "color", "E": "style"}
ATTRIBUTE_LABELS = {"F": "형태", "M": "소재", "C": "색채", "E": "감성"}
#: Category prefixes of FASCODE item ids: English category, Korean name, FASCODE position.
PREFIXES = {
    "JK": ("jacket", "재킷", "outer"), "JP": ("jumper", "점퍼", "outer"), "CT": ("coat", "코트", "outer"),
    "CD": ("cardigan", "가디건", "outer"), "VT": ("vest", "조끼", "outer"),
    "KN": ("knit", "니트", "top"), "SW": ("sweatshirt", "맨투맨", "top"), "SH": ("shirt", "셔츠", "top"),
    "BL": ("blouse", "블라우스", "top"),
    "SK": ("skirt", "스커트", "bottom"), "PT": ("pants", "바지", "bottom"), "OP": ("onepiece", "원피스", "bottom"),
    "SE": ("shoes", "신발", "shoes"),
}
POSITIONS = ("outer", "top", "bottom", "shoes")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
PLACEHOLDER_COLORS = {"outer": (120, 144, 156), "top": (161, 136, 127), "bottom": (121, 134, 203),
                      "shoes": (128, 128, 128)}
_TAG = re.compile(r"^[A-Z_;]+$")


# ====================================================================== reading

def rank_problem(ranks) -> str | None:
    """Why candidate ranks are not a ranking -- each of 1..c exactly once -- in one phrase, or None when they are.

    A record whose two candidates are both ranked 1 has no defined weighted Kendall's tau; kept, it would make every
    model's mean NaN.
    """
    try:
        values = [int(r) for r in ranks]
    except (TypeError, ValueError):
        return f"its candidate ranks {list(ranks)} are not all whole numbers"
    if sorted(values) != list(range(1, len(values) + 1)):
        return f"its candidate ranks {values} are not 1 to {len(values)} once each"
    return None

def read_text(path: Path) -> tuple[str, str]:
    """The text of ``path`` and the encoding it was read with: UTF-8 (with or without BOM), else EUC-KR (cp949).

    Raises
    ------
    CatalogError
        When the file is neither UTF-8 nor EUC-KR text.
    OSError
        When the file cannot be read.
    """
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        # cp949 is Microsoft's superset of EUC-KR; the dataset's files are EUC-KR.
        return raw.decode("cp949"), "euc-kr"
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path.name} is neither UTF-8 nor EUC-KR text (byte {exc.start} cannot be decoded).") from None


def _fields(line: str) -> list[str]:
    fields = [f.strip() for f in line.split("\t")]
    return fields if len(fields) > 1 else line.split()


def parse_metadata(text: str, report: IngestReport) -> pd.DataFrame:
    """Item rows from the metadata file: id, part, and the joined phrases of each attribute type."""
    items: dict[str, dict] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = _fields(line)
        # The released file has a phrase number in the third column; tolerate files without it.
        if len(fields) >= 4 and fields[2] in ATTRIBUTE_TYPES:
            item_id, part, kind, phrase = fields[0], fields[1], fields[2], " ".join(fields[3:])
        elif len(fields) >= 5 and fields[3] in ATTRIBUTE_TYPES:
            item_id, part, kind, phrase = fields[0], fields[1], fields[3], " ".join(fields[4:])
        else:
            report.skipped.append((f"metadata line {number}", "it has no attribute type F/M/C/E in the 3rd or 4th column"))
            continue
        item = items.setdefault(item_id, {"item_id": item_id, "part": part, "phrases": {}})
        item["phrases"].setdefault(kind, []).append(phrase.strip())
    rows = []
    for item_id, item in items.items():
        prefix = item_id.split("-")[0].upper()
        english, korean, position = PREFIXES.get(prefix, (None, None, PARTS.get(item["part"])))
        if position is None:
            report.skipped.append((item_id, f"its part '{item['part']}' is none of O/T/B/S and its prefix is unknown"))
            continue
        slot = "onepiece" if prefix == "OP" else position
        category = english or f"other-{position}"
        phrases = {k: " ".join(v) for k, v in item["phrases"].items()}
        description = " ".join(f"{ATTRIBUTE_LABELS[k]}: {phrases[k]}." for k in ATTRIBUTE_TYPES if k in phrases)
        rows.append({
            "item_id": item_id, "category": category, "slot": slot,
            "title": f"{korean or category} {item_id}", "description": description,
            **{column: phrases.get(k) for k, column in ATTRIBUTE_TYPES.items()},
        })
    return pd.DataFrame(rows)


def position_of(item_id: str) -> str | None:
    """The coordi position (outer/top/bottom/shoes) of an item id from its prefix, or None if unknown."""
    entry = PREFIXES.get(item_id.split("-")[0].upper())
    return entry[2] if entry else None


def _clean_item(token: str) -> str:
    # Some releases write shown items as "<n>;<prefix>_<id>"; the id is the last piece.
    return token.split(";")[-1].split("_")[-1].strip()


def _insert(coordi: dict, item_ids: list[str], known: set[str], where: str, report: IngestReport) -> dict:
    coordi = dict(coordi)
    for token in item_ids:
        item_id = _clean_item(token)
        if not item_id:
            continue
        if item_id not in known or position_of(item_id) is None:
            report.skipped.append((where, f"item '{item_id}' is not in the metadata"))
            continue
        if item_id.upper().startswith("OP-"):
            coordi.pop("top", None)
        coordi[position_of(item_id)] = item_id
    return coordi


def parse_dialogues(text: str, known: set[str], report: IngestReport, prefix: str = "fascode") -> list[dict]:
    """Training dialogues (turns with speaker, text, tags; shown item ids) ending in their coordi-set."""
    dialogues: list[dict] = []
    current: dict | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = _fields(line)
        if len(fields) < 2 or not fields[1].startswith("<"):
            report.skipped.append((f"dialogue line {number}", "it is not '<turn> <speaker> <utterance> <tags>'"))
            continue
        turn, speaker = fields[0], fields[1].strip("<>")
        if turn == "0" or current is None:
            current = {"dialogue_id": f"{prefix}-{len(dialogues):05d}", "split": "train", "turns": [], "coordi": {}}
            dialogues.append(current)
        if speaker == "AC":
            shown = " ".join(fields[2:]).split()
            where = f"{current['dialogue_id']} line {number}"
            current["coordi"] = _insert(current["coordi"], shown, known, where, report)
            kept = [_clean_item(t) for t in shown if _clean_item(t) in known]
            current["turns"].append({"speaker": "AC", "text": "", "tags": [], "item_ids": kept})
            continue
        if "\t" in line:
            utterance, tags = (fields[2] if len(fields) > 2 else ""), (fields[3] if len(fields) > 3 else "")
        else:  # whitespace-separated: the last word is the tag when it looks like one
            words = fields[2:]
            tags = words[-1] if words and _TAG.match(words[-1]) else ""
            utterance = " ".join(words[:-1] if tags else words)
        current["turns"].append({"speaker": speaker, "text": utterance.strip(),
                                 "tags": [t for t in tags.split(";") if t.strip() and t != "_"]})
    for dialogue in dialogues:
        if not dialogue["coordi"]:
            report.skipped.append((dialogue["dialogue_id"], "the dialogue shows no known item, so it has no coordi-set"))
    return [d for d in dialogues if d["coordi"]]


def parse_evaluation(text: str, known: set[str], report: IngestReport, prefix: str) -> list[dict]:
    """Evaluation records: the dialogue's US/CO turns and three candidate coordi-sets with their true rank."""
    records: list[dict] = []
    current: dict | None = None
    broken: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(";"):
            if line[1:].strip().lower().startswith("end"):
                break
            current = {"dialogue_id": f"{prefix}-{len(records):05d}", "split": "eval", "turns": [], "candidates": []}
            records.append(current)
            continue
        if current is None:
            report.skipped.append((f"evaluation line {number}", "it comes before the first '; <n>' record header"))
            continue
        head, _, rest = line.partition(" ") if "\t" not in line else line.partition("\t")
        head = head.rstrip(":")
        if head in ("US", "CO"):
            current["turns"].append({"speaker": head, "text": rest.strip(), "tags": []})
        elif re.fullmatch(r"R\d+", head):
            coordi: dict = {}
            unknown = [_clean_item(t) for t in rest.split() if _clean_item(t) not in known]
            if unknown:
                broken.add(current["dialogue_id"])
                report.skipped.append((current["dialogue_id"],
                                       f"candidate {head} names unknown item '{unknown[0]}'; the record is skipped"))
                continue
            coordi = _insert(coordi, rest.split(), known, current["dialogue_id"], report)
            current["candidates"].append({"coordi": coordi, "rank": int(head[1:])})
        else:
            report.skipped.append((f"evaluation line {number}", f"unknown line type '{head}'"))
    kept = []
    for record in records:
        if record["dialogue_id"] in broken:
            continue
        if len(record["candidates"]) < 2:
            report.skipped.append((record["dialogue_id"], "it has fewer than two candidate coordi-sets"))
            continue
        problem = rank_problem([c["rank"] for c in record["candidates"]])
        if problem:  # e.g. two candidates both ranked 1: no weighted Kendall's tau is defined for it
            report.skipped.append((record["dialogue_id"], f"{problem}; the record is skipped"))
            continue
        kept.append(record)
    return kept


# ====================================================================== images
def placeholder_image(item_id: str, slot: str, size: int = 224) -> Image.Image:
    """A flat tile in the colour of the item's position with its id, for items that come without a photo."""
    position = "bottom" if slot == "onepiece" else slot
    image = Image.new("RGB", (size, size), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    margin = size // 6
    draw.rounded_rectangle((margin, margin, size - margin, size - margin), radius=size // 12,
                           fill=PLACEHOLDER_COLORS.get(position, (150, 150, 150)))
    draw.text((size // 2, size // 2), item_id, fill=(255, 255, 255), anchor="mm", font_size=size // 9)
    return image


def _photo(images_dir: Path | None, item_id: str) -> Path | None:
    if images_dir is None:
        return None
    for suffix in IMAGE_SUFFIXES:
        for name in (item_id, item_id.lower()):
            path = images_dir / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


# ====================================================================== the adapter
def find_files(src: Path) -> tuple[Path, list[Path], list[Path]]:
    """The FASCODE files of ``src``: ``(metadata, dialogue files, evaluation files)``, found by ``mdata``, ``ddata``
    and ``eval`` in their names (the last metadata file in name order wins).

    Raises
    ------
    CatalogError
        When ``src`` has no item metadata file.
    """
    files = sorted(p for p in src.iterdir() if p.is_file() and not p.name.startswith("."))
    metadata = [p for p in files if "mdata" in p.name.lower()]
    dialogues = [p for p in files if "ddata" in p.name.lower()]
    evaluation = [p for p in files if "eval" in p.name.lower()]
    if not metadata:
        raise CatalogError(f"The folder {src} has no FASCODE item metadata file (a name with 'mdata', e.g. mdata.wst.txt).")
    return metadata[-1], dialogues, evaluation


def ingest_fascode(src, out, overwrite: bool = False, progress: ProgressCallback | None = None,
                   name: str | None = None) -> tuple[Catalog, IngestReport]:
    """Turn a FASCODE folder (metadata, dialogue and evaluation files, optional images/) into a catalog at ``out``.

    Follows the file layout of ETRI's FASCODE release (see the module docstring). An item without a readable photo
    gets a placeholder image; photos are stored at most 512 pixels on the longer side.

    Returns
    -------
    (Catalog, IngestReport)

    Raises
    ------
    CatalogError
        When ``src`` does not exist, has no metadata file, a file is neither UTF-8 nor EUC-KR, the metadata holds no
        readable item, ``out`` exists without ``overwrite``, or the written catalog does not validate.
    OSError
        When a source file cannot be read.
    """
    src = Path(src).expanduser()
    if not src.is_dir():
        raise CatalogError(f"The source folder {src} does not exist.")
    metadata_path, dialogue_paths, eval_paths = find_files(src)
    report = IngestReport()
    encodings = {}
    text, encodings[metadata_path.name] = read_text(metadata_path)
    items = parse_metadata(text, report)
    if items.empty:
        raise CatalogError(f"{metadata_path.name} holds no item that could be read.")
    known = set(items["item_id"])
    dialogues: list[dict] = []
    for path in dialogue_paths:
        text, encodings[path.name] = read_text(path)
        dialogues += parse_dialogues(text, known, report, prefix=f"{path.name.split('.')[0]}-train")
    for path in eval_paths:
        text, encodings[path.name] = read_text(path)
        dialogues += parse_evaluation(text, known, report, prefix=f"{path.name.split('.')[0]}-eval")
    images_dir = src / "images" if (src / "images").is_dir() else None
    with CatalogWriter(out, overwrite=overwrite) as writer:
        paths, placeholders = [], []
        for k, row in enumerate(items.itertuples()):
            if progress and k % 50 == 0:
                progress(k / len(items), f"Writing item images ({k}/{len(items)})")
            relative = f"images/{row.item_id}.png"
            photo = _photo(images_dir, row.item_id)
            image = None
            if photo is not None:
                try:
                    image = load_upload(photo.read_bytes(), max_side=512, name=photo.name)
                except ImageInputError as exc:
                    report.skipped.append((f"images/{photo.name}", f"{exc} A placeholder is used."))
            writer.save_image(relative, image if image is not None else placeholder_image(row.item_id, row.slot))
            paths.append(relative)
            placeholders.append(image is None)
        items["image_path"] = paths
        items["image_is_placeholder"] = placeholders
        report.items = len(items)
        meta = {"name": name or f"FASCODE ({src.name})", "source": "fascode", "source_path": str(src.resolve()),
                "encodings": encodings, "skipped": [{"file": f, "reason": r} for f, r in report.skipped]}
        catalog = writer.finish(items=items, meta=meta, dialogues=dialogues)
    if progress:
        progress(1.0, "Done")
    logger.info("ingested FASCODE from %s: %s", src, report.summary())
    return catalog, report
