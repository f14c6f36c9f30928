"""The personalized-ranking task on the tiny world: split, metrics, explanations, tuning, bad input."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from PIL import Image

from recsys import viz
from recsys.artifacts import load_artifacts
from recsys.catalog import ATTRIBUTE_COLUMNS, Catalog
from recsys.models.bpr import BPR
from recsys.models.pairwise import ExplanationUnavailable
from recsys.models.registry import get_model, list_models, model_title
from recsys.tasks.personal import features, protocol
from recsys.tasks.personal import service as personal
from recsys.tasks.personal import tune as tuning
from recsys.tasks.personal.data import interaction_data
from recsys.tasks.personal.models import model_settings
from recsys.store import ModelStore
from tests._scripts import load_script

TRAINED = ["vbpr-mm", "vecf", "vbpr", "dvbpr-imagenet", "dvbpr-ae", "bpr"]


@pytest.fixture(scope="module")
def data(tiny_catalog):
    return interaction_data(tiny_catalog)


def copy_world(tiny_catalog_dir, folder):
    """The tiny world with its artifacts but no saved models, in a folder the test may write models into."""
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("models"))
    catalog = Catalog.load(folder)
    return catalog, load_artifacts(catalog)


@pytest.fixture(scope="module")
def service(tiny_catalog_dir, tiny_artifacts, tmp_path_factory):
    catalog, artifacts = copy_world(tiny_catalog_dir, tmp_path_factory.mktemp("personal") / "world")
    store = ModelStore(catalog, artifacts)
    for name in ("bpr", "vbpr"):
        store.fit("personal", name, quick=True)
    return personal.PersonalService(catalog, artifacts, store)


def test_leave_one_out_holds_out_each_users_last_two_items_by_time(tiny_catalog, data):
    frame = tiny_catalog.interactions.sort_values("timestamp")
    for u in (0, 5, len(data.user_ids) - 1):
        items = tiny_catalog.indices(frame.loc[frame["user_id"] == data.user_ids[u], "item_id"])
        assert data.test_item[u] == items[-1]
        assert data.valid_item[u] == items[-2]
        assert set(data.train[u].indices) == set(items[:-2])
    flagged_cold = tiny_catalog.items["cold_start"].to_numpy()
    assert not np.asarray(data.train.sum(axis=0)).ravel()[flagged_cold].any()
    assert data.cold_items[flagged_cold].all()


def test_a_perfect_scorer_gets_full_marks_and_a_constant_one_chance(data):
    users = np.flatnonzero(data.test_item >= 0)
    targets = data.test_item[users]

    def perfect(chunk):
        scores = np.zeros((len(chunk), data.n_items))
        scores[np.arange(len(chunk)), data.test_item[chunk]] = 1.0
        return scores

    ranked = protocol.rank_targets(perfect, data, users, targets, exclude_valid=True)
    summary = protocol.summarize(ranked)
    assert summary["AUC"] == 1.0 and summary["NDCG@10"] == 1.0 and summary["HR@10"] == 1.0
    assert summary["F1@10"] == pytest.approx(2 * 0.1 / 1.1)
    constant = protocol.summarize(protocol.rank_targets(lambda c: np.zeros((len(c), data.n_items)), data, users,
                                                        targets, exclude_valid=True))
    assert constant["AUC"] == pytest.approx(0.5)
    assert constant["HR@10"] < 0.5


def test_summaries_carry_standard_errors_over_users():
    ranked = {"rank": np.array([0, 1, 20, 50]), "auc": np.array([1.0, 0.9, 0.5, 0.2]), "cold": np.zeros(4, bool)}
    summary = protocol.summarize(ranked)
    per_user = np.array([1.0, 1.0 / np.log2(3.0), 0.0, 0.0])
    assert summary["NDCG@10"] == pytest.approx(per_user.mean())
    assert summary["NDCG@10_se"] == pytest.approx(per_user.std(ddof=1) / 2.0)
    assert summary["HR@10_se"] == pytest.approx(np.array([1, 1, 0, 0]).std(ddof=1) / 2.0)
    assert summary["AUC_se"] == pytest.approx(np.array([1.0, 0.9, 0.5, 0.2]).std(ddof=1) / 2.0)
    assert not any(key.startswith("cold/") for key in summary)


def test_a_subgroup_is_summarized_over_its_warm_users_alone():
    ranked = {"rank": np.array([0, 30, 1, 5]), "auc": np.array([1.0, 0.4, 0.9, 0.6]),
              "cold": np.array([False, False, False, True]), "ranked": np.ones(4, bool)}
    figures = protocol.summarize_subgroup(ranked, np.array([True, True, False, True]), "detail/")
    # Users 0 and 1 (user 3's target is cold, user 2 is outside the group): NDCG@10 (1 + 0) / 2, HR@10 1/2.
    assert figures["detail/NDCG@10"] == pytest.approx(0.5) and figures["detail/HR@10"] == pytest.approx(0.5)
    assert figures["detail/AUC"] == pytest.approx(0.7) and figures["detail/n_users"] == 2
    assert figures["detail/NDCG@10_se"] == pytest.approx(np.std([1.0, 0.0], ddof=1) / np.sqrt(2))
    assert not any(k.startswith("detail/cold/") for k in figures)


def test_detail_users_are_those_whose_true_taste_names_a_detail_at_a_place(tiny_catalog, data):
    truth = protocol.world_truth(tiny_catalog)
    users = np.flatnonzero(data.test_item >= 0)
    mask = protocol.detail_users(truth, data, users)
    liked = {u: truth.tastes_of(u) for u in truth.user_ids}
    assert mask.tolist() == [liked[data.user_ids[u]]["liked_place"] != "" for u in users]
    assert all(liked[data.user_ids[u]]["liked_detail"] in ("pocket", "logo") for u in users[mask])
    assert 0 < mask.sum() < len(users)
    assert protocol.detail_users(None, data, users) is None


@pytest.mark.slow
def test_evaluate_reports_every_model_against_baselines_and_oracle(tiny_catalog, tiny_artifacts):
    report = protocol.evaluate(tiny_catalog, quick=True)
    assert {"random", "popularity", "oracle", "vbpr-attributes", *list_models("personal", trainable=True)} <= set(report)
    for name in ("random", "popularity", "oracle", "vecf"):
        assert {"AUC", "NDCG@10", "NDCG@50", "NDCG@100", "HR@10", "F1@10", "R@20"} <= set(report[name])
    assert any(k.startswith("cold/") for k in report["oracle"])
    # The users whose taste is a detail are reported apart, for every row.
    assert all("detail/NDCG@10" in row and 0 < row["detail/n_users"] < row["n_users"] for row in report.values())
    assert report["oracle"]["AUC"] > report["random"]["AUC"]
    assert 0.0 <= report["vecf"]["pointing_chance"] <= 1.0
    assert report["vecf"]["best_epoch"] >= 1
    # The multimodal VBPR explains its image term over the regions, so it plays the pointing game too.
    assert 0.0 <= report["vbpr-mm"]["pointing_game"] <= 1.0


def test_attribute_features_one_hot_the_labelled_attributes(tiny_catalog):
    codes = features.attribute_features(tiny_catalog)
    items = tiny_catalog.items
    columns = [c for c in ATTRIBUTE_COLUMNS if c in items.columns]
    # Plus one column per detail at a place (a pocket near the hem is liked apart from one on the chest).
    placed = items["detail_place"].notna()
    at_place = (items["detail"] + "@" + items["detail_place"])[placed]
    assert codes.shape == (len(tiny_catalog), sum(items[c].nunique() for c in columns) + at_place.nunique())
    assert np.all(codes.sum(axis=1) == items[columns].notna().sum(axis=1).to_numpy() + placed.to_numpy())
    unlabelled = dataclasses.replace(tiny_catalog, items=tiny_catalog.items.drop(columns=columns))
    assert features.attribute_features(unlabelled) is None


def test_region_maps_and_their_refusals(tiny_catalog, tiny_artifacts, data):
    vbpr = get_model("personal", "vbpr", **model_settings("vbpr", quick=True))
    vbpr.fit(data.train, item_features=np.asarray(tiny_artifacts.image))
    assert vbpr.explains_regions and vbpr.can_explain(tiny_artifacts)
    vector = vbpr.user_vectors(0)[0]
    regions = vbpr.region_scores(vector, 4, tiny_artifacts)
    assert regions.shape == (7, 7)
    # The regions split VBPR's visual term: their mean is w . (the L2-normalized mean of the regions' features),
    # which is the image term of the score up to the PCA truncation of the stored maps.
    visual = vbpr.visual_direction(vector)
    maps = np.asarray(tiny_artifacts.feature_maps[4], dtype=np.float32).reshape(256, -1).mean(1)
    reconstructed = tiny_artifacts.fmap_pca_components.T @ maps + tiny_artifacts.fmap_pca_mean
    reconstructed /= np.linalg.norm(reconstructed)
    assert regions.mean() == pytest.approx(float(visual @ reconstructed), rel=1e-3)
    assert float(reconstructed @ tiny_artifacts.image[4]) > 0.9
    image_term = vbpr.score_terms(vector, 4)["image"]
    assert abs(regions.mean() - image_term) < 0.25 * abs(image_term) + 0.05
    bpr = BPR(n_epochs=1).fit(data.train)
    assert not bpr.explains_regions and not bpr.can_explain(tiny_artifacts)
    with pytest.raises(ExplanationUnavailable, match="no image regions"):
        bpr.region_scores(np.zeros(32), 4, tiny_artifacts)
    without_maps = dataclasses.replace(tiny_artifacts, feature_maps=None, fmap_pca_components=None)
    assert not vbpr.can_explain(without_maps)
    with pytest.raises(ExplanationUnavailable, match="no feature maps"):
        vbpr.region_scores(vector, 4, without_maps)
    with pytest.raises(ExplanationUnavailable, match="has no feature map"):
        vbpr.region_scores(vector, len(tiny_catalog) + 5, tiny_artifacts)
    # DVBPR on the autoencoder's codes scores features the stored maps do not hold: the flag is per artifacts.
    codes = np.random.default_rng(0).normal(size=(len(tiny_catalog), 128)).astype(np.float32)
    ae = get_model("personal", "dvbpr-ae", n_epochs=1).fit(data.train, item_features=codes)
    assert ae.explains_regions and not ae.can_explain(tiny_artifacts)
    with pytest.raises(ExplanationUnavailable, match="own encoder"):
        ae.region_scores(ae.user_vectors(0)[0], 4, tiny_artifacts)


def test_shared_attributes_name_what_the_history_has(tiny_catalog, data):
    history = data.histories[0]
    item = int(history[0])
    shared = personal.shared_attributes(tiny_catalog, history[1:], item)
    color = tiny_catalog.items["color"].iat[item]
    has_color = (tiny_catalog.items["color"].iloc[history[1:]] == color).any()
    assert any(line.startswith(f"color: {color}") for line in shared) == has_color


def test_review_embeddings_are_cached_under_artifacts(tiny_catalog):
    texts = ["Great logo detail.", "Fits well.", "Great logo detail."]
    first = features.review_embeddings(tiny_catalog, texts)
    assert first.shape == (3, 384)
    assert np.allclose(first[0], first[2])
    assert (tiny_catalog.root / "artifacts" / "reviews_minilm.npy").is_file()
    again = features.review_embeddings(tiny_catalog, texts[:2])
    assert np.allclose(again, first[:2], atol=1e-6)


def test_heatmap_overlay_is_smooth_and_puts_the_hot_colour_on_the_peak():
    image = Image.new("RGB", (224, 224), (255, 255, 255))
    weights = np.zeros((7, 7))
    weights[1, 5] = 1.0
    plain = viz.heatmap_overlay(image, weights, opacity=0.0)
    assert np.array_equal(np.asarray(plain), np.asarray(image))
    full = np.asarray(viz.heatmap_overlay(image, weights, opacity=1.0)).astype(int)
    peak, far = full[48, 176], full[200, 16]
    assert peak[0] > 100 and peak[0] > 5 * peak[2] and far[2] > far[0]  # red at the peak, blue far from it
    assert len({tuple(p) for p in full[48, 100:200]}) > 10  # a gradient, not 7x7 blocks
    with pytest.raises(ValueError):
        viz.heatmap_overlay(image, weights, opacity=1.5)


def test_tune_sweeps_a_grid_on_validation_only(tiny_catalog, tiny_artifacts, monkeypatch):
    data = interaction_data(tiny_catalog)
    seen_targets = []
    real_rank = protocol.rank_targets

    def spy(score_users, data_, users, targets, exclude_valid, seed=0, batch=64):
        seen_targets.append(np.asarray(targets))
        return real_rank(score_users, data_, users, targets, exclude_valid, seed, batch)

    monkeypatch.setattr(protocol, "rank_targets", spy)
    rows = tuning.tune(tiny_catalog, "bpr", {"reg": [0.01, 0.3], "n_factors": [4]}, quick=True)
    assert sorted(row["reg"] for row in rows) == [0.01, 0.3]
    assert rows[0]["val/NDCG@50"] >= rows[1]["val/NDCG@50"]
    assert all(1 <= row["best_epoch"] <= model_settings("bpr", quick=True)["n_epochs"] for row in rows)
    # Only validation items are ever ranked: the test items stay unseen.
    users = np.flatnonzero(data.valid_item >= 0)
    assert all(np.array_equal(t, data.valid_item[users]) for t in seen_targets)
    with pytest.raises(ValueError, match="no hyper-parameter colour"):
        tuning.tune(tiny_catalog, "bpr", {"colour": [1]})
    with pytest.raises(ValueError, match="no personal model 'svd'"):
        tuning.tune(tiny_catalog, "svd", {})


def test_tune_script_parses_its_grid_and_refuses_bad_pairs(tiny_catalog_dir, tiny_artifacts, capsys):
    script = load_script("tune")
    main, parse_grid = script.main, script.parse_grid

    assert parse_grid(["reg=0.01,0.03", "n_factors=8", "name=abc"]) == {"reg": [0.01, 0.03], "n_factors": [8], "name": ["abc"]}
    assert main(["--catalog", str(tiny_catalog_dir), "--model", "bpr", "--grid", "reg"]) == 1
    assert "not name=value" in capsys.readouterr().err
    assert main(["--catalog", str(tiny_catalog_dir), "--model", "bpr", "--grid", "reg=0.05", "--quick"]) == 0
    assert "val/NDCG@50" in capsys.readouterr().out


# ====================================================================== registry, store, service
def test_the_registry_lists_and_labels_every_personal_model():
    assert list_models("personal", trainable=True) == TRAINED
    assert list_models("personal", trainable=False) == ["vbpr-attributes", "random", "popularity", "oracle"]
    assert model_title("personal", "vbpr-mm") == "VBPR (image + description)"
    assert model_title("personal", "oracle") == "Oracle (true utility)"
    assert get_model("personal", "dvbpr-ae").get_params()["save_features"] is True
    with pytest.raises(ValueError, match="computed by the protocol"):
        get_model("personal", "oracle")


def test_store_round_trip_gives_the_same_scores(service, tiny_catalog_dir, tmp_path):
    catalog, artifacts = service.catalog, service.artifacts
    fresh = ModelStore(catalog, artifacts)
    for name in ("bpr", "vbpr"):
        loaded = fresh.get("personal", name)
        assert loaded is not None, fresh.problem("personal", name)
        trained = service.store.get("personal", name)
        assert loaded is not trained
        assert np.allclose(loaded.score([0, 3]), trained.score([0, 3]), atol=1e-5)
    assert fresh.status("personal")["vbpr"].ready and fresh.status("personal")["vecf"].state == "missing"


def test_dvbpr_ae_keeps_its_codes_so_loading_needs_no_autoencoder(tiny_catalog_dir, tiny_artifacts, tmp_path):
    catalog, artifacts = copy_world(tiny_catalog_dir, tmp_path / "world")
    store = ModelStore(catalog, artifacts)
    trained = store.fit("personal", "dvbpr-ae", quick=True)
    # The autoencoder is a registered component the store trained and saved on the quick schedule.
    autoencoder = store.get("personal", "autoencoder")
    assert autoencoder is not None and store.schedule(autoencoder) == "quick"
    assert "autoencoder" not in store.status("personal")
    for path in (catalog.root / "artifacts" / "models").glob("personal-autoencoder*"):
        path.unlink()
    loaded = ModelStore(catalog, artifacts).get("personal", "dvbpr-ae")
    assert loaded is not None
    assert np.allclose(loaded.score([1, 2]), trained.score([1, 2]), atol=1e-5)


def test_a_model_saved_with_other_provenance_or_users_is_stale(tiny_catalog_dir, tiny_artifacts, tmp_path):
    catalog, artifacts = copy_world(tiny_catalog_dir, tmp_path / "world")
    store = ModelStore(catalog, artifacts)
    model = store.fit("personal", "bpr", quick=True)
    other = dataclasses.replace(store.provenance(), image_encoder="openclip:ViT-B-32")
    model.save(store.path("personal", "bpr"), provenance=other)
    fresh = ModelStore(catalog, artifacts)
    assert fresh.get("personal", "bpr") is None
    assert "image encoder 'openclip:ViT-B-32'" in fresh.problem("personal", "bpr")
    assert fresh.status("personal")["bpr"].state == "stale"
    # The fingerprint covers the items only: a model fitted on other users is refused by its user count.
    model.n_users_ += 1
    model.save(store.path("personal", "bpr"), provenance=store.provenance())
    fresh = ModelStore(catalog, artifacts)
    assert fresh.get("personal", "bpr") is None
    assert "49 users" in fresh.problem("personal", "bpr")


def test_recommendations_and_bad_input(service, monkeypatch):
    data = service.data
    with pytest.raises(personal.UnknownUserError, match="no user 'nobody'"):
        service.recommend("nobody", model="bpr")
    monkeypatch.setattr(service, "known_users", lambda: set(data.user_ids) | {"ghost"})
    assert service.user_row("ghost") is None and len(service.history("ghost")) == 0
    fallback = service.recommend("ghost", n=5, model="bpr")
    assert "no history" in fallback.note and fallback.user_vector is None
    counts = np.asarray(data.all_interactions().sum(axis=0)).ravel()
    assert list(fallback.scores) == sorted(counts, reverse=True)[:5]
    user = data.user_ids[0]
    mine = service.recommend(user, n=8, model="bpr")
    assert not set(mine.item_idx) & set(data.histories[0])
    assert np.array_equal(mine.history, data.histories[0])
    cold = service.recommend(user, n=4, model="bpr", only_cold=True)
    assert data.cold_items[cold.item_idx].all()
    with pytest.raises(ValueError, match="at least one item"):
        service.recommend(liked_items=[], model="bpr")
    new_user = service.recommend(liked_items=np.array([1, 2]), model="bpr")
    assert not {1, 2} & set(new_user.item_idx)
    by_id = service.recommend(liked_items=list(service.catalog.items["item_id"].iloc[[1, 2]]), model="bpr")
    assert np.array_equal(by_id.item_idx, new_user.item_idx)


def test_explanations_come_from_the_model(service):
    user = service.users()[0]
    visual = service.recommend(user, n=4, model="vbpr")
    assert service.explains_regions(visual)
    item = int(visual.item_idx[0])
    explanation = service.explain(visual, item)
    assert explanation.regions.shape == (7, 7) and explanation.problem is None
    assert explanation.region_meaning == "their mean is the image term of the score"
    assert set(explanation.terms) == {"latent", "image"}
    assert explanation.score == pytest.approx(float(visual.scores[0]), abs=1e-5)
    plain = service.recommend(user, n=4, model="bpr")
    assert not service.explains_regions(plain) and service.region_scores(plain, plain.item_idx[0]) is None
    explanation = service.explain(plain, int(plain.item_idx[0]))
    assert explanation.regions is None and "no image regions" in explanation.problem and explanation.terms == {}


def test_a_missing_model_trains_in_place_or_names_the_command(service, monkeypatch):
    assert service.status("dvbpr-imagenet").state == "missing"
    seen = []
    model = service.model("dvbpr-imagenet", progress=lambda fraction, message: seen.append(fraction))
    assert seen[-1] == 1.0 and service.status("dvbpr-imagenet").ready
    assert service.model("dvbpr-imagenet") is model
    monkeypatch.setattr(personal, "TRAIN_IN_PLACE_LIMIT", 0)
    with pytest.raises(personal.ModelNotReady, match="scripts/train.py"):
        service.model("vbpr-mm")


def test_a_pool_of_one_is_skipped_and_counted_not_scored_perfect(data, monkeypatch):
    # Field report: a cold-start test item that is the only cold item has a pool of one: AUC was NaN and NDCG@10 1.0.
    user = int(np.flatnonzero(data.test_item >= 0)[0])
    only_cold = np.zeros(data.n_items, dtype=bool)
    only_cold[data.test_item[user]] = True
    monkeypatch.setattr(type(data), "cold_items", property(lambda self: only_cold))
    users = np.flatnonzero(data.test_item >= 0)
    ranked = protocol.rank_targets(lambda c: np.zeros((len(c), data.n_items)), data, users, data.test_item[users],
                                   exclude_valid=True)
    summary = protocol.summarize(ranked)
    sharing = int((data.test_item[users] == data.test_item[user]).sum())  # users whose target is that item
    assert summary["skipped_small_pool"] == sharing and not any(k.startswith("cold/") for k in summary)
    assert summary["n_users"] == len(users) - sharing and np.isfinite(summary["AUC"])
