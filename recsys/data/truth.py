"""The ground truth and vocabulary of the built-in generated world, apart from the generator (DESIGN section 4).

Because the world is generated, its truth is code: :class:`WorldTruth` gives the true utility of any user for
any item, the true compatibility of any set of items and the true score of a coordi-set for a dialogue, so every
model can be scored against an oracle. This module holds what the truth needs -- the world's vocabulary
(styles, colours, slots, categories, the taste features) and the compatibility tables -- and nothing of how the
world is drawn (:mod:`recsys.data.worldgen`) or written (:mod:`recsys.data.demo_world`). Protocols and pages
read the truth of a catalog with :meth:`WorldTruth.from_catalog`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.catalog import Catalog, CatalogError
from recsys.data.render import COLORS, DETAIL_PLACES, DETAILS, MATERIALS, PATTERNS, PLACED_DETAILS
from recsys.tables import read_parquet_table

# ====================================================================== vocabulary
STYLES = ("casual", "formal", "sporty", "street", "boho")
COLOR_NAMES = tuple(COLORS)
NEUTRALS = ("black", "white", "grey", "navy", "beige", "brown")
#: Order of the chromatic colours on the colour wheel used by the harmony rule.
HUE_WHEEL = ("red", "orange", "yellow", "green", "blue", "purple", "pink")
DETAIL_VALUES = DETAILS + ("none",)
#: A detail at a place (``"pocket@lower"``): what a taste for a detail at a place is over (VECF's setting, where
#: the liked part of an item is a region of its image).
DETAIL_AT_VALUES = tuple(f"{d}@{p}" for d in PLACED_DETAILS for p in DETAIL_PLACES)
FASCODE_SLOTS = ("outer", "top", "bottom", "shoes")


@dataclass(frozen=True)
class CategorySpec:
    """A garment category of the world: its outfit ``slot``, display ``label``, and the sleeve lengths, lengths
    and details its items can have (empty: the attribute does not apply)."""

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


#: How well two styles go together in an outfit (symmetric, same style = 1).
STYLE_AFFINITY = np.array([
    # casual formal sporty street boho
    [1.0, 0.0, 0.3, 0.5, 0.3],
    [0.0, 1.0, -0.9, -0.4, -0.2],
    [0.3, -0.9, 1.0, 0.4, -0.6],
    [0.5, -0.4, 0.4, 1.0, -0.3],
    [0.3, -0.2, -0.6, -0.3, 1.0],
], dtype=np.float32)


# ====================================================================== features and compatibility tables
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


def _lightness() -> np.ndarray:
    """Each colour's CIE L* (0 black .. 100 white), from its sRGB value."""
    from skimage.color import rgb2lab

    rgb = np.array([COLORS[c] for c in COLOR_NAMES], dtype=np.float64)[None] / 255.0
    return rgb2lab(rgb)[0, :, 0]


#: Each colour's CIE L*: what "darker" and "lighter" compare in relative captions.
COLOR_LIGHTNESS = _lightness()


def _lightness_bands() -> np.ndarray:
    """Each colour's lightness band (0 dark, 1 mid, 2 light) from its CIE L* (< 40, 40-70, > 70)."""
    return np.digitize(COLOR_LIGHTNESS, (40.0, 70.0)).astype(np.int64)


LIGHTNESS_BAND = _lightness_bands()
#: Two garments of the same lightness band read flat; one band apart is fine, dark against light is best.
LIGHTNESS_CONTRAST = np.array([[{0: -1.0, 1: 0.2, 2: 1.0}[abs(a - b)] for b in range(3)] for a in range(3)],
                              dtype=np.float32)
#: Accessories match the shoes: the same colour, or two neutrals; a chromatic mismatch is noticed.
COLOR_MATCH = np.array([[0.9 if a == b else 0.3 if a in NEUTRALS and b in NEUTRALS else -0.5 for b in COLOR_NAMES]
                        for a in COLOR_NAMES], dtype=np.float32)
