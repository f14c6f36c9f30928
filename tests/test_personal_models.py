"""BPR, VBPR, DVBPR, VECF and popularity on small planted problems: they must learn what was planted."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.models.base import clone
from recsys.models.bpr import BPR
from recsys.models.dvbpr import DVBPR, ConvAutoencoder
from recsys.models.pairwise import UnknownUserError, sample_triples
from recsys.models.popularity import Popularity, RandomScores
from recsys.models.vbpr import VBPR, MultimodalVBPR
from recsys.models.vecf import VECF, kmeans_clusters

N_USERS, N_ITEMS = 60, 40


@pytest.fixture(scope="module")
def planted():
    """Two tastes: users 0..29 like items 0..19, users 30..59 items 20..39; items 18,19,38,39 are never seen.

    Every item's visual feature says which half it belongs to, so visual models can place the unseen items.
    """
    rng = np.random.default_rng(0)
    rows, cols = [], []
    for u in range(N_USERS):
        half = 0 if u < N_USERS // 2 else 20
        for i in rng.choice(18, size=6, replace=False):
            rows.append(u)
            cols.append(half + i)
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(N_USERS, N_ITEMS))
    group = (np.arange(N_ITEMS) >= 20).astype(np.float32)
    features = np.c_[group, 1 - group, rng.normal(0, 0.05, size=(N_ITEMS, 6))].astype(np.float32)
    maps = np.zeros((N_ITEMS, 8, 7, 7), np.float32)
    maps[:, :, 2, 3] = features  # the telling feature sits in one region; the others hold noise
    maps += rng.normal(0, 0.05, size=maps.shape)
    return X, features, maps.astype(np.float16)


def auc_of_halves(scores: np.ndarray, items_liked: np.ndarray, items_other: np.ndarray) -> float:
    return float((scores[items_liked][:, None] > scores[items_other][None, :]).mean())


def test_sampled_negatives_avoid_observed_items(planted):
    X, _, _ = planted
    users, positives, negatives = sample_triples(X, np.random.default_rng(0), N_ITEMS)
    assert len(users) == X.nnz
    assert np.asarray(X[users, positives]).ravel().all()
    assert (np.asarray(X[users, negatives]).ravel() == 0).mean() > 0.99


def test_popularity_counts_training_interactions(planted):
    X, _, _ = planted
    model = Popularity().fit(X)
    assert np.array_equal(model.score(3), np.asarray(X.sum(axis=0)).ravel())
    assert model.score([0, 1]).shape == (2, N_ITEMS)
    random = RandomScores(random_state=4).fit(X)
    assert np.array_equal(random.score([0, 1]), np.random.default_rng(4).random((2, N_ITEMS)))


def test_parameters_come_from_the_constructor_and_fit_restores_torch_threads(planted):
    X, features, _ = planted
    model = VBPR(n_factors=3, n_epochs=2, reg=0.5)
    assert model.get_params() == {"n_factors": 3, "n_visual_factors": 16, "n_epochs": 2, "batch_size": 1024,
                                  "learning_rate": 0.01, "reg": 0.5, "bias_reg": None, "random_state": 0}
    assert set(VECF().get_params()) >= {"attention_dim", "n_clusters", "review_weight", "n_epochs", "reg"}
    assert clone(model.set_params(learning_rate=0.05)).learning_rate == 0.05
    with pytest.raises(ValueError, match="no parameter 'epochs'"):
        model.set_params(epochs=3)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.fit(X, item_features=features)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("make", [
    lambda f, m: (BPR(n_factors=8, n_epochs=40, learning_rate=0.05), {}),
    lambda f, m: (VBPR(n_factors=4, n_visual_factors=4, n_epochs=40, learning_rate=0.05), {"item_features": f}),
    lambda f, m: (MultimodalVBPR(n_factors=4, n_visual_factors=4, n_epochs=40, learning_rate=0.05),
                  {"item_features": f, "text_features": f[:, ::-1].copy()}),
    lambda f, m: (DVBPR(n_factors=8, n_epochs=40, learning_rate=0.05), {"item_features": f}),
    lambda f, m: (VECF(n_factors=8, attention_dim=8, n_epochs=40, learning_rate=0.05, n_clusters=4),
                  {"feature_maps": m, "item_features": f}),
], ids=["bpr", "vbpr", "vbpr-mm", "dvbpr", "vecf"])
def test_rankers_learn_the_planted_tastes_and_round_trip(planted, make, tmp_path):
    X, features, maps = planted
    model, side = make(features, maps)
    model.fit(X, **side)
    seen_a, seen_b = np.arange(18), np.arange(20, 38)
    assert auc_of_halves(model.score(0), seen_a, seen_b) > 0.9
    assert auc_of_halves(model.score(45), seen_b, seen_a) > 0.9
    model.save(tmp_path / "m")
    again = type(model).load(tmp_path / "m", **{k: v for k, v in side.items() if k in model._side_names})
    assert np.allclose(again.score([0, 45]), model.score([0, 45]), atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda f, m: (VBPR(n_factors=4, n_visual_factors=4, n_epochs=40, learning_rate=0.05), {"item_features": f}),
    lambda f, m: (DVBPR(n_factors=8, n_epochs=40, learning_rate=0.05), {"item_features": f}),
    lambda f, m: (VECF(n_factors=8, attention_dim=8, n_epochs=40, learning_rate=0.05, n_clusters=2,
                       review_weight=0.0), {"feature_maps": m, "item_features": f}),
    # The image block is noise here: the multimodal model must place the unseen items by their text alone.
    lambda f, m: (MultimodalVBPR(n_factors=4, n_visual_factors=4, n_epochs=40, learning_rate=0.05),
                  {"item_features": np.random.default_rng(1).normal(size=f.shape).astype(np.float32),
                   "text_features": f}),
], ids=["vbpr", "dvbpr", "vecf", "vbpr-mm-text-only-signal"])
def test_visual_models_place_cold_start_items_by_their_images(planted, make):
    X, features, maps = planted
    model, side = make(features, maps)
    model.fit(X, **side)
    scores = model.score(0)
    assert scores[[18, 19]].min() > scores[[38, 39]].max()


@pytest.mark.parametrize("cls", [VBPR, MultimodalVBPR])
def test_vbpr_score_terms_add_up_to_the_score(planted, cls):
    X, features, _ = planted
    side = {"item_features": features} | ({"text_features": features * 3.0} if cls is MultimodalVBPR else {})
    model = cls(n_factors=4, n_visual_factors=4, n_epochs=5).fit(X, **side)
    vector = model.user_vectors(7)[0]
    for item in (0, 25, 39):
        terms = model.score_terms(vector, item)
        assert set(terms) == ({"latent", "image", "description"} if cls is MultimodalVBPR else {"latent", "image"})
        assert sum(terms.values()) == pytest.approx(float(model.score(7)[item]), abs=1e-4)
    # The region explanation works in the raw image features' units: w_u . f_i is the image term.
    image_term = float(model.visual_direction(vector) @ features[25])
    assert image_term == pytest.approx(model.score_terms(vector, 25)["image"], abs=1e-4)


def test_multimodal_vbpr_rejects_misaligned_text_features(planted):
    X, features, _ = planted
    with pytest.raises(ValueError, match="text feature rows"):
        MultimodalVBPR(n_epochs=1).fit(X, item_features=features, text_features=features[:-1])


def test_vecf_scores_what_every_region_shares_through_its_pooled_term(planted):
    # The regions hold noise alone; the pooled feature says which half an item is in (a colour every region of
    # it would share). With VBPR's pooled term VECF places the never-seen items by it; attention alone cannot.
    X, features, maps = planted
    noise = np.random.default_rng(2).normal(0, 0.05, size=maps.shape).astype(np.float16)
    cold_a, cold_b = np.array([18, 19]), np.array([38, 39])
    placed = {}
    for n_visual in (4, 0):
        model = VECF(n_factors=8, n_visual_factors=n_visual, attention_dim=8, n_epochs=40, learning_rate=0.05,
                     n_clusters=1, review_weight=0.0).fit(X, feature_maps=noise, item_features=features)
        assert model.module_.user.embedding_dim == 8 + n_visual  # [p_u, theta_u]
        scores = model.score(np.arange(N_USERS))
        # Per user, the share of (own half's, other half's) never-seen item pairs ranked the right way round.
        placed[n_visual] = np.mean([auc_of_halves(row, *((cold_a, cold_b) if u < N_USERS // 2 else (cold_b, cold_a)))
                                    for u, row in enumerate(scores)])
    assert placed[4] > 0.95
    # One cluster and noisy regions: without the pooled term the never-seen items are placed near chance.
    assert placed[0] < 0.8


def test_vecf_saved_before_the_pooled_term_loads_in_its_own_form(planted, tmp_path):
    X, features, maps = planted
    old = VECF(n_factors=8, n_visual_factors=0, attention_dim=8, n_epochs=2, n_clusters=4).fit(
        X, feature_maps=maps, item_features=features)
    old.save(tmp_path / "old")
    # What such a file holds: the parameters of the day, which had no n_visual_factors.
    import json

    meta_path = next(tmp_path.glob("old*.json"))
    saved = json.loads(meta_path.read_text())
    del saved["params"]["n_visual_factors"]
    meta_path.write_text(json.dumps(saved))
    again = VECF.load(tmp_path / "old", feature_maps=maps, item_features=features)
    assert again.n_visual_factors == 0 and np.allclose(again.score(0), old.score(0), atol=1e-5)


def test_vecf_scores_all_items_as_it_scores_pairs(planted):
    X, _, maps = planted
    model = VECF(n_factors=8, attention_dim=8, n_epochs=3, n_clusters=4).fit(X, feature_maps=maps)
    batched = model.score(np.arange(12))
    with torch.no_grad():
        vectors = torch.as_tensor(model.user_vectors(np.arange(12)))
        items = torch.arange(N_ITEMS)
        pairwise = torch.stack([model.module_.pair_scores(v[None].expand(N_ITEMS, -1), items) for v in vectors])
    assert np.allclose(batched, pairwise.numpy(), atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda f, m: (BPR(n_factors=4, n_epochs=2), {}),
    lambda f, m: (MultimodalVBPR(n_factors=4, n_visual_factors=4, n_epochs=2),
                  {"item_features": f, "text_features": f[:, ::-1].copy()}),
    lambda f, m: (DVBPR(n_factors=4, n_epochs=2), {"item_features": f}),
    lambda f, m: (VECF(n_factors=8, attention_dim=8, n_epochs=2, n_clusters=4, review_weight=0.0), {"feature_maps": m}),
], ids=["bpr", "vbpr-mm", "dvbpr", "vecf"])
def test_a_training_step_shares_item_work_without_changing_the_margins(planted, make):
    # batch_margins computes each distinct item of the step once (items repeat, and appear on both sides): the
    # margins must be those of scoring the positives and the negatives on their own.
    X, features, maps = planted
    model, side = make(features, maps)
    model.fit(X, **side)
    users, positives, negatives = (torch.from_numpy(a) for a in sample_triples(X, np.random.default_rng(1), N_ITEMS))
    with torch.no_grad():
        vectors = model.module_.user(users)
        shared, _ = model.module_.batch_margins(users, vectors, positives, negatives)
        apart = model.module_.pair_scores(vectors, positives) - model.module_.pair_scores(vectors, negatives)
    assert len(torch.unique(torch.cat([positives, negatives]))) < 2 * len(users)
    assert np.allclose(shared.numpy(), apart.numpy(), atol=1e-5)


def test_item_biases_have_their_own_regularization(planted):
    X, _, _ = planted
    # Make some items far more popular, so free biases have something to learn.
    X = (X + sp.csr_matrix((np.ones(N_USERS, np.float32), (np.arange(N_USERS), np.full(N_USERS, 5))), shape=X.shape)).tocsr()
    biases = {}
    for bias_reg in (0.0, 10.0):
        model = BPR(n_factors=4, n_epochs=20, learning_rate=0.05, reg=1e-3, bias_reg=bias_reg).fit(X)
        biases[bias_reg] = model.module_.item_bias.weight.detach().numpy().ravel()
    assert np.abs(biases[10.0]).max() < 0.2 * np.abs(biases[0.0]).max()
    assert biases[0.0][5] == biases[0.0].max()  # the item everyone has gets the largest free bias


def test_bpr_cold_items_lose_their_untrained_factors(planted):
    X, _, _ = planted
    model = BPR(n_factors=8, n_epochs=5).fit(X)
    assert np.all(model.module_.item.weight[[18, 19, 38, 39]].detach().numpy() == 0)
    assert np.all(model.score(0)[[18, 19, 38, 39]] == 0)


def test_vecf_cold_item_is_its_cluster_and_attention_sums_to_one(planted):
    X, features, maps = planted
    model = VECF(n_factors=8, attention_dim=8, n_epochs=5, n_clusters=5).fit(X, feature_maps=maps,
                                                                              item_features=features)
    assert np.all(model.module_.item.weight[[18, 19, 38, 39]].detach().numpy() == 0)
    attention = model.attention_map(model.user_vectors(0)[0], 3)
    assert attention.shape == (7, 7)
    assert attention.sum() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(IndexError):
        model.attention_map(model.user_vectors(0)[0], N_ITEMS + 3)


def test_vecf_attention_finds_the_region_that_tells_the_tastes_apart(planted):
    X, features, maps = planted
    # Without the pooled term: here the pooled features say the half outright, and attention would have nothing left
    # to find (the pooled term is what carries a signal every region shares).
    model = VECF(n_factors=8, n_visual_factors=0, attention_dim=8, n_epochs=60, learning_rate=0.05, n_clusters=40,
                 review_weight=0.0).fit(X, feature_maps=maps, item_features=features)
    peaks = [np.unravel_index(model.attention_map(model.user_vectors(u)[0], i).argmax(), (7, 7))
             for u, i in [(0, 3), (0, 25), (45, 3), (45, 25)]]
    assert sum(p == (2, 3) for p in peaks) >= 3


def test_review_supervision_trains_the_review_head(planted):
    X, _, maps = planted
    users, items = X.nonzero()
    targets = np.zeros((len(users), 4), np.float32)
    targets[:, 0] = np.where(users < 30, 1.0, -1.0)  # reviews of the two tastes point in opposite directions
    targets[:, 1] = 0.2
    model = VECF(n_factors=8, attention_dim=8, n_epochs=30, learning_rate=0.05, n_clusters=4, review_weight=1.0)
    model.fit(X, feature_maps=maps, review_users=users, review_items=items, review_targets=targets)
    a = model.predict_review_embedding(model.user_vectors(0)[0], 3)
    b = model.predict_review_embedding(model.user_vectors(45)[0], 25)
    assert a[0] > 0 > b[0]


def test_fold_in_places_a_new_user_with_the_items_they_liked(planted):
    X, features, _ = planted
    model = VBPR(n_factors=4, n_visual_factors=4, n_epochs=40, learning_rate=0.05).fit(X, item_features=features)
    before = model.module_.item.weight.detach().clone()
    vector = model.fold_in([21, 22, 23])
    assert (model.module_.item.weight == before).all()  # item factors stay fixed
    assert auc_of_halves(model.score_vectors(vector), np.arange(24, 38), np.arange(0, 18)) > 0.9
    with pytest.raises(ValueError, match="at least one item"):
        model.fold_in([])


def test_unknown_user_index_is_one_sentence(planted):
    X, _, _ = planted
    model = BPR(n_factors=4, n_epochs=1).fit(X)
    with pytest.raises(UnknownUserError, match="not one of the 60 users"):
        model.score(N_USERS + 1)


def test_early_stopping_keeps_the_best_validation_epoch(planted):
    X, _, _ = planted
    scores = iter([0.1, 0.5, 0.2, 0.3])
    model = BPR(n_factors=4, n_epochs=4).fit(X, on_epoch=lambda epoch, m: next(scores))
    assert model.best_epoch_ == 2
    assert [h["validation"] for h in model.history_] == [0.1, 0.5, 0.2, 0.3]


def test_kmeans_clusters_group_nearby_features():
    rng = np.random.default_rng(0)
    features = (np.repeat(np.eye(3, dtype=np.float32) * 10, 4, axis=0) + rng.normal(0, 0.1, (12, 3))).astype(np.float32)
    clusters = kmeans_clusters(features, 3)
    assert len(set(clusters)) == 3
    assert all(len(set(clusters[k * 4 : k * 4 + 4])) == 1 for k in range(3))


def test_conv_autoencoder_codes_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = np.zeros((24, 64, 64, 3), np.uint8)
    images[:12, :32] = 255  # two kinds of picture: top half white, bottom half white
    images[12:, 32:] = 255
    images = np.clip(images.astype(int) + rng.integers(0, 20, images.shape), 0, 255).astype(np.uint8)
    autoencoder = ConvAutoencoder(code_dim=16, n_epochs=15, batch_size=8, learning_rate=3e-3).fit(images)
    assert autoencoder.history_[-1]["mse"] < autoencoder.history_[0]["mse"]
    codes = autoencoder.transform(images)
    assert codes.shape == (24, 16)
    within = np.linalg.norm(codes[:12] - codes[:12].mean(0), axis=1).mean()
    between = np.linalg.norm(codes[:12].mean(0) - codes[12:].mean(0))
    assert between > within
    autoencoder.save(tmp_path / "ae")
    assert np.allclose(ConvAutoencoder.load(tmp_path / "ae").transform(images), codes, atol=1e-5)


def test_dvbpr_can_keep_its_features_in_the_saved_file(planted, tmp_path):
    X, features, _ = planted
    kept = DVBPR(n_factors=4, n_epochs=3, save_features=True).fit(X, item_features=features)
    kept.save(tmp_path / "kept")
    assert np.allclose(DVBPR.load(tmp_path / "kept").score([0, 45]), kept.score([0, 45]), atol=1e-5)
    DVBPR(n_factors=4, n_epochs=3).fit(X, item_features=features).save(tmp_path / "plain")
    with pytest.raises(ValueError, match="needs item_features"):
        DVBPR.load(tmp_path / "plain")
