"""Metrics against values computed by hand."""

import numpy as np
import pytest

from recsys import metrics


def test_auc_by_hand():
    # positives 0.9, 0.4; negatives 0.5, 0.1 -> pairs won: (0.9>0.5, 0.9>0.1, 0.4>0.1) = 3 of 4
    assert metrics.auc([0.9, 0.4], [0.5, 0.1]) == pytest.approx(0.75)
    assert metrics.sampled_auc([1.0, 0.0], [[0.0, 2.0], [0.0, -1.0]]) == pytest.approx((0.5 + 0.75) / 2)


def test_rank_and_hit_rate():
    scores = np.array([0.1, 0.9, 0.5, 0.5])
    assert metrics.rank_of(scores, 1) == 0
    assert metrics.rank_of(scores, 2) == 2  # a tie is resolved against the target
    assert metrics.hit_rate_at_k([0, 3, 10, 12], 10) == 0.5
    assert metrics.recall_at_k([0, 3, 10, 12], 4) == 0.5


def test_ndcg_one_relevant_matches_scikit_learn():
    # rank 0 -> 1, rank 2 -> 1/log2(4) = 0.5, rank 12 -> 0 at k=10
    assert metrics.ndcg_at_k([0, 2, 12], 10) == pytest.approx((1 + 0.5 + 0) / 3)
    relevance = np.array([[0, 0, 1, 0, 0]])
    scores = np.array([[0.9, 0.8, 0.7, 0.1, 0.0]])  # the relevant item ranks third
    assert metrics.ndcg_from_scores(relevance, scores, k=5) == pytest.approx(metrics.ndcg_at_k([2], 5))


def test_f1_precision():
    # one hit in the top 10 -> precision 0.1, recall 1, F1 = 2*0.1/(1.1)
    assert metrics.f1_at_k([3, 20], 10) == pytest.approx((2 * 0.1 / 1.1) / 2)
    assert metrics.precision_at_k([[1, 0, 1, 1], [0, 0, 0, 1]], 2) == pytest.approx(0.25)


def test_triplet_and_fitb():
    assert metrics.triplet_accuracy([0.1, 0.5, 0.3], [0.2, 0.4, 0.9]) == pytest.approx(2 / 3)
    assert metrics.fitb_accuracy([[0.9, 0.1, 0, 0], [0.1, 0.2, 0.3, 0.4]], [0, 0]) == 0.5


