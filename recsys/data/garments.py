"""The geometry of the built-in world's garments, as data: what an item looks like (:class:`ItemLook`) and each
category's drawing in a unit square (:data:`DRAWINGS`, read by :func:`garment_shape`), with the boxes where its
details sit. :mod:`recsys.data.render` fills and draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

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


# Each category's drawing: a dict of the :class:`Shape` fields it sets (the rest empty), or for a garment whose
# sleeve or length changes the geometry a function ``(category, sleeve, length) -> dict`` of the same fields.
# ``details`` is each detail's usual box; ``placed`` the boxes of a placed detail where they differ from it.
_TOP_DETAILS = {"pocket": (0.33, 0.33, 0.45, 0.45), "logo": (0.55, 0.32, 0.67, 0.44),
                "buttons": (0.47, 0.32, 0.53, 0.80), "zipper": (0.47, 0.26, 0.53, 0.84), "bow": (0.42, 0.22, 0.58, 0.32)}
#: What each kind of top adds to the body and sleeves: cut-outs, polygons, ellipses and seams.
_TOP_EXTRAS = {
    "tanktop": {"cutouts": [(0.40, 0.10, 0.60, 0.34)]},
    "shirt": {"polygons": [[(0.40, 0.18), (0.50, 0.30), (0.60, 0.18), (0.55, 0.15), (0.45, 0.15)]],
              "seams": [[(0.40, 0.18), (0.5, 0.30), (0.60, 0.18)], [(0.5, 0.30), (0.5, 0.86)]]},
    "hoodie": {"ellipses": [(0.37, 0.06, 0.63, 0.28)], "seams": [[(0.29, 0.74), (0.71, 0.74)]]},
    "tshirt": {"cutouts": [(0.42, 0.13, 0.58, 0.25)]},
    "sweater": {"cutouts": [(0.42, 0.13, 0.58, 0.25)], "seams": [[(0.29, 0.80), (0.71, 0.80)]]},
}


def _top(c: str, sleeve: str | None, length: str | None) -> dict:
    sleeveless = c == "tanktop" or sleeve == "sleeveless"
    extras = _TOP_EXTRAS[c]
    seams = list(extras.get("seams", []))
    if c == "sweater" and sleeve == "long":
        seams += [[(0.10, 0.76), (0.19, 0.78)], [(0.90, 0.76), (0.81, 0.78)]]
    return {"polygons": [_top_body(sleeveless=sleeveless)] + _sleeves(None if sleeveless else sleeve)
            + extras.get("polygons", []), "cutouts": extras.get("cutouts", []),
            "ellipses": extras.get("ellipses", []), "seams": seams, "details": _TOP_DETAILS,
            "placed": {("pocket", "lower"): (0.31, 0.62, 0.43, 0.74), ("logo", "lower"): (0.57, 0.62, 0.69, 0.74)}}


def _dress(c: str, sleeve: str | None, length: str | None) -> dict:
    hem = _DRESS_HEM.get(length or "midi", 0.80)
    sleeveless = sleeve in (None, "sleeveless")
    bodice = [(0.40, 0.14), (0.36, 0.14) if sleeveless else (0.30, 0.17), (0.35, 0.30), (0.36, 0.46),
              (0.64, 0.46), (0.65, 0.30), (0.64, 0.14) if sleeveless else (0.70, 0.17), (0.60, 0.14)]
    skirt = [(0.36, 0.45), (0.64, 0.45), (0.78, hem), (0.22, hem)]
    details = {"pocket": (0.30, 0.55, 0.42, 0.66), "logo": (0.53, 0.26, 0.63, 0.36),
               "buttons": (0.47, 0.22, 0.53, 0.44), "zipper": (0.47, 0.20, 0.53, 0.44), "bow": (0.42, 0.41, 0.58, 0.51)}
    return {"polygons": [bodice, skirt] + _sleeves(None if sleeveless else sleeve, shoulder_y=0.17, width=0.20),
            "cutouts": [(0.43, 0.08, 0.57, 0.22)], "seams": [[(0.36, 0.46), (0.64, 0.46)]], "details": details,
            "placed": {("pocket", "upper"): (0.38, 0.27, 0.48, 0.37), ("pocket", "lower"): details["pocket"],
                       ("logo", "lower"): (0.53, hem - 0.18, 0.63, hem - 0.08)}}


def _outerwear(c: str, sleeve: str | None, length: str | None) -> dict:
    hem = _COAT_HEM.get(length or ("short" if c == "jacket" else "long"))
    seams = [[(0.41, 0.15), (0.47, 0.42), (0.5, 0.42), (0.5, hem)], [(0.59, 0.15), (0.53, 0.42), (0.5, 0.42)]]
    details = {"pocket": (0.30, hem - 0.20, 0.44, hem - 0.09), "logo": (0.56, 0.28, 0.67, 0.39),
               "buttons": (0.41, 0.44, 0.47, hem - 0.04), "zipper": (0.47, 0.42, 0.53, hem - 0.02),
               "bow": (0.42, 0.48, 0.58, 0.58)}
    return {"polygons": [_top_body(hem=hem, width=0.26, shoulder_y=0.20)] + _sleeves("long", shoulder_y=0.20, width=0.26)
            + [[(0.41, 0.15), (0.47, 0.42), (0.50, 0.30), (0.53, 0.42), (0.59, 0.15)]],
            "seams": seams + ([[(0.28, 0.52), (0.72, 0.52)]] if c == "coat" else []), "details": details,
            "placed": {("pocket", "upper"): (0.30, 0.26, 0.40, 0.36), ("pocket", "lower"): details["pocket"],
                       ("logo", "lower"): (0.56, hem - 0.20, 0.68, hem - 0.09)}}


def _legwear(c: str, sleeve: str | None, length: str | None) -> dict:
    hem = (_TROUSER_HEM if c == "trousers" else _SHORTS_HEM).get(length or "long")
    spread = 0.06 if c == "trousers" else 0.10
    low = max(hem - 0.16, 0.33)  # near the hem, below the hip even on short shorts
    return {"polygons": [[(0.30, 0.10), (0.70, 0.10), (0.71 + spread / 2, hem), (0.52, hem), (0.5, 0.36),
                          (0.48, hem), (0.29 - spread / 2, hem)]],
            "seams": [[(0.30, 0.16), (0.70, 0.16)], [(0.5, 0.16), (0.5, 0.34)]],
            "details": {"pocket": (0.33, 0.19, 0.44, 0.30), "logo": (0.58, 0.22, 0.68, 0.32),
                        "buttons": (0.47, 0.10, 0.53, 0.16), "zipper": (0.47, 0.16, 0.53, 0.34),
                        "bow": (0.56, 0.07, 0.70, 0.19)},
            "placed": {("pocket", "lower"): (0.31, low, 0.42, low + 0.11), ("logo", "lower"): (0.58, low, 0.68, low + 0.10)}}


def _skirt(c: str, sleeve: str | None, length: str | None) -> dict:
    hem = _SKIRT_HEM.get(length or "midi")
    return {"polygons": [[(0.34, 0.10), (0.66, 0.10), (0.66, 0.16), (0.78, hem), (0.22, hem), (0.34, 0.16)]],
            "seams": [[(0.34, 0.16), (0.66, 0.16)]],
            "details": {"pocket": (0.30, 0.22, 0.42, 0.33), "logo": (0.56, 0.22, 0.66, 0.32),
                        "buttons": (0.47, 0.18, 0.53, hem - 0.04), "zipper": (0.47, 0.16, 0.53, min(hem - 0.04, 0.42)),
                        "bow": (0.42, 0.07, 0.58, 0.19)},
            "placed": {("pocket", "lower"): (0.30, hem - 0.15, 0.42, hem - 0.04),
                       ("logo", "lower"): (0.57, hem - 0.15, 0.67, hem - 0.05)}}


def _boots(c: str, sleeve: str | None, length: str | None) -> dict:
    top = 0.14 if length == "long" else 0.34
    return {"polygons": [[(0.30, top), (0.52, top), (0.54, 0.56), (0.80, 0.64), (0.84, 0.72), (0.84, 0.78),
                          (0.26, 0.78), (0.28, 0.56)]],
            "seams": [[(0.26, 0.74), (0.84, 0.74)]],
            "details": {"zipper": (0.46, top + 0.03, 0.52, 0.58), "logo": (0.32, top + 0.08, 0.44, top + 0.20),
                        "buttons": (0.31, top + 0.04, 0.37, 0.56), "bow": (0.56, 0.54, 0.70, 0.64),
                        "pocket": (0.33, 0.40, 0.46, 0.52)}}


#: Every category's drawing (see above): the geometry as data, one entry a category.
DRAWINGS = {
    **dict.fromkeys(("tshirt", "shirt", "sweater", "tanktop", "hoodie"), _top),
    "dress": _dress,
    "jacket": _outerwear, "coat": _outerwear,
    "trousers": _legwear, "shorts": _legwear,
    "skirt": _skirt,
    "boots": _boots,
    "sneakers": {"polygons": [[(0.14, 0.56), (0.20, 0.42), (0.40, 0.40), (0.52, 0.50), (0.74, 0.54), (0.86, 0.60),
                               (0.88, 0.66), (0.14, 0.66)]],
                 "seams": [[(0.40, 0.42), (0.36, 0.55)], [(0.45, 0.46), (0.41, 0.57)], [(0.12, 0.66), (0.90, 0.66)]],
                 "details": {"logo": (0.52, 0.52, 0.66, 0.63), "zipper": (0.24, 0.42, 0.30, 0.62),
                             "buttons": (0.38, 0.42, 0.48, 0.60), "bow": (0.60, 0.46, 0.74, 0.56),
                             "pocket": (0.22, 0.47, 0.34, 0.60)}},
    "heels": {"polygons": [[(0.18, 0.62), (0.24, 0.50), (0.36, 0.48), (0.58, 0.58), (0.82, 0.66), (0.86, 0.70),
                            (0.52, 0.70), (0.30, 0.58), (0.28, 0.82), (0.24, 0.82), (0.22, 0.62)]],
              "details": {"bow": (0.66, 0.56, 0.80, 0.66), "logo": (0.42, 0.52, 0.52, 0.60),
                          "buttons": (0.30, 0.48, 0.38, 0.56), "zipper": (0.19, 0.50, 0.25, 0.62),
                          "pocket": (0.40, 0.54, 0.54, 0.64)}},
    "handbag": {"polygons": [[(0.22, 0.40), (0.78, 0.40), (0.84, 0.82), (0.16, 0.82)]],
                "seams": [[(0.22, 0.46), (0.78, 0.46)]],
                "details": {"pocket": (0.36, 0.56, 0.64, 0.74), "logo": (0.43, 0.52, 0.57, 0.66),
                            "buttons": (0.38, 0.46, 0.62, 0.52), "zipper": (0.26, 0.41, 0.74, 0.46),
                            "bow": (0.58, 0.30, 0.74, 0.40)}},
    "hat": {"ellipses": [(0.10, 0.52, 0.90, 0.72)],
            "polygons": [[(0.30, 0.62), (0.32, 0.30), (0.40, 0.24), (0.60, 0.24), (0.68, 0.30), (0.70, 0.62)]],
            "seams": [[(0.31, 0.52), (0.69, 0.52)]],
            "details": {"bow": (0.56, 0.44, 0.72, 0.56), "logo": (0.43, 0.32, 0.57, 0.46),
                        "buttons": (0.47, 0.22, 0.53, 0.28), "pocket": (0.36, 0.36, 0.48, 0.48),
                        "zipper": (0.33, 0.47, 0.67, 0.52)}},
}


def garment_shape(look: ItemLook) -> Shape:
    """The geometry of ``look``'s garment in unit-square coordinates (0..1, x right, y down; scaled to pixels later),
    read from :data:`DRAWINGS`.

    Sleeve and length change the geometry; ``details`` holds a box ``(x0, y0, x1, y1)`` for every name in
    :data:`DETAILS`, at the place ``look.detail_place`` names for a placed detail (``placed`` holds both places).

    Raises
    ------
    ValueError
        When no drawing is defined for ``look.category``.
    """
    c = look.category
    drawing = DRAWINGS.get(c)
    if drawing is None:
        raise ValueError(f"No drawing is defined for category '{c}'.")
    parts = drawing(c, look.sleeve, look.length) if callable(drawing) else drawing
    details = dict(parts["details"])
    # The usual boxes are each detail's other place: upper but for the dress's and outerwear's pockets.
    placed = ({(d, w): parts.get("placed", {}).get((d, w), details[d]) for d in PLACED_DETAILS for w in DETAIL_PLACES}
              if c in PLACED_CATEGORIES else {})
    if (look.detail, look.detail_place) in placed:
        details = details | {look.detail: placed[(look.detail, look.detail_place)]}
    return Shape(polygons=[list(p) for p in parts["polygons"]], cutouts=list(parts.get("cutouts", [])),
                 ellipses=list(parts.get("ellipses", [])), seams=[list(x) for x in parts.get("seams", [])],
                 details=details, placed=placed)


#: The categories (garments) whose :data:`PLACED_DETAILS` sit at either of :data:`DETAIL_PLACES`.
PLACED_CATEGORIES = ("tshirt", "shirt", "sweater", "tanktop", "hoodie", "dress", "jacket", "coat", "trousers",
                     "shorts", "skirt")
