"""The built-in generated fashion world (DESIGN section 4).

Nothing can be downloaded on the machines this studio is built on, so it generates a complete,
deterministic catalog: rendered items, users with latent tastes and their interactions and reviews,
outfits, FASCODE-style dialogues and FashionIQ-style relative captions. Because the world is generated,
the ground truth is code: :class:`WorldTruth` gives the true utility of any user for any item and the true
compatibility of any set of items, so every model can be scored against an oracle.

The generative story, in short:

* an item has a style (casual, formal, sporty, street, boho) that drives the priors of its category,
  colour, pattern, material and detail; 20% of attributes are drawn uniformly, so a look does not give
  its style away completely;
* a user likes one or two styles, three colours, a pattern, often a detail and a material, and dislikes a
  colour or two; the true utility is ``beta * taste . features(item) + gamma * log(popularity)``, and
  interactions are drawn from its softmax, with a share drawn at random (noise);
* a share of items are cold-start: they never appear in a user's history before the last interaction;
* an outfit is drawn item by item from a style, each item chosen by the softmax of its compatibility
  with the items already chosen (style affinity, colour harmony, at most one pattern);
* a dialogue states an occasion (a style), colour wishes and a request for one slot, and ends in a
  coordi-set (outer, top, bottom, shoes) that fits them; evaluation dialogues carry three candidate
  coordi-sets ranked by the true set score;
* a relative-caption triple pairs a reference with a generated variant of it that differs in one or two
  attributes, with two captions that name exactly those changes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from recsys.catalog import Catalog, CatalogError, CatalogWriter
from recsys.data.render import COLORS, DETAILS, MATERIALS, PATTERNS, ItemLook, detail_box, render_item

logger = logging.getLogger(__name__)

WORLD_VERSION = 1
STYLES = ("casual", "formal", "sporty", "street", "boho")
COLOR_NAMES = tuple(COLORS)
NEUTRALS = ("black", "white", "grey", "navy", "beige", "brown")
#: Order of the chromatic colours on the colour wheel used by the harmony rule.
HUE_WHEEL = ("red", "orange", "yellow", "green", "blue", "purple", "pink")
DETAIL_VALUES = DETAILS + ("none",)
FASCODE_SLOTS = ("outer", "top", "bottom", "shoes")


@dataclass(frozen=True)
class CategorySpec:
    slot: str
    label: str
    sleeves: tuple[str, ...] = ()
    lengths: tuple[str, ...] = ()
    details: tuple[str, ...] = DETAILS


CATEGORIES: dict[str, CategorySpec] = {
    "tshirt": CategorySpec("top", "t-shirt", sleeves=("short", "long")),
    "shirt": CategorySpec("top", "shirt", sleeves=("short", "long")),
    "sweater": CategorySpec("top", "sweater", sleeves=("long",)),
    "tanktop": CategorySpec("top", "tank top", sleeves=("sleeveless",)),
    "hoodie": CategorySpec("top", "hoodie", sleeves=("long",)),
    "trousers": CategorySpec("bottom", "trousers", lengths=("midi", "long")),
    "shorts": CategorySpec("bottom", "shorts", lengths=("short", "midi")),
    "skirt": CategorySpec("bottom", "skirt", lengths=("short", "midi", "long")),
    "dress": CategorySpec("onepiece", "dress", sleeves=("sleeveless", "short", "long"), lengths=("short", "midi", "long")),
    "jacket": CategorySpec("outer", "jacket", sleeves=("long",), lengths=("short",)),
    "coat": CategorySpec("outer", "coat", sleeves=("long",), lengths=("midi", "long")),
    "sneakers": CategorySpec("shoes", "sneakers", details=("logo", "zipper", "buttons", "bow")),
    "boots": CategorySpec("shoes", "boots", lengths=("short", "long"), details=("logo", "zipper", "buttons", "bow")),
    "heels": CategorySpec("shoes", "heels", details=("logo", "buttons", "bow")),
    "handbag": CategorySpec("accessory", "handbag"),
    "hat": CategorySpec("accessory", "hat", details=("logo", "buttons", "bow")),
}

# Priors of each style; unlisted values get a small floor weight.
_STYLE_CATEGORIES = {
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
_STYLE_COLORS = {
    "casual": {"blue": 3, "white": 3, "grey": 2, "beige": 2, "navy": 2, "pink": 1, "red": 1},
    "formal": {"black": 4, "white": 3, "grey": 3, "navy": 3, "beige": 2},
    "sporty": {"red": 3, "blue": 3, "white": 3, "black": 2, "yellow": 2, "green": 2},
    "street": {"black": 4, "grey": 3, "green": 2, "orange": 2, "white": 2, "red": 1},
    "boho": {"brown": 3, "beige": 3, "orange": 2, "green": 2, "pink": 2, "purple": 2, "yellow": 1},
}
_STYLE_PATTERNS = {
    "casual": {"solid": 3, "striped": 2, "checked": 1, "dotted": 1, "floral": 0.5},
    "formal": {"solid": 5, "striped": 2, "checked": 1.5},
    "sporty": {"solid": 4, "striped": 3},
    "street": {"solid": 3, "checked": 2, "striped": 1},
    "boho": {"floral": 4, "dotted": 2, "solid": 1.5, "striped": 0.5},
}
_STYLE_MATERIALS = {
    "casual": {"cotton": 3, "denim": 3, "knit": 2},
    "formal": {"silk": 3, "cotton": 2, "leather": 2, "knit": 1},
    "sporty": {"cotton": 4, "knit": 2},
    "street": {"denim": 3, "leather": 3, "cotton": 2},
    "boho": {"knit": 3, "cotton": 2, "silk": 2, "leather": 1, "denim": 1},
}
_STYLE_DETAILS = {
    "casual": {"pocket": 3, "logo": 2, "buttons": 2, "zipper": 1, "none": 1},
    "formal": {"buttons": 4, "bow": 2, "pocket": 1, "none": 1.5},
    "sporty": {"logo": 4, "zipper": 3, "pocket": 1, "none": 1},
    "street": {"zipper": 3, "logo": 3, "pocket": 2, "none": 1},
    "boho": {"bow": 3, "buttons": 2, "pocket": 1, "none": 1},
}
_FLOOR = 0.15
_ATTRIBUTE_NOISE = 0.2

#: How well two styles go together in an outfit (symmetric, same style = 1).
STYLE_AFFINITY = np.array([
    # casual formal sporty street boho
    [1.0, 0.0, 0.3, 0.5, 0.3],
    [0.0, 1.0, -0.9, -0.4, -0.2],
    [0.3, -0.9, 1.0, 0.4, -0.6],
    [0.5, -0.4, 0.4, 1.0, -0.3],
    [0.3, -0.2, -0.6, -0.3, 1.0],
], dtype=np.float32)

OCCASIONS = {
    "casual": ["a weekend picnic", "brunch with friends", "a day of shopping", "a trip to the zoo"],
    "formal": ["a job interview", "a business meeting", "a wedding reception", "a gallery opening"],
    "sporty": ["a morning run", "the gym", "a hiking trip", "a tennis match"],
    "street": ["a concert downtown", "a night out in the city", "a skate park meetup", "a music festival"],
    "boho": ["an autumn festival", "a beach bonfire", "a flea market", "a garden party"],
}


@dataclass(frozen=True)
class Preset:
    base_items: int
    caption_triples: int
    users: int
    mean_history: float
    outfits: int
    train_dialogues: int
    eval_dialogues: int
    cold_share: float = 0.1


PRESETS: dict[str, Preset] = {
    "tiny": Preset(base_items=200, caption_triples=48, users=48, mean_history=8, outfits=60,
                   train_dialogues=24, eval_dialogues=12),
    "demo": Preset(base_items=2600, caption_triples=700, users=1500, mean_history=12, outfits=1500,
                   train_dialogues=600, eval_dialogues=200),
    "large": Preset(base_items=24000, caption_triples=6000, users=10000, mean_history=14, outfits=8000,
                    train_dialogues=2000, eval_dialogues=500),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"Unknown preset '{name}'; choose one of {', '.join(PRESETS)}.") from None


# ====================================================================== features and truth tables
def _color_harmony() -> np.ndarray:
    n = len(COLOR_NAMES)
    table = np.zeros((n, n), dtype=np.float32)
    for i, a in enumerate(COLOR_NAMES):
        for j, b in enumerate(COLOR_NAMES):
            if a in NEUTRALS or b in NEUTRALS:
                table[i, j] = 0.3 if not (a in NEUTRALS and b in NEUTRALS and a == b) else 0.1
                if {a, b} in ({"black", "navy"}, {"brown", "black"}):
                    table[i, j] = -0.3
                continue
            d = abs(HUE_WHEEL.index(a) - HUE_WHEEL.index(b))
            d = min(d, len(HUE_WHEEL) - d)
            table[i, j] = {0: 0.1, 1: 0.4, 2: -0.7, 3: 0.3}[d]
    return table


COLOR_HARMONY = _color_harmony()
#: Two patterned pieces clash; one pattern on solids is a good accent.
PATTERN_PAIR = np.array([[0.0 if a == b == "solid" else 0.15 if "solid" in (a, b) else -0.9 for b in PATTERNS]
                         for a in PATTERNS], dtype=np.float32)

FEATURE_GROUPS = (("style", STYLES), ("color", COLOR_NAMES), ("pattern", PATTERNS), ("material", MATERIALS),
                  ("detail", DETAIL_VALUES))
FEATURE_NAMES = tuple(f"{group}={value}" for group, values in FEATURE_GROUPS for value in values)


def item_features(items: pd.DataFrame) -> np.ndarray:
    """One-hot features of the attributes that users have tastes over, shape ``(n_items, n_features)``."""
    blocks = []
    for group, values in FEATURE_GROUPS:
        column = items[group].fillna("none") if group == "detail" else items[group]
        codes = pd.Categorical(column, categories=values).codes
        block = np.zeros((len(items), len(values)), dtype=np.float32)
        block[np.arange(len(items)), codes] = 1.0
        blocks.append(block)
    return np.concatenate(blocks, axis=1)


def _codes(items: pd.DataFrame, column: str, values) -> np.ndarray:
    return pd.Categorical(items[column], categories=values).codes.astype(np.int64)


@dataclass
class WorldTruth:
    """The ground truth of a generated world: true utility and true compatibility as code.

    Parameters
    ----------
    items : DataFrame
        The catalog's items table (with style, color, pattern, ... columns).
    user_ids : list of str
    tastes : ndarray of shape (n_users, n_features)
        Taste weights over :data:`FEATURE_NAMES`.
    popularity : ndarray of shape (n_items,)
        Item popularity prior (positive).
    beta, gamma : float
        Weights of taste and log-popularity in the utility.
    user_table : DataFrame
        Readable tastes (liked styles, colours, ...), for display.
    dialogue_requests : dict
        ``dialogue_id -> {"style", "colors", "slot", "category", "pattern"}``.
    """

    items: pd.DataFrame
    user_ids: list
    tastes: np.ndarray
    popularity: np.ndarray
    beta: float
    gamma: float
    user_table: pd.DataFrame
    dialogue_requests: dict = field(default_factory=dict)

    def __post_init__(self):
        self.features_ = item_features(self.items)
        self.style_ = _codes(self.items, "style", STYLES)
        self.color_ = _codes(self.items, "color", COLOR_NAMES)
        self.pattern_ = _codes(self.items, "pattern", PATTERNS)
        self.category_ = self.items["category"].to_numpy()
        self.user_index_ = {u: k for k, u in enumerate(self.user_ids)}
        self.item_index_ = {i: k for k, i in enumerate(self.items["item_id"])}

    # ------------------------------------------------------------- loading
    @classmethod
    def from_catalog(cls, catalog: Catalog) -> "WorldTruth":
        truth_dir = catalog.root / "truth"
        if not truth_dir.is_dir():
            raise CatalogError(f"The catalog {catalog.name} is not a generated world: it has no truth/ folder.")
        users = pd.read_parquet(truth_dir / "users.parquet")
        pop = pd.read_parquet(truth_dir / "items.parquet").set_index("item_id")["popularity"]
        params = json.loads((truth_dir / "world.json").read_text(encoding="utf-8"))
        if tuple(params["feature_names"]) != FEATURE_NAMES:
            raise CatalogError("The world's truth/ was written by another version of the generator; rebuild it.")
        requests = {}
        path = truth_dir / "dialogues.jsonl"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                requests[record["dialogue_id"]] = record["requests"]
        return cls(
            items=catalog.items,
            user_ids=list(users["user_id"]),
            tastes=np.stack(users["taste"].to_numpy()).astype(np.float32),
            popularity=pop.reindex(catalog.items["item_id"]).to_numpy(dtype=np.float64),
            beta=float(params["beta"]),
            gamma=float(params["gamma"]),
            user_table=users.drop(columns=["taste"]),
            dialogue_requests=requests,
        )

    # ------------------------------------------------------------- utility
    def utility(self, users=None, item_idx=None) -> np.ndarray:
        """True utility (the logit interactions were drawn from) of users x items.

        ``users`` are user ids or row numbers (default: all); ``item_idx`` item row positions (default: all).
        """
        if users is None:
            rows = np.arange(len(self.user_ids))
        else:
            rows = np.array([self.user_index_[u] if isinstance(u, str) else int(u) for u in np.atleast_1d(users)])
        features = self.features_ if item_idx is None else self.features_[np.asarray(item_idx)]
        pop = self.popularity if item_idx is None else self.popularity[np.asarray(item_idx)]
        return self.beta * self.tastes[rows] @ features.T + self.gamma * np.log(pop)[None, :]

    def tastes_of(self, user_id: str) -> dict:
        """Readable tastes of a user (liked styles, colours, ...)."""
        row = self.user_table[self.user_table["user_id"] == user_id]
        if row.empty:
            raise KeyError(f"Unknown user '{user_id}'.")
        return {k: v for k, v in row.iloc[0].items() if k != "user_id"}

    # ------------------------------------------------------------- compatibility
    def pair_compatibility(self, a_idx, b_idx) -> np.ndarray:
        """True compatibility of item pairs (row positions, broadcastable arrays)."""
        a_idx, b_idx = np.asarray(a_idx), np.asarray(b_idx)
        return (STYLE_AFFINITY[self.style_[a_idx], self.style_[b_idx]]
                + COLOR_HARMONY[self.color_[a_idx], self.color_[b_idx]]
                + PATTERN_PAIR[self.pattern_[a_idx], self.pattern_[b_idx]])

    def compatibility(self, items) -> float:
        """True compatibility of a set of items (ids or row positions): the mean over its pairs."""
        idx = np.array([self.item_index_[i] if isinstance(i, str) else int(i) for i in items])
        if len(idx) < 2:
            return 0.0
        a, b = np.triu_indices(len(idx), k=1)
        return float(self.pair_compatibility(idx[a], idx[b]).mean())

    # ------------------------------------------------------------- dialogues
    def coordi_score(self, dialogue_id: str, coordi: dict) -> float:
        """True score of a coordi-set for a dialogue: how well it meets the stated wishes, plus compatibility."""
        requests = self.dialogue_requests[dialogue_id]
        return _coordi_score(self, requests, [self.item_index_[coordi[s]] for s in FASCODE_SLOTS])


def _coordi_score(truth: WorldTruth, requests: dict, idx: list[int]) -> float:
    idx = np.asarray(idx)
    colors = np.array([COLOR_NAMES.index(c) for c in requests["colors"]])
    score = (truth.style_[idx] == STYLES.index(requests["style"])).sum() + 0.8 * np.isin(truth.color_[idx], colors).sum()
    k = idx[FASCODE_SLOTS.index(requests["slot"])]
    score += 1.5 if truth.category_[k] == requests["category"] else 0.0
    if requests.get("pattern"):
        score += 0.8 if PATTERNS[truth.pattern_[k]] == requests["pattern"] else 0.0
    a, b = np.triu_indices(len(idx), k=1)
    return float(score + 2.0 * truth.pair_compatibility(idx[a], idx[b]).mean())


# ====================================================================== generation
def _choice(rng: np.random.Generator, weights: dict, values) -> str:
    p = np.array([weights.get(v, _FLOOR) for v in values], dtype=np.float64)
    return values[rng.choice(len(values), p=p / p.sum())]


def _attribute(rng, style: str, priors: dict, values) -> str:
    if rng.random() < _ATTRIBUTE_NOISE:
        return values[rng.integers(len(values))]
    return _choice(rng, priors[style], values)


def _sample_item(rng: np.random.Generator, style: str, category: str | None = None) -> dict:
    if category is None:
        category = _choice(rng, _STYLE_CATEGORIES[style], tuple(CATEGORIES))
    spec = CATEGORIES[category]
    detail = _attribute(rng, style, _STYLE_DETAILS, DETAIL_VALUES)
    if detail != "none" and detail not in spec.details:
        detail = spec.details[rng.integers(len(spec.details))]
    return {
        "category": category,
        "slot": spec.slot,
        "style": style,
        "color": _attribute(rng, style, _STYLE_COLORS, COLOR_NAMES),
        "pattern": _attribute(rng, style, _STYLE_PATTERNS, PATTERNS),
        "material": _attribute(rng, style, _STYLE_MATERIALS, MATERIALS),
        "sleeve": spec.sleeves[rng.integers(len(spec.sleeves))] if spec.sleeves else None,
        "length": spec.lengths[rng.integers(len(spec.lengths))] if spec.lengths else None,
        "detail": detail,
        "scale": float(rng.uniform(0.86, 1.0)),
        "shift_x": float(rng.uniform(-0.04, 0.04)),
        "shift_y": float(rng.uniform(-0.04, 0.04)),
    }


_PLURAL_LABELS = ("trousers", "shorts", "sneakers", "boots", "heels")
_DETAIL_PLACES = {"top": "on the chest", "bottom": "at the hip", "onepiece": "on the bodice", "outer": "on the front",
                  "shoes": "on the side", "accessory": "on the front"}


def describe(item: dict) -> tuple[str, str]:
    """Title and description of an item, generated from its attributes."""
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
    if item["detail"] != "none":
        extras.append(f"{'a ' if item['detail'] not in ('buttons',) else ''}{item['detail']} {_DETAIL_PLACES[spec.slot]}")
    if extras:
        parts.append(" with " + (", ".join(extras[:-1]) + " and " + extras[-1] if len(extras) > 1 else extras[0]))
    return title, "".join(parts) + "."


# ---------------------------------------------------------------------- relative captions
_CAPTION_PHRASES = {
    "color": (lambda old, new: f"is {new}", lambda old, new: f"is {new} instead of {old}"),
    "pattern": (lambda old, new: "is plain" if new == "solid" else f"is {new}",
                lambda old, new: "has no pattern" if new == "solid" else f"has a {new} pattern"),
    "material": (lambda old, new: f"is made of {new}", lambda old, new: f"is {new} rather than {old}"),
    "detail": (lambda old, new: f"has no {old}" if new == "none" else f"has a {new}",
               lambda old, new: f"without the {old}" if new == "none" else f"with a {new} on it"),
    "sleeve": (lambda old, new: "has no sleeves" if new == "sleeveless" else f"has {new} sleeves",
               lambda old, new: "is sleeveless" if new == "sleeveless" else f"is {new}-sleeved"),
    "length": (lambda old, new: f"is {new} length", lambda old, new: f"is {'longer' if _longer(new, old) else 'shorter'}, {new}"),
}
#: The word a caption must contain for a change to count as named (used by the world's tests too).
CAPTION_KEYWORD = {
    "color": lambda old, new: new,
    "pattern": lambda old, new: new if new != "solid" else ("plain", "no pattern"),
    "material": lambda old, new: new,
    "detail": lambda old, new: new if new != "none" else old,
    "sleeve": lambda old, new: new if new != "sleeveless" else ("sleeveless", "no sleeves"),
    "length": lambda old, new: new,
}


def _longer(a: str, b: str) -> bool:
    order = ("short", "midi", "long")
    return order.index(a) > order.index(b)


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


def _vary(rng: np.random.Generator, item: dict) -> tuple[dict, dict]:
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
    target["scale"] = float(rng.uniform(0.86, 1.0))
    target["shift_x"] = float(rng.uniform(-0.04, 0.04))
    target["shift_y"] = float(rng.uniform(-0.04, 0.04))
    return target, changes


def _captions(rng: np.random.Generator, changes: dict) -> list[str]:
    attrs = list(changes)
    rng.shuffle(attrs)
    first = _join([_CAPTION_PHRASES[a][0](*changes[a]) for a in attrs])
    second = _join([_CAPTION_PHRASES[a][1](*changes[a]) for a in reversed(attrs)])
    return [first, second]


# ---------------------------------------------------------------------- users and interactions
_REVIEW_TEMPLATES = {
    "style": "Perfect for my {value} look.",
    "color": "Love the {value} colour.",
    "pattern": "The {value} pattern is lovely.",
    "material": "The {value} feels great.",
    "detail": "Great {value} detail.",
}
_GENERIC_REVIEWS = ("Fits well.", "Good value for the price.", "Arrived quickly.", "Nice quality.", "Does the job.")


def _sample_taste(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    weights = {name: 0.0 for name in FEATURE_NAMES}
    styles = list(rng.choice(STYLES, size=1 + int(rng.random() < 0.4), replace=False))
    colors = list(rng.choice(COLOR_NAMES, size=5, replace=False))
    liked_colors, disliked_colors = colors[:3], colors[3:3 + 1 + int(rng.random() < 0.5)]
    patterns = list(rng.choice(PATTERNS, size=2, replace=False))
    liked_patterns, disliked_patterns = patterns[:1], patterns[1:] if rng.random() < 0.5 else []
    liked_detail = [str(rng.choice(DETAILS))] if rng.random() < 0.75 else []
    liked_material = [str(rng.choice(MATERIALS))]
    for k, s in enumerate(styles):
        weights[f"style={s}"] = 1.2 if k == 0 else 0.6
    for c in liked_colors:
        weights[f"color={c}"] = 0.9
    for c in disliked_colors:
        weights[f"color={c}"] = -0.9
    for p in liked_patterns:
        weights[f"pattern={p}"] = 0.7
    for p in disliked_patterns:
        weights[f"pattern={p}"] = -0.7
    for d in liked_detail:
        weights[f"detail={d}"] = 1.0
    for m in liked_material:
        weights[f"material={m}"] = 0.4
    readable = {
        "liked_styles": ",".join(map(str, styles)), "liked_colors": ",".join(map(str, liked_colors)),
        "disliked_colors": ",".join(map(str, disliked_colors)), "liked_patterns": ",".join(map(str, liked_patterns)),
        "disliked_patterns": ",".join(map(str, disliked_patterns)), "liked_detail": ",".join(liked_detail),
        "liked_material": ",".join(liked_material),
    }
    return np.array([weights[n] for n in FEATURE_NAMES], dtype=np.float32), readable


def _review(rng: np.random.Generator, item: pd.Series, readable: dict) -> str:
    liked = {"style": readable["liked_styles"].split(","), "color": readable["liked_colors"].split(","),
             "pattern": readable["liked_patterns"].split(","), "material": readable["liked_material"].split(","),
             "detail": readable["liked_detail"].split(",")}
    mentions = [_REVIEW_TEMPLATES[attr].format(value=item[attr]) for attr in liked if item[attr] in liked[attr]]
    if not mentions:
        return str(rng.choice(_GENERIC_REVIEWS))
    rng.shuffle(mentions)
    return " ".join(mentions[:2])


# ====================================================================== the world
@dataclass
class World:
    """A generated world before it is written: tables, records and the truth."""

    preset: str
    seed: int
    items: pd.DataFrame
    interactions: pd.DataFrame
    outfits: list
    dialogues: list
    captions: list
    users: pd.DataFrame  # truth: user_id, readable tastes, taste vector
    popularity: np.ndarray
    dialogue_requests: list
    beta: float
    gamma: float

    def truth(self) -> WorldTruth:
        return WorldTruth(items=self.items, user_ids=list(self.users["user_id"]),
                          tastes=np.stack(self.users["taste"].to_numpy()), popularity=self.popularity,
                          beta=self.beta, gamma=self.gamma, user_table=self.users.drop(columns=["taste"]),
                          dialogue_requests={r["dialogue_id"]: r["requests"] for r in self.dialogue_requests})


def generate_world(preset: str = "demo", seed: int = 0, beta: float = 2.0, gamma: float = 0.6,
                   noise: float = 0.1) -> World:
    """Draw every table of the world (no images; :func:`build_demo_catalog` renders and writes them)."""
    spec = get_preset(preset)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    item_rng, caption_rng, user_rng, outfit_rng, dialogue_rng, split_rng = streams

    # ---- items, then caption targets generated as variants of some of them
    records = [_sample_item(item_rng, STYLES[item_rng.integers(len(STYLES))]) for _ in range(spec.base_items)]
    captions = []
    references = caption_rng.choice(spec.base_items, size=spec.caption_triples, replace=False)
    for k, ref in enumerate(references):
        target, changes = _vary(caption_rng, records[ref])
        records.append(target)
        captions.append({"reference_index": int(ref), "target_index": len(records) - 1,
                         "captions": _captions(caption_rng, changes),
                         "changes": {a: list(v) for a, v in changes.items()}})
    n_items = len(records)
    width = len(str(n_items))
    for k, record in enumerate(records):
        record["item_id"] = f"w{k:0{width}d}"
        record["title"], record["description"] = describe(record)
        record["image_path"] = f"images/{record['item_id']}.png"
        box = detail_box(_look(record))
        record["detail_x0"], record["detail_y0"], record["detail_x1"], record["detail_y1"] = box or (-1, -1, -1, -1)
    items = pd.DataFrame(records)
    cold = np.zeros(n_items, dtype=bool)
    cold[item_rng.choice(n_items, size=int(round(spec.cold_share * n_items)), replace=False)] = True
    items["cold_start"] = cold
    popularity = np.exp(item_rng.normal(0.0, 1.0, size=n_items))
    items = items[["item_id", "category", "slot", "title", "description", "image_path", "color", "pattern",
                   "sleeve", "length", "detail", "style", "material", "cold_start", "detail_x0", "detail_y0",
                   "detail_x1", "detail_y1", "scale", "shift_x", "shift_y"]]

    for record in captions:
        split = split_rng.choice(["train", "val", "test"], p=[0.6, 0.2, 0.2])
        record.update(reference_id=items["item_id"].iat[record.pop("reference_index")],
                      target_id=items["item_id"].iat[record.pop("target_index")], split=str(split))
    captions = [{k: r[k] for k in ("reference_id", "target_id", "captions", "split", "changes")} for r in captions]

    # ---- users and interactions
    tastes, readable = zip(*(_sample_taste(user_rng) for _ in range(spec.users)))
    user_ids = [f"u{k:05d}" for k in range(spec.users)]
    users = pd.DataFrame(list(readable))
    users.insert(0, "user_id", user_ids)
    users["taste"] = list(tastes)
    truth = WorldTruth(items=items, user_ids=user_ids, tastes=np.stack(tastes), popularity=popularity,
                       beta=beta, gamma=gamma, user_table=users.drop(columns=["taste"]))
    logits = truth.utility()
    warm_idx, cold_idx = np.flatnonzero(~cold), np.flatnonzero(cold)
    rows = []
    start = pd.Timestamp("2025-01-01").value // 10**9
    for u in range(spec.users):
        n = max(3, int(user_rng.poisson(spec.mean_history - 3)) + 3)
        probs = _softmax(logits[u, warm_idx])
        picked = list(warm_idx[user_rng.choice(len(warm_idx), size=n, replace=False, p=probs)])
        noisy = user_rng.random(n) < noise
        for k in np.flatnonzero(noisy):
            picked[k] = int(warm_idx[user_rng.integers(len(warm_idx))])
        if len(cold_idx) and user_rng.random() < 0.3:  # cold-start items only ever appear last
            picked[-1] = int(cold_idx[user_rng.choice(len(cold_idx), p=_softmax(logits[u, cold_idx]))])
        seen, sequence = set(), []
        for i in picked:
            if i not in seen:
                seen.add(i)
                sequence.append(i)
        times = start + np.cumsum(user_rng.integers(3_600, 30 * 86_400, size=len(sequence)))
        for i, t in zip(sequence, times):
            review = _review(user_rng, items.iloc[i], readable[u]) if user_rng.random() < 0.6 else None
            rows.append((user_ids[u], items["item_id"].iat[i], int(t), review))
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "review"])

    outfits = _sample_outfits(outfit_rng, truth, spec.outfits)
    dialogues, requests = _sample_dialogues(dialogue_rng, truth, spec.train_dialogues, spec.eval_dialogues)
    return World(preset=preset, seed=seed, items=items, interactions=interactions, outfits=outfits,
                 dialogues=dialogues, captions=captions, users=users, popularity=popularity,
                 dialogue_requests=requests, beta=beta, gamma=gamma)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max())
    return z / z.sum()


def _pick(rng, truth: WorldTruth, candidates: np.ndarray, chosen: list[int], style: int, tau: float) -> int:
    score = np.where(truth.style_[candidates] == style, 1.0, 0.0)
    if chosen:
        score = score + truth.pair_compatibility(candidates[:, None], np.array(chosen)[None, :]).mean(axis=1)
    return int(candidates[rng.choice(len(candidates), p=_softmax(tau * score))])


def _by_category(items: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: np.flatnonzero(items["category"].to_numpy() == c) for c in CATEGORIES}


def _category_for(rng, style: str, slot: str, pool: dict) -> str | None:
    names = tuple(c for c, spec in CATEGORIES.items() if spec.slot == slot and len(pool[c]))
    if not names:
        return None
    return _choice(rng, _STYLE_CATEGORIES[style], names)


def _sample_outfits(rng, truth: WorldTruth, count: int, tau: float = 3.0) -> list[dict]:
    pool = _by_category(truth.items)
    outfits = []
    for k in range(count):
        style = STYLES[rng.integers(len(STYLES))]
        slots = ["onepiece"] if rng.random() < (0.45 if style == "boho" else 0.2) else ["top", "bottom"]
        slots.append("shoes")
        if rng.random() < 0.4:
            slots.insert(0, "outer")
        if rng.random() < 0.5:
            slots.append("accessory")
        chosen: list[int] = []
        for slot in slots:
            category = _category_for(rng, style, slot, pool)
            if category is not None:
                chosen.append(_pick(rng, truth, pool[category], chosen, STYLES.index(style), tau))
        outfits.append({"outfit_id": f"o{k:05d}", "style": style,
                        "item_ids": [truth.items["item_id"].iat[i] for i in chosen]})
    return outfits


def _sample_dialogues(rng, truth: WorldTruth, n_train: int, n_eval: int) -> tuple[list[dict], list[dict]]:
    items = truth.items
    pool = _by_category(items)
    ids = items["item_id"].to_numpy()
    dialogues, requests = [], []
    for k in range(n_train + n_eval):
        dialogue_id = f"d{k:05d}"
        style = STYLES[rng.integers(len(STYLES))]
        occasion = OCCASIONS[style][rng.integers(len(OCCASIONS[style]))]
        colors = [str(c) for c in rng.choice(_top_values(_STYLE_COLORS[style], 5), size=2, replace=False)]
        slot = str(rng.choice(FASCODE_SLOTS))
        category = _category_for(rng, style, slot, pool)
        pattern = str(rng.choice(PATTERNS)) if rng.random() < 0.4 else None
        wish = {"style": style, "colors": colors, "slot": slot, "category": category, "pattern": pattern}

        def best_set(n_draws: int = 12) -> list[int]:
            best, best_score = None, -np.inf
            for _ in range(n_draws):
                chosen: list[int] = []
                for s in FASCODE_SLOTS:
                    c = category if s == slot else _category_for(rng, style, s, pool)
                    chosen.append(_pick(rng, truth, pool[c], chosen, STYLES.index(style), 3.0))
                score = _coordi_score(truth, wish, chosen)
                if score > best_score:
                    best, best_score = chosen, score
            return best

        gold = best_set()
        first_try = [_pick(rng, truth, pool[_category_for(rng, style, s, pool)], [], STYLES.index(style), 1.0)
                     for s in FASCODE_SLOTS]
        label = CATEGORIES[category].label
        pattern_wish = f" in a {pattern} pattern" if pattern else ""
        turns = [
            {"speaker": "US", "text": f"Hi! I need an outfit for {occasion}.", "tags": ["INTRO", "OCCASION"]},
            {"speaker": "CO", "text": "Happy to help. Any colours you like?", "tags": ["ASK_COLOR"]},
            {"speaker": "US", "text": f"I like {colors[0]} and {colors[1]}.", "tags": ["COLOR"]},
            {"speaker": "CO", "text": "How about this to start?", "tags": ["SUGGEST"]},
            {"speaker": "AC", "text": "", "tags": ["SHOW"], "item_ids": [str(ids[i]) for i in first_try]},
            {"speaker": "US", "text": f"Not quite. For the {slot}, {_article(label)} {label}{pattern_wish} please.",
             "tags": ["REQUEST", slot.upper()]},
            {"speaker": "CO", "text": "Here is a coordi that matches what you asked for.", "tags": ["FINAL"]},
        ]
        final_turn = {"speaker": "AC", "text": "", "tags": ["SHOW", "FINAL"], "item_ids": [str(ids[i]) for i in gold]}
        record = {"dialogue_id": dialogue_id, "split": "train" if k < n_train else "eval",
                  "coordi": {s: str(ids[i]) for s, i in zip(FASCODE_SLOTS, gold)}}
        if k < n_train:
            record["turns"] = turns + [final_turn]
        else:
            record["turns"] = turns
            near = list(gold)
            for s in rng.choice(len(FASCODE_SLOTS), size=2, replace=False):
                near[s] = int(pool[items["category"].iat[gold[s]]][rng.integers(len(pool[items["category"].iat[gold[s]]]))])
            other_style = STYLES[(STYLES.index(style) + 1 + rng.integers(len(STYLES) - 1)) % len(STYLES)]
            far = [_pick(rng, truth, pool[_category_for(rng, other_style, s, pool)], [], STYLES.index(other_style), 3.0)
                   for s in FASCODE_SLOTS]
            sets = [gold, near, far]
            scores = np.array([_coordi_score(truth, wish, s) for s in sets])
            order = rng.permutation(3)
            ranks = (-scores).argsort().argsort() + 1
            record["candidates"] = [{"coordi": {s: str(ids[i]) for s, i in zip(FASCODE_SLOTS, sets[j])},
                                     "rank": int(ranks[j])} for j in order]
        dialogues.append(record)
        requests.append({"dialogue_id": dialogue_id, "requests": wish})
    return dialogues, requests


def _top_values(weights: dict, n: int) -> list[str]:
    return sorted(weights, key=weights.get, reverse=True)[:n]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _look(record) -> ItemLook:
    return ItemLook(category=record["category"], color=record["color"], pattern=record["pattern"],
                    material=record["material"], sleeve=record["sleeve"], length=record["length"],
                    detail=record["detail"], scale=record["scale"], shift_x=record["shift_x"],
                    shift_y=record["shift_y"])


# ====================================================================== writing
def _render_chunk(args) -> int:
    folder, seed, rows = args
    for index, record in rows:
        rng = np.random.default_rng([seed, index])
        image = render_item(_look(record), rng)
        image.save(Path(folder) / record["image_path"], compress_level=3)
    return len(rows)


def build_demo_catalog(out_dir, preset: str = "demo", seed: int = 0, overwrite: bool = False,
                       progress: Callable[[float, str], None] | None = None, workers: int | None = None) -> Catalog:
    """Generate the built-in world and write it as a catalog folder (atomically).

    Parameters
    ----------
    out_dir : path
        Destination folder; it appears only once complete.
    preset : {"tiny", "demo", "large"}
    seed : int
        The same seed gives identical tables and images.
    overwrite : bool
        Replace an existing folder.
    progress : callable, optional
        ``progress(fraction, message)`` for a progress bar.
    workers : int, optional
        Rendering processes (default: one per core, at most 4).
    """
    get_preset(preset)  # fail on an unknown preset before touching the disk
    report = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    report(0.0, "Drawing the world's tables")
    world = generate_world(preset, seed)
    drawn = time.perf_counter()
    workers = workers or min(4, os.cpu_count() or 1)
    with CatalogWriter(out_dir, overwrite=overwrite) as writer:
        rows = list(enumerate(world.items.to_dict("records")))
        chunk = 64
        jobs = [(str(writer.path), seed, rows[k:k + chunk]) for k in range(0, len(rows), chunk)]
        done = 0
        if workers > 1 and len(rows) > 2 * chunk:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for n in pool.map(_render_chunk, jobs):
                    done += n
                    report(0.05 + 0.9 * done / len(rows), f"Rendering items ({done}/{len(rows)})")
        else:
            for job in jobs:
                done += _render_chunk(job)
                report(0.05 + 0.9 * done / len(rows), f"Rendering items ({done}/{len(rows)})")
        rendered = time.perf_counter()
        report(0.96, "Writing tables")
        writer.write_table("truth/users.parquet", world.users)
        writer.write_table("truth/items.parquet",
                           pd.DataFrame({"item_id": world.items["item_id"], "popularity": world.popularity}))
        writer.write_json("truth/world.json", {"feature_names": list(FEATURE_NAMES), "beta": world.beta,
                                               "gamma": world.gamma, "version": WORLD_VERSION})
        writer.write_jsonl("truth/dialogues.jsonl", world.dialogue_requests)
        meta = {"name": f"Built-in world ({preset})", "source": "demo-world", "preset": preset, "seed": seed,
                "world_version": WORLD_VERSION,
                "timings_s": {"tables": round(drawn - started, 2), "render": round(rendered - drawn, 2)}}
        catalog = writer.finish(items=world.items, meta=meta, interactions=world.interactions,
                                outfits=world.outfits, dialogues=world.dialogues, captions=world.captions)
    report(1.0, "Done")
    logger.info("built %s world (%d items) in %.1f s", preset, len(world.items), time.perf_counter() - started)
    return catalog