def test_weighted_kendall_tau():
    assert metrics.weighted_kendall_tau([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert metrics.weighted_kendall_tau([3, 2, 1], [1, 2, 3]) == pytest.approx(-1.0)
    # a swap at the top costs more than a swap at the bottom
    top_swap = metrics.weighted_kendall_tau([2, 1, 3], [1, 2, 3])
    bottom_swap = metrics.weighted_kendall_tau([1, 3, 2], [1, 2, 3])
    assert -1 < top_swap < bottom_swap < 1


def test_pointing_game():
    maps = np.zeros((2, 7, 7))
    maps[0, 0, 0] = 1.0  # peak at the top-left cell, centre (16, 16)
    maps[1, 6, 6] = 1.0  # peak at the bottom-right cell
    boxes = np.array([[0, 0, 32, 32], [0, 0, 32, 32]])
    hit, chance = metrics.pointing_game(maps, boxes)
    assert hit == 0.5
    assert chance == pytest.approx(1 / 49)


def test_ties_never_favour_the_model():
    # Pessimistic: within a tie, the less relevant candidate ranks first.
    assert metrics.pessimistic_ranks([0.5, 0.5, 0.1], relevance=[3, 1, 0]).tolist() == [2, 1, 3]
    assert metrics.pessimistic_ranks([0.2, 0.9, 0.5], relevance=[0, 0, 0]).tolist() == [3, 1, 2]
    assert metrics.pessimistic_ranks([], relevance=[]).tolist() == []
    with pytest.raises(ValueError):
        metrics.pessimistic_ranks([1.0, 2.0], relevance=[1.0])
    # One target: after all it ties with, or uniformly among them with a seeded generator.
    constant = np.zeros(5)
    assert metrics.rank_of(constant, 0) == 4
    draws = [metrics.rank_of(constant, 0, rng=np.random.default_rng(s)) for s in range(400)]
    assert set(draws) == {0, 1, 2, 3, 4} and abs(np.mean(draws) - 2.0) < 0.2
    assert metrics.rank_of(np.array([3.0, 1.0]), 0, rng=np.random.default_rng(0)) == 0
    # FITB: a tie for the top is a miss, whichever position the answer has.
    assert metrics.fitb_accuracy([[0.5, 0.5, 0.1, 0.1]], [0]) == 0.0
    assert metrics.fitb_accuracy([[0.6, 0.5, 0.1, 0.1]], [0]) == 1.0
    assert np.isnan(metrics.fitb_accuracy(np.zeros((0, 4)), []))


def test_standard_error_by_hand():
    # [0, 1, 1, 1]: mean 0.75, unbiased variance (0.5625 + 3 x 0.0625) / 3 = 0.25, so SE = 0.5 / 2.
    assert metrics.standard_error([0, 1, 1, 1]) == pytest.approx(0.25)
    assert metrics.standard_error([1.0, np.nan, 3.0]) == pytest.approx(1.0)  # undefined figures are left out
    assert np.isnan(metrics.standard_error([0.4]))
    assert metrics.standard_error([0.3, 0.3, 0.3]) == 0.0


def test_ndcg_gains_by_hand():
    # ranks 0, 2, 10 at k = 10: 1 / log2(2) = 1, 1 / log2(4) = 0.5, outside the top 10 -> 0; their mean is NDCG@10.
    assert metrics.ndcg_gains([0, 2, 10], 10).tolist() == [1.0, 0.5, 0.0]
    assert metrics.ndcg_at_k([0, 2, 10], 10) == pytest.approx(0.5)


def test_paired_difference_by_hand():
    # Differences [1, 0, 0, 1] -> mean 0.5, SE std([1, 0, 0, 1], ddof=1) / 2 = 0.57735 / 2; two independent shares
    # (0.75 and 0.25 over four queries, SE 0.25 each) would give 0.3536.
    difference, se, n = metrics.paired_difference([1, 0, 1, 1], [0, 0, 1, 0])
    assert (difference, n) == (0.5, 4) and se == pytest.approx(np.sqrt(1 / 3) / 2)
    # A query either side leaves undefined is left out of both.
    assert metrics.paired_difference([1, np.nan, 1], [0, 1, 1])[::2] == (0.5, 2)
    # A near-copy of a method differs on one query in a hundred: its error is that of the discordant queries, far
    # below the independent one.
    a = np.tile([1.0, 0.0], 50)
    b = a.copy()
    b[0] = 0.0
    difference, se, _ = metrics.paired_difference(a, b)
    assert difference == pytest.approx(0.01) and se == pytest.approx(0.01)
    assert se < np.hypot(metrics.standard_error(a), metrics.standard_error(b)) / 7
    # Strata: the mean of each stratum's mean difference (a: [1, 0] -> 0.5; b: [1, 1] -> 1.0 -> 0.75), the errors
    # combined as for a mean of independent means: sqrt(0.5^2 + 0^2) / 2.
    difference, se, n = metrics.paired_difference([1, 0, 1, 1], [0, 0, 0, 0], strata=["a", "a", "b", "b"])
    assert difference == pytest.approx(0.75) and se == pytest.approx(0.25) and n == 4
    with pytest.raises(ValueError, match="cannot be paired"):
        metrics.paired_difference([1, 0], [1, 0, 1])


def test_auc_standard_error_hanley_mcneil_by_hand():
    # AUC 0.8, 10 positives, 10 negatives: Q1 = 0.8 / 1.2, Q2 = 1.28 / 1.8, variance (0.16 + 9 x 0.02667 + 9 x 0.07111) / 100.
    assert metrics.auc_standard_error(0.8, 10, 10) == pytest.approx(np.sqrt(0.0104), abs=1e-6)
    assert metrics.auc_standard_error(0.5, 1, 1) == pytest.approx(0.5)
    assert np.isnan(metrics.auc_standard_error(float("nan"), 5, 5))
    assert np.isnan(metrics.auc_standard_error(0.7, 0, 5))


def test_fitb_hits_per_question():
    hits = metrics.fitb_hits([[0.9, 0.1, 0, 0], [0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0, 0]], [0, 0, 0])
    assert hits.tolist() == [True, False, False]  # the tie for the top is a miss
    assert metrics.fitb_hits([[0.3]], [0]).shape == (0,)


def test_undefined_standard_errors_are_left_out_of_a_report():
    assert metrics.defined_errors({"FITB": 0.5, "FITB_se": float("nan"), "AUC": 0.7, "AUC_se": 0.02}) == \
        {"FITB": 0.5, "AUC": 0.7, "AUC_se": 0.02}


def test_reliability_bins_and_calibration_error_by_hand():
    confidence = [0.3, 0.5, 0.55, 0.7, 0.95, 1.0]
    correct = [0, 1, 0, 1, 1, 1]
    rows = metrics.reliability_bins(confidence, correct, edges=(0.0, 0.4, 0.6, 0.8, 1.0))
    assert [r["n"] for r in rows] == [1, 2, 1, 2]  # 1.0 falls in the last, closed bin
    assert rows[1]["confidence"] == pytest.approx(0.525) and rows[1]["accuracy"] == pytest.approx(0.5)
    assert rows[3]["accuracy"] == 1.0 and rows[3]["confidence"] == pytest.approx(0.975)
    # |0 - 0.3| * 1 + |0.5 - 0.525| * 2 + |1 - 0.7| * 1 + |1 - 0.975| * 2, over 6 predictions
    expected = (0.3 + 0.05 + 0.3 + 0.05) / 6
    assert metrics.expected_calibration_error(confidence, correct, edges=(0.0, 0.4, 0.6, 0.8, 1.0)) == pytest.approx(expected)
    empty = metrics.reliability_bins([0.9], [1], edges=(0.0, 0.5, 1.0))
    assert empty[0] == {"lo": 0.0, "hi": 0.5, "n": 0, "confidence": None, "accuracy": None}
    assert np.isnan(metrics.expected_calibration_error([], []))
    with pytest.raises(ValueError, match="one outcome per prediction"):
        metrics.reliability_bins([0.5, 0.6], [1])
    with pytest.raises(ValueError, match="increasing"):
        metrics.reliability_bins([0.5], [1], edges=(0.5, 0.5))
