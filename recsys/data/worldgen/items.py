"""How the built-in world's items look and read: style priors, item sampling, titles, relative captions.

Part of the generator (:mod:`recsys.data.demo_world` draws and writes the world); the vocabulary and the truth
live in :mod:`recsys.data.truth`. Every function draws from the generator it is given, in a fixed order, so the
same seed gives the same world.
"""

from __future__ import annotations

import numpy as np

from recsys.data.render import DETAIL_PLACES, MATERIALS, PATTERNS, PLACED_CATEGORIES, PLACED_DETAILS, ItemLook
from recsys.data.truth import CATEGORIES, COLOR_LIGHTNESS, COLOR_NAMES, DETAIL_VALUES

# Priors of each style; unlisted values get a small floor weight.
STYLE_CATEGORIES = {
    "casual": {"tshirt": 3, "sweater": 2, "shirt": 1, "hoodie": 1, "tanktop": 1, "trousers": 3, "shorts": 1,
               "skirt": 1, "dress": 1, "jacket": 2, "coat": 1, "sneakers": 3, "boots": 1, "handbag": 2, "hat": 1},
    "formal": {"shirt": 3, "sweater": 1, "trousers": 3, "skirt": 2, "dress": 2, "coat": 2, "jacket": 2,
               "heels": 3, "boots": 1, "handbag": 3},
    "sporty": {"tshirt": 3, "tanktop": 3, "hoodie": 3, "shorts": 3, "trousers": 2, "jacket": 2, "sneakers": 4,
               "hat": 2},
    "street": {"hoodie": 3, "tshirt": 3, "trousers": 3, "shorts": 1, "skirt": 1, "jacket": 3, "coat": 1,
               "sneakers": 3, "boots": 3, "hat": 2, "handbag": 1},
    "boho": {"dress": 4, "skirt": 3, "shirt": 1, "tanktop": 1, "sweater": 2, "trousers": 1, "coat": 1,
             "jacket": 1, "boots": 3, "heels": 1, "sneakers": 1, "handbag": 2, "hat": 3},
}
STYLE_COLORS = {
    "casual": {"blue": 3, "white": 3, "grey": 2, "beige": 2, "navy": 2, "pink": 1, "red": 1},
    "formal": {"black": 4, "white": 3, "grey": 3, "navy": 3, "beige": 2},
    "sporty": {"red": 3, "blue": 3, "white": 3, "black": 2, "yellow": 2, "green": 2},
    "street": {"black": 4, "grey": 3, "green": 2, "orange": 2, "white": 2, "red": 1},
    "boho": {"brown": 3, "beige": 3, "orange": 2, "green": 2, "pink": 2, "purple": 2, "yellow": 1},
}
STYLE_PATTERNS = {
    "casual": {"solid": 3, "striped": 2, "checked": 1, "dotted": 1, "floral": 0.5},
    "formal": {"solid": 5, "striped": 2, "checked": 1.5},
    "sporty": {"solid": 4, "striped": 3},
    "street": {"solid": 3, "checked": 2, "striped": 1},
    "boho": {"floral": 4, "dotted": 2, "solid": 1.5, "striped": 0.5},
}
STYLE_MATERIALS = {
    "casual": {"cotton": 3, "denim": 3, "knit": 2},
    "formal": {"silk": 3, "cotton": 2, "leather": 2, "knit": 1},
    "sporty": {"cotton": 4, "knit": 2},
    "street": {"denim": 3, "leather": 3, "cotton": 2},
    "boho": {"knit": 3, "cotton": 2, "silk": 2, "leather": 1, "denim": 1},
}
STYLE_DETAILS = {
    "casual": {"pocket": 3, "logo": 2, "buttons": 2, "zipper": 1, "none": 1},
    "formal": {"buttons": 4, "bow": 2, "pocket": 1, "none": 1.5},
    "sporty": {"logo": 4, "zipper": 3, "pocket": 1, "none": 1},
    "street": {"zipper": 3, "logo": 3, "pocket": 2, "none": 1},
    "boho": {"bow": 3, "buttons": 2, "pocket": 1, "none": 1},
}
_FLOOR = 0.15
_ATTRIBUTE_NOISE = 0.2


def weighted_choice(rng: np.random.Generator, weights: dict, values) -> str:
    """One of ``values`` drawn with probability proportional to ``weights`` (unlisted values weigh ``_FLOOR``)."""
    p = np.array([weights.get(v, _FLOOR) for v in values], dtype=np.float64)
    return values[rng.choice(len(values), p=p / p.sum())]


def _attribute(rng, style: str, priors: dict, values) -> str:
    if rng.random() < _ATTRIBUTE_NOISE:
        return values[rng.integers(len(values))]
    return weighted_choice(rng, priors[style], values)


