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
    """Fit ``image`` into a ``size`` x ``size`` pixel square without cropping (letterboxed on white).

    Every card of a grid then has the same height whatever the photo's aspect ratio, so rows line up. The image
    is turned upright by its EXIF orientation first.

    Raises
    ------
    ValueError
        When ``size`` is not positive.
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

    Used for static reports and screenshots; the app itself lays cards out with Streamlit columns. ``cell`` and
    ``gap`` are in pixels; a label adds 16 pixels under its cell.

    Raises
    ------
    ValueError
        When ``columns`` is not positive, or ``labels`` is given with another length than ``images``.
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


def embedding_map(coords, categories: Sequence[str], titles: Sequence[str], query_xy=None, result_positions=(),
                  query_label: str = "query"):
    """A plotly scatter of the catalog map coloured by category, the query as a star and its results ringed.

    ``coords`` is ``(n, 2)``; ``query_xy`` an ``(x, y)`` pair or None; ``result_positions`` row positions.
    """
    import numpy as np
    import plotly.graph_objects as go

    coords = np.asarray(coords)
    categories = np.asarray(categories, dtype=str)
    titles = np.asarray(titles, dtype=str)
    figure = go.Figure()
    for category in sorted(set(categories)):
        rows = np.flatnonzero(categories == category)
        figure.add_trace(go.Scattergl(
            x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=category,
            marker={"size": 5, "opacity": 0.55}, text=titles[rows], hovertemplate="%{text}<extra>" + category + "</extra>",
        ))
    results = np.asarray(result_positions, dtype=int)
    if len(results):
        figure.add_trace(go.Scatter(
            x=coords[results, 0], y=coords[results, 1], mode="markers", name="results",
            marker={"size": 13, "color": "rgba(0,0,0,0)", "line": {"width": 2, "color": "#111"}},
            text=titles[results], hovertemplate="%{text}<extra>result</extra>",
        ))
    if query_xy is not None:
        figure.add_trace(go.Scatter(
            x=[query_xy[0]], y=[query_xy[1]], mode="markers", name=query_label,
            marker={"size": 20, "symbol": "star", "color": "#e4572e", "line": {"width": 1.5, "color": "#111"}},
            hovertemplate=f"{query_label}<extra></extra>",
        ))
    figure.update_layout(height=520, margin={"l": 0, "r": 0, "t": 10, "b": 0}, legend={"itemsizing": "constant"},
                         xaxis={"visible": False}, yaxis={"visible": False}, plot_bgcolor="white")
    return figure


# ---------------------------------------------------------------------- attention heatmaps (For you page)
#: Anchor colours of the heatmap colour scale (low -> high), a perceptually ordered dark-blue-to-yellow ramp.
HEATMAP_COLORS = ((48, 18, 59), (70, 107, 227), (40, 187, 236), (50, 241, 152), (164, 252, 60), (251, 185, 56),
                  (228, 70, 10), (122, 4, 3))


def _heat_colors(values):
    import numpy as np

    anchors = np.asarray(HEATMAP_COLORS, dtype=np.float32)
    positions = np.linspace(0.0, 1.0, len(anchors))
    flat = np.clip(np.asarray(values, dtype=np.float32).ravel(), 0.0, 1.0)
    channels = [np.interp(flat, positions, anchors[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).reshape(*np.shape(values), 3)


def normalize_heat(weights):
    """Region weights rescaled to ``[0, 1]`` (a constant map becomes all zeros)."""
    import numpy as np

    weights = np.asarray(weights, dtype=np.float64)
    low, high = float(weights.min()), float(weights.max())
    return np.zeros_like(weights) if high - low < 1e-12 else (weights - low) / (high - low)


def heatmap_overlay(image: Image.Image, weights, opacity: float = 0.5, size: int | None = None) -> Image.Image:
    """``image`` with a smooth heatmap of region ``weights`` (an ``h x w`` grid, e.g. 7x7 attention) blended on top.

    The grid is upsampled bicubically over the whole (square-padded) image, as the encoder saw it, so each cell
    lands on the part of the picture its region covers; ``opacity`` 0 shows the image alone, 1 the heatmap alone.
    The result is ``size`` x ``size`` pixels (default: the image's longer side).

    Raises
    ------
    ValueError
        When ``opacity`` is outside ``[0, 1]`` or ``weights`` is not a non-empty 2-D grid.
    """
    import numpy as np

    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"The heatmap opacity must lie between 0 and 1, got {opacity}.")
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.size == 0:
        raise ValueError(f"Region weights must form a 2-D grid, got shape {weights.shape}.")
    base = square_thumbnail(image, size or max(image.size))
    heat = Image.fromarray((normalize_heat(weights) * 255).astype(np.uint8), mode="L")
    heat = heat.resize(base.size, Image.Resampling.BICUBIC)
    level = np.asarray(heat, dtype=np.float32) / 255.0
    colored = _heat_colors(level)
    # Cold regions are tinted less than hot ones, so the picture stays readable where nothing drove the score.
    alpha = float(opacity) * (0.3 + 0.7 * level)[..., None] if opacity < 1.0 else 1.0
    blended = (1.0 - alpha) * np.asarray(base, dtype=np.float32) + alpha * colored
    return Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8), mode="RGB")


def heatmap_legend(width: int = 256, height: int = 14) -> Image.Image:
    """The heatmap's colour scale, low (left) to high (right)."""
    import numpy as np

    ramp = np.tile(np.linspace(0.0, 1.0, width)[None, :], (height, 1))
    return Image.fromarray(_heat_colors(ramp).astype(np.uint8), mode="RGB")


def mark_peak(image: Image.Image, weights, color=(255, 255, 255)) -> Image.Image:
    """A copy of ``image`` (already the heatmap's size) with the strongest region's cell outlined."""
    import numpy as np

    weights = np.asarray(weights)
    row, column = np.unravel_index(int(np.argmax(weights)), weights.shape)
    h, w = weights.shape
    out = image.copy()
    cell_w, cell_h = out.width / w, out.height / h
    ImageDraw.Draw(out).rectangle((column * cell_w, row * cell_h, (column + 1) * cell_w - 1, (row + 1) * cell_h - 1),
                                  outline=color, width=max(1, out.width // 112))
    return out


def thumbnail_bytes(path, size: int) -> bytes:
    """The encoded square thumbnail of the image file ``path``, at most ``size`` pixels a side: a small RGB PNG or
    JPEG file as it is (the generated world's 224 px illustrations are not re-encoded), else a JPEG for a JPEG
    photo and a PNG otherwise.

    Raises
    ------
    OSError, SyntaxError, ValueError
        When the file cannot be read as an image (PIL's errors).
    """
    from pathlib import Path

    with Image.open(path) as image:
        if image.format in ("PNG", "JPEG") and image.mode == "RGB" and max(image.size) <= size:
            return Path(path).read_bytes()
        image.load()
        photo_like = image.format == "JPEG"
        thumb = square_thumbnail(image, size)
    return encode_image(thumb, "JPEG" if photo_like else "PNG")

