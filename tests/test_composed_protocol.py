"""The composed-retrieval task on the tiny world: splits, the model store, the search service and the protocol
(training runs in quick mode)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from recsys.metrics import PER_QUERY
from recsys.models.registry import list_models, model_title
from recsys.store import ModelStore
from recsys.tasks.composed import data, protocol
from recsys.tasks.composed.rankers import AttributeOracle
from recsys.tasks.composed.service import SearchService, attribute_moves, caption_notes

TRAINED = ["demo-clip", "image-difference", "combiner"]


class FakeEncoder:
    max_tokens = 8

    def truncates(self, text: str) -> bool:
        return len(text.split()) > self.max_tokens


class OtherEncoders:
    """The tiny world's artifacts as if they had been precomputed again with another image encoder."""

    image_encoder_spec = "effnet-lite0:retrained"

    def __init__(self, artifacts):
        self._artifacts = artifacts

    def __getattr__(self, name):
        return getattr(self._artifacts, name)


def test_captions_are_encoded_once_per_encoder():
    class CountingEncoder:
        dim = 3

        def __init__(self):
            self.seen: list[str] = []

        def encode_text(self, texts):
            self.seen += list(texts)
            return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)

    encoder = CountingEncoder()
    first = data.encode_texts(encoder, ["is red", "is blue", "is red"])
    again = data.encode_texts(encoder, ["is blue", "has a hood", "is red"])
    assert encoder.seen == ["is red", "is blue", "has a hood"]
    assert first.shape == (3, 3) and np.array_equal(first[0], first[2]) and np.array_equal(again[0], first[1])
    assert data.encode_texts(encoder, []).shape == (0, 3)
    assert data.encode_texts(CountingEncoder(), ["is red"]).shape == (1, 3)  # another encoder has its own vectors


def test_join_captions_follows_fashioniq():
    assert data.join_captions(["is red.", "has long sleeves?"]) == "is red and has long sleeves"
    assert data.join_captions(["", "is blue"]) == "is blue"


def test_the_registry_lists_the_composed_models_in_report_order():
    assert list_models("composed") == ["demo-clip", "random", "image-only", "text-only", "zero-shot",
                                       "image-difference", "combiner", "oracle"]
    assert list_models("composed", trainable=True) == TRAINED  # the joint space first: the others read it
    assert model_title("composed", "combiner") == "Learned combiner (CLIP4Cir-style)"


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
    store = ModelStore(tiny_catalog, tiny_artifacts, seed=0)
    models = {name: store.fit("composed", name, quick=True) for name in TRAINED}
    return models, data.text_encoder_for(tiny_artifacts)


def test_splits_keep_evaluated_targets_out_of_training(tiny_catalog):
    held = set(data.held_out_rows(tiny_catalog).tolist())
    lookup = tiny_catalog.id_to_index
    assert held == {lookup[t["target_id"]] for s in ("val", "test") for t in data.triples_of(tiny_catalog, s)}
    for t in data.triples_of(tiny_catalog, "test"):
        rows = data.gallery_rows(tiny_catalog, tiny_catalog.item(t["reference_id"])["category"])
        assert lookup[t["target_id"]] in rows