def sample_item(rng: np.random.Generator, style: str, category: str | None = None) -> dict:
    """The attributes of a new item of ``style`` (and ``category``, else drawn from the style's prior).

    Returns a record with category, slot, style, colour, pattern, material, sleeve, length, detail, the detail's
    place (:func:`draw_place`) and the drawing's scale and shift; each attribute follows the style's prior, except
    a ``_ATTRIBUTE_NOISE`` share drawn uniformly so a look does not give its style away.

    Raises
    ------
    KeyError
        For an unknown style or category.
    """
    if category is None:
        category = weighted_choice(rng, STYLE_CATEGORIES[style], tuple(CATEGORIES))
    spec = CATEGORIES[category]
    detail = _attribute(rng, style, STYLE_DETAILS, DETAIL_VALUES)
    if detail != "none" and detail not in spec.details:
        detail = spec.details[rng.integers(len(spec.details))]
    return {
        "category": category,
        "slot": spec.slot,
        "style": style,
        "color": _attribute(rng, style, STYLE_COLORS, COLOR_NAMES),
        "pattern": _attribute(rng, style, STYLE_PATTERNS, PATTERNS),
        "material": _attribute(rng, style, STYLE_MATERIALS, MATERIALS),
        "sleeve": spec.sleeves[rng.integers(len(spec.sleeves))] if spec.sleeves else None,
        "length": spec.lengths[rng.integers(len(spec.lengths))] if spec.lengths else None,
        "detail": detail,
        "detail_place": draw_place(rng, category, detail),
        "scale": float(rng.uniform(0.86, 1.0)),
        "shift_x": float(rng.uniform(-0.04, 0.04)),
        "shift_y": float(rng.uniform(-0.04, 0.04)),
    }


def draw_place(rng: np.random.Generator, category: str, detail: str) -> str | None:
    """Where a detail sits: upper or lower part, drawn evenly, for a pocket or a logo on a garment; None otherwise
    (the detail's one place for the category)."""
    if detail not in PLACED_DETAILS or category not in PLACED_CATEGORIES:
        return None
    return DETAIL_PLACES[rng.integers(len(DETAIL_PLACES))]


_PLURAL_LABELS = ("trousers", "shorts", "sneakers", "boots", "heels")


def describe(item: dict) -> tuple[str, str]:
    """Title and description of an item, generated from its attributes.

    Raises
    ------
    KeyError
        For an unknown category or a record without the attributes :func:`sample_item` gives.
    """
    spec = CATEGORIES[item["category"]]
    words = [item["color"].capitalize()]
    if item["pattern"] != "solid":
        words.append(item["pattern"])
    if item["sleeve"] and item["category"] in ("tshirt", "shirt", "dress"):
        words.append({"short": "short-sleeve", "long": "long-sleeve", "sleeveless": "sleeveless"}[item["sleeve"]])
    if item["length"] and item["category"] in ("skirt", "dress", "coat", "boots", "trousers", "shorts"):
        words.append({"short": "ankle" if item["category"] == "boots" else "mini" if item["category"] in
                      ("skirt", "dress") else "short", "midi": "midi" if
                      item["category"] in ("skirt", "dress", "coat") else "cropped",
                      "long": "maxi" if item["category"] in ("skirt", "dress") else "long" if item["category"] != "boots"
                      else "knee-high"}[item["length"]])
    words += [item["material"], spec.label]
    title = " ".join(words)
    article = "A pair of" if spec.label in _PLURAL_LABELS else "A"
    parts = [f"{article} {item['style']} {spec.label} in {item['color']} {item['material']}"]
    extras = []
    if item["pattern"] != "solid":
        extras.append(f"a {item['pattern']} pattern")
    if item["sleeve"]:
        extras.append("no sleeves" if item["sleeve"] == "sleeveless" else f"{item['sleeve']} sleeves")
    if item["length"]:
        extras.append(f"a {item['length']} length")
    # Where a detail sits is seen, not written (as in most shops' copy): only the image tells a pocket on the chest
    # from one near the hem, so a taste for a detail at a place is for models that look at regions.
    if item["detail"] != "none":
        extras.append(_a(item["detail"]))
    if extras:
        parts.append(" with " + (", ".join(extras[:-1]) + " and " + extras[-1] if len(extras) > 1 else extras[0]))
    return title, "".join(parts) + "."


