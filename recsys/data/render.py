"""Flat product illustrations of the built-in world's items.

Each garment is a union of polygons in a unit square (so variants such as sleeve and length are small
changes of geometry), filled with a colour, a pattern and a material texture, outlined, and finished with
one localized detail whose bounding box is returned so attention maps can be checked against it.
Everything is drawn at twice the output size and downsampled, which gives clean anti-aliased edges.
"""

from __future__ import annotations

from dataclasses import dataclass
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
DETAILS = ("pocket", "logo", "buttons", "zipper", "bow")
#: Details that sit at one of two places on a garment (top, bottom, dress, outerwear): its upper or lower part
#: (a pocket on the chest or near the hem, at the hip or near the trousers' hem). Other details and other items have
#: one place per category.
PLACED_DETAILS = ("pocket", "logo")
DETAIL_PLACES = ("upper", "lower")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ItemLook:
    """What an item looks like: everything the renderer needs, nothing more."""

    category: str
    color: str
    pattern: str
    material: str
    sleeve: str | None = None
    length: str | None = None
    detail: str | None = None
    #: where a :data:`PLACED_DETAILS` detail sits on a garment (one of :data:`DETAIL_PLACES`); None: its usual place
    detail_place: str | None = None
    #: placement jitter: the drawing is scaled about the centre and shifted (fractions of the image)
    scale: float = 0.93
    shift_x: float = 0.0
    shift_y: float = 0.0


# ---------------------------------------------------------------- geometry (unit square)
def _sleeves(sleeve: str | None, shoulder_y: float = 0.22, width: float = 0.25) -> list[list[tuple]]:
    """Two sleeve polygons hanging from shoulders at x = 0.5 -/+ width."""
    left_shoulder = 0.5 - width
    if sleeve in (None, "sleeveless"):
        return []
    if sleeve == "short":
        left = [(left_shoulder, shoulder_y), (left_shoulder - 0.15, shoulder_y + 0.17),
                (left_shoulder - 0.06, shoulder_y + 0.25), (left_shoulder + 0.05, shoulder_y + 0.16)]
    else:
        left = [(left_shoulder, shoulder_y), (left_shoulder - 0.12, shoulder_y + 0.16),
                (left_shoulder - 0.17, shoulder_y + 0.60), (left_shoulder - 0.07, shoulder_y + 0.62),
                (left_shoulder + 0.04, shoulder_y + 0.22)]
    right = [(1.0 - x, y) for x, y in left]
    return [left, right]


def _top_body(hem: float = 0.86, width: float = 0.25, shoulder_y: float = 0.22, sleeveless: bool = False):
    if sleeveless:
        return [(0.40, shoulder_y - 0.04), (0.34, shoulder_y - 0.04), (0.32, shoulder_y + 0.14),
                (0.28, shoulder_y + 0.22), (0.28, hem), (0.72, hem), (0.72, shoulder_y + 0.22),
                (0.68, shoulder_y + 0.14), (0.66, shoulder_y - 0.04), (0.60, shoulder_y - 0.04)]
    x0, x1 = 0.5 - width, 0.5 + width
    return [(0.40, shoulder_y - 0.04), (x0, shoulder_y), (x0 + 0.04, shoulder_y + 0.18), (x0 + 0.03, hem),
            (x1 - 0.03, hem), (x1 - 0.04, shoulder_y + 0.18), (x1, shoulder_y), (0.60, shoulder_y - 0.04)]


_SKIRT_HEM = {"short": 0.50, "midi": 0.70, "long": 0.90}
_DRESS_HEM = {"short": 0.66, "midi": 0.80, "long": 0.93}
_TROUSER_HEM = {"short": 0.74, "midi": 0.82, "long": 0.92}
_SHORTS_HEM = {"short": 0.46, "midi": 0.58, "long": 0.66}
_COAT_HEM = {"short": 0.74, "midi": 0.84, "long": 0.93}


