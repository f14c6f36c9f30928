"""Flat product illustrations of the built-in world's items.

Each garment is a union of polygons in a unit square (so variants such as sleeve and length are small
changes of geometry; :mod:`recsys.data.garments` holds it as data), filled with a colour, a pattern and a material texture, outlined, and finished with
one localized detail whose bounding box is returned so attention maps can be checked against it.
Everything is drawn at twice the output size and downsampled, which gives clean anti-aliased edges.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

IMAGE_SIZE = 224
_SCALE = 2
_CANVAS = IMAGE_SIZE * _SCALE
BACKGROUND = (245, 244, 241)

COLORS: dict[str, tuple[int, int, int]] = {
    "black": (38, 38, 42),
    "white": (236, 236, 232),
    "grey": (140, 142, 146),
    "navy": (34, 48, 94),
    "beige": (214, 196, 160),
    "brown": (120, 78, 46),
    "red": (200, 34, 42),
    "orange": (236, 122, 28),
    "yellow": (240, 200, 40),
    "green": (46, 140, 70),
    "blue": (46, 110, 210),
    "purple": (118, 62, 160),
    "pink": (236, 130, 170),
}
PATTERNS = ("solid", "striped", "dotted", "checked", "floral")
MATERIALS = ("cotton", "denim", "leather", "knit", "silk")
# The garments' geometry is data of its own module; these names stay importable from here.
from recsys.data.garments import (  # noqa: E402,F401
    DETAIL_PLACES, DETAILS, DRAWINGS, PLACED_CATEGORIES, PLACED_DETAILS, Box, ItemLook, Shape, garment_shape,
)


# ---------------------------------------------------------------- fills
def _shade(rgb, factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(v * factor, 0, 255)) for v in rgb)


def _mix(rgb, other, t: float) -> tuple[int, int, int]:
    return tuple(int(round(a * (1 - t) + b * t)) for a, b in zip(rgb, other))


def _luma(rgb) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def contrast_color(rgb) -> tuple[int, int, int]:
    """A colour that stands out on ``rgb``: a dark shade on light colours, a light tint on dark ones."""
    return _shade(rgb, 0.45) if _luma(rgb) > 150 else _mix(rgb, (255, 255, 255), 0.7)


def _pattern_layer(pattern: str, base, rng: np.random.Generator) -> Image.Image:
    layer = Image.new("RGB", (_CANVAS, _CANVAS), base)
    if pattern == "solid":
        return layer
    ink = contrast_color(base)
    draw = ImageDraw.Draw(layer)
    offset = int(rng.integers(0, 24))
    if pattern == "striped":
        for y in range(-offset, _CANVAS, 30):
            draw.rectangle((0, y, _CANVAS, y + 11), fill=ink)
    elif pattern == "dotted":
        for row, y in enumerate(range(-offset, _CANVAS, 30)):
            for x in range((row % 2) * 15 - offset, _CANVAS, 30):
                draw.ellipse((x - 6, y - 6, x + 6, y + 6), fill=ink)
    elif pattern == "checked":
        overlay = Image.new("RGB", layer.size, ink)
        mask = Image.new("L", layer.size, 0)
        mdraw = ImageDraw.Draw(mask)
        for v in range(-offset, _CANVAS, 36):
            mdraw.rectangle((v, 0, v + 17, _CANVAS), fill=110)
        horizontal = Image.new("L", layer.size, 0)
        hdraw = ImageDraw.Draw(horizontal)
        for v in range(-offset, _CANVAS, 36):
            hdraw.rectangle((0, v, _CANVAS, v + 17), fill=110)
        mask = Image.fromarray(np.minimum(np.asarray(mask, np.int32) + np.asarray(horizontal, np.int32), 230).astype(np.uint8))
        layer = Image.composite(overlay, layer, mask)
    elif pattern == "floral":
        petal = _mix(ink, (255, 120, 160), 0.35) if _luma(base) < 150 else ink
        for row, y in enumerate(range(-offset, _CANVAS + 20, 42)):
            for x in range((row % 2) * 21 - offset, _CANVAS + 20, 42):
                jx, jy = rng.integers(-5, 6, size=2)
                cx, cy = x + int(jx), y + int(jy)
                for k in range(5):
                    angle = 2 * np.pi * k / 5
                    px, py = cx + 7 * np.cos(angle), cy + 7 * np.sin(angle)
                    draw.ellipse((px - 5, py - 5, px + 5, py + 5), fill=petal)
                draw.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), fill=(244, 206, 66))
    else:
        raise ValueError(f"Unknown pattern '{pattern}'.")
    return layer


@lru_cache(maxsize=None)
def _texture(material: str) -> np.ndarray:
    """A multiplicative luminance texture for a material, the same for every item (it is read-only)."""
    yy, xx = np.mgrid[0:_CANVAS, 0:_CANVAS].astype(np.float32)
    noise = np.random.default_rng(7).normal(0.0, 1.0, size=(_CANVAS, _CANVAS)).astype(np.float32)
    if material == "cotton":
        tex = 1.0 + 0.025 * noise
    elif material == "denim":
        tex = 1.0 + 0.09 * np.sign(np.sin((xx + yy) * np.pi / 4.0)) + 0.04 * noise
    elif material == "knit":
        tex = 1.0 + 0.10 * np.sin(xx * np.pi / 5.0) ** 8 * -1 + 0.05 * np.abs(np.sin((yy + np.abs((xx % 10) - 5)) * np.pi / 8))
    elif material == "leather":
        tex = 1.0 + 0.16 * np.exp(-((xx - 0.35 * _CANVAS) ** 2) / (2 * (0.09 * _CANVAS) ** 2)) + 0.02 * noise
    elif material == "silk":
        tex = 1.0 + 0.14 * np.sin((xx * 0.7 + yy) * np.pi / 110.0)
    else:
        raise ValueError(f"Unknown material '{material}'.")
    tex = tex.astype(np.float32)
    tex.setflags(write=False)
    return tex


# ---------------------------------------------------------------- details
def _draw_detail(draw: ImageDraw.ImageDraw, detail: str, box, base) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    dark = _shade(base, 0.45) if _luma(base) > 60 else (200, 200, 200)
    if detail == "pocket":
        draw.rectangle(box, fill=_shade(base, 0.88), outline=dark, width=4)
        draw.rectangle((x0, y0, x1, y0 + h * 0.28), fill=_shade(base, 0.78), outline=dark, width=4)
    elif detail == "logo":
        disc = (250, 250, 250) if _luma(base) < 170 else (30, 30, 36)
        accent = (220, 40, 50) if disc[0] > 128 else (250, 210, 60)
        draw.ellipse(box, fill=disc)
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(w, h) * 0.32
        star = []
        for k in range(10):
            radius = r if k % 2 == 0 else r * 0.45
            angle = -np.pi / 2 + k * np.pi / 5
            star.append((cx + radius * np.cos(angle), cy + radius * np.sin(angle)))
        draw.polygon(star, fill=accent)
    elif detail == "buttons":
        vertical = h >= w
        count = max(2, int((h if vertical else w) // 34))
        r = min(w, h) * 0.42 if min(w, h) < 30 else 9
        for k in range(count):
            t = (k + 0.5) / count
            cx = (x0 + x1) / 2 if vertical else x0 + t * w
            cy = y0 + t * h if vertical else (y0 + y1) / 2
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(226, 190, 90), outline=(90, 70, 30), width=2)
    elif detail == "zipper":
        vertical = h >= w
        metal, teeth = (180, 182, 188), (90, 92, 98)
        if vertical:
            cx = (x0 + x1) / 2
            draw.line((cx, y0, cx, y1), fill=metal, width=6)
            for y in np.arange(y0, y1, 7):
                draw.line((cx - 6, y, cx + 6, y), fill=teeth, width=2)
            draw.rectangle((cx - 7, y0, cx + 7, y0 + 20), fill=metal, outline=teeth, width=2)
        else:
            cy = (y0 + y1) / 2
            draw.line((x0, cy, x1, cy), fill=metal, width=6)
            for x in np.arange(x0, x1, 7):
                draw.line((x, cy - 6, x, cy + 6), fill=teeth, width=2)
            draw.rectangle((x1 - 20, cy - 7, x1, cy + 7), fill=metal, outline=teeth, width=2)
    elif detail == "bow":
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        ribbon = (214, 40, 90) if _luma(base) > 110 or base[0] < 150 else (250, 250, 250)
        if _hue_close(base, ribbon):
            ribbon = (250, 250, 250)
        draw.polygon([(x0, y0), (cx, cy), (x0, y1)], fill=ribbon, outline=_shade(ribbon, 0.6))
        draw.polygon([(x1, y0), (cx, cy), (x1, y1)], fill=ribbon, outline=_shade(ribbon, 0.6))
        r = min(w, h) * 0.18
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_shade(ribbon, 0.8))
    else:
        raise ValueError(f"Unknown detail '{detail}'.")


def _hue_close(a, b) -> bool:
    return sum(abs(int(x) - int(y)) for x, y in zip(a, b)) < 120


# ---------------------------------------------------------------- render
def _placer(look: ItemLook):
    def place(x: float, y: float) -> tuple[float, float]:
        return (
            (0.5 + (x - 0.5) * look.scale + look.shift_x) * _CANVAS,
            (0.5 + (y - 0.5) * look.scale + look.shift_y) * _CANVAS,
        )

    def place_box(box: Box) -> tuple[float, float, float, float]:
        (ax, ay), (bx, by) = place(box[0], box[1]), place(box[2], box[3])
        return ax, ay, bx, by

    return place, place_box


def detail_box(look: ItemLook) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` in output pixels of the item's localized detail, None when it has none."""
    if not look.detail or look.detail == "none":
        return None
    _, place_box = _placer(look)
    x0, y0, x1, y1 = (v / _SCALE for v in place_box(garment_shape(look).details[look.detail]))
    return (max(0, int(x0) - 1), max(0, int(y0) - 1), min(IMAGE_SIZE, int(np.ceil(x1)) + 1),
            min(IMAGE_SIZE, int(np.ceil(y1)) + 1))