#: How dressy a category is (0 sporty .. 2 dressy) and how much a material moves it; shoes and the garment they
#: are worn under should sit at the same level.
CATEGORY_FORMALITY = {"tshirt": 0.5, "shirt": 1.5, "sweater": 1.0, "tanktop": 0.0, "hoodie": 0.0, "trousers": 1.5,
                      "shorts": 0.0, "skirt": 1.0, "dress": 1.5, "jacket": 1.0, "coat": 2.0, "sneakers": 0.0,
                      "boots": 1.0, "heels": 2.0, "handbag": 1.0, "hat": 0.5}
MATERIAL_FORMALITY = {"cotton": 0.0, "denim": -0.5, "leather": 0.5, "knit": 0.0, "silk": 0.5}

#: The rules each unordered pair of slots is judged by, on top of the style affinity every pair shares. They differ
#: by pair on purpose, as in real outfits (Vasileva et al., ECCV 2018, learn one subspace per type pair for this):
#: colour harmony and pattern clash between top and bottom; lightness contrast between each two of outer, top and
#: bottom (a light top over dark trousers, a dark coat over both); formality between shoes and the garment above
#: them; colour match between shoes and accessory. Other pairs are judged on style alone. The contrast triangle is
#: meant to be hard for one space where "compatible" means "close": two garments of the same band that both contrast
#: with a third sit one short hop apart. A wide space can still hold it (separate blocks of coordinates per pair,
#: of constant norm), and on the demo world the triplet model ties the type-aware one: the report says so.
SLOT_PAIR_RULES: dict[frozenset, tuple[str, ...]] = {
    frozenset(("top", "bottom")): ("harmony", "pattern", "contrast"),
    frozenset(("outer", "top")): ("contrast",),
    frozenset(("outer", "bottom")): ("contrast",),
    frozenset(("outer", "onepiece")): ("contrast",),
    frozenset(("shoes", "bottom")): ("formality",),
    frozenset(("shoes", "onepiece")): ("formality",),
    frozenset(("shoes", "accessory")): ("match",),
}
SLOTS = ("outer", "top", "bottom", "onepiece", "shoes", "accessory")
RULES = ("harmony", "pattern", "contrast", "formality", "match")


def _rule_weights() -> np.ndarray:
    """``(n_rules, n_slots, n_slots)`` 0/1: which rule applies to which (symmetric) slot pair."""
    weights = np.zeros((len(RULES), len(SLOTS), len(SLOTS)), dtype=np.float32)
    for pair, rules in SLOT_PAIR_RULES.items():
        a, b = sorted(pair)
        for rule in rules:
            weights[RULES.index(rule), SLOTS.index(a), SLOTS.index(b)] = 1.0
            weights[RULES.index(rule), SLOTS.index(b), SLOTS.index(a)] = 1.0
    return weights


RULE_WEIGHTS = _rule_weights()
#: Weight of the slot-pair rules against the style affinity (which ranges -0.9 .. 1): at 2 they decide between
#: items of one style as much as style decides between styles.
SLOT_RULE_SCALE = 2.0

FEATURE_GROUPS = (("style", STYLES), ("color", COLOR_NAMES), ("pattern", PATTERNS), ("material", MATERIALS),
                  ("detail", DETAIL_VALUES), ("detail_at", DETAIL_AT_VALUES))
FEATURE_NAMES = tuple(f"{group}={value}" for group, values in FEATURE_GROUPS for value in values)


def detail_at(items: pd.DataFrame) -> pd.Series:
    """Each item's detail at its place (``"pocket@upper"``), empty where its detail has no place; an items table
    without a ``detail_place`` column has none."""
    if "detail_place" not in items.columns:
        return pd.Series("", index=items.index, dtype=object)
    place = items["detail_place"].fillna("").astype(str)
    return (items["detail"].fillna("none").astype(str) + "@" + place).where(place != "", "")


