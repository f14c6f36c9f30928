"""Pictures for the pages and reports: thumbnails and image grids (no Streamlit here).

Everything returns PIL images or encoded bytes, so pages, scripts and tests can all use it.
"""

from __future__ import annotations

import io
import logging
from typing import Sequence

from PIL import Image, ImageDraw, ImageOps

logger = logging.getLogger(__name__)

#: Background of letterboxed thumbnails and grid gaps; white matches the generated world's backgrounds.
BACKGROUND = (255, 255, 255)


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as RGB, with transparency flattened onto :data:`BACKGROUND`."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def square_thumbnail(image: Image.Image, size: int = 256) -> Image.Image:
    """Fit ``image`` into a ``size`` x ``size`` square without cropping (letterboxed on white).

    Every card of a grid then has the same height whatever the photo's aspect ratio, so rows line up.
    """
    if size <= 0:
        raise ValueError(f"A thumbnail size must be positive, got {size}.")
    image = ImageOps.exif_transpose(to_rgb(image))
    image = to_rgb(image)  # exif_transpose may hand back a copy in the original mode
    if image.size == (size, size):
        return image
    fitted = ImageOps.contain(image, (size, size), method=Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (size, size), BACKGROUND)
    canvas.paste(fitted, ((size - fitted.width) // 2, (size - fitted.height) // 2))
    return canvas


def placeholder(size: int = 256) -> Image.Image:
    """A light grey square with a cross, drawn where an image file cannot be read."""
    image = Image.new("RGB", (size, size), (236, 236, 236))
    draw = ImageDraw.Draw(image)
    margin = size // 3
    draw.line((margin, margin, size - margin, size - margin), fill=(190, 190, 190), width=max(1, size // 64))
    draw.line((margin, size - margin, size - margin, margin), fill=(190, 190, 190), width=max(1, size // 64))
    return image


def encode_image(image: Image.Image, format: str = "PNG") -> bytes:
    """The image encoded as ``format`` bytes (PNG keeps flat illustrations crisp; JPEG suits photos)."""
    buffer = io.BytesIO()
    if format.upper() in ("JPEG", "JPG"):
        to_rgb(image).save(buffer, format="JPEG", quality=88, optimize=True)
    else:
        image.save(buffer, format=format)
    return buffer.getvalue()


def image_grid(
    images: Sequence[Image.Image],
    columns: int = 6,
    cell: int = 160,
    gap: int = 6,
    labels: Sequence[str] | None = None,
) -> Image.Image:
    """A contact sheet: ``images`` as square cells, ``columns`` to a row, with an optional label under each.

    Used for static reports and screenshots; the app itself lays cards out with Streamlit columns.
    """
    if columns <= 0:
        raise ValueError(f"A grid needs at least one column, got {columns}.")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"A grid of {len(images)} images needs as many labels, got {len(labels)}.")
    rows = max(1, -(-len(images) // columns))
    label_height = 16 if labels is not None else 0
    width = columns * cell + (columns + 1) * gap
    height = rows * (cell + label_height) + (rows + 1) * gap
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for position, image in enumerate(images):
        row, column = divmod(position, columns)
        x = gap + column * (cell + gap)
        y = gap + row * (cell + label_height + gap)
        sheet.paste(square_thumbnail(image, cell), (x, y))
        if labels is not None:
            draw.text((x + 2, y + cell + 2), str(labels[position])[: cell // 6], fill=(40, 40, 40))
    return sheet