# ---------------------------------------------------------------------- relative captions
#: How a caption words a change. FashionIQ's captions (Wu et al., CVPR 2021, section 3) are relative: they compare
#: the target with the reference ("is darker", "has longer sleeves"), negate it ("is no longer striped"), state a
#: new value ("is red", "same but in red"), or now and then describe the whole target ("is a red silk dress").
#: Only the first kind needs the reference to be read; a sum of image and caption handles the others.
CAPTION_FORMS = ("relative", "named", "same-but", "full")
#: Share of captions in each form; a change with no relative wording falls back to a named one.
CAPTION_FORM_SHARES = (0.55, 0.2, 0.1, 0.15)
#: Below this difference of CIE L* a colour change is not worded as darker or lighter.
_COMPARABLE_LIGHTNESS = 12.0
_SLEEVE_ORDER = ("sleeveless", "short", "long")
_LENGTH_ORDER = ("short", "midi", "long")


def _a(detail: str) -> str:
    return detail if detail == "buttons" else f"a {detail}"


def _named(attr: str, old: str, new: str) -> tuple[str, ...]:
    """Paraphrases that state the new value (and nothing of the reference)."""
    if attr == "color":
        return (f"is {new}", f"is in {new}", f"comes in {new}")
    if attr == "pattern":
        return ("is plain", "is solid coloured") if new == "solid" else (f"is {new}", f"has a {new} pattern")
    if attr == "material":
        return (f"is made of {new}", f"is {new}")
    if attr == "detail":
        return (f"has no {old}",) if new == "none" else (f"has {_a(new)}", f"with {_a(new)} on it")
    if attr == "sleeve":
        return ("is sleeveless", "has no sleeves") if new == "sleeveless" else (f"has {new} sleeves", f"is {new}-sleeved")
    return (f"is {new} length", f"has a {new} length")


def _same_but(attr: str, old: str, new: str) -> tuple[str, ...]:
    """The change as the tail of "same but ...": a new value stated against an otherwise kept reference."""
    if attr == "color":
        return (f"in {new}",)
    if attr == "pattern":
        return ("plain",) if new == "solid" else (f"{new}", f"with a {new} pattern")
    if attr == "material":
        return (f"in {new}",)
    if attr == "detail":
        return (f"without the {old}",) if new == "none" else (f"with {_a(new)}",)
    if attr == "sleeve":
        return ("sleeveless",) if new == "sleeveless" else (f"with {new} sleeves",)
    return (f"in a {new} length",)


def _relative(attr: str, old: str, new: str) -> tuple[str, ...]:
    """Paraphrases that compare with or negate the reference, or () when the change has none."""
    if attr == "color":
        gap = COLOR_LIGHTNESS[COLOR_NAMES.index(new)] - COLOR_LIGHTNESS[COLOR_NAMES.index(old)]
        if gap <= -_COMPARABLE_LIGHTNESS:
            return ("is darker", "is a darker colour", "in a darker shade")
        if gap >= _COMPARABLE_LIGHTNESS:
            return ("is lighter", "is a lighter colour", "in a lighter shade")
        return (f"is not {old}", f"is no longer {old}")
    if attr == "pattern":
        if new == "solid":
            return (f"is no longer {old}", f"is not {old} anymore", f"loses the {old} pattern")
        if old == "solid":
            return ()
        return (f"is {new} rather than {old}", f"is not {old} but {new}")
    if attr == "material":
        return (f"is not {old}", f"is no longer {old}")
    if attr == "detail":
        if new == "none":
            return (f"loses the {old}", f"without the {old}")
        if old == "none":
            return ()
        return (f"has {_a(new)} instead of the {old}", f"swaps the {old} for {_a(new)}")
    order = _SLEEVE_ORDER if attr == "sleeve" else _LENGTH_ORDER
    longer = order.index(new) > order.index(old)
    if attr == "sleeve":
        if new == "sleeveless":
            return ("loses the sleeves",)
        return ("has longer sleeves", "with longer sleeves") if longer else ("has shorter sleeves", "with shorter sleeves")
    return ("is longer", "is a longer cut") if longer else ("is shorter", "is a shorter cut")


def target_phrase(target: dict) -> str:
    """The whole target as a "full" caption words it: its title (lower case), and its detail."""
    title = describe(target)[0].lower()
    return f"is a {title}" + (f" with {_a(target['detail'])}" if target["detail"] != "none" else "")


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[rng.integers(len(options))]


def relative_captions(rng: np.random.Generator, changes: dict, target: dict) -> list[str]:
    """Two FashionIQ-style captions (Wu et al., CVPR 2021) of the ``changes`` ``{attr: (old, new)}`` that turn a
    reference into ``target``, each worded in a form drawn from :data:`CAPTION_FORMS` (as two annotators would).

    Changes are joined by "and" in a drawn order (two-step changes). A caption in the ``full`` form describes
    ``target`` instead (:func:`target_phrase`).
    """
    captions = []
    for _ in range(2):
        form = CAPTION_FORMS[rng.choice(len(CAPTION_FORMS), p=CAPTION_FORM_SHARES)]
        if form == "full":
            captions.append(target_phrase(target))
            continue
        attrs = list(changes)
        rng.shuffle(attrs)
        phrases = []
        for attr in attrs:
            old, new = changes[attr]
            options = _relative(attr, old, new) if form == "relative" else ()
            if form == "same-but":
                options = _same_but(attr, old, new)
            phrases.append(_pick(rng, options or _named(attr, old, new)))
        caption = _join(phrases)
        captions.append(f"same but {caption}" if form == "same-but" else caption)
    return captions


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else " and ".join(phrases)


