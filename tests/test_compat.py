"""Compatibility models, the outfit builder, the compat protocol, the model store and the outfit service."""

from __future__ import annotations

import itertools
import re
import shutil

import numpy as np
import pytest

from recsys.metrics import PER_QUERY
from recsys.models.base import Provenance, clone
from recsys.models.compat import (
    StyleEmbedder,
    TripletCompatibility,
    TripletSampler,
    TypeAwareCompatibility,
    category_pools,
    triplets_from_outfits,
)
from recsys.models.compat_baselines import VisualSimilarityCompatibility
from recsys.photo import PhotoReader
from recsys.tasks.compat.builder import QUERY, OutfitBuilder, Query
from recsys.tasks.compat.data import compatibility_features, features_for_image


# ---------------------------------------------------------------------- a small learnable world
def style_world(n_per_category: int = 30, seed: int = 0, noise: float = 0.8):
    """Items in 3 slots x 2 styles; outfits take one item per slot of one style; features = style + noise."""
    rng = np.random.default_rng(seed)
    slots = np.repeat(["top", "bottom", "shoes"], 2 * n_per_category)
    styles = np.tile(np.repeat([0, 1], n_per_category), 3)
    centres = rng.normal(size=(2, 32))
    features = centres[styles] + noise * rng.normal(size=(len(slots), 32))
    features = (features / np.linalg.norm(features, axis=1, keepdims=True)).astype(np.float32)
    outfits = []
    for _ in range(160):
        style = int(rng.integers(2))
        outfits.append([int(rng.choice(np.flatnonzero((slots == s) & (styles == style)))) for s in ("top", "bottom", "shoes")])
    return features, slots, styles, outfits


def held_out_accuracy(model, slots, styles, rng) -> float:
    hits = []
    for _ in range(300):
        a = int(rng.integers(len(slots)))
        other = rng.choice([s for s in ("top", "bottom", "shoes") if s != slots[a]])
        p = int(rng.choice(np.flatnonzero((slots == other) & (styles == styles[a]))))
        n = int(rng.choice(np.flatnonzero((slots == other) & (styles != styles[a]))))
        hits.append(model.pair_compatibility(a, p) > model.pair_compatibility(a, n))
    return float(np.mean(hits))


def test_triplets_follow_the_complete_the_look_recipe():
    categories = np.array(["tshirt", "skirt", "boots", "tshirt", "skirt", "boots", "boots"])
    outfits = [[0, 1, 2], [3, 4, 5], [3, 1, 6]]
    triplets = triplets_from_outfits(outfits, categories, np.random.default_rng(0))
    assert len(triplets) == 3 * 6  # every ordered pair of different categories in each outfit
    members = [set(o) for o in outfits]
    for anchor, positive, negative in triplets:
        outfit = next(m for m in members if {anchor, positive} <= m)
        assert categories[anchor] != categories[positive]
        assert categories[negative] == categories[positive]
        assert negative not in outfit


def test_a_sampler_built_once_draws_what_the_function_draws():
    # fit builds the sampler once and draws every epoch; the protocol's questions come from the function: both
    # must consume the generator alike, or the report's questions would change.
    _, slots, _, outfits = style_world(n_per_category=8)
    pools = category_pools(outfits[:100], slots)
    for cap in (None, 2):
        function_rng, sampler_rng = np.random.default_rng(4), np.random.default_rng(4)
        sampler = TripletSampler(outfits[:100], slots, pools)
        for _ in range(2):
            expected = triplets_from_outfits(outfits[:100], slots, function_rng, pools, cap)
            np.testing.assert_array_equal(sampler.draw(sampler_rng, cap), expected)
        assert function_rng.random() == sampler_rng.random()
    assert TripletSampler([[0], [1]], slots).draw(np.random.default_rng(0)).shape == (0, 3)