def item_features(items: pd.DataFrame) -> np.ndarray:
    """One-hot features of the attributes that users have tastes over, shape ``(n_items, n_features)``; an item
    without a value of a group (no placed detail) has zeros in that group."""
    blocks = []
    for group, values in FEATURE_GROUPS:
        column = (detail_at(items) if group == "detail_at" else items[group].fillna("none") if group == "detail"
                  else items[group])
        codes = pd.Categorical(column, categories=values).codes
        block = np.zeros((len(items), len(values)), dtype=np.float32)
        has = codes >= 0
        block[np.flatnonzero(has), codes[has]] = 1.0
        blocks.append(block)
    return np.concatenate(blocks, axis=1)


def _codes(items: pd.DataFrame, column: str, values) -> np.ndarray:
    return pd.Categorical(items[column], categories=values).codes.astype(np.int64)


@dataclass
class WorldTruth:
    """The ground truth of a generated world: true utility and true compatibility as code.

    Build it from a written catalog with :meth:`from_catalog`; the generator builds it from its own tables. The
    utility follows VBPR's setting of a latent taste over item features (He & McAuley, AAAI 2016) made explicit:
    ``beta * taste . features(item) + gamma * log(popularity)``; compatibility is style affinity plus rules that
    depend on the pair's slots (:data:`SLOT_PAIR_RULES`: colour harmony and pattern clash for top-bottom,
    lightness contrast among outer, top and bottom, formality for shoes, colour match for shoes-accessory), the
    setting type-aware models (one subspace per slot pair) are built for (DESIGN section 4).

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
        self.slot_ = np.array([SLOTS.index(CATEGORIES[c].slot) for c in self.category_], dtype=np.int64)
        self.lightness_ = LIGHTNESS_BAND[self.color_]
        self.formality_ = (np.array([CATEGORY_FORMALITY[c] for c in self.category_], dtype=np.float32)
                           + np.array([MATERIAL_FORMALITY[m] for m in self.items["material"]], dtype=np.float32))
        self.user_index_ = {u: k for k, u in enumerate(self.user_ids)}
        self.item_index_ = {i: k for k, i in enumerate(self.items["item_id"])}

    # ------------------------------------------------------------- loading
    @classmethod
    def from_catalog(cls, catalog: Catalog) -> "WorldTruth":
        """The truth of a generated catalog, read from its ``truth/`` folder.

        Raises
        ------
        CatalogError
            When the catalog has no ``truth/`` folder (it is not a generated world) or was written by a generator
            with other taste features.
        recsys.tables.TableError
            When a truth table cannot be read (one sentence naming it).
        OSError, KeyError
            When another truth file is missing or damaged.
        """
        truth_dir = catalog.root / "truth"
        if not truth_dir.is_dir():
            raise CatalogError(f"The catalog {catalog.name} is not a generated world: it has no truth/ folder.")
        users = read_parquet_table(truth_dir / "users.parquet")
        pop = read_parquet_table(truth_dir / "items.parquet").set_index("item_id")["popularity"]
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
        """True utility (the logit interactions were drawn from) of users x items: ``(n_users, n_items)`` float.

        ``users`` are user ids or row numbers (default: all); ``item_idx`` item row positions (default: all).

        Raises
        ------
        KeyError
            For an unknown user id.
        """
        if users is None:
            rows = np.arange(len(self.user_ids))
        else:
            rows = np.array([self.user_index_[u] if isinstance(u, str) else int(u) for u in np.atleast_1d(users)])
        features = self.features_ if item_idx is None else self.features_[np.asarray(item_idx)]
        pop = self.popularity if item_idx is None else self.popularity[np.asarray(item_idx)]
        return self.beta * self.tastes[rows] @ features.T + self.gamma * np.log(pop)[None, :]

    def tastes_of(self, user_id: str) -> dict:
        """Readable tastes of a user (liked styles, colours, ...).

        Raises
        ------
        KeyError
            For an unknown user id.
        """
        row = self.user_table[self.user_table["user_id"] == user_id]
        if row.empty:
            raise KeyError(f"Unknown user '{user_id}'.")
        return {k: v for k, v in row.iloc[0].items() if k != "user_id"}

    # ------------------------------------------------------------- compatibility
    def pair_compatibility(self, a_idx, b_idx) -> np.ndarray:
        """True compatibility of item pairs (row positions, broadcastable arrays): float32 of the broadcast shape.

        Style affinity for every pair, plus the rules of the pair's slots (:data:`SLOT_PAIR_RULES`): colour
        harmony and pattern clash (top-bottom), lightness contrast (each two of outer, top, bottom), formality
        (shoes and the garment above), colour match (shoes and accessory). Two items of the same slot share
        style only.
        """
        a_idx, b_idx = np.asarray(a_idx), np.asarray(b_idx)
        rule = RULE_WEIGHTS[:, self.slot_[a_idx], self.slot_[b_idx]]
        color_a, color_b = self.color_[a_idx], self.color_[b_idx]
        formality_gap = np.abs(self.formality_[a_idx] - self.formality_[b_idx])
        return (STYLE_AFFINITY[self.style_[a_idx], self.style_[b_idx]] + SLOT_RULE_SCALE * (
                rule[RULES.index("harmony")] * COLOR_HARMONY[color_a, color_b]
                + rule[RULES.index("pattern")] * PATTERN_PAIR[self.pattern_[a_idx], self.pattern_[b_idx]]
                + rule[RULES.index("contrast")] * LIGHTNESS_CONTRAST[self.lightness_[a_idx], self.lightness_[b_idx]]
                + rule[RULES.index("formality")] * (0.9 - 0.9 * np.minimum(formality_gap, 2.0))
                + rule[RULES.index("match")] * COLOR_MATCH[color_a, color_b])).astype(np.float32)

    def compatibility(self, items) -> float:
        """True compatibility of a set of items (ids or row positions): the mean over its pairs (0 below two items).

        Raises
        ------
        KeyError
            For an unknown item id.
        """
        idx = np.array([self.item_index_[i] if isinstance(i, str) else int(i) for i in items])
        if len(idx) < 2:
            return 0.0
        a, b = np.triu_indices(len(idx), k=1)
        return float(self.pair_compatibility(idx[a], idx[b]).mean())

    # ------------------------------------------------------------- dialogues
    def coordi_score(self, dialogue_id: str, coordi: dict) -> float:
        """True score of a coordi-set for a dialogue: how well it meets the stated wishes, plus compatibility.

        ``coordi`` maps each of :data:`FASCODE_SLOTS` to an item id.

        Raises
        ------
        KeyError
            For an unknown dialogue, a missing slot or an unknown item id.
        """
        requests = self.dialogue_requests[dialogue_id]
        return self.requested_set_score(requests, [self.item_index_[coordi[s]] for s in FASCODE_SLOTS])

    def requested_set_score(self, requests: dict, idx) -> float:
        """True score of the items at row positions ``idx`` (one per slot of :data:`FASCODE_SLOTS`, in order) for
        ``requests`` (``{"style", "colors", "slot", "category", "pattern"}``): matching style and colours, the
        requested category and pattern in the requested slot, plus twice the mean pair compatibility."""
        idx = np.asarray(idx)
        colors = np.array([COLOR_NAMES.index(c) for c in requests["colors"]])
        score = (self.style_[idx] == STYLES.index(requests["style"])).sum() + 0.8 * np.isin(self.color_[idx], colors).sum()
        k = idx[FASCODE_SLOTS.index(requests["slot"])]
        score += 1.5 if self.category_[k] == requests["category"] else 0.0
        if requests.get("pattern"):
            score += 0.8 if PATTERNS[self.pattern_[k]] == requests["pattern"] else 0.0
        a, b = np.triu_indices(len(idx), k=1)
        return float(score + 2.0 * self.pair_compatibility(idx[a], idx[b]).mean())