def _changeable(item: dict) -> list[str]:
    spec = CATEGORIES[item["category"]]
    options = ["color", "pattern", "material", "detail"]
    if len(spec.sleeves) > 1:
        options.append("sleeve")
    if len(spec.lengths) > 1:
        options.append("length")
    return options


def vary(rng: np.random.Generator, item: dict) -> tuple[dict, dict]:
    """A copy of ``item`` with one or two attributes changed, and the changes ``{attr: (old, new)}``."""
    spec = CATEGORIES[item["category"]]
    options = _changeable(item)
    n_changes = 1 if rng.random() < 0.6 else 2
    chosen = rng.choice(len(options), size=n_changes, replace=False)
    values_of = {"color": COLOR_NAMES, "pattern": PATTERNS, "material": MATERIALS,
                 "detail": spec.details + ("none",), "sleeve": spec.sleeves, "length": spec.lengths}
    target = dict(item)
    changes = {}
    for k in sorted(chosen):
        attr = options[k]
        candidates = [v for v in values_of[attr] if v != item[attr]]
        new = candidates[rng.integers(len(candidates))]
        target[attr] = new
        changes[attr] = (item[attr], new)
    if "detail" in changes:
        target["detail_place"] = draw_place(rng, item["category"], target["detail"])
    target["scale"] = float(rng.uniform(0.86, 1.0))
    target["shift_x"] = float(rng.uniform(-0.04, 0.04))
    target["shift_y"] = float(rng.uniform(-0.04, 0.04))
    return target, changes


#: The attributes a caption triple's reference and target may differ in.
CHANGEABLE = ("color", "pattern", "material", "detail", "sleeve", "length")


def mined_pairs(rng: np.random.Generator, records: list[dict], count: int, max_changes: int = 2) -> list[tuple]:
    """``count`` ordered pairs of existing items of one category that differ in 1 to ``max_changes`` of
    :data:`CHANGEABLE`, drawn uniformly among all such pairs: ``[(reference, target, {attr: (old, new)})]``
    (indices into ``records``). A pair that keeps its detail keeps its place too (a caption does not word a moved
    pocket). FashionIQ's triples are pairs of existing products found this way and then captioned (Wu et al., CVPR
    2021, section 3), so they cost no new images. Fewer when fewer pairs exist.
    """
    categories = np.array([r["category"] for r in records])
    codes = np.stack([np.unique(np.array([str(r[a]) for r in records]), return_inverse=True)[1] for a in CHANGEABLE],
                     axis=1)
    same_detail = codes[:, CHANGEABLE.index("detail")]
    place = np.array([str(r.get("detail_place")) for r in records])
    pairs = []
    for category in sorted(set(categories.tolist())):
        rows = np.flatnonzero(categories == category)
        differ = (codes[rows][:, None, :] != codes[rows][None, :, :]).sum(axis=2)
        detail, where = same_detail[rows], place[rows]
        moved = (detail[:, None] == detail[None, :]) & (where[:, None] != where[None, :])
        ref, tgt = np.nonzero((differ >= 1) & (differ <= max_changes) & ~moved)
        pairs.append(np.stack([rows[ref], rows[tgt]], axis=1))
    pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
    chosen = pairs[np.sort(rng.choice(len(pairs), size=min(count, len(pairs)), replace=False))]
    out = []
    for ref, tgt in chosen.tolist():
        changes = {a: (records[ref][a], records[tgt][a]) for a in CHANGEABLE if records[ref][a] != records[tgt][a]}
        out.append((ref, tgt, changes))
    return out


def item_look(record) -> ItemLook:
    """The :class:`recsys.data.render.ItemLook` the renderer draws for an item record."""
    return ItemLook(category=record["category"], color=record["color"], pattern=record["pattern"],
                    material=record["material"], sleeve=record["sleeve"], length=record["length"],
                    detail=record["detail"], detail_place=_place_of(record), scale=record["scale"],
                    shift_x=record["shift_x"], shift_y=record["shift_y"])


def _place_of(record) -> str | None:
    place = record.get("detail_place")  # None or NaN in a table without placed details
    return place if isinstance(place, str) and place else None