def render_item(look: ItemLook, rng: np.random.Generator) -> Image.Image:
    """Draw one item as a 224x224 RGB illustration; ``rng`` only moves the pattern's phase."""
    shape = garment_shape(look)
    place, place_box = _placer(look)

    mask = Image.new("L", (_CANVAS, _CANVAS), 0)
    mdraw = ImageDraw.Draw(mask)
    for polygon in shape.polygons:
        mdraw.polygon([place(x, y) for x, y in polygon], fill=255)
    for ellipse in shape.ellipses:
        mdraw.ellipse(place_box(ellipse), fill=255)
    for cutout in shape.cutouts:
        mdraw.ellipse(place_box(cutout), fill=0)

    base = COLORS[look.color]
    fill = np.asarray(_pattern_layer(look.pattern, base, rng), dtype=np.float32)
    fill *= _texture(look.material)[..., None]
    fill_image = Image.fromarray(np.clip(fill, 0, 255).astype(np.uint8))

    image = Image.new("RGB", (_CANVAS, _CANVAS), BACKGROUND)
    outline = Image.new("RGB", (_CANVAS, _CANVAS), _shade(base, 0.5) if _luma(base) > 60 else (12, 12, 14))
    # A box blur thresholded just above zero is a dilation, and far faster than a rank filter.
    image.paste(outline, mask=mask.filter(ImageFilter.BoxBlur(3)).point(lambda v: 255 if v > 8 else 0))
    image.paste(fill_image, mask=mask)

    draw = ImageDraw.Draw(image)
    seam = _shade(base, 0.6) if _luma(base) > 60 else (90, 90, 96)
    for line in shape.seams:
        draw.line([place(x, y) for x, y in line], fill=seam, width=4, joint="curve")
    if look.category == "sneakers":  # a white rubber sole reads as "sneaker" at a glance
        draw.rectangle(place_box((0.13, 0.64, 0.89, 0.70)), fill=(250, 250, 250), outline=(170, 170, 170), width=3)
    if look.category == "handbag":
        draw.arc(place_box((0.32, 0.18, 0.68, 0.62)), start=180, end=360, fill=_shade(base, 0.55), width=14)
    if look.detail and look.detail != "none":
        _draw_detail(draw, look.detail, place_box(shape.details[look.detail]), base)
    return image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)
