"""A small synthetic catalog for the encoder/artifact/index tests: coloured shapes in four categories.

Independent of the built-in world so these tests do not depend on the generator; written with the one
catalog writer the project has (:class:`recsys.catalog.CatalogWriter`).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from recsys.catalog import Catalog, CatalogWriter


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch, BLAS and OpenMP on one thread, restoring the previous settings afterwards.

    The test machines' two cores are shared by several processes; there, multi-threaded OpenMP kernels
    spin-wait for each other and run ten times slower than one thread does.
    """
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(previous)

CATEGORIES = {  # category -> (slot, shape)
    "tshirt": ("top", "square"),
    "skirt": ("bottom", "triangle"),
    "sneakers": ("shoes", "ellipse"),
    "hat": ("accessory", "diamond"),
}
COLOURS = {"red": (220, 30, 40), "blue": (30, 60, 200), "green": (40, 160, 60), "yellow": (240, 200, 30), "black": (20, 20, 20)}


def draw_item(shape: str, colour: tuple[int, int, int], rng: np.random.Generator, size: int = 96) -> Image.Image:
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    margin = int(rng.integers(8, 20))
    box = (margin, margin, size - margin, size - margin)
    if shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "ellipse":
        draw.ellipse(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(size // 2, margin), (size - margin, size - margin), (margin, size - margin)], fill=colour)
    else:
        draw.polygon([(size // 2, margin), (size - margin, size // 2), (size // 2, size - margin), (margin, size // 2)], fill=colour)
    return image


def write_synthetic_catalog(out_dir: str | Path, n_items: int = 40, seed: int = 0) -> Catalog:
    """Write ``n_items`` shapes (categories round-robin, random colours) to ``out_dir`` and return the catalog."""
    rng = np.random.default_rng(seed)
    rows = []
    names = list(CATEGORIES)
    with CatalogWriter(out_dir, overwrite=True) as writer:
        for number in range(n_items):
            category = names[number % len(names)]
            slot, shape = CATEGORIES[category]
            colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
            relative = f"images/item_{number:04d}.png"
            writer.save_image(relative, draw_item(shape, COLOURS[colour], rng))
            rows.append(
                {
                    "item_id": f"item_{number:04d}",
                    "category": category,
                    "slot": slot,
                    "title": f"{colour} {category}",
                    "description": f"A plain {colour} {category} drawn as a {shape}, number {number}.",
                    "image_path": relative,
                    "color": colour,
                }
            )
        return writer.finish(items=pd.DataFrame(rows), meta={"name": Path(out_dir).name, "seed": seed, "source": "synthetic"})


def tiny_open_clip_spec(folder: Path, name: str) -> str:
    """The spec of a one-layer open_clip model (16-dimensional joint space, random weights) saved in ``folder``
    under the architecture ``name``: the real loading code, a checkpoint small enough for a unit test."""
    import json

    import open_clip
    import torch

    config = {"embed_dim": 16,
              "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
              "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (folder / f"{name}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / f"{name}.json")
    torch.manual_seed(0)
    torch.save(open_clip.create_model(name).state_dict(), folder / "tiny.pt")
    return f"open_clip:{name}:{folder / 'tiny.pt'}"
