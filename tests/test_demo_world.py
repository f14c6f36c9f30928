"""Invariants of the built-in world: counts, slots, captions, dialogues, cold start, determinism, headroom."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import ImageChops

from recsys.catalog import Catalog, CatalogError
from recsys.data import demo_world
from recsys.data.demo_world import PRESETS, build_demo_catalog, generate_world
from recsys.data.render import PLACED_CATEGORIES, PLACED_DETAILS, ItemLook, detail_box, render_item
from recsys.data.truth import (
    CATEGORIES, COLOR_LIGHTNESS, COLOR_NAMES, FASCODE_SLOTS, FEATURE_NAMES, LIGHTNESS_BAND, WorldTruth,
)
from recsys.data.worldgen.items import CHANGEABLE, describe, mined_pairs, relative_captions, target_phrase
from recsys.data.worldgen.people import sample_review, sample_taste

ROOT = Path(__file__).resolve().parent.parent


def test_counts_match_the_preset(tiny_catalog):
    preset = PRESETS["tiny"]
    assert len(tiny_catalog.items) == preset.base_items + preset.caption_triples
    assert tiny_catalog.interactions["user_id"].nunique() == preset.users
    assert len(tiny_catalog.outfits) == preset.outfits
    assert len(tiny_catalog.dialogues) == preset.train_dialogues + preset.eval_dialogues
    assert len(tiny_catalog.captions) == preset.caption_triples + preset.mined_triples
    assert tiny_catalog.items["category"].nunique() >= 12
    assert set(tiny_catalog.items["slot"]) == {"top", "bottom", "onepiece", "outer", "shoes", "accessory"}
    assert tiny_catalog.meta["counts"]["items"] == len(tiny_catalog.items)


def test_every_attribute_value_occurs(tiny_catalog):
    items = tiny_catalog.items
    assert set(items["pattern"]) == {"solid", "striped", "dotted", "checked", "floral"}
    assert {"pocket", "logo", "buttons", "zipper", "bow"} <= set(items["detail"])
    assert {"short", "long", "sleeveless"} <= set(items["sleeve"].dropna())
    assert {"short", "midi", "long"} <= set(items["length"].dropna())


def test_every_outfit_fills_the_required_slots(tiny_catalog):
    slot_of = dict(zip(tiny_catalog.items["item_id"], tiny_catalog.items["slot"]))
    for outfit in tiny_catalog.outfits:
        slots = [slot_of[i] for i in outfit["item_ids"]]
        assert len(slots) == len(set(slots)), outfit
        assert "shoes" in slots
        assert ("onepiece" in slots) != ({"top", "bottom"} <= set(slots)), outfit


_SLEEVES = ("sleeveless", "short", "long")
_LENGTHS = ("short", "midi", "long")


def _negates(caption: str, old: str) -> bool:
    return any(f"{w} {old}" in caption for w in ("not", "no longer", "no", "without the", "loses the"))


def _states_change(caption: str, attr: str, old, new) -> bool:
    """Whether ``caption`` states the change of ``attr`` from ``old`` to ``new`` in a way that reads true."""
    if attr == "color":
        gap = COLOR_LIGHTNESS[COLOR_NAMES.index(new)] - COLOR_LIGHTNESS[COLOR_NAMES.index(old)]
        return new in caption or ("darker" in caption and gap < 0) or ("lighter" in caption and gap > 0) \
            or _negates(caption, old)
    if attr == "pattern":
        stated = ("plain" in caption or "solid" in caption) if new == "solid" else new in caption
        return stated or (new == "solid" and _negates(caption, old))
    if attr == "material":
        return new in caption or _negates(caption, old)
    if attr == "detail":
        return _negates(caption, old) if new == "none" else new in caption
    order = _SLEEVES if attr == "sleeve" else _LENGTHS
    longer = order.index(new) > order.index(old)
    if attr == "sleeve" and new == "sleeveless":
        return "sleeveless" in caption or "no sleeves" in caption or "loses the sleeves" in caption
    compared = caption.replace("no longer", "")  # a negation, not a comparative
    return new in caption or ("longer" in compared and longer) or ("shorter" in compared and not longer)


def test_each_caption_states_the_changes_that_really_separate_target_from_reference(tiny_catalog):
    items = tiny_catalog.items.set_index("item_id")
    records = {i: {k: (None if pd.isna(v) else v) for k, v in row.items()} for i, row in items.iterrows()}
    for triple in tiny_catalog.captions:
        ref, target = records[triple["reference_id"]], records[triple["target_id"]]
        assert ref["category"] == target["category"]
        differ = {a for a in CHANGEABLE if ref[a] != target[a]}
        assert differ == set(triple["changes"]) and 1 <= len(differ) <= 2
        assert len(triple["captions"]) == 2 and triple["split"] in ("train", "val", "test")
        for caption in triple["captions"]:
            if caption == target_phrase(target):  # a description of the whole target, not of the reference
                assert caption != target_phrase(ref)
                continue
            for attr in differ:
                assert _states_change(caption, attr, ref[attr], target[attr]), (caption, attr, ref[attr], target[attr])


def test_comparatives_point_the_right_way():
    rng = np.random.default_rng(0)
    item = {"category": "dress", "style": "formal", "color": "white", "pattern": "striped", "material": "silk", "detail": "none",
            "sleeve": "short", "length": "midi"}
    seen = set()
    for _ in range(200):
        for caption in relative_captions(rng, {"color": ("white", "navy"), "sleeve": ("short", "long")}, item):
            assert "lighter" not in caption and "shorter" not in caption, caption
            seen |= {w for w in ("darker", "longer sleeves", "navy", "long sleeves", "same but", "is a ") if w in caption}
        for caption in relative_captions(rng, {"pattern": ("striped", "solid"), "length": ("midi", "short")}, item):
            assert "longer" not in caption.replace("no longer", "") and "is striped" not in caption, caption
            seen |= {w for w in ("no longer striped", "shorter") if w in caption}
    # Every form is drawn: comparatives, negations, named values, "same but" and whole-target descriptions.
    assert seen == {"darker", "longer sleeves", "navy", "long sleeves", "same but", "is a ", "no longer striped",
                    "shorter"}


def test_the_world_mixes_relative_and_descriptive_captions(tiny_catalog):
    captions = [c for t in tiny_catalog.captions for c in t["captions"]]
    relative = [c for c in captions if any(w in c for w in ("darker", "lighter", "longer", "shorter", " not ",
                                                            "no longer", "loses", "instead of", "rather than"))]
    assert 0.3 < len(relative) / len(captions) < 0.8
    assert any(c.startswith("same but") for c in captions) and any(c.startswith("is a ") for c in captions)


def test_mined_pairs_are_items_of_one_category_that_differ_in_one_or_two_attributes():
    rng = np.random.default_rng(3)
    records = [{"category": c, "color": col, "pattern": "solid", "material": m, "detail": "none", "sleeve": None,
                "length": None} for c in ("hat", "handbag") for col in ("red", "blue", "black") for m in ("silk", "knit")]
    pairs = mined_pairs(rng, records, count=1000)
    # Per category: 6 items, each differing from 1 (material), 2 (colour) or 2 (colour and material) others in
    # at most two attributes -> 6 * 5 ordered pairs, all of them within two changes.
    assert len(pairs) == 2 * 6 * 5
    for ref, target, changes in pairs:
        assert records[ref]["category"] == records[target]["category"] and 1 <= len(changes) <= 2
        assert changes == {a: (records[ref][a], records[target][a]) for a in CHANGEABLE
                           if records[ref][a] != records[target][a]}
    assert len(mined_pairs(np.random.default_rng(3), records, count=7)) == 7
    # A pocket moved from the chest to the hem is no caption's change: such pairs are not mined.
    pockets = [records[0] | {"category": "tshirt", "detail": "pocket", "detail_place": place}
               for place in ("upper", "lower")]
    assert mined_pairs(np.random.default_rng(3), pockets, count=10) == []
    pockets[1]["color"] = "green"
    assert mined_pairs(np.random.default_rng(3), pockets + [pockets[0] | {"color": "green"}], count=10) == [
        (0, 2, {"color": ("red", "green")}), (2, 0, {"color": ("green", "red")})]
    assert mined_pairs(np.random.default_rng(3), records, count=7) == mined_pairs(np.random.default_rng(3), records, 7)


def test_dialogues_end_in_a_valid_coordi_set(tiny_catalog):
    slot_of = dict(zip(tiny_catalog.items["item_id"], tiny_catalog.items["slot"]))
    truth = WorldTruth.from_catalog(tiny_catalog)
    splits = {d["split"] for d in tiny_catalog.dialogues}
    assert splits == {"train", "eval"}
    for dialogue in tiny_catalog.dialogues:
        assert {t["speaker"] for t in dialogue["turns"]} == {"US", "CO", "AC"}
        assert dialogue["turns"][0]["speaker"] == "US"
        assert [slot_of[dialogue["coordi"][s]] for s in FASCODE_SLOTS] == list(FASCODE_SLOTS)
        if dialogue["split"] == "train":
            last = dialogue["turns"][-1]
            assert last["speaker"] == "AC" and last["item_ids"] == [dialogue["coordi"][s] for s in FASCODE_SLOTS]
        else:
            candidates = dialogue["candidates"]
            assert sorted(c["rank"] for c in candidates) == [1, 2, 3]
            scores = {c["rank"]: truth.coordi_score(dialogue["dialogue_id"], c["coordi"]) for c in candidates}
            assert scores[1] >= scores[2] >= scores[3]
            # the final coordi is hidden from the evaluation dialogue
            assert all(set(t.get("item_ids", [])) != set(dialogue["coordi"].values()) for t in dialogue["turns"])


def test_cold_start_items_have_no_training_interactions(tiny_catalog):
    inter = tiny_catalog.interactions.sort_values(["user_id", "timestamp"])
    cold = set(tiny_catalog.items.loc[tiny_catalog.items["cold_start"], "item_id"])
    assert cold
    history = inter.groupby("user_id").head(-1)  # everything but each user's last interaction
    assert not set(history["item_id"]) & cold
    assert set(inter.groupby("user_id").tail(1)["item_id"]) & cold, "some users should end on a cold item"


def test_interactions_are_timestamped_and_reviewed(tiny_catalog):
    inter = tiny_catalog.interactions
    assert (inter.groupby("user_id")["timestamp"].apply(lambda t: t.is_monotonic_increasing)).all()
    assert not inter.duplicated(["user_id", "item_id"]).any()
    reviews = inter["review"].dropna()
    assert 0.4 < len(reviews) / len(inter) < 0.8
    assert reviews.str.len().min() > 3


def test_detail_box_encloses_the_drawn_detail():
    rng_seed = 3
    for category, spec in CATEGORIES.items():
        for detail in spec.details:
            look = ItemLook(category, "white", "solid", "cotton", spec.sleeves[0] if spec.sleeves else None,
                            spec.lengths[0] if spec.lengths else None, detail, scale=0.9, shift_x=0.03, shift_y=-0.02)
            plain = ItemLook(**{**look.__dict__, "detail": "none"})
            with_detail = render_item(look, np.random.default_rng(rng_seed))
            without = render_item(plain, np.random.default_rng(rng_seed))
            diff = np.asarray(ImageChops.difference(with_detail, without).convert("L")) > 24
            ys, xs = np.nonzero(diff)
            assert len(xs) > 20, f"{detail} on {category} is not visible"
            x0, y0, x1, y1 = detail_box(look)
            inside = (xs >= x0 - 2) & (xs <= x1 + 2) & (ys >= y0 - 2) & (ys <= y1 + 2)
            assert inside.mean() > 0.97, f"{detail} on {category} drawn outside its box"


def test_a_placed_detail_is_drawn_at_its_place():
    for category in PLACED_CATEGORIES:
        spec = CATEGORIES[category]
        for detail in PLACED_DETAILS:
            boxes = {}
            for place in ("upper", "lower"):
                look = ItemLook(category, "white", "solid", "cotton", spec.sleeves[0] if spec.sleeves else None,
                                spec.lengths[0] if spec.lengths else None, detail, detail_place=place)
                boxes[place] = detail_box(look)
                plain = ItemLook(**{**look.__dict__, "detail": "none"})
                diff = np.asarray(ImageChops.difference(render_item(look, np.random.default_rng(0)),
                                                        render_item(plain, np.random.default_rng(0))).convert("L"))
                ys, xs = np.nonzero(diff > 24)
                x0, y0, x1, y1 = boxes[place]
                assert ((ys >= y0 - 2) & (ys <= y1 + 2)).mean() > 0.97, f"{detail} {place} on {category}"
            # The two places do not overlap: the lower box starts below the upper one's bottom edge.
            assert boxes["lower"][1] >= boxes["upper"][3] - 2, (category, detail, boxes)


def test_only_pockets_and_logos_on_garments_have_a_place_and_no_description_names_it(tiny_catalog):
    items = tiny_catalog.items
    placed = items["detail"].isin(PLACED_DETAILS) & items["category"].isin(PLACED_CATEGORIES)
    assert set(items.loc[placed, "detail_place"]) == {"upper", "lower"}
    assert items.loc[~placed, "detail_place"].isna().all()
    for words in ("chest", "hem", "hip", "bodice"):
        assert not items["description"].str.contains(words).any()
    record = items[placed].iloc[0].to_dict()
    assert describe(record) == describe(record | {"detail_place": "upper" if record["detail_place"] == "lower"
                                                  else "lower"})


def test_a_taste_for_a_detail_at_a_place_likes_it_there_only():
    rng = np.random.default_rng(0)
    tastes = [sample_taste(rng) for _ in range(400)]
    placed = [(w, r) for w, r in tastes if r["liked_place"]]
    # Pockets and logos are two of five details, liked by 3 users in 4: about 30% like a detail at a place.
    assert 0.2 < len(placed) / len(tastes) < 0.4
    weights, readable = placed[0]
    base = {"item_id": "a", "category": "tshirt", "slot": "top", "style": "casual", "color": "white",
            "pattern": "solid", "material": "cotton", "sleeve": "short", "length": None,
            "detail": readable["liked_detail"]}
    other = "upper" if readable["liked_place"] == "lower" else "lower"
    items = pd.DataFrame([base | {"item_id": "liked", "detail_place": readable["liked_place"]},
                          base | {"item_id": "elsewhere", "detail_place": other},
                          base | {"item_id": "shoe", "category": "sneakers", "slot": "shoes", "detail_place": None},
                          base | {"item_id": "plain", "detail": "none", "detail_place": None}])
    truth = WorldTruth(items=items, user_ids=["u"], tastes=weights[None], popularity=np.ones(4), beta=1.0, gamma=0.0,
                       user_table=pd.DataFrame([{"user_id": "u", **readable}]))
    liked, elsewhere, shoe, plain = truth.utility()[0]
    assert liked == pytest.approx(plain + 1.0)
    assert elsewhere == pytest.approx(plain) and shoe == pytest.approx(plain)
    # The review praises the detail only where it is liked.
    detail_praise = f"Great {readable['liked_detail']} detail."
    review_rng = np.random.default_rng(1)
    assert detail_praise in sample_review(review_rng, items.iloc[0].to_dict(), readable)
    assert all(detail_praise not in sample_review(review_rng, items.iloc[1].to_dict(), readable) for _ in range(20))


def test_items_record_their_detail_box(tiny_catalog):
    items = tiny_catalog.items
    has = items["detail"] != "none"
    assert (items.loc[has, "detail_x1"] > items.loc[has, "detail_x0"]).all()
    assert (items.loc[has, ["detail_x0", "detail_y0"]] >= 0).all().all()
    assert (items.loc[has, ["detail_x1", "detail_y1"]] <= 224).all().all()
    assert (items.loc[~has, "detail_x0"] == -1).all()


def test_same_seed_gives_identical_tables_and_images(tiny_catalog_dir, tmp_path):
    again = build_demo_catalog(tmp_path / "again", preset="tiny", seed=0, workers=1)
    for table in ("items.parquet", "interactions.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tiny_catalog_dir / table), pd.read_parquet(again.root / table))
    for name in ("outfits.jsonl", "dialogues.jsonl", "captions.jsonl"):
        assert (tiny_catalog_dir / name).read_bytes() == (again.root / name).read_bytes()

    def digest(folder: Path) -> str:
        h = hashlib.sha256()
        for path in sorted((folder / "images").iterdir()):
            h.update(path.read_bytes())
        return h.hexdigest()

    assert digest(tiny_catalog_dir) == digest(again.root)
    other = generate_world("tiny", seed=1)
    assert not other.items[["category", "color"]].equals(again.items[["category", "color"]])


def test_truth_reads_back_and_scores(tiny_catalog):
    truth = WorldTruth.from_catalog(tiny_catalog)
    utility = truth.utility()
    assert utility.shape == (PRESETS["tiny"].users, len(tiny_catalog.items))
    assert np.isfinite(utility).all()
    assert truth.tastes_of("u00000")["liked_colors"]
    with pytest.raises(KeyError):
        truth.tastes_of("nobody")
    outfit_scores = [truth.compatibility(o["item_ids"]) for o in tiny_catalog.outfits]
    rng = np.random.default_rng(0)
    random_scores = [truth.compatibility(list(rng.choice(len(tiny_catalog.items), size=4, replace=False)))
                     for _ in range(200)]
    assert np.mean(outfit_scores) > np.mean(random_scores) + 0.3


@pytest.fixture(scope="module")
def demo_preset_world():
    return generate_world("demo", seed=0)


def test_world_leaves_headroom_over_simple_baselines(demo_preset_world):
    """Popularity and same-colour baselines must stay far below the oracle, or models have nothing to prove."""
    world = demo_preset_world
    truth, items = world.truth(), world.items
    index = {item_id: k for k, item_id in enumerate(items["item_id"])}
    inter = world.interactions.sort_values(["user_id", "timestamp"])
    test = inter.groupby("user_id").tail(1)
    train = inter.drop(test.index)
    popularity = np.bincount(train["item_id"].map(index), minlength=len(items)).astype(float)
    utility = truth.utility()
    seen = train.groupby("user_id")["item_id"].apply(lambda s: s.map(index).to_numpy())
    hits = {"oracle": 0, "popularity": 0}
    for user, item in zip(test["user_id"], test["item_id"]):
        for name, scores in (("oracle", utility[truth.user_index_[user]].copy()), ("popularity", popularity.copy())):
            scores[seen[user]] = -np.inf
            hits[name] += index[item] in np.argpartition(-scores, 10)[:10]
    assert hits["popularity"] < 0.3 * hits["oracle"], hits

    rng = np.random.default_rng(0)
    by_category = items.groupby("category").indices
    correct = {"oracle": 0, "same-colour": 0}
    questions = 0
    colors = items["color"].to_numpy()
    for outfit in world.outfits:
        ids = [index[i] for i in outfit["item_ids"]]
        blank = int(rng.integers(len(ids)))
        answer, rest = ids[blank], ids[:blank] + ids[blank + 1:]
        pool = [i for i in by_category[items["category"].iat[answer]] if i != answer]
        candidates = [answer] + list(rng.choice(pool, size=3, replace=False))
        oracle = [truth.compatibility(rest + [c]) for c in candidates]
        colour = [np.mean([colors[c] == colors[r] for r in rest]) + 1e-6 * rng.random() for c in candidates]
        correct["oracle"] += int(np.argmax(oracle) == 0)
        correct["same-colour"] += int(np.argmax(colour) == 0)
        questions += 1
    assert correct["oracle"] / questions > 0.6
    assert correct["same-colour"] / questions < correct["oracle"] / questions - 0.25, correct


def test_unknown_preset_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="Unknown preset 'huge'"):
        build_demo_catalog(tmp_path / "x", preset="huge")
    assert not (tmp_path / "x").exists()
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_demo.py"), "--preset", "huge", "--out",
                             str(tmp_path / "y")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown preset 'huge'" in result.stderr and "Traceback" not in result.stderr


def test_unwritable_output_gives_a_clear_message(tmp_path):
    # A path below a plain file cannot be created, even by root (for whom chmod does not lock a folder).
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_demo.py"), "--preset", "tiny",
                             "--out", str(blocker / "world")], capture_output=True, text=True)
    assert result.returncode == 1
    assert "cannot be written" in result.stderr and "Traceback" not in result.stderr


def test_a_failed_build_leaves_nothing_that_looks_valid(tmp_path, monkeypatch):
    def broken(args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(demo_world, "_render_chunk", broken)
    with pytest.raises(RuntimeError):
        build_demo_catalog(tmp_path / "world", preset="tiny", workers=1)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(CatalogError):
        Catalog.load(tmp_path / "world")


def test_the_truth_lives_apart_from_the_generator():
    # The generator re-exports the truth for callers written before the split.
    assert demo_world.WorldTruth is WorldTruth and demo_world.CATEGORIES is CATEGORIES
    code = ("import sys, recsys.data.truth; "
            "print(any(m.startswith(('recsys.data.worldgen', 'recsys.data.demo_world')) for m in sys.modules))")
    fresh = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True)
    assert fresh.stdout.strip() == "False"


def _hand_truth(rows) -> WorldTruth:
    """A truth over hand-written items ``(category, color, pattern, material)``, every one casual, no users."""
    items = pd.DataFrame([{"item_id": f"h{k}", "category": c, "color": col, "pattern": p, "material": m,
                           "style": "casual", "detail": None} for k, (c, col, p, m) in enumerate(rows)])
    return WorldTruth(items=items, user_ids=[], tastes=np.zeros((0, len(FEATURE_NAMES)), np.float32),
                      popularity=np.ones(len(items)), beta=1.0, gamma=0.0, user_table=pd.DataFrame())


def test_compatibility_rules_depend_on_the_slot_pair():
    """The same two colours are judged by different rules for different slot pairs (what type-aware models fit)."""
    truth = _hand_truth([
        ("shirt", "black", "solid", "cotton"),      # 0 top, dark
        ("trousers", "black", "solid", "cotton"),   # 1 bottom, dark
        ("trousers", "white", "solid", "cotton"),   # 2 bottom, light
        ("coat", "black", "solid", "cotton"),       # 3 outer, dark
        ("sneakers", "black", "solid", "cotton"),   # 4 shoes
        ("handbag", "black", "solid", "cotton"),    # 5 accessory, same colour as the shoes
        ("handbag", "red", "solid", "cotton"),      # 6 accessory, another colour
        ("heels", "black", "solid", "leather"),     # 7 shoes, dressy
        ("hat", "black", "solid", "cotton"),        # 8 accessory
    ])
    pair = truth.pair_compatibility
    # Lightness contrast between top and bottom, and between a coat and either: black on black reads flat.
    assert pair(0, 2) > pair(0, 1)
    assert pair(3, 2) > pair(3, 1)
    # Shoes and accessory: the same colour is what counts ...
    assert pair(4, 5) > pair(4, 6)
    # ... while between a top and an accessory colour plays no part (style only): same score for both handbags.
    assert pair(0, 5) == pytest.approx(pair(0, 6))
    # A same-colour pair is the best pairing for shoes-accessory and the worst for top-bottom.
    assert pair(4, 5) > 0 > pair(0, 1)
    # Formality between shoes and the trousers above them; not between shoes and a hat.
    assert pair(4, 1) != pytest.approx(pair(7, 1))
    assert pair(4, 8) == pytest.approx(pair(7, 8))


def test_outfits_follow_each_slot_pairs_rule(demo_preset_world):
    """Drawn outfits keep the rules of their own slot pairs: their top-bottom pairs contrast in lightness more often
    than random top-bottom pairs, and their shoes-accessory pairs share a colour more often."""
    world = demo_preset_world
    items = world.items.set_index("item_id")
    band = {i: LIGHTNESS_BAND[COLOR_NAMES.index(c)] for i, c in items["color"].items()}
    by_slot = items.groupby("slot").groups
    rng = np.random.default_rng(0)
    contrast, same_colour = [], []
    for outfit in world.outfits:
        slots = {items.at[i, "slot"]: i for i in outfit["item_ids"]}
        if "top" in slots and "bottom" in slots:
            contrast.append(band[slots["top"]] != band[slots["bottom"]])
        if "shoes" in slots and "accessory" in slots:
            same_colour.append(items.at[slots["shoes"], "color"] == items.at[slots["accessory"], "color"])
    tops, bottoms = rng.choice(by_slot["top"], 2000), rng.choice(by_slot["bottom"], 2000)
    random_contrast = np.mean([band[t] != band[b] for t, b in zip(tops, bottoms)])
    shoes, bags = rng.choice(by_slot["shoes"], 2000), rng.choice(by_slot["accessory"], 2000)
    random_same = np.mean([items.at[s, "color"] == items.at[a, "color"] for s, a in zip(shoes, bags)])
    assert np.mean(contrast) > random_contrast + 0.1, (np.mean(contrast), random_contrast)
    assert np.mean(same_colour) > 2 * random_same, (np.mean(same_colour), random_same)


def test_the_demo_world_sizes_its_evaluation_sets_by_power(demo_preset_world):
    """Issue 30: four times the test outfits and evaluation dialogues of world version 4, as evaluation-only records
    (sets of existing items, no new image) drawn after the rest; the tiny world the tests build keeps none."""
    world = demo_preset_world
    extended = [o for o in world.outfits if o.get(demo_world.EXTENDED)]
    assert (len(world.outfits), len(extended)) == (4000, 1500)
    assert all(o["split"] == "test" for o in extended) and world.outfits[-1500:] == extended
    # With the 80/20 split of the 2500 others, 500 + 1500 = 2000 test outfits (500 before).
    dialogues = [d for d in world.dialogues if d["split"] == "eval"]
    assert (len(world.dialogues), len(dialogues), sum(bool(d.get(demo_world.EXTENDED)) for d in dialogues)) == (
        1400, 800, 600)
    assert all(d.get("candidates") for d in dialogues)
    known = set(world.items["item_id"])
    assert all(set(o["item_ids"]) <= known for o in extended)
    assert (PRESETS["tiny"].extra_test_outfits, PRESETS["tiny"].extra_eval_dialogues) == (0, 0)


def test_evaluation_only_records_leave_the_rest_of_the_world_as_it_was(monkeypatch):
    from dataclasses import replace

    monkeypatch.setitem(PRESETS, "tiny-extended", replace(PRESETS["tiny"], extra_test_outfits=10,
                                                          extra_eval_dialogues=5))
    plain, extended = generate_world("tiny", seed=0), generate_world("tiny-extended", seed=0)
    assert extended.outfits[:60] == plain.outfits and len(extended.outfits) == 70
    assert all(o[demo_world.EXTENDED] and o["split"] == "test" for o in extended.outfits[60:])
    assert extended.dialogues[:36] == plain.dialogues and len(extended.dialogues) == 41
    assert all(d[demo_world.EXTENDED] and d["split"] == "eval" for d in extended.dialogues[36:])
    pd.testing.assert_frame_equal(extended.interactions, plain.interactions)


def test_evaluation_only_outfits_are_tested_on_never_trained_on():
    from types import SimpleNamespace

    from recsys.tasks.compat.data import split_outfits

    outfits = [{"outfit_id": f"o{k}", "item_ids": [2 * k, 2 * k + 1]} for k in range(20)]
    extra = [{"outfit_id": f"x{k}", "item_ids": [k, k + 7], "split": "test", "extended": True} for k in range(6)]

    def catalog(records):
        return SimpleNamespace(name="hand-made", outfits=records, indices=lambda ids: np.asarray(ids, np.int64))

    train, test = split_outfits(catalog(outfits), seed=3)
    train_x, test_x = split_outfits(catalog(outfits + extra), seed=3)
    # The 80/20 split of the others is the one they had alone; the extra outfits follow the test ones.
    assert [t.tolist() for t in train_x] == [t.tolist() for t in train] and len(train) == 16
    assert [t.tolist() for t in test_x] == [t.tolist() for t in test] + [o["item_ids"] for o in extra]
    # The quick report leaves them out.
    _, quick_test = split_outfits(catalog(outfits + extra), seed=3, extended=False)
    assert [t.tolist() for t in quick_test] == [t.tolist() for t in test]