def test_forward_rows_is_one_forward_per_row_set():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = StyleEmbedder(16, hidden_dim=32, embedding_dim=8, dropout=0.0).train()  # batch statistics per set
    table = torch.randn(20, 16)
    rows = [torch.tensor([0, 3, 3, 7]), torch.tensor([3, 1, 9, 0]), torch.tensor([5, 5, 2, 19])]
    for got, r in zip(net.forward_rows(table, *rows), rows):
        torch.testing.assert_close(got, net(table[r]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", [TripletCompatibility, TypeAwareCompatibility])
def test_models_learn_which_items_go_together(kind):
    features, slots, styles, outfits = style_world()
    model = kind(n_epochs=15, random_state=0).fit(features, outfits, categories=slots, types=slots)
    assert model.item_embeddings_.shape == (len(slots), 128)
    assert model.history_[-1] < model.history_[0]
    assert held_out_accuracy(model, slots, styles, np.random.default_rng(1)) > 0.85
    scores = model.score(0)
    assert scores.shape == (len(slots),) and np.all((scores >= 0) & (scores <= 1))


def test_untrained_looks_do_not_tell_styles_apart_as_well():
    # The learned space must beat raw feature similarity on the same questions (here features carry style
    # under a lot of noise, so plain cosine is weaker).
    features, slots, styles, outfits = style_world(noise=2.5)
    baseline = VisualSimilarityCompatibility().fit(features)
    model = TripletCompatibility(n_epochs=15, random_state=0).fit(features, outfits, categories=slots)
    rng = np.random.default_rng(1)
    assert held_out_accuracy(model, slots, styles, rng) > held_out_accuracy(baseline, slots, styles, np.random.default_rng(1))


@pytest.mark.parametrize("kind", [TripletCompatibility, TypeAwareCompatibility])
def test_a_saved_model_scores_exactly_like_the_fitted_one(kind, tmp_path):
    features, slots, _, outfits = style_world(n_per_category=8)
    model = kind(n_epochs=2, random_state=3).fit(features, outfits, categories=slots, types=slots)
    model.save(tmp_path / "m", provenance=Provenance(split_seed=3))
    loaded = kind.load(tmp_path / "m", provenance=Provenance(split_seed=3))
    assert type(loaded) is kind and loaded.provenance_.split_seed == 3
    assert loaded.get_params() == model.get_params() and loaded.types_ == model.types_
    np.testing.assert_allclose(loaded.transform(features[:5]), model.transform(features[:5]), atol=1e-6)
    np.testing.assert_allclose(loaded.score(4), model.score(4), atol=1e-6)
    assert loaded.outfit_score([0, 20, 40]) == pytest.approx(model.outfit_score([0, 20, 40]), abs=1e-6)


def test_fit_refuses_outfits_it_cannot_learn_from():
    with pytest.raises(ValueError, match="outfits of at least two items"):
        TripletCompatibility(n_epochs=1).fit(np.zeros((3, 4), np.float32), [[0]], categories=["a", "b", "c"])


# ---------------------------------------------------------------------- the outfit builder
class TableModel:
    """A fake model with a known compatibility: the (symmetric) table entry of two items' 'colours'."""

    def __init__(self, colours, table):
        self.item_embeddings_ = np.eye(len(table), dtype=np.float32)[colours]
        self.item_types_ = np.zeros(len(colours), dtype=np.int64)
        self.table = np.asarray(table, dtype=np.float64)

    def compatibility(self, emb_a, types_a, emb_b, types_b):
        return np.einsum("...i,ij,...j->...", np.asarray(emb_a, float), self.table, np.asarray(emb_b, float))

    def pair_compatibility(self, a, b):
        return self.compatibility(self.item_embeddings_[np.asarray(a)], 0, self.item_embeddings_[np.asarray(b)], 0)

    def outfit_score(self, rows):
        rows = np.asarray(rows)
        a, b = np.triu_indices(len(rows), k=1)
        return float(self.pair_compatibility(rows[a], rows[b]).mean())

    def type_code(self, name):
        return 0


def table_world(seed=0):
    rng = np.random.default_rng(seed)
    slots = np.array(["top"] * 5 + ["bottom"] * 5 + ["shoes"] * 5 + ["onepiece"] * 3 + ["outer"] * 3)
    colours = rng.integers(0, 4, size=len(slots))
    table = rng.random((4, 4))
    table = (table + table.T) / 2
    return TableModel(colours, table), slots


def brute_force_best(model, slots, query_row, template):
    pools = [np.flatnonzero(slots == s) if s != slots[query_row] else [query_row] for s in template]
    return max(model.outfit_score(list(c)) for c in itertools.product(*pools))


def test_the_assembled_outfit_scores_the_whole_set_as_well_as_brute_force():
    model, slots = table_world()
    builder = OutfitBuilder(model, slots)
    for query_row in (0, 7, 11):
        outfit = builder.assemble(Query(slot=str(slots[query_row]), row=query_row), optional=())
        assert set(outfit.items) == {"top", "bottom", "shoes"}
        assert outfit.items[str(slots[query_row])] == query_row
        assert outfit.score == pytest.approx(model.outfit_score(outfit.rows()))
        # Coordinate ascent from the best pairwise start reaches the optimum on this small table.
        assert outfit.score >= brute_force_best(model, slots, query_row, ("top", "bottom", "shoes")) - 0.05


def test_a_shoe_query_takes_the_better_template_and_optional_slots_join():
    model, slots = table_world()
    builder = OutfitBuilder(model, slots)
    outfit = builder.assemble(Query(slot="shoes", row=10), optional=("outer",))
    assert "outer" in outfit.items
    assert set(outfit.items) - {"outer"} in ({"top", "bottom", "shoes"}, {"onepiece", "shoes"})


def test_lock_reroll_and_next_best():
    model, slots = table_world()
    builder = OutfitBuilder(model, slots)
    query = Query(slot="top", row=0)
    outfit = builder.assemble(query, optional=())
    new, shown = builder.reroll(query, outfit, locked_slots=("shoes",))
    assert new.items["shoes"] == outfit.items["shoes"]
    assert new.items["bottom"] != outfit.items["bottom"]
    assert outfit.items["bottom"] in shown["bottom"]
    swapped = builder.swap_next_best(query, outfit, "bottom")
    ranked = [r for r, _ in builder.alternatives(query, outfit, "bottom", k=5)]
    assert swapped.items["bottom"] == ranked[ranked.index(outfit.items["bottom"]) + 1]
    assert swapped.items["shoes"] == outfit.items["shoes"]


def test_top_k_per_slot_is_sorted_and_excludes_the_query_slot():
    model, slots = table_world()
    builder = OutfitBuilder(model, slots)
    result = builder.top_k(Query(slot="top", row=0), k=3)
    assert "top" not in result and set(result) == {"bottom", "shoes", "onepiece", "outer"}
    for slot, pairs in result.items():
        scores = [s for _, s in pairs]
        assert scores == sorted(scores, reverse=True)
        assert all(slots[r] == slot for r, _ in pairs)


def test_an_upload_query_and_a_missing_slot():
    model, slots = table_world()
    keep = slots != "shoes"
    model_no_shoes = TableModel(np.argmax(model.item_embeddings_[keep], axis=1), model.table)
    builder = OutfitBuilder(model_no_shoes, slots[keep])
    upload = Query(slot="top", embedding=np.eye(4, dtype=np.float32)[2], type_code=0)
    assert builder.missing_required_slots("top") == ["shoes"]
    with pytest.raises(ValueError, match="no shoes items"):
        builder.assemble(upload)
    full = OutfitBuilder(model, slots).assemble(upload, optional=())
    assert full.items["top"] == QUERY and len(full.rows()) == 2


def test_category_of_an_upload_is_predicted_from_its_nearest_items(tiny_artifacts, tiny_catalog):
    items = tiny_catalog.items
    categories = items["category"].to_numpy()
    row = 5
    reader = PhotoReader().fit(tiny_artifacts.image, categories, items["slot"], items["title"])
    guess = reader.read(tiny_artifacts.image[row]).category  # no classifier evidence: the neighbours alone
    assert guess.category == categories[row] and guess.confidence >= 0.6
    assert sum(guess.shares.values()) == pytest.approx(1.0)
    features = features_for_image(tiny_artifacts.image[row], tiny_artifacts)
    catalog_features = compatibility_features(tiny_artifacts)
    assert features.shape == (1, catalog_features.shape[1])
    assert np.linalg.norm(features) == pytest.approx(1.0, abs=1e-5)
    image_dim = tiny_artifacts.image.shape[1]
    np.testing.assert_allclose(features[0, :image_dim], catalog_features[row, :image_dim], atol=1e-6)


def test_one_hyper_parameter_vocabulary():
    model = TypeAwareCompatibility(n_epochs=3, learning_rate=0.01, reg=0.0, batch_size=64, random_state=5)
    params = model.get_params()
    assert {"n_epochs", "learning_rate", "reg", "batch_size", "random_state", "mask_l1"} <= set(params)
    assert not {"epochs", "lr", "weight_decay", "seed"} & set(params)
    copy = clone(model)
    assert type(copy) is TypeAwareCompatibility and copy.get_params() == params and not hasattr(copy, "net_")


# ---------------------------------------------------------------------- the protocol
def test_fitb_questions_blank_an_item_and_offer_three_of_its_category(tiny_catalog, tiny_artifacts):
    from recsys.tasks.compat import data as compat_data

    data = compat_data.prepare(tiny_catalog, artifacts=tiny_artifacts)
    rests, candidates, answers = compat_data.fitb_questions(data, np.random.default_rng(0))
    assert len(answers) > 0 and candidates.shape == (len(answers), 4)
    test_sets = [set(o.tolist()) for o in data.test_outfits]
    for rest, options, answer in zip(rests, candidates, answers):
        whole = set(rest.tolist()) | {int(options[answer])}
        assert whole in test_sets
        assert len(set(data.categories[options])) == 1
        assert len(set(options.tolist())) == 4


def test_fitb_in_its_two_forms_on_hand_made_outfits():
    from recsys.tasks.compat.data import CompatData, fitb_questions

    # Three kinds, four items each; two held-out outfits of one item of each kind.
    categories = np.repeat(["shirt", "skirt", "boots"], 4)
    data = CompatData(features=np.zeros((12, 2), np.float32), image=np.zeros((12, 2), np.float32),
                      categories=categories, slots=categories, train_outfits=[],
                      test_outfits=[np.array([0, 4, 8]), np.array([1, 5, 9])])
    for form in ("type", "any"):
        rests, candidates, answers = fitb_questions(data, np.random.default_rng(3), form=form)
        assert len(answers) == 2 and candidates.shape == (2, 4)
        for outfit, rest, options, answer in zip(data.test_outfits, rests, candidates, answers):
            assert set(rest.tolist()) | {int(options[answer])} == set(outfit.tolist())
            wrong = np.delete(options, answer)
            assert not set(wrong.tolist()) & set(outfit.tolist())  # never an item of the outfit itself
            if form == "type":
                assert set(categories[wrong]) == {categories[options[answer]]}
    # Over many draws the any-type form offers every kind, the type form only the answer's.
    rng = np.random.default_rng(0)
    offered = set()
    for _ in range(30):
        _, candidates, answers = fitb_questions(data, rng, form="any")
        offered |= {(categories[c[a]], categories[w]) for c, a in zip(candidates, answers) for w in np.delete(c, a)}
    assert {kind for answer_kind, kind in offered if answer_kind == "shirt"} == {"shirt", "skirt", "boots"}
    with pytest.raises(ValueError, match="Unknown FITB form 'odd'; choose from type, any"):
        fitb_questions(data, rng, form="odd")


def test_a_scorer_that_knows_only_kinds_passes_the_any_type_form_and_fails_the_type_form():
    from recsys.tasks.compat.protocol import _fitb_hits

    class KindsOnly:
        """Scores a set by how many kinds it holds: it can rule out a second skirt, never choose between skirts."""

        kinds = np.array(["shirt", "shirt", "skirt", "skirt", "skirt", "skirt", "boots", "boots"])

        def outfit_score(self, rows):
            return len(set(self.kinds[rows]))

    rest = np.array([0, 6])  # a shirt and boots; the blank is a skirt (item 2)
    same_type = ([rest], np.array([[3, 2, 4, 5]]), np.array([1]))  # every candidate a skirt: a four-way tie, a miss
    any_type = ([rest], np.array([[1, 7, 2, 6]]), np.array([2]))  # a shirt, boots, boots: the skirt alone adds a kind
    assert _fitb_hits(KindsOnly(), same_type).tolist() == [0.0]
    assert _fitb_hits(KindsOnly(), any_type).tolist() == [1.0]


def test_gap_share_is_computed_from_the_report():
    from recsys.reports import gap_closed

    report = {"visual-similarity": {"FITB": 0.4}, "oracle": {"FITB": 0.8}, "m": {"FITB": 0.7}}
    assert gap_closed(report, "FITB")["m"] == pytest.approx(0.75)
    assert gap_closed({"m": {"FITB": 1.0}}, "FITB") == {}


def test_evaluate_reports_every_model_and_the_oracle(tiny_catalog, tiny_artifacts):
    from recsys.models.registry import list_models
    from recsys.tasks.compat import protocol

    report = protocol.evaluate(tiny_catalog, seed=0, quick=True)
    assert list(report) == list_models("compat") == ["random", "visual-similarity", "triplet", "type-aware", "oracle"]
    # The per-question hits claims pair on: the same questions for every row, their mean the FITB figure.
    assert len({len(metrics[PER_QUERY]["FITB"][0]) for metrics in report.values()}) == 1
    for name, metrics in report.items():
        per_query = metrics.pop(PER_QUERY)
        assert per_query["FITB"][0].mean() == pytest.approx(metrics["FITB"])
        assert per_query["FITB-any"][0].mean() == pytest.approx(metrics["FITB-any"])
        assert set(metrics) == {"triplet_acc", "FITB", "FITB-any", "AUC", "triplet_acc_se", "FITB_se",
                                "FITB-any_se", "AUC_se"}
        assert all(0.0 <= v <= 1.0 for v in metrics.values()), (name, metrics)
        assert all(0.0 < metrics[f"{m}_se"] < 0.5 for m in ("triplet_acc", "FITB", "FITB-any", "AUC")), (name, metrics)
    # The world's own compatibility separates real outfits from random ones far better than chance.
    assert report["oracle"]["AUC"] > 0.75


# ---------------------------------------------------------------------- registry, store and service
def test_the_registry_lists_and_labels_the_compat_models():
    from recsys.models.registry import get_model, list_models, model_title

    assert list_models("compat", trainable=True) == ["triplet", "type-aware"]
    assert set(list_models("compat", trainable=False)) == {"random", "visual-similarity", "oracle"}
    assert model_title("compat", "type-aware") == "Type-aware (Vasileva et al. 2018)"
    assert isinstance(get_model("compat", "triplet"), TripletCompatibility)
    assert get_model("compat", "type-aware", n_epochs=2).n_epochs == 2


@pytest.fixture()
def own_world(tiny_catalog_dir, tiny_artifacts, tmp_path):
    """A copy of the tiny world (with its artifacts, without saved models) that the store may write into."""
    from recsys.artifacts import load_artifacts
    from recsys.catalog import Catalog

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("models"))
    catalog = Catalog.load(folder)
    return catalog, load_artifacts(catalog)


def test_a_model_fitted_by_the_store_loads_back_with_the_same_scores(own_world):
    from recsys.store import ModelStore

    catalog, artifacts = own_world
    fitted = ModelStore(catalog, artifacts).fit("compat", "type-aware", quick=True)
    fresh = ModelStore(catalog, artifacts)
    assert fresh.status("compat")["type-aware"].ready and fresh.status("compat")["triplet"].state == "missing"
    loaded = fresh.get("compat", "type-aware")
    assert type(loaded) is TypeAwareCompatibility and loaded is not fitted
    np.testing.assert_allclose(loaded.score(3), fitted.score(3), atol=1e-6)
    assert loaded.outfit_score([0, 40, 80]) == pytest.approx(fitted.outfit_score([0, 40, 80]), abs=1e-6)


def test_a_model_saved_with_other_provenance_is_stale(own_world):
    from recsys.store import ModelStore

    catalog, artifacts = own_world
    store = ModelStore(catalog, artifacts)
    model = store.fit("compat", "triplet", quick=True)
    other = Provenance(**(store.provenance().to_dict() | {"image_encoder": "some-other-encoder"}))
    model.save(store.path("compat", "triplet"), provenance=other)
    fresh = ModelStore(catalog, artifacts)
    assert fresh.get("compat", "triplet") is None
    assert "image encoder" in fresh.problem("compat", "triplet")
    assert fresh.status("compat")["triplet"].state == "stale"
    # Another split seed is stale too.
    store.fit("compat", "triplet", quick=True)
    assert ModelStore(catalog, artifacts, seed=1).get("compat", "triplet") is None


def test_the_service_completes_an_item_and_a_photo(own_world):
    from recsys.store import ModelStore
    from recsys.tasks.compat import service as outfits

    catalog, artifacts = own_world
    service = outfits.OutfitService(catalog, artifacts, ModelStore(catalog, artifacts))
    assert service.enough_outfits() and service.models()[0] == outfits.DEFAULT_MODEL
    assert service.status("triplet").state == "missing" and service.trains_in_place()
    item = catalog.items.loc[catalog.items["slot"] == "top", "item_id"].iloc[0]
    outfit = service.complete("triplet", item=item, optional=())
    assert service.status("triplet").ready  # trained in place and saved
    assert outfit.items["top"] == catalog.id_to_index[item] and "shoes" in outfit.items
    query = service.query("triplet", item=item)
    assert service.outfit("triplet", query, outfit.items).score == pytest.approx(outfit.score)
    assert 0.0 <= service.better_than("triplet", outfit.score) <= 1.0
    swapped = service.swap("triplet", query, outfit, "shoes")
    assert swapped.items["bottom"] == outfit.items["bottom"] and swapped.items["shoes"] != outfit.items["shoes"]
    guess = service.read_photo(artifacts.image[0]).category
    photo = service.query("triplet", photo=artifacts.image[0], category=guess.category)
    assert photo.row is None and photo.embedding.shape == (128,)
    assert QUERY in service.complete("triplet", query=photo).items.values()
    with pytest.raises(ValueError, match="either a catalog item or a photo"):
        service.query("triplet")


def test_a_big_untrained_catalog_gets_the_training_command(own_world, monkeypatch):
    from recsys.store import ModelStore
    from recsys.tasks.compat import service as outfits

    catalog, artifacts = own_world
    service = outfits.OutfitService(catalog, artifacts, ModelStore(catalog, artifacts))
    monkeypatch.setattr(outfits, "IN_PLACE_TRAINING_OUTFITS", service.n_training_outfits() - 1)
    assert not service.trains_in_place()
    assert not service.status("triplet").ready
    assert re.search(r"scripts/train.py --catalog .* --task compat", service.training_hint("triplet"))


def test_a_constant_scorer_gets_no_fitb_answer_right():
    # Ties for the top never count for the model: a scorer that cannot tell candidates apart answers no question.
    from recsys.tasks.compat.protocol import _score

    class Constant:
        def pair_compatibility(self, a, b):
            return np.zeros(len(a))

        def outfit_score(self, rows):
            return 0.0

    triplets = np.array([[0, 1, 2], [3, 4, 5]])
    fitb = ([np.array([0, 1])] * 3, [np.array([2, 3, 4, 5])] * 3, np.array([0, 1, 2]))
    compat = ([np.array([0, 1]), np.array([2, 3])], np.array([1, 0]))
    figures = _score(Constant(), triplets, fitb, compat, fitb)
    assert figures["FITB"] == 0.0 and figures["FITB-any"] == 0.0 and figures["triplet_acc"] == 0.0 and figures["AUC"] == 0.5