@dataclass
class Shape:
    """Polygons (filled), cut-outs (erased) and seam lines (drawn over the fill) of one item."""

    polygons: list
    cutouts: list
    ellipses: list  # filled ellipses as boxes
    seams: list  # polylines
    details: dict  # detail name -> box where it is drawn
    #: (detail, place) -> box, for the details that can sit at either of :data:`DETAIL_PLACES`
    placed: dict = None


def garment_shape(look: ItemLook) -> Shape:
    """The geometry of ``look``'s garment in unit-square coordinates (0..1, x right, y down; scaled to pixels later).

    Sleeve and length change the geometry; ``details`` holds a box ``(x0, y0, x1, y1)`` for every name in
    :data:`DETAILS`, at the place ``look.detail_place`` names for a placed detail (``placed`` holds both places).

    Raises
    ------
    ValueError
        When no drawing is defined for ``look.category``.
    """
    c = look.category
    sleeve, length = look.sleeve, look.length
    seams: list = []
    cutouts: list = []
    ellipses: list = []
    if c in ("tshirt", "shirt", "sweater", "tanktop", "hoodie"):
        sleeveless = c == "tanktop" or sleeve == "sleeveless"
        polygons = [_top_body(sleeveless=sleeveless)] + _sleeves(None if sleeveless else sleeve)
        if c == "tanktop":
            cutouts.append((0.40, 0.10, 0.60, 0.34))
        elif c == "shirt":
            polygons.append([(0.40, 0.18), (0.50, 0.30), (0.60, 0.18), (0.55, 0.15), (0.45, 0.15)])
            seams += [[(0.40, 0.18), (0.5, 0.30), (0.60, 0.18)], [(0.5, 0.30), (0.5, 0.86)]]
        elif c == "hoodie":
            ellipses.append((0.37, 0.06, 0.63, 0.28))
            seams += [[(0.29, 0.74), (0.71, 0.74)]]
        else:
            cutouts.append((0.42, 0.13, 0.58, 0.25))
        if c == "sweater":
            seams += [[(0.29, 0.80), (0.71, 0.80)]]
            if sleeve == "long":
                seams += [[(0.10, 0.76), (0.19, 0.78)], [(0.90, 0.76), (0.81, 0.78)]]
        details = {"pocket": (0.33, 0.33, 0.45, 0.45), "logo": (0.55, 0.32, 0.67, 0.44),
                   "buttons": (0.47, 0.32, 0.53, 0.80), "zipper": (0.47, 0.26, 0.53, 0.84),
                   "bow": (0.42, 0.22, 0.58, 0.32)}
        placed = {("pocket", "lower"): (0.31, 0.62, 0.43, 0.74), ("logo", "lower"): (0.57, 0.62, 0.69, 0.74)}
    elif c == "dress":
        hem = _DRESS_HEM.get(length or "midi", 0.80)
        sleeveless = sleeve in (None, "sleeveless")
        bodice = [(0.40, 0.14), (0.36, 0.14) if sleeveless else (0.30, 0.17), (0.35, 0.30), (0.36, 0.46),
                  (0.64, 0.46), (0.65, 0.30), (0.64, 0.14) if sleeveless else (0.70, 0.17), (0.60, 0.14)]
        skirt = [(0.36, 0.45), (0.64, 0.45), (0.78, hem), (0.22, hem)]
        polygons = [bodice, skirt] + _sleeves(None if sleeveless else sleeve, shoulder_y=0.17, width=0.20)
        cutouts.append((0.43, 0.08, 0.57, 0.22))
        seams.append([(0.36, 0.46), (0.64, 0.46)])
        details = {"pocket": (0.30, 0.55, 0.42, 0.66), "logo": (0.53, 0.26, 0.63, 0.36),
                   "buttons": (0.47, 0.22, 0.53, 0.44), "zipper": (0.47, 0.20, 0.53, 0.44),
                   "bow": (0.42, 0.41, 0.58, 0.51)}
        placed = {("pocket", "upper"): (0.38, 0.27, 0.48, 0.37), ("pocket", "lower"): details["pocket"],
                  ("logo", "lower"): (0.53, hem - 0.18, 0.63, hem - 0.08)}
    elif c in ("jacket", "coat"):
        hem = _COAT_HEM.get(length or ("short" if c == "jacket" else "long"))
        polygons = [_top_body(hem=hem, width=0.26, shoulder_y=0.20)] + _sleeves("long", shoulder_y=0.20, width=0.26)
        polygons.append([(0.41, 0.15), (0.47, 0.42), (0.50, 0.30), (0.53, 0.42), (0.59, 0.15)])
        seams += [[(0.41, 0.15), (0.47, 0.42), (0.5, 0.42), (0.5, hem)], [(0.59, 0.15), (0.53, 0.42), (0.5, 0.42)]]
        if c == "coat":
            seams.append([(0.28, 0.52), (0.72, 0.52)])
        details = {"pocket": (0.30, hem - 0.20, 0.44, hem - 0.09), "logo": (0.56, 0.28, 0.67, 0.39),
                   "buttons": (0.41, 0.44, 0.47, hem - 0.04), "zipper": (0.47, 0.42, 0.53, hem - 0.02),
                   "bow": (0.42, 0.48, 0.58, 0.58)}
        placed = {("pocket", "upper"): (0.30, 0.26, 0.40, 0.36), ("pocket", "lower"): details["pocket"],
                  ("logo", "lower"): (0.56, hem - 0.20, 0.68, hem - 0.09)}
    elif c in ("trousers", "shorts"):
        hem = (_TROUSER_HEM if c == "trousers" else _SHORTS_HEM).get(length or "long")
        spread = 0.06 if c == "trousers" else 0.10
        polygons = [[(0.30, 0.10), (0.70, 0.10), (0.71 + spread / 2, hem), (0.52, hem), (0.5, 0.36),
                     (0.48, hem), (0.29 - spread / 2, hem)]]
        seams += [[(0.30, 0.16), (0.70, 0.16)], [(0.5, 0.16), (0.5, 0.34)]]
        details = {"pocket": (0.33, 0.19, 0.44, 0.30), "logo": (0.58, 0.22, 0.68, 0.32),
                   "buttons": (0.47, 0.10, 0.53, 0.16), "zipper": (0.47, 0.16, 0.53, 0.34),
                   "bow": (0.56, 0.07, 0.70, 0.19)}
        low = max(hem - 0.16, 0.33)  # near the hem, below the hip even on short shorts
        placed = {("pocket", "lower"): (0.31, low, 0.42, low + 0.11), ("logo", "lower"): (0.58, low, 0.68, low + 0.10)}
    elif c == "skirt":
        hem = _SKIRT_HEM.get(length or "midi")
        polygons = [[(0.34, 0.10), (0.66, 0.10), (0.66, 0.16), (0.78, hem), (0.22, hem), (0.34, 0.16)]]
        seams += [[(0.34, 0.16), (0.66, 0.16)]]
        details = {"pocket": (0.30, 0.22, 0.42, 0.33), "logo": (0.56, 0.22, 0.66, 0.32),
                   "buttons": (0.47, 0.18, 0.53, hem - 0.04), "zipper": (0.47, 0.16, 0.53, min(hem - 0.04, 0.42)),
                   "bow": (0.42, 0.07, 0.58, 0.19)}
        placed = {("pocket", "lower"): (0.30, hem - 0.15, 0.42, hem - 0.04),
                  ("logo", "lower"): (0.57, hem - 0.15, 0.67, hem - 0.05)}
    elif c == "sneakers":
        polygons = [[(0.14, 0.56), (0.20, 0.42), (0.40, 0.40), (0.52, 0.50), (0.74, 0.54), (0.86, 0.60),
                     (0.88, 0.66), (0.14, 0.66)]]
        ellipses = []
        seams += [[(0.40, 0.42), (0.36, 0.55)], [(0.45, 0.46), (0.41, 0.57)], [(0.12, 0.66), (0.90, 0.66)]]
        details = {"logo": (0.52, 0.52, 0.66, 0.63), "zipper": (0.24, 0.42, 0.30, 0.62),
                   "buttons": (0.38, 0.42, 0.48, 0.60), "bow": (0.60, 0.46, 0.74, 0.56),
                   "pocket": (0.22, 0.47, 0.34, 0.60)}
    elif c == "boots":
        top = 0.14 if length == "long" else 0.34
        polygons = [[(0.30, top), (0.52, top), (0.54, 0.56), (0.80, 0.64), (0.84, 0.72), (0.84, 0.78),
                     (0.26, 0.78), (0.28, 0.56)]]
        seams += [[(0.26, 0.74), (0.84, 0.74)]]
        details = {"zipper": (0.46, top + 0.03, 0.52, 0.58), "logo": (0.32, top + 0.08, 0.44, top + 0.20),
                   "buttons": (0.31, top + 0.04, 0.37, 0.56), "bow": (0.56, 0.54, 0.70, 0.64),
                   "pocket": (0.33, 0.40, 0.46, 0.52)}
    elif c == "heels":
        polygons = [[(0.18, 0.62), (0.24, 0.50), (0.36, 0.48), (0.58, 0.58), (0.82, 0.66), (0.86, 0.70),
                     (0.52, 0.70), (0.30, 0.58), (0.28, 0.82), (0.24, 0.82), (0.22, 0.62)]]
        details = {"bow": (0.66, 0.56, 0.80, 0.66), "logo": (0.42, 0.52, 0.52, 0.60),
                   "buttons": (0.30, 0.48, 0.38, 0.56), "zipper": (0.19, 0.50, 0.25, 0.62),
                   "pocket": (0.40, 0.54, 0.54, 0.64)}
    elif c == "handbag":
        polygons = [[(0.22, 0.40), (0.78, 0.40), (0.84, 0.82), (0.16, 0.82)]]
        seams += [[(0.22, 0.46), (0.78, 0.46)]]
        details = {"pocket": (0.36, 0.56, 0.64, 0.74), "logo": (0.43, 0.52, 0.57, 0.66),
                   "buttons": (0.38, 0.46, 0.62, 0.52), "zipper": (0.26, 0.41, 0.74, 0.46),
                   "bow": (0.58, 0.30, 0.74, 0.40)}
    elif c == "hat":
        ellipses.append((0.10, 0.52, 0.90, 0.72))
        polygons = [[(0.30, 0.62), (0.32, 0.30), (0.40, 0.24), (0.60, 0.24), (0.68, 0.30), (0.70, 0.62)]]
        seams += [[(0.31, 0.52), (0.69, 0.52)]]
        details = {"bow": (0.56, 0.44, 0.72, 0.56), "logo": (0.43, 0.32, 0.57, 0.46),
                   "buttons": (0.47, 0.22, 0.53, 0.28), "pocket": (0.36, 0.36, 0.48, 0.48),
                   "zipper": (0.33, 0.47, 0.67, 0.52)}
    else:
        raise ValueError(f"No drawing is defined for category '{c}'.")
    # The usual boxes above are each detail's other place: upper but for the dress's and outerwear's pockets.
    placed = ({(d, w): placed.get((d, w), details[d]) for d in PLACED_DETAILS for w in DETAIL_PLACES}
              if c in PLACED_CATEGORIES else {})
    if (look.detail, look.detail_place) in placed:
        details = details | {look.detail: placed[(look.detail, look.detail_place)]}
    return Shape(polygons=polygons, cutouts=cutouts, ellipses=ellipses, seams=seams, details=details, placed=placed)


#: The categories (garments) whose :data:`PLACED_DETAILS` sit at either of :data:`DETAIL_PLACES`.
PLACED_CATEGORIES = ("tshirt", "shirt", "sweater", "tanktop", "hoodie", "dress", "jacket", "coat", "trousers",
                     "shorts", "skirt")


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
