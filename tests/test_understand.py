"""Understanding people's own words (recsys.understand): the catalog's vocabulary, negation, the garment a phrase
is about, captions against a reference, turns merged, and ranking within what was asked -- on the tiny world's
items, no model needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.understand import Vocabulary, understand
from recsys.understand import apply as at_work


@pytest.fixture(scope="module")
def vocab(tiny_catalog):
    return Vocabulary.from_items(tiny_catalog.items)


def wanted(u, attribute, group=None):
    return {v for c in u.constraints if c.attribute == attribute and not c.negated and not c.soft
            and (group is None or c.group == group) for v in c.values}


def ruled_out(u, attribute):
    return {v for c in u.constraints if c.attribute == attribute and c.negated for v in c.values}


@pytest.mark.parametrize("text, attribute, value", [
    ("black trainers", "category", "sneakers"), ("a grey jumper", "category", "sweater"),
    ("plaid shirt", "pattern", "checked"), ("jeans", "material", "denim"), ("jeans", "category", "trousers"),
    ("polka dot dress", "pattern", "dotted"), ("gray hoodie", "color", "grey"), ("tee", "category", "tshirt"),
    ("a tank top", "category", "tanktop"), ("long-sleeved shirt", "sleeve", "long"),
    ("a dress with no sleeves", "sleeve", "sleeveless"), ("maxi skirt", "length", "long"),
])
def test_synonyms_and_title_words_read_into_catalog_values(vocab, text, attribute, value):
    assert value in wanted(understand(text, vocab), attribute)


@pytest.mark.parametrize("text, attribute, value", [
    ("sneakers in any colour except white", "color", "white"), ("a red sweater, but not striped", "pattern", "striped"),
    ("in black instead of green", "color", "green"), ("no longer striped", "pattern", "striped"),
    ("a skirt that is not black", "color", "black"), ("without the pocket", "detail", "pocket"),
    ("trainers, any colour but white", "color", "white"), ("pants that aren't denim", "material", "denim"),
])
def test_negations_rule_values_out_and_never_ask_for_them(vocab, text, attribute, value):
    u = understand(text, vocab)
    assert value in ruled_out(u, attribute)
    assert value not in wanted(u, attribute)


def test_each_attribute_belongs_to_its_own_garment(vocab):
    u = understand("a grey hoodie and black trousers", vocab)
    hoodie = next(c.group for c in u.constraints if c.values == ("hoodie",))
    trousers = next(c.group for c in u.constraints if c.values == ("trousers",))
    assert wanted(u, "color", hoodie) == {"grey"} and wanted(u, "color", trousers) == {"black"}
    assert u.summary() == "grey · hoodie → top | black · trousers → bottom"


def test_the_summary_shows_what_was_understood_and_nothing_else(vocab):
    assert understand("I want a black jacket, not white", vocab).summary() == "black · jacket → outer; not: white"
    assert understand("hello there, how are you?", vocab).constraints == []


def test_a_misspelt_colour_is_read_with_a_note(vocab):
    u = understand("balck boots", vocab)
    assert wanted(u, "color") == {"black"}
    assert any("balck" in n and "black" in n for n in u.notes)
    assert not understand("I read a shift", vocab).constraints  # common words are never misspellings


def test_a_contradiction_is_dropped_with_a_sentence(vocab):
    u = understand("black but not black", vocab)
    assert not wanted(u, "color") and not ruled_out(u, "color")
    assert len(u.notes) == 1 and u.notes[0].endswith(".")


@pytest.mark.parametrize("text", ["빨간 원피스 주세요", "🔥👗🔥", "", None, "x" * 5000, "!!!???", "\u200b\u200b"])
def test_other_languages_emoji_and_long_text_understand_nothing_and_never_raise(vocab, text):
    u = understand(text, vocab)
    assert u.constraints == [] and len(u.text) <= 2000


def test_a_garment_the_catalog_lacks_is_said(vocab):
    u = understand("a silk scarf", vocab)
    assert u.unmet == ["scarf"] and any("scarf" in n for n in u.notes)


def test_a_catalog_without_attribute_columns_falls_back_to_categories_or_nothing():
    items = pd.DataFrame({"item_id": ["a", "b"], "category": ["Jeans", "Dress"], "title": ["x", "y"]})
    vocab = Vocabulary.from_items(items)
    assert wanted(understand("black jeans", vocab), "category") == {"Jeans"}
    assert understand("red dress", Vocabulary.from_items(items[["item_id", "title"]])).constraints == []


def test_removing_a_part_drops_it(vocab):
    u = understand("black jacket, not white", vocab)
    key = next(k for k, label in u.parts() if label == "not white")
    assert "not" not in u.without([key]).summary()


def test_rank_puts_items_meeting_the_request_first_in_the_models_order(tiny_catalog, vocab):
    items = tiny_catalog.items
    u = understand("sneakers, not white", vocab)
    scores = np.random.default_rng(0).random(len(items))
    ok = ((items["category"] == "sneakers") & (items["color"] != "white")).to_numpy()
    rows = at_work.rank(scores, items, u.constraints, k=5)
    assert ok[rows].all()
    assert list(rows) == list(np.flatnonzero(ok)[np.argsort(-scores[ok])][:5])


def test_an_unsatisfiable_request_gets_one_sentence_and_the_closest_items(tiny_catalog, vocab):
    items = tiny_catalog.items
    u = understand("a tanktop with long sleeves", vocab)  # tank tops are sleeveless on the built-in world
    rows = at_work.rank(np.zeros(len(items)), items, u.constraints, k=5)
    assert (items["category"].to_numpy()[rows] == "tanktop").all()  # the category counts most
    sentence = at_work.unmet_sentence(items, u.constraints)
    assert sentence.count(".") == 1 and "long sleeve" in sentence


def test_captions_move_what_they_say_and_keep_the_rest(vocab):
    reference = {"category": "skirt", "color": "green", "pattern": "floral", "length": "midi"}
    readings = [understand(c, vocab).constraints for c in ("in black instead of green", "shorter")]
    constraints, kept, notes = at_work.resolve_captions(readings, reference, vocab)
    by = {(c.attribute, c.negated): set(c.values) for c in constraints}
    assert by[("color", False)] == {"black"} and by[("color", True)] == {"green"}
    assert by[("length", False)] == {"short"}  # shorter than midi
    assert kept == {"pattern": "floral"}


def test_a_later_turn_replaces_a_value_and_keeps_the_rest(vocab):
    turns = [understand(t, vocab).constraints for t in ("a red dress", "a blue dress", "no stripes")]
    merged = at_work.merge_turns(turns)
    assert {v for c in merged if c.attribute == "color" and not c.negated for v in c.values} == {"blue"}
    assert any(c.attribute == "pattern" and c.negated for c in merged)
