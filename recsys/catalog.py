"""The catalog: the one place that knows the on-disk catalog format (DESIGN section 3).

A catalog is a folder::

    items.parquet          item_id, category, slot, title, description, image_path (+ attribute columns)
    images/                the item images; ``image_path`` is relative to the catalog root
    interactions.parquet   user_id, item_id, timestamp, review            (optional)
    outfits.jsonl          {"outfit_id", "item_ids": [...]}                (optional)
    dialogues.jsonl        FASCODE-style dialogues and evaluation records  (optional)
    captions.jsonl         {"reference_id", "target_id", "captions", "split"} (optional)
    catalog.json           name, version, counts, seed, source
    truth/                 ground truth of a generated world (optional; see ``recsys.data.demo_world``)

Every problem is reported as a :class:`CatalogError` whose message is one sentence naming the file and
what is wrong with it, so the app can show it as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from PIL import Image

from recsys.tables import TableError, dtype_name, is_text_column, read_parquet_table
from recsys.utils import file_damage, read_json

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
SLOTS = ("top", "bottom", "onepiece", "outer", "shoes", "accessory")
REQUIRED_ITEM_COLUMNS = ("item_id", "category", "slot", "title", "description", "image_path")
ATTRIBUTE_COLUMNS = ("color", "pattern", "sleeve", "length", "detail", "style", "material")
INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp")
OPTIONAL_JSONL = ("outfits", "dialogues", "captions")


class CatalogError(ValueError):
    """A catalog folder is missing something or holds something malformed; the message says what."""


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return read_parquet_table(path)  # any tool's encoding of text (recsys.tables)
    except TableError as exc:
        raise CatalogError(str(exc)) from None


def _read_jsonl(path: Path) -> list[dict]:
    try:  # split on "\n" only: a JSON string may hold U+2028, which str.splitlines() would cut at
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError:
        raise CatalogError(f"{path.name} cannot be read ({file_damage(path) or 'it is not UTF-8 text'}).") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            reason = file_damage(path) or exc.msg
            raise CatalogError(f"{path.name} line {number} is not valid JSON ({reason}).") from None
        if not isinstance(record, dict):
            raise CatalogError(f"{path.name} line {number} is not a JSON object.")
        records.append(record)
    return records


def validate_items(items: pd.DataFrame, source: str = "items.parquet") -> None:
    """Check the items table's columns, types and values; raise :class:`CatalogError` on the first problem."""
    missing = [c for c in REQUIRED_ITEM_COLUMNS if c not in items.columns]
    if missing:
        raise CatalogError(f"{source} lacks the required column(s) {', '.join(missing)}.")
    if len(items) == 0:
        raise CatalogError(f"{source} holds no items.")
    for column in REQUIRED_ITEM_COLUMNS + tuple(c for c in ATTRIBUTE_COLUMNS if c in items.columns):
        if column in ("title", "description") or column in ATTRIBUTE_COLUMNS:
            values = items[column].dropna()
        else:
            values = items[column]
            if values.isna().any():
                raise CatalogError(f"{source} column '{column}' has empty values.")
        if len(values) and not is_text_column(values):
            raise CatalogError(f"{source} column '{column}' must hold text, but it holds {dtype_name(items[column])}.")
    duplicated = items["item_id"][items["item_id"].duplicated()]
    if len(duplicated):
        raise CatalogError(f"{source} repeats item_id '{duplicated.iloc[0]}'.")
    bad_slots = sorted(set(items["slot"]) - set(SLOTS))
    if bad_slots:
        raise CatalogError(f"{source} has unknown slot(s) {', '.join(bad_slots)}; slots are {', '.join(SLOTS)}.")


