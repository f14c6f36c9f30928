"""The shard store of the precompute pipeline: atomic ``.npy`` and JSON writes, shard bookkeeping, and assembly.

A catalog is encoded in shards of consecutive rows; each shard's arrays are written atomically under
``<artifacts>/shards/``, so an interrupted run resumes where it stopped, and the full arrays are assembled from
the shards through a memory map (the whole array never sits in RAM).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from recsys.utils import load_array, read_json


def save_npy(path: Path, values: np.ndarray) -> None:
    """Write ``values`` to ``path`` atomically, so an interrupted run never leaves a half-written array behind."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        np.save(handle, values, allow_pickle=False)
    os.replace(tmp, path)


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def load_npy(path: Path) -> np.ndarray | None:
    """The array in ``path``, or None when it is missing or unreadable -- empty, a git-lfs pointer, cut short,
    another kind of file (a shard to recompute)."""
    try:
        return load_array(path)
    except (OSError, ValueError):
        return None


@dataclass
class Shard:
    """Rows ``start:stop`` of the catalog, shard ``number``; its file for an array kind is :meth:`name`."""

    number: int
    start: int
    stop: int

    def name(self, kind: str) -> str:
        """The shard's file name for array kind ``kind``, e.g. ``image_00003.npy``."""
        return f"{kind}_{self.number:05d}.npy"


def plan_shards(n_items: int, shard_size: int) -> list[Shard]:
    """Consecutive shards of ``shard_size`` rows (the last one shorter) covering ``n_items`` rows."""
    return [Shard(i, start, min(start + shard_size, n_items)) for i, start in enumerate(range(0, n_items, shard_size))]


def shard_done(shard_dir: Path, shard: Shard, kinds: tuple[str, ...], widths: dict | None = None) -> bool:
    """True when every array kind of ``shard`` is on disk with the shard's row count, the trailing shape
    ``widths[kind]`` when given (another encoder's shard of the same name is not done), and only finite values."""
    # Shards are written atomically and the state file pins what made them; a non-finite value can still come from
    # a damaged disk or a hand-edited file, and a shard holding one must be recomputed, not assembled again. So must
    # a shard whose list of unreadable images is damaged (absent is fine: nothing was unreadable, or an old run).
    listed = unavailable_path(shard_dir, shard)
    if "image" in kinds and listed.is_file():
        try:
            read_json(listed)
        except (OSError, ValueError):
            return False
    for kind in kinds:
        path = shard_dir / shard.name(kind)
        try:
            values = load_array(path, mmap_mode="r")
        except (OSError, ValueError):
            return False
        if values.shape[0] != shard.stop - shard.start:
            return False
        if widths and kind in widths and tuple(values.shape[1:]) != tuple(widths[kind]):
            return False
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            return False
    return True


def assemble(shard_dir: Path, shards: list[Shard], kind: str, target: Path) -> dict:
    """Concatenate a kind's shards into ``target`` through a memory map (the full array never sits in RAM).

    Returns the manifest entry ``{"path", "shape", "dtype"}`` of the written array.

    Raises
    ------
    OSError, ValueError
        When a shard file is missing or unreadable.
    """
    first = np.load(shard_dir / shards[0].name(kind), mmap_mode="r", allow_pickle=False)
    shape = (shards[-1].stop, *first.shape[1:])
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=first.dtype, shape=shape)
    for shard in shards:
        out[shard.start : shard.stop] = np.load(shard_dir / shard.name(kind), mmap_mode="r", allow_pickle=False)
    out.flush()
    del out
    os.replace(tmp, target)
    return {"path": target.name, "shape": list(shape), "dtype": str(first.dtype)}


def collect_shards(
    rows: Iterator[tuple[np.ndarray, np.ndarray | None, str]], shards: list[Shard], with_maps: bool,
    known: dict[int, tuple[np.ndarray, np.ndarray | None, str]] | None = None,
) -> Iterator[tuple[Shard, np.ndarray, np.ndarray | None, list[str]]]:
    """Yield each shard, complete, in order, as ``(shard, pooled, maps, errors)``: rows in ``known`` (position ->
    ``(pooled, maps, error)``, e.g. the PCA sample, already encoded) are taken from there, the others from ``rows``
    (which yields exactly the shards' other positions, in order); ``errors`` holds "" or why a row's image cannot
    be read."""
    known = known or {}
    for shard in shards:
        pooled, maps, errors = zip(*(known[p] if p in known else next(rows) for p in range(shard.start, shard.stop)))
        yield shard, np.stack(pooled), (np.stack(maps) if with_maps else None), list(errors)


def unavailable_path(shard_dir: Path, shard: Shard) -> Path:
    """The shard's list of items whose image could not be read, ``unavailable_<number>.json``
    (``{item_id: reason}``; written before the shard's arrays, so a finished shard always has it)."""
    return shard_dir / f"unavailable_{shard.number:05d}.json"


def read_unavailable(shard_dir: Path, shards: list[Shard], catalog) -> list[dict]:
    """``[{"row", "item_id", "reason"}, ...]`` of every shard's unreadable images, in catalog order. A shard without
    a readable list (written before lists existed, or damaged) counts as having none."""
    ids = catalog.items["item_id"].tolist()
    records = []
    for shard in shards:
        try:
            listed = read_json(unavailable_path(shard_dir, shard)) or {}
        except ValueError:
            listed = {}
        for row in range(shard.start, shard.stop):
            if ids[row] in listed:
                records.append({"row": row, "item_id": ids[row], "reason": str(listed[ids[row]])})
    return records
