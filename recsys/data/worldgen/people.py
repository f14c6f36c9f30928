"""The built-in world's people and sets: user tastes and reviews, outfits, and FASCODE-style dialogues.

Part of the generator (:mod:`recsys.data.demo_world` draws and writes the world). Outfits and dialogues are
drawn item by item from the true compatibility of :class:`recsys.data.truth.WorldTruth`, so the truth that
scores the models is the one that made the data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.render import DETAIL_PLACES, DETAILS, MATERIALS, PATTERNS, PLACED_DETAILS
from recsys.data.truth import CATEGORIES, COLOR_NAMES, FASCODE_SLOTS, FEATURE_NAMES, STYLES, WorldTruth
from recsys.data.worldgen.items import STYLE_CATEGORIES, STYLE_COLORS, weighted_choice

OCCASIONS = {
    "casual": ["a weekend picnic", "brunch with friends", "a day of shopping", "a trip to the zoo"],
    "formal": ["a job interview", "a business meeting", "a wedding reception", "a gallery opening"],
    "sporty": ["a morning run", "the gym", "a hiking trip", "a tennis match"],
    "street": ["a concert downtown", "a night out in the city", "a skate park meetup", "a music festival"],
    "boho": ["an autumn festival", "a beach bonfire", "a flea market", "a garden party"],
}


# ---------------------------------------------------------------------- users and reviews
_REVIEW_TEMPLATES = {
    "style": "Perfect for my {value} look.",
    "color": "Love the {value} colour.",
    "pattern": "The {value} pattern is lovely.",
    "material": "The {value} feels great.",
    "detail": "Great {value} detail.",
}
_GENERIC_REVIEWS = ("Fits well.", "Good value for the price.", "Arrived quickly.", "Nice quality.", "Does the job.")


def sample_taste(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A user's latent taste: ``(weights over FEATURE_NAMES as float32 (n_features,), readable likes/dislikes)``.

    One or two liked styles, three liked and one or two disliked colours, a liked (and maybe a disliked)
    pattern, often a liked detail, and a liked material. A liked pocket or logo is liked at one place
    (``liked_place``: upper or lower part, :data:`recsys.data.render.DETAIL_PLACES`): the taste is then over
    ``detail_at=pocket@lower`` and a pocket elsewhere (or on a shoe) earns nothing -- the regions VECF's attention
    is meant to find (Chen et al., SIGIR 2019).
    """
    weights = {name: 0.0 for name in FEATURE_NAMES}
    styles = list(rng.choice(STYLES, size=1 + int(rng.random() < 0.4), replace=False))
    colors = list(rng.choice(COLOR_NAMES, size=5, replace=False))
    liked_colors, disliked_colors = colors[:3], colors[3:3 + 1 + int(rng.random() < 0.5)]
    patterns = list(rng.choice(PATTERNS, size=2, replace=False))
    liked_patterns, disliked_patterns = patterns[:1], patterns[1:] if rng.random() < 0.5 else []
    liked_detail = [str(rng.choice(DETAILS))] if rng.random() < 0.75 else []
    liked_material = [str(rng.choice(MATERIALS))]
    liked_place = [str(DETAIL_PLACES[rng.integers(len(DETAIL_PLACES))]) for d in liked_detail if d in PLACED_DETAILS]
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
        weights[f"detail_at={d}@{liked_place[0]}" if liked_place else f"detail={d}"] = 1.0
    for m in liked_material:
        weights[f"material={m}"] = 0.4
    readable = {
        "liked_styles": ",".join(map(str, styles)), "liked_colors": ",".join(map(str, liked_colors)),
        "disliked_colors": ",".join(map(str, disliked_colors)), "liked_patterns": ",".join(map(str, liked_patterns)),
        "disliked_patterns": ",".join(map(str, disliked_patterns)), "liked_detail": ",".join(liked_detail),
        "liked_place": ",".join(liked_place), "liked_material": ",".join(liked_material),
    }
    return np.array([weights[n] for n in FEATURE_NAMES], dtype=np.float32), readable


def sample_review(rng: np.random.Generator, item, readable: dict) -> str:
    """A short review of ``item`` (a mapping of its attributes) by a user with the ``readable`` tastes: what it has that they like, else generic."""
    liked = {"style": readable["liked_styles"].split(","), "color": readable["liked_colors"].split(","),
             "pattern": readable["liked_patterns"].split(","), "material": readable["liked_material"].split(","),
             "detail": readable["liked_detail"].split(",")}
    place = readable.get("liked_place", "")
    if place and item.get("detail_place") != place:  # a liked pocket, but not where it is liked
        liked["detail"] = []
    mentions = [_REVIEW_TEMPLATES[attr].format(value=item[attr]) for attr in liked if item[attr] in liked[attr]]
    if not mentions:
        return str(rng.choice(_GENERIC_REVIEWS))
    rng.shuffle(mentions)
    return " ".join(mentions[:2])


# ---------------------------------------------------------------------- outfits and dialogues
def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax of a 1-D array of logits (float64 probabilities summing to 1)."""
    z = np.exp(x - x.max())
    return z / z.sum()


def _pick(rng, truth: WorldTruth, candidates: np.ndarray, chosen: list[int], style: int, tau: float) -> int:
    score = np.where(truth.style_[candidates] == style, 1.0, 0.0)
    if chosen:
        score = score + truth.pair_compatibility(candidates[:, None], np.array(chosen)[None, :]).mean(axis=1)
    return int(candidates[rng.choice(len(candidates), p=softmax(tau * score))])


def _by_category(items: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: np.flatnonzero(items["category"].to_numpy() == c) for c in CATEGORIES}


def _category_for(rng, style: str, slot: str, pool: dict) -> str | None:
    names = tuple(c for c, spec in CATEGORIES.items() if spec.slot == slot and len(pool[c]))
    if not names:
        return None
    return weighted_choice(rng, STYLE_CATEGORIES[style], names)


def sample_outfits(rng, truth: WorldTruth, count: int, tau: float = 5.0) -> list[dict]:
    """``count`` outfits ``{"outfit_id", "style", "item_ids"}``, each drawn item by item from a style: every item
    is chosen by the softmax (temperature ``1 / tau``) of its style match plus its mean true compatibility with
    the items already chosen (Polyvore-like sets, Han et al., ACM MM 2017)."""
    pool = _by_category(truth.items)
    ids = truth.items["item_id"].to_numpy(dtype=object)
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
                        "item_ids": [ids[i] for i in chosen]})
    return outfits


def sample_dialogues(rng, truth: WorldTruth, n_train: int, n_eval: int) -> tuple[list[dict], list[dict]]:
    """FASCODE-style dialogues (Lee et al., 2020) and the wish each states: ``(dialogues, requests)``.

    A dialogue states an occasion (a style), two colours and a request for one slot, and ends in the best of
    a dozen drawn coordi-sets (outer, top, bottom, shoes) by the true set score; the ``n_eval`` evaluation
    dialogues stop before the answer and carry three candidate sets ranked by that score.
    """
    items = truth.items
    pool = _by_category(items)
    ids = items["item_id"].to_numpy()
    dialogues, requests = [], []
    for k in range(n_train + n_eval):
        dialogue_id = f"d{k:05d}"
        style = STYLES[rng.integers(len(STYLES))]
        occasion = OCCASIONS[style][rng.integers(len(OCCASIONS[style]))]
        colors = [str(c) for c in rng.choice(_top_values(STYLE_COLORS[style], 5), size=2, replace=False)]
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
                score = truth.requested_set_score(wish, chosen)
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
            scores = np.array([truth.requested_set_score(wish, s) for s in sets])
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