def validate_interactions(interactions: pd.DataFrame, item_ids: set[str]) -> None:
    """Check the interactions table against the catalog's items.

    Parameters
    ----------
    interactions : pandas.DataFrame
        One row per interaction, with at least ``user_id`` and ``item_id`` (text) and ``timestamp`` (numeric or a date).
    item_ids : set of str
        The ``item_id`` values of ``items.parquet``; every interaction must name one of them.

    Raises
    ------
    CatalogError
        On the first problem: a missing column, a non-text id column, a timestamp that is neither numeric nor a date,
        or an ``item_id`` that is not in ``item_ids``.
    """
    missing = [c for c in INTERACTION_COLUMNS if c not in interactions.columns]
    if missing:
        raise CatalogError(f"interactions.parquet lacks the required column(s) {', '.join(missing)}.")
    for column in ("user_id", "item_id"):
        if len(interactions) and not is_text_column(interactions[column]):
            raise CatalogError(
                f"interactions.parquet column '{column}' must hold text, but it holds {dtype_name(interactions[column])}."
            )
    ts = interactions["timestamp"]
    if not (pd.api.types.is_numeric_dtype(ts) or pd.api.types.is_datetime64_any_dtype(ts)):
        raise CatalogError(f"interactions.parquet column 'timestamp' must be numeric or a date, but it holds {ts.dtype}.")
    unknown = set(interactions["item_id"]) - item_ids
    if unknown:
        raise CatalogError(
            f"interactions.parquet names {len(unknown)} item(s) not in items.parquet, e.g. '{sorted(unknown)[0]}'."
        )