def test_saved_models_load_through_the_store_and_search(trained, tiny_catalog, tiny_artifacts):
    fitted, encoder = trained
    store = ModelStore(tiny_catalog, tiny_artifacts, seed=0)  # a fresh store reads the files
    assert all(status.ready for status in store.status("composed").values())
    loaded = data.load_models(tiny_catalog, tiny_artifacts, store)
    assert set(loaded) == {"image-only", "text-only", "zero-shot", "image-difference", "combiner"}
    probe = tiny_artifacts.image[:3]
    caption = encoder.encode_text(["is blue"] * 3)
    for name in ("image-difference", "combiner"):
        np.testing.assert_allclose(loaded[name].compose(loaded[name].gallery_vectors(probe), caption),
                                   fitted[name].compose(fitted[name].gallery_vectors(probe), caption), atol=1e-5)
    search = SearchService(tiny_catalog, tiny_artifacts, store)
    assert search.ready and search.composition_choices()[0] == "combiner"
    assert set(search.composition_choices()) == {"combiner", "image-difference", "zero-shot"}
    assert search.joint_name == "demo-clip"
    reference_id = tiny_catalog.items["item_id"].iat[0]
    category = tiny_catalog.items["category"].iat[0]
    result = search.search(search.reference_features(reference_id), ["is red", "has a bow"], model="combiner", k=5,
                           category=category, exclude=[reference_id])
    assert result.model == "combiner" and len(result.item_ids) == 5 and reference_id not in result.item_ids
    assert set(tiny_catalog.items.set_index("item_id").loc[result.item_ids, "category"]) == {category}
    # what the captions ask for ("red", a bow) ranks first: items meeting both, then one, then neither
    items = tiny_catalog.items.set_index("item_id").loc[result.item_ids]
    met = list(((items["color"] == "red").astype(int) + (items["detail"] == "bow").astype(int)).to_numpy())
    assert met == sorted(met, reverse=True)
    fallback = search.search(search.reference_features(reference_id), ["", "?!"], k=3)
    assert fallback.model == "image-only" and any("image similarity" in n for n in fallback.notes)
    plain = search.search(search.reference_features(reference_id), [], k=3)  # no caption given: nothing to explain
    assert plain.model == "image-only" and not plain.notes
    free = search.search_text("red floral dress", k=4)
    assert free.model == "text-only" and len(free.item_ids) == 4
    nothing = search.search(None, ["   "], k=4)
    assert nothing.item_ids == [] and nothing.notes


def test_a_model_saved_for_other_encoders_is_stale(trained, tiny_catalog, tiny_artifacts):
    store = ModelStore(tiny_catalog, OtherEncoders(tiny_artifacts), seed=0)
    assert store.get("composed", "image-difference") is None
    assert "image encoder" in store.problem("composed", "image-difference")
    # the combiner reads the joint space, which is stale too: the store says so instead of mixing spaces
    assert store.get("composed", "combiner") is None
    assert "demo-clip" in store.problem("composed", "combiner")
    status = store.status("composed")
    assert {name: s.state for name, s in status.items()} == {name: "stale" for name in TRAINED}
    search = SearchService(tiny_catalog, OtherEncoders(tiny_artifacts), store)
    assert not search.ready and search.missing() == TRAINED
    # another split seed is another model too
    assert ModelStore(tiny_catalog, tiny_artifacts, seed=1).get("composed", "image-difference") is None


def untrained_search(tiny_catalog_dir, folder) -> SearchService:
    """A search service over a copy of the tiny world (artifacts, no saved model) in ``folder``."""
    from recsys.artifacts import load_artifacts
    from recsys.catalog import Catalog

    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("models"))
    catalog = Catalog.load(folder)
    artifacts = load_artifacts(catalog)
    return SearchService(catalog, artifacts, ModelStore(catalog, artifacts))


def test_the_service_trains_what_is_missing_with_progress(tiny_catalog_dir, tiny_artifacts, tmp_path):
    folder = tmp_path / "tiny"
    search = untrained_search(tiny_catalog_dir, folder)
    assert search.missing() == TRAINED and set(search.models()) == {"image-only"}
    seen = []
    assert search.train(progress=lambda fraction, message: seen.append((fraction, message)), quick=True) == {}
    assert search.ready and seen[-1] == (1.0, "Done")
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and any("combiner" in m.lower() for _, m in seen)
    assert set(search.composition_choices()) == {"combiner", "image-difference", "zero-shot"}
    assert (folder / "artifacts" / "models" / "composed-combiner.safetensors").is_file()


def test_models_trained_in_the_background_join_the_model_list(tiny_catalog_dir, tiny_artifacts, tmp_path):
    search = untrained_search(tiny_catalog_dir, tmp_path / "tiny")
    assert set(search.models()) == {"image-only"}
    # The page's background job trains through a store of its own, in another thread or process.
    job_store = ModelStore(search.catalog, search.artifacts)
    for name in ("demo-clip", "image-difference"):
        job_store.fit("composed", name, quick=True)
    assert "image-difference" in search.composition_choices()


