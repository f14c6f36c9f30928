"""The composed-retrieval protocol and the search helpers on the tiny world (training runs in quick mode)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.composed_search import (
    TextGuidedSearch,
    attribute_moves,
    caption_notes,
    gallery_rows,
    held_out_rows,
    join_captions,
    load_models,
    text_encoder_for,
    train_models,
    triples_of,
)
from recsys.protocols import composed


class FakeEncoder:
    max_tokens = 8

    def truncates(self, text: str) -> bool:
        return len(text.split()) > self.max_tokens


def test_join_captions_follows_fashioniq():
    assert join_captions(["is red.", "has long sleeves?"]) == "is red and has long sleeves"
    assert join_captions(["", "is blue"]) == "is blue"


@pytest.mark.parametrize(
    ("text", "kept", "note"),
    [
        ("  ", None, "empty"),
        ("...!?", None, "no words"),
        ("👗✨", None, "no words"),
        ("is red 👗", "is red 👗", "Emoji"),
        ("소매가 길어요", "소매가 길어요", "Korean"),
        ("ist rot", "ist rot", None),
        ("a " * 20, "a " * 19 + "a", "longer than"),
    ],
)
def test_caption_notes(text, kept, note):
    cleaned, notes = caption_notes(text, FakeEncoder())
    assert cleaned == kept
    if note is None:
        assert notes == []
    else:
        assert any(note in n for n in notes), notes


@pytest.fixture(scope="module")
def trained(tiny_catalog, tiny_artifacts):
    encoder = text_encoder_for(tiny_artifacts)
    bundle = train_models(tiny_catalog, tiny_artifacts, encoder, seed=0, quick=True, save=True)
    return bundle, encoder


def test_splits_keep_evaluated_targets_out_of_training(tiny_catalog):
    held = set(held_out_rows(tiny_catalog).tolist())
    lookup = tiny_catalog.id_to_index
    assert held == {lookup[t["target_id"]] for s in ("val", "test") for t in triples_of(tiny_catalog, s)}
    for t in triples_of(tiny_catalog, "test"):
        rows = gallery_rows(tiny_catalog, tiny_catalog.item(t["reference_id"])["category"])
        assert lookup[t["target_id"]] in rows


def test_saved_models_load_and_search(trained, tiny_catalog, tiny_artifacts):
    bundle, encoder = trained
    loaded = load_models(tiny_catalog, tiny_artifacts)
    assert set(loaded.models) == {"image-only", "text-only", "zero-shot", "image-difference", "combiner"}
    probe = tiny_artifacts.image[:3]
    for name in ("image-difference", "combiner", "zero-shot"):
        caption = encoder.encode_text(["is blue"] * 3)
        np.testing.assert_allclose(loaded.models[name].compose(loaded.models[name].gallery_vectors(probe), caption),
                                   bundle.models[name].compose(bundle.models[name].gallery_vectors(probe), caption), atol=1e-5)
    engine = TextGuidedSearch(tiny_catalog, tiny_artifacts, loaded, encoder)
    reference_id = tiny_catalog.items["item_id"].iat[0]
    category = tiny_catalog.items["category"].iat[0]
    result = engine.search(engine.reference_features(reference_id), ["is red", "has a bow"], model="combiner", k=5,
                           category=category, exclude=[reference_id])
    assert result.model == "combiner" and len(result.item_ids) == 5 and reference_id not in result.item_ids
    assert set(tiny_catalog.items.set_index("item_id").loc[result.item_ids, "category"]) == {category}
    assert result.scores == sorted(result.scores, reverse=True)
    fallback = engine.search(engine.reference_features(reference_id), ["", "?!"], k=3)
    assert fallback.model == "image-only" and any("image similarity" in n for n in fallback.notes)
    free = engine.search(None, ["red floral dress"], k=4)
    assert free.model == "text-only" and len(free.item_ids) == 4
    nothing = engine.search(None, ["   "], k=4)
    assert nothing.item_ids == [] and nothing.notes


def test_attribute_moves_names_what_changed(tiny_catalog):
    triple = triples_of(tiny_catalog, "train")[0]
    moves = attribute_moves(tiny_catalog, triple["reference_id"], triple["target_id"])
    assert {k: tuple(v) for k, v in triple["changes"].items()} == moves


def test_the_protocol_reports_every_model_against_the_oracle(trained, tiny_catalog):
    report = composed.evaluate(tiny_catalog, seed=0, quick=True)
    assert {"random", "image-only", "text-only", "zero-shot", "image-difference", "combiner", "oracle"} <= set(report)
    categories = {tiny_catalog.item(t["reference_id"])["category"] for t in triples_of(tiny_catalog, "test")}
    for name, metrics in report.items():
        assert set(metrics) >= {"R@10", "R@50"} | {f"{c}/R@10" for c in categories}, name
        assert all(0.0 <= v <= 1.0 for v in metrics.values()), (name, metrics)
        # the average is over categories, as in FashionIQ
        assert metrics["R@10"] == pytest.approx(np.mean([metrics[f"{c}/R@10"] for c in categories]))
    # the oracle knows the attributes: on the tiny world every target is among its top 10
    assert report["oracle"]["R@10"] == 1.0
    assert "text/R@10" in report["text-only"] and "text/R@10" in report["oracle"]


def test_oracle_ranks_by_the_changed_attributes(tiny_catalog):
    triples = [t for split in ("train", "val", "test") for t in triples_of(tiny_catalog, split)]
    ranks, _ = composed.oracle_ranks(tiny_catalog, triples, None, seed=0)
    assert (ranks == 0).mean() > 0.9  # the target is the item the changed attributes describe
    # an oracle told that nothing changed looks for the reference's look again and misses some targets
    unchanged = [{**t, "changes": {a: [old, old] for a, (old, _) in t["changes"].items()}} for t in triples]
    worse, _ = composed.oracle_ranks(tiny_catalog, unchanged, None, seed=0)
    assert ranks.mean() < worse.mean()


def test_attribute_query_reads_like_a_shopper():
    row = {"category": "dress", "color": "red", "pattern": "floral", "length": "midi", "sleeve": "long", "material": "silk"}
    assert composed.attribute_query(row) == "red floral midi-length dress with long sleeves made of silk"