@dataclass
class Catalog:
    """A loaded, validated catalog folder.

    Use :meth:`load`; the constructor only stores what it is given.
    """

    root: Path
    items: pd.DataFrame
    meta: dict = field(default_factory=dict)
    interactions: pd.DataFrame | None = None
    outfits: list[dict] = field(default_factory=list)
    dialogues: list[dict] = field(default_factory=list)
    captions: list[dict] = field(default_factory=list)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, root: str | os.PathLike, check_images: bool = True) -> "Catalog":
        """Load and validate the catalog folder ``root``.

        Raises
        ------
        CatalogError
            With one sentence naming what is missing or malformed.
        """
        root = Path(root).expanduser()
        if not root.is_dir():
            raise CatalogError(f"The catalog folder {root} does not exist.")
        items_path = root / "items.parquet"
        if not items_path.is_file():
            raise CatalogError(
                f"The catalog folder {root} has no items.parquet; build one with scripts/build_demo.py or scripts/ingest.py."
            )
        meta_path = root / "catalog.json"
        try:
            meta = read_json(meta_path) or {}
        except ValueError as exc:
            raise CatalogError(f"catalog.json in {root} cannot be read ({exc}).") from None
        items = _read_table(items_path)
        validate_items(items)
        items = items.reset_index(drop=True)
        catalog = cls(root=root.resolve(), items=items, meta=meta)
        interactions_path = root / "interactions.parquet"
        if interactions_path.is_file():
            interactions = _read_table(interactions_path)
            validate_interactions(interactions, set(items["item_id"]))
            catalog.interactions = interactions
        for name in OPTIONAL_JSONL:
            path = root / f"{name}.jsonl"
            if path.is_file():
                setattr(catalog, name, _read_jsonl(path))
        catalog._check_outfits()
        if check_images:
            catalog.check_images()
        return catalog

    def _check_outfits(self) -> None:
        known = self.id_to_index
        for outfit in self.outfits:
            ids = outfit.get("item_ids")
            if not isinstance(ids, list) or not ids:
                raise CatalogError(f"outfits.jsonl record {outfit.get('outfit_id', '?')} has no item_ids list.")
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise CatalogError(
                    f"outfits.jsonl record {outfit.get('outfit_id', '?')} names unknown item '{unknown[0]}'."
                )

    def check_images(self) -> None:
        """Raise :class:`CatalogError` if an image file is missing or lies outside the catalog folder."""
        missing = []
        for item_id, rel in zip(self.items["item_id"], self.items["image_path"]):
            path = self._resolve(rel, item_id)
            if not path.is_file():
                missing.append(rel)
        if missing:
            raise CatalogError(
                f"{len(missing)} image file(s) named in items.parquet are missing from {self.root}, e.g. {missing[0]}."
            )

    # ------------------------------------------------------------------ access
    @property
    def name(self) -> str:
        """The catalog's display name: ``catalog.json``'s ``name``, else the folder's name."""
        return str(self.meta.get("name") or self.root.name)

    @property
    def id_to_index(self) -> dict[str, int]:
        """``item_id`` -> row position in :attr:`items` (``n_items`` entries), built once and cached."""
        cached = self.__dict__.get("_id_to_index")
        if cached is None:
            cached = {item_id: i for i, item_id in enumerate(self.items["item_id"])}
            self.__dict__["_id_to_index"] = cached
        return cached

    def __len__(self) -> int:
        return len(self.items)

    def indices(self, item_ids: Iterable[str]) -> np.ndarray:
        """Row positions of ``item_ids`` in :attr:`items`; raise ``KeyError`` naming an unknown id."""
        lookup = self.id_to_index
        try:
            return np.array([lookup[i] for i in item_ids], dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"Unknown item id {exc.args[0]!r}.") from None

    def item(self, item_id: str) -> pd.Series:
        """The row of :attr:`items` for ``item_id``.

        Raises
        ------
        KeyError
            Naming ``item_id`` when the catalog has no such item.
        """
        return self.items.iloc[self.indices([item_id])[0]]

    def _resolve(self, relative: str, item_id: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise CatalogError(f"The image path of item '{item_id}' points outside the catalog folder.")
        return path

    def image_path(self, item_id: str) -> Path:
        """Absolute path of an item's image, confined to the catalog folder."""
        return self._resolve(str(self.item(item_id)["image_path"]), item_id)

    def load_image(self, item_id: str) -> Image.Image:
        """The item's image as an RGB PIL image."""
        with Image.open(self.image_path(item_id)) as image:
            image.load()
            if image.mode == "RGB":
                return image.copy()
            if image.mode in ("RGBA", "LA", "P"):
                rgba = image.convert("RGBA")
                background = Image.new("RGB", rgba.size, (255, 255, 255))
                background.paste(rgba, mask=rgba.getchannel("A"))
                return background
            return image.convert("RGB")

    @property
    def categories(self) -> list[str]:
        """The distinct ``category`` values of the items, sorted."""
        return sorted(self.items["category"].unique())

    def fingerprint(self) -> str:
        """A short hash (16 hex digits) of the items table, so artifacts and models refuse a catalog they were not
        built from. Hashed once per version of ``items.parquet`` (its modification time and size).

        Raises
        ------
        OSError
            When ``items.parquet`` cannot be read.
        """
        path = self.root / "items.parquet"
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        cached = getattr(self, "_fingerprint", None)
        if cached is None or cached[0] != version:
            cached = (version, hashlib.sha256(path.read_bytes()).hexdigest()[:16])
            self._fingerprint = cached
        return cached[1]

    @property
    def has_truth(self) -> bool:
        """True for a generated world whose ground truth is stored beside it."""
        return (self.root / "truth").is_dir()


# ---------------------------------------------------------------------- writing
class CatalogWriter:
    """Write a catalog folder atomically: everything goes to a temporary sibling folder, is validated, then renamed.

    A failure at any point removes the temporary folder, so nothing half-written is ever left looking valid::

        with CatalogWriter(out_dir, overwrite=True) as writer:
            writer.save_image("images/a.png", image)
            writer.finish(items=items_df, interactions=df, outfits=[...], meta={...})
    """

    def __init__(self, out_dir: str | os.PathLike, overwrite: bool = False):
        self.out_dir = Path(out_dir).expanduser().absolute()
        self.overwrite = overwrite
        self.tmp_dir: Path | None = None
        self._finished = False

    def __enter__(self) -> "CatalogWriter":
        if self.out_dir.exists() and not self.overwrite:
            raise CatalogError(f"The output folder {self.out_dir} already exists; pass --overwrite to replace it.")
        parent = self.out_dir.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.tmp_dir = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.tmp-", dir=parent))
        except OSError as exc:
            raise CatalogError(f"The output folder {self.out_dir} cannot be written ({exc.strerror}).") from None
        (self.tmp_dir / "images").mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.tmp_dir is not None and self.tmp_dir.exists():
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
        if exc_type is None and not self._finished:
            raise CatalogError("CatalogWriter closed without finish(); nothing was written.")

    @property
    def path(self) -> Path:
        """The temporary folder being written (only inside the ``with`` block).

        Raises
        ------
        AssertionError
            When used outside the ``with`` block.
        """
        assert self.tmp_dir is not None, "use CatalogWriter as a context manager"
        return self.tmp_dir

    def save_image(self, relative: str, image: Image.Image | bytes) -> None:
        """Save ``image`` at ``relative`` in the catalog folder (a PIL image by its suffix; bytes as they are).

        Raises
        ------
        CatalogError
            When ``relative`` points outside the catalog folder.
        OSError
            When the file cannot be written.
        """
        target = (self.path / relative).resolve()
        if not target.is_relative_to(self.path.resolve()):
            raise CatalogError(f"Image path {relative} points outside the catalog folder.")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(image, bytes):
            target.write_bytes(image)
        else:
            image.save(target)

    def write_table(self, relative: str, table: pd.DataFrame) -> None:
        """Write ``table`` as parquet (without its index) at ``relative`` in the catalog folder.

        Raises
        ------
        OSError
            When the file cannot be written.
        """
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(target, index=False)

    def write_json(self, relative: str, payload) -> None:
        """Write the JSON-able ``payload`` (indented, UTF-8) at ``relative`` in the catalog folder.

        Raises
        ------
        TypeError
            When ``payload`` holds a value JSON cannot store.
        OSError
            When the file cannot be written.
        """
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")

    def write_jsonl(self, relative: str, records: Iterable[dict]) -> None:
        """Write ``records`` as JSON lines (one object a line, UTF-8) at ``relative`` in the catalog folder.

        Raises
        ------
        TypeError
            When a record holds a value JSON cannot store.
        OSError
            When the file cannot be written.
        """
        target = self.path / relative
        with target.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def finish(
        self,
        items: pd.DataFrame,
        meta: dict,
        interactions: pd.DataFrame | None = None,
        outfits: list[dict] | None = None,
        dialogues: list[dict] | None = None,
        captions: list[dict] | None = None,
    ) -> Catalog:
        """Write the tables, validate the whole folder, and move it into place."""
        validate_items(items)
        self.write_table("items.parquet", items)
        counts = {"items": int(len(items))}
        if interactions is not None:
            self.write_table("interactions.parquet", interactions)
            counts["interactions"] = int(len(interactions))
            counts["users"] = int(interactions["user_id"].nunique())
        for name, records in (("outfits", outfits), ("dialogues", dialogues), ("captions", captions)):
            if records is not None:
                self.write_jsonl(f"{name}.jsonl", records)
                counts[name] = len(records)
        meta = {"format_version": FORMAT_VERSION, **meta, "counts": counts}
        meta.setdefault("name", self.out_dir.name)
        self.write_json("catalog.json", meta)
        Catalog.load(self.path)  # the folder must read back before it may take the real name
        if self.out_dir.exists():
            old = self.out_dir.with_name(f".{self.out_dir.name}.old-{os.getpid()}")
            os.replace(self.out_dir, old)
            os.replace(self.path, self.out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.path, self.out_dir)
        self._finished = True
        logger.info("wrote catalog %s (%s)", self.out_dir, counts)
        return Catalog.load(self.out_dir, check_images=False)