def test_attribute_moves_names_what_changed(tiny_catalog):
    triple = data.triples_of(tiny_catalog, "train")[0]
    moves = attribute_moves(tiny_catalog, triple["reference_id"], triple["target_id"])
    assert {k: tuple(v) for k, v in triple["changes"].items()} == moves


def test_the_protocol_reports_every_model_against_the_oracle(trained, tiny_catalog):
    report = protocol.evaluate(tiny_catalog, seed=0, quick=True)
    assert list(report) == ["random", "image-only", "text-only", "zero-shot", "image-difference", "combiner", "oracle"]
    categories = {tiny_catalog.item(t["reference_id"])["category"] for t in data.triples_of(tiny_catalog, "test")}
    for name, metrics in report.items():
        hits, strata = metrics.pop(PER_QUERY)["R@10"]  # per test triple, with its category (paired claims)
        assert len(hits) == len(strata) == len(data.triples_of(tiny_catalog, "test")), name
        assert set(metrics) >= {"R@10", "R@50"} | {f"{c}/R@10" for c in categories}, name
        assert all(0.0 <= v <= 1.0 for v in metrics.values()), (name, metrics)
        # the average is over categories, as in FashionIQ
        assert metrics["R@10"] == pytest.approx(np.mean([metrics[f"{c}/R@10"] for c in categories]))
    # the oracle knows the attributes: on the tiny world every target is among its top 10
    assert report["oracle"]["R@10"] == 1.0
    assert {name for name, metrics in report.items() if "text/R@10" in metrics} == {"random", "text-only", "oracle"}


def test_oracle_ranks_by_the_changed_attributes(tiny_catalog):
    triples = [t for split in ("train", "val", "test") for t in data.triples_of(tiny_catalog, split)]
    oracle = AttributeOracle(random_state=0).fit(tiny_catalog)
    ranks, _ = oracle.rank_targets(triples, None)
    assert (ranks == 0).mean() > 0.9  # the target is the item the changed attributes describe
    # an oracle told that nothing changed looks for the reference's look again and misses some targets
    unchanged = [{**t, "changes": {a: [old, old] for a, (old, _) in t["changes"].items()}} for t in triples]
    worse, _ = oracle.rank_targets(unchanged, None)
    assert ranks.mean() < worse.mean()


def test_attribute_query_reads_like_a_shopper():
    row = {"category": "dress", "color": "red", "pattern": "floral", "length": "midi", "sleeve": "long", "material": "silk"}
    assert data.attribute_query(row) == "red floral midi-length dress with long sleeves made of silk"


def test_a_constant_scorer_never_ranks_a_target_first():
    # rank_of puts the target after every candidate it ties with: a constant model is last, not first.
    from recsys.metrics import rank_of, recall_at_k

    ranks = [rank_of(np.zeros(30), target) for target in (0, 7, 29)]
    assert ranks == [29, 29, 29] and recall_at_k(ranks, 10) == 0.0


def test_recall_report_gives_the_standard_error_of_the_mean_over_categories():
    from recsys.tasks.composed.protocol import recall_report

    report = recall_report(np.array([0, 20, 3, 60]), ["dress", "dress", "shirt", "shirt"])
    # Each category: hits [1, 0] -> R@10 0.5 with SE 0.5; the mean of two independent means has SE sqrt(0.5) / 2.
    assert report["R@10"] == 0.5 and report["dress/R@10"] == 0.5
    assert report["R@10_se"] == pytest.approx(np.sqrt(0.5) / 2)
    # Per triple with its category, so two rows pair within categories (recsys.metrics.paired_difference).
    hits, categories = report[PER_QUERY]["R@10"]
    assert hits.tolist() == [1.0, 0.0, 1.0, 0.0] and list(categories) == ["dress", "dress", "shirt", "shirt"]
