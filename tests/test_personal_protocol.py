"""The personalized-ranking protocol on the tiny world: split, metrics, explanations, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from recsys import viz
from recsys.catalog import ATTRIBUTE_COLUMNS
from recsys.models.bpr import BPR, UnknownUserError
from recsys.protocols import personal
from tests._scripts import load_script


@pytest.fixture(scope="module")
def data(tiny_catalog):
    return personal.interaction_data(tiny_catalog)


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

    ranked = personal.rank_targets(perfect, data, users, targets, exclude_valid=True)
    summary = personal.summarize(ranked)
    assert summary["AUC"] == 1.0 and summary["NDCG@10"] == 1.0 and summary["HR@10"] == 1.0
    assert summary["F1@10"] == pytest.approx(2 * 0.1 / 1.1)
    constant = personal.summarize(personal.rank_targets(lambda c: np.zeros((len(c), data.n_items)), data, users,
                                                        targets, exclude_valid=True))
    assert constant["AUC"] == pytest.approx(0.5)
    assert constant["HR@10"] < 0.5


def test_summaries_carry_standard_errors_over_users():
    ranked = {"rank": np.array([0, 1, 20, 50]), "auc": np.array([1.0, 0.9, 0.5, 0.2]), "cold": np.zeros(4, bool)}
    summary = personal.summarize(ranked)
    per_user = np.array([1.0, 1.0 / np.log2(3.0), 0.0, 0.0])
    assert summary["NDCG@10"] == pytest.approx(per_user.mean())
    assert summary["NDCG@10 (se)"] == pytest.approx(per_user.std(ddof=1) / 2.0)
    assert summary["HR@10 (se)"] == pytest.approx(np.array([1, 1, 0, 0]).std(ddof=1) / 2.0)
    assert summary["AUC (se)"] == pytest.approx(np.array([1.0, 0.9, 0.5, 0.2]).std(ddof=1) / 2.0)
    assert not any(key.startswith("cold/") for key in summary)


@pytest.mark.slow
def test_evaluate_reports_every_model_against_baselines_and_oracle(tiny_catalog, tiny_artifacts):
    report = personal.evaluate(tiny_catalog, quick=True)
    assert {"random", "popularity", "oracle", "vbpr-attributes", *personal.MODEL_NAMES} <= set(report)
    for name in ("random", "popularity", "oracle", "vecf"):
        assert {"AUC", "NDCG@10", "NDCG@50", "NDCG@100", "HR@10", "F1@10", "R@20"} <= set(report[name])
    assert any(k.startswith("cold/") for k in report["oracle"])
    assert report["oracle"]["AUC"] > report["random"]["AUC"]
    assert 0.0 <= report["vecf"]["pointing_chance"] <= 1.0
    assert report["vecf"]["best_epoch"] >= 1
    # The multimodal VBPR explains its image term over the regions, so it plays the pointing game too.
    assert 0.0 <= report["vbpr-mm"]["pointing_game"] <= 1.0


def test_attribute_features_one_hot_the_labelled_attributes(tiny_catalog):
    codes = personal.attribute_features(tiny_catalog)
    columns = [c for c in ATTRIBUTE_COLUMNS if c in tiny_catalog.items.columns]
    assert codes.shape == (len(tiny_catalog), sum(tiny_catalog.items[c].nunique() for c in columns))
    assert np.all(codes.sum(axis=1) == tiny_catalog.items[columns].notna().sum(axis=1).to_numpy())
    unlabelled = dataclasses.replace(tiny_catalog, items=tiny_catalog.items.drop(columns=columns))
    assert personal.attribute_features(unlabelled) is None


def test_region_maps_and_their_refusals(tiny_catalog, tiny_artifacts, data):
    vbpr = personal.make_model("vbpr", quick=True)
    vbpr.fit(data.train, item_features=np.asarray(tiny_artifacts.image))
    vector = vbpr.user_vectors(0)[0]
    regions = personal.region_map(vbpr, tiny_artifacts, vector, 4)
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
    with pytest.raises(personal.ExplanationUnavailable, match="no image regions"):
        personal.region_map(BPR(n_epochs=1).fit(data.train), tiny_artifacts, np.zeros(32), 4)
    without_maps = dataclasses.replace(tiny_artifacts, feature_maps=None, fmap_pca_components=None)
    with pytest.raises(personal.ExplanationUnavailable, match="no feature maps"):
        personal.region_map(vbpr, without_maps, vector, 4)
    with pytest.raises(personal.ExplanationUnavailable, match="has no feature map"):
        personal.region_map(vbpr, tiny_artifacts, vector, len(tiny_catalog) + 5)


def test_recommendations_and_bad_input(tiny_catalog, data):
    model = BPR(n_epochs=2).fit(data.all_interactions())
    with pytest.raises(UnknownUserError, match="no user 'nobody'"):
        personal.resolve_user(data, "nobody")
    assert personal.resolve_user(data, "ghost", known_users={"ghost"}) is None
    fallback = personal.recommend(model, data, None, n=5)
    assert "no history" in fallback.note
    counts = np.asarray(data.all_interactions().sum(axis=0)).ravel()
    assert list(fallback.scores) == sorted(counts, reverse=True)[:5]
    mine = personal.recommend(model, data, 0, n=8)
    assert not set(mine.item_idx) & set(data.histories[0])
    cold = personal.recommend(model, data, 0, n=4, only_cold=True)
    assert data.cold_items[cold.item_idx].all()
    with pytest.raises(ValueError, match="at least one item"):
        personal.recommend(model, data, None, liked=np.array([], dtype=np.int64))
    new_user = personal.recommend(model, data, None, liked=np.array([1, 2]))
    assert not {1, 2} & set(new_user.item_idx)


def test_shared_attributes_name_what_the_history_has(tiny_catalog, data):
    history = data.histories[0]
    item = int(history[0])
    shared = personal.shared_attributes(tiny_catalog, history[1:], item)
    color = tiny_catalog.items["color"].iat[item]
    has_color = (tiny_catalog.items["color"].iloc[history[1:]] == color).any()
    assert any(line.startswith(f"color: {color}") for line in shared) == has_color


def test_review_embeddings_are_cached_under_artifacts(tiny_catalog):
    texts = ["Great logo detail.", "Fits well.", "Great logo detail."]
    first = personal.review_embeddings(tiny_catalog, texts)
    assert first.shape == (3, 384)
    assert np.allclose(first[0], first[2])
    assert (tiny_catalog.root / "artifacts" / "reviews_minilm.npy").is_file()
    again = personal.review_embeddings(tiny_catalog, texts[:2])
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
    data = personal.interaction_data(tiny_catalog)
    seen_targets = []
    real_rank = personal.rank_targets

    def spy(score_users, data_, users, targets, exclude_valid, seed=0, batch=64):
        seen_targets.append(np.asarray(targets))
        return real_rank(score_users, data_, users, targets, exclude_valid, seed, batch)

    monkeypatch.setattr(personal, "rank_targets", spy)
    rows = personal.tune(tiny_catalog, "bpr", {"reg": [0.01, 0.3], "n_factors": [4]}, quick=True)
    assert sorted(row["reg"] for row in rows) == [0.01, 0.3]
    assert rows[0]["val/NDCG@50"] >= rows[1]["val/NDCG@50"]
    assert all(1 <= row["best_epoch"] <= personal.model_settings("bpr", quick=True)["n_epochs"] for row in rows)
    # Only validation items are ever ranked: the test items stay unseen.
    users = np.flatnonzero(data.valid_item >= 0)
    assert all(np.array_equal(t, data.valid_item[users]) for t in seen_targets)
    with pytest.raises(ValueError, match="no hyper-parameter colour"):
        personal.tune(tiny_catalog, "bpr", {"colour": [1]})
    with pytest.raises(ValueError, match="no personal model 'svd'"):
        personal.tune(tiny_catalog, "svd", {})


def test_tune_script_parses_its_grid_and_refuses_bad_pairs(tiny_catalog_dir, tiny_artifacts, capsys):
    script = load_script("tune")
    main, parse_grid = script.main, script.parse_grid

    assert parse_grid(["reg=0.01,0.03", "n_factors=8", "name=abc"]) == {"reg": [0.01, 0.03], "n_factors": [8], "name": ["abc"]}
    assert main(["--catalog", str(tiny_catalog_dir), "--model", "bpr", "--grid", "reg"]) == 1
    assert "not name=value" in capsys.readouterr().err
    assert main(["--catalog", str(tiny_catalog_dir), "--model", "bpr", "--grid", "reg=0.05", "--quick"]) == 0
    assert "val/NDCG@50" in capsys.readouterr().out
