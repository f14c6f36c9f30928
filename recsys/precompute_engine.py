"""Precompute engines: what reads, decodes and encodes a catalog's images for :func:`recsys.precompute.precompute`.

An engine has ``name``, ``check()`` (raise :class:`EngineError` when it cannot run, before any work),
``encode_images(catalog, encoder, positions, batch_size, with_maps)`` (batches of ``(pooled, maps, errors)``
covering ``positions`` in order) and ``describe()`` (a dict the manifest's timings record). An image that cannot be
read (damaged, cut short, not an image) does not stop the run: it is encoded as a blank picture and its row's
``errors`` entry says why ("" for the others); the precompute marks it unavailable. Everything else -- planning the
shards, the feature-map PCA, the text, the assembly and the manifest -- is :mod:`recsys.precompute`'s, shared by
every engine. Engines are built by name with :func:`create_engine`: ``"local"`` (:class:`LocalEngine`, here) and
``"ray"`` (:class:`recsys.precompute_ray.RayEngine`, imported on first use: Ray is an optional extra).
"""

from __future__ import annotations

import importlib
import os
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np
import torch
from PIL import Image

from recsys.catalog import Catalog
from recsys.encoders import Encoder


#: What PIL and the catalog raise for an image file that cannot be used: damaged or cut short (OSError, SyntaxError,
#: EOFError), not an image (``UnidentifiedImageError``, an OSError), absurd dimensions (ValueError,
#: ``DecompressionBombError``), a path outside the catalog (``CatalogError``, a ValueError).
IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def read_item_image(catalog: Catalog, item_id: str, preprocess: Callable) -> tuple[torch.Tensor, str]:
    """``(pixels, error)``: the item's preprocessed image and "", or a blank (white) picture's pixels and one
    clause saying why the image cannot be read -- so one damaged photo never stops a catalog's run."""
    try:
        return preprocess(catalog.load_image(item_id)), ""
    except IMAGE_ERRORS as exc:
        reason = (str(exc).splitlines() or [""])[0][:200] or type(exc).__name__
        path = catalog.items.loc[catalog.items["item_id"] == item_id, "image_path"]
        where = f"{path.iloc[0]} " if len(path) else ""
        return preprocess(Image.new("RGB", (224, 224), (255, 255, 255))), f"its image {where}cannot be read ({reason})"


class _CatalogImages(torch.utils.data.Dataset):
    """Catalog images at given row positions, decoded and preprocessed inside DataLoader workers:
    ``(pixels, error)`` per row (:func:`read_item_image`)."""

    def __init__(self, catalog: Catalog, positions: np.ndarray, preprocess: Callable):
        self.catalog = catalog
        self.positions = positions
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        item_id = self.catalog.items["item_id"].iloc[int(self.positions[index])]
        return read_item_image(self.catalog, item_id, self.preprocess)


def default_num_workers(device: str = "cpu") -> int:
    """DataLoader workers decoding images on ``device``: none on the CPU, one per spare core (at most 4) for a GPU.

    On the CPU the network already runs on every core, so a worker process only takes time from it: on 2 cores the
    demo world encodes at 49.6 images/s with no worker against 42.6 with one (``effnet-lite0``, batches of 32).
    """
    if not str(device).startswith("cuda"):
        return 0
    return min(4, max(0, (os.cpu_count() or 1) - 1))


class EngineError(RuntimeError):
    """An engine cannot run (not installed, cluster unreachable, resources missing); one sentence says why."""


class Engine(Protocol):
    """What :func:`recsys.precompute.precompute` asks of an engine (see the module docstring)."""

    name: str

    def check(self) -> None:
        """Raise :class:`EngineError` when the engine cannot run here (before any work starts)."""

    def encode_images(self, catalog: Catalog, encoder: Encoder, positions: np.ndarray, batch_size: int,
                      with_maps: bool) -> Iterator[tuple[np.ndarray, np.ndarray | None, list[str]]]:
        """Batches ``(pooled (b, dim), maps (b, C, h, w) or None, errors (b,))`` of the rows ``positions``, in that
        order; ``errors[k]`` is "" or why row ``k``'s image cannot be read (its vectors are a blank picture's)."""

    def describe(self) -> dict:
        """A JSON-ready record of the engine and its settings, for the manifest's timings."""


class LocalEngine:
    """Images decoded by a DataLoader (in ``num_workers`` worker processes) and encoded in this process.

    Parameters
    ----------
    num_workers : int, optional
        DataLoader workers decoding images; default :func:`default_num_workers` for the encoder's device.
    """

    name = "local"

    def __init__(self, num_workers: int | None = None):
        self.num_workers = num_workers

    def encode_images(
        self, catalog: Catalog, encoder: Encoder, positions: np.ndarray, batch_size: int, with_maps: bool,
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None, list[str]]]:
        """Encode the images of the catalog rows ``positions``, in that order.

        Yields
        ------
        tuple
            ``(pooled, maps, errors)`` per batch: ``(b, dim)`` L2-normalized float32, with ``with_maps`` the raw
            ``(b, C, h, w)`` float32 feature maps (else None), and per row "" or why its image cannot be read
            (:func:`read_item_image`); the batches cover ``positions`` in order.
        """
        workers = default_num_workers(encoder.device) if self.num_workers is None else self.num_workers
        loader = torch.utils.data.DataLoader(
            _CatalogImages(catalog, np.asarray(positions, dtype=np.int64), encoder.preprocess),
            batch_size=batch_size,
            shuffle=False,
            num_workers=workers,
            pin_memory=encoder.device.startswith("cuda"),
            persistent_workers=False,
        )
        for pixels, errors in loader:
            if with_maps:
                pooled, maps = encoder.encode_pixels(pixels, return_feature_maps=True)
                yield pooled, maps, list(errors)
            else:
                yield encoder.encode_pixels(pixels), None, list(errors)

    def check(self) -> None:
        """Nothing to check: the local engine needs only the project's requirements."""

    def describe(self) -> dict:
        """What the manifest's timings record about the engine."""
        return {"name": self.name}


#: Engines by name: the class, or ``"module:Class"`` for one imported on first use (Ray is an optional extra).
ENGINES: dict[str, type | str] = {"local": LocalEngine, "ray": "recsys.precompute_ray:RayEngine"}


def list_engines() -> list[str]:
    """Names :func:`create_engine` accepts."""
    return sorted(ENGINES)


def create_engine(name: str, **params):
    """The engine ``name`` (see :data:`ENGINES`) built with ``params``, e.g. ``create_engine("ray", address="auto")``.

    Building an engine imports nothing heavy; its :meth:`Engine.check` says when its library is missing.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name not in ENGINES:
        raise ValueError(f"Unknown precompute engine '{name}'; choose one of {', '.join(list_engines())}.")
    target = ENGINES[name]
    if isinstance(target, str):
        module, _, attribute = target.partition(":")
        target = getattr(importlib.import_module(module), attribute)
    return target(**params)


def iter_rows(batches: Iterable[tuple]) -> Iterator[tuple[np.ndarray, np.ndarray | None, str]]:
    """``(pooled, maps, error)`` of one item at a time from an engine's batches, in order (``maps`` None without
    maps; ``error`` "" for a readable image)."""
    for pooled, maps, errors in batches:
        for k in range(len(pooled)):
            yield pooled[k], (None if maps is None else maps[k]), str(errors[k])
