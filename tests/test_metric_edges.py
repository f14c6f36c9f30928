"""Every metric on empty, single-element, constant and all-tied inputs, against values worked out by hand.

The rule (module docstring of recsys.metrics): what cannot be computed is NaN, silently, and reports average with
defined_mean; ties never favour the model; a cutoff below 1 is a ValueError.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from recsys import metrics

NAN = float("nan")
LOG2_3 = math.log2(3)

CASES = {
    # ---- auc: pairs won / pairs, a tie one half
    "auc-empty": (lambda: metrics.auc([], []), NAN),
    "auc-no-negative": (lambda: metrics.auc([0.3], []), NAN),
    "auc-no-positive": (lambda: metrics.auc([], [0.3]), NAN),
    "auc-single-pair-won": (lambda: metrics.auc([0.9], [0.1]), 1.0),
    "auc-single-pair-lost": (lambda: metrics.auc([0.1], [0.9]), 0.0),
    "auc-constant": (lambda: metrics.auc([0.5, 0.5], [0.5, 0.5, 0.5]), 0.5),
    # one positive tied with one of two negatives and above the other: (0.5 + 1) / 2
    "auc-one-tie": (lambda: metrics.auc([0.5], [0.5, 0.1]), 0.75),
    # ---- sampled_auc
    "sampled-auc-no-user": (lambda: metrics.sampled_auc(np.zeros(0), np.zeros((0, 3))), NAN),
    "sampled-auc-no-negative": (lambda: metrics.sampled_auc(np.zeros(2), np.zeros((2, 0))), NAN),
    "sampled-auc-single": (lambda: metrics.sampled_auc([1.0], [[0.0]]), 1.0),
    "sampled-auc-all-tied": (lambda: metrics.sampled_auc([0.2, 0.2], [[0.2, 0.2], [0.2, 0.2]]), 0.5),
    # ---- rank_of: 0-based, pessimistic
    "rank-of-pool-of-one": (lambda: metrics.rank_of(np.array([0.7]), 0), 0),
    "rank-of-all-tied": (lambda: metrics.rank_of(np.full(4, 0.3), 2), 3),
    "rank-of-nan-target-is-last": (lambda: metrics.rank_of(np.array([np.nan, 0.1, 0.2]), 0), 2),
    "rank-of-nan-candidate-is-ahead": (lambda: metrics.rank_of(np.array([0.9, np.nan, 0.2]), 0), 1),
    # ---- hit rate / recall / NDCG@k / F1@k from 0-based ranks
    "hit-rate-empty": (lambda: metrics.hit_rate_at_k([], 10), NAN),
    "hit-rate-single-hit": (lambda: metrics.hit_rate_at_k([9], 10), 1.0),
    "hit-rate-single-miss": (lambda: metrics.hit_rate_at_k([10], 10), 0.0),
    "recall-empty": (lambda: metrics.recall_at_k([], 20), NAN),
    "recall-constant": (lambda: metrics.recall_at_k([3, 3, 3], 4), 1.0),
    "ndcg-empty": (lambda: metrics.ndcg_at_k([], 10), NAN),
    "ndcg-single-top": (lambda: metrics.ndcg_at_k([0], 1), 1.0),
    "ndcg-single-second": (lambda: metrics.ndcg_at_k([1], 10), 1 / LOG2_3),
    "ndcg-constant-outside-k": (lambda: metrics.ndcg_at_k([5, 5], 5), 0.0),
    "f1-empty": (lambda: metrics.f1_at_k([], 10), NAN),
    "f1-single-hit-k1": (lambda: metrics.f1_at_k([0], 1), 1.0),
    # a hit with k = 10, one relevant: 2 / (10 + 1)
    "f1-single-hit-k10": (lambda: metrics.f1_at_k([4], 10), 2 / 11),
    "f1-two-relevant": (lambda: metrics.f1_at_k([0, 50], 2, n_relevant=2), (2 / 4 + 0) / 2),
    # ---- precision@k: share of k
    "precision-no-query": (lambda: metrics.precision_at_k(np.zeros((0, 5)), 3), NAN),
    "precision-one-query-1d": (lambda: metrics.precision_at_k([1, 0, 1], 2), 0.5),
    "precision-no-result": (lambda: metrics.precision_at_k([], 3), 0.0),
    "precision-fewer-results-than-k": (lambda: metrics.precision_at_k([[1, 0]], 5), 1 / 5),
    "precision-constant-relevant": (lambda: metrics.precision_at_k(np.ones((3, 4)), 4), 1.0),
    # ---- graded NDCG from scores (ties averaged: the expected value of a random tie-break)
    "ndcg-scores-empty": (lambda: metrics.ndcg_from_scores(np.zeros((0, 3)), np.zeros((0, 3)), 3), NAN),
    "ndcg-scores-one-candidate": (lambda: metrics.ndcg_from_scores([[2.0]], [[0.1]], 1), 1.0),
    "ndcg-scores-nothing-relevant": (lambda: metrics.ndcg_from_scores([[0, 0, 0]], [[0.1, 0.2, 0.3]], 3), NAN),
    # the query with nothing relevant is left out, not counted as 0: only the perfect one remains
    "ndcg-scores-undefined-query-left-out": (
        lambda: metrics.ndcg_from_scores([[0, 0, 0], [1, 0, 0]], [[0.1, 0.2, 0.3], [0.9, 0.2, 0.1]], 3), 1.0),
    "ndcg-scores-constant-relevance": (lambda: metrics.ndcg_from_scores([[1, 1, 1]], [[0.5, 0.2, 0.9]], 3), 1.0),
    # all three tied, one relevant: its gain 1 spread over positions 1..3, (1 + 1/log2(3) + 1/2) / 3
    "ndcg-scores-all-tied": (lambda: metrics.ndcg_from_scores([[1, 0, 0]], [[0.5, 0.5, 0.5]], 3), (1 + 1 / LOG2_3 + 0.5) / 3),
    "ndcg-scores-all-tied-k1": (lambda: metrics.ndcg_from_scores([[1, 0, 0]], [[0.5, 0.5, 0.5]], 1), 1 / 3),
    # ---- triplet and FITB: a tie is a miss
    "triplet-empty": (lambda: metrics.triplet_accuracy([], []), NAN),
    "triplet-single": (lambda: metrics.triplet_accuracy([0.1], [0.2]), 1.0),
    "triplet-tie": (lambda: metrics.triplet_accuracy([0.4, 0.4], [0.4, 0.4]), 0.0),
    "fitb-no-question": (lambda: metrics.fitb_accuracy(np.zeros((0, 4)), []), NAN),
    "fitb-one-candidate": (lambda: metrics.fitb_accuracy([[0.3]], [0]), NAN),
    "fitb-single-question": (lambda: metrics.fitb_accuracy([[0.1, 0.9]], [1]), 1.0),
    "fitb-all-tied": (lambda: metrics.fitb_accuracy([[0.3, 0.3, 0.3]], [2]), 0.0),
    # ---- weighted Kendall tau
    "wkt-empty": (lambda: metrics.weighted_kendall_tau([], []), NAN),
    "wkt-single": (lambda: metrics.weighted_kendall_tau([1], [1]), NAN),
    "wkt-two-agree": (lambda: metrics.weighted_kendall_tau([1, 2], [1, 2]), 1.0),
    "wkt-two-disagree": (lambda: metrics.weighted_kendall_tau([2, 1], [1, 2]), -1.0),
    "wkt-predicted-all-tied": (lambda: metrics.weighted_kendall_tau([1, 1, 1], [1, 2, 3]), NAN),
    "wkt-truth-all-tied": (lambda: metrics.weighted_kendall_tau([1, 2, 3], [2, 2, 2]), NAN),
    # ---- pointing game: (hit rate, chance) on a 7 x 7 grid of 32-pixel cells
    "pointing-no-map": (lambda: metrics.pointing_game(np.zeros((0, 7, 7)), np.zeros((0, 4))), (NAN, NAN)),
    # a constant map over the top-left cell's box: its peak is every cell, not all inside -> miss; 1 cell of 49
    "pointing-constant-map": (lambda: metrics.pointing_game(np.ones((1, 7, 7)), np.array([[0, 0, 32, 32]])), (0.0, 1 / 49)),
    # ... and a box over the whole image: every tied cell inside -> hit
    "pointing-constant-map-whole-box": (
        lambda: metrics.pointing_game(np.ones((1, 7, 7)), np.array([[0, 0, 224, 224]])), (1.0, 1.0)),
    # a box with no cell centre in it: nothing to hit
    "pointing-box-between-centres": (lambda: metrics.pointing_game(np.eye(7)[None], np.array([[1, 1, 2, 2]])), (0.0, 0.0)),
    # ---- defined_mean: (mean of the finite values or None, count of the others)
    "defined-mean-empty": (lambda: metrics.defined_mean([]), (None, 0)),
    "defined-mean-all-undefined": (lambda: metrics.defined_mean([NAN, float("inf")]), (None, 2)),
    "defined-mean-single": (lambda: metrics.defined_mean([0.25]), (0.25, 0)),
    "defined-mean-one-undefined-left-out": (lambda: metrics.defined_mean([1.0, NAN, 0.0]), (0.5, 1)),
    "defined-mean-constant": (lambda: metrics.defined_mean([0.3] * 4), (0.3, 0)),
}


@pytest.mark.parametrize("compute, expected", CASES.values(), ids=CASES.keys())
def test_metric_edge_value(compute, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # undefined is NaN, silently: no empty-slice or scipy warning on the way
        value = compute()
    if isinstance(expected, tuple):
        assert len(value) == len(expected)
        for got, want in zip(value, expected):
            assert got == want if want is None else got == pytest.approx(want, nan_ok=True)
    else:
        assert value == pytest.approx(expected, nan_ok=True)
        assert isinstance(value, (int, float))


@pytest.mark.parametrize(
    "call",
    [
        lambda: metrics.hit_rate_at_k([0], 0),
        lambda: metrics.recall_at_k([0], -1),
        lambda: metrics.precision_at_k([[1]], 0),
        lambda: metrics.f1_at_k([0], 0),
        lambda: metrics.f1_at_k([0], 5, n_relevant=0),
        lambda: metrics.ndcg_at_k([0], 0),
        lambda: metrics.ndcg_from_scores([[1, 0]], [[0.1, 0.2]], 0),
        lambda: metrics.ndcg_from_scores([[1, 0]], [[0.1, 0.2, 0.3]], 2),
    ],
    ids=["hit-k0", "recall-k-1", "precision-k0", "f1-k0", "f1-no-relevant", "ndcg-k0", "ndcg-scores-k0", "ndcg-scores-shapes"],
)
def test_callers_errors_are_one_sentence(call):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message[0].isupper() and message.endswith(".") and "\n" not in message


def test_a_constant_scorer_never_looks_better_than_chance():
    # Every ranking metric on a scorer that gives everything the same score, target listed first: pessimistic or
    # averaged, never the perfect score that file order would hand it.
    constant = np.zeros(5)
    assert metrics.rank_of(constant, 0) == 4
    assert metrics.hit_rate_at_k([metrics.rank_of(constant, 0)], 1) == 0.0
    assert metrics.pessimistic_ranks(constant, relevance=[1, 0, 0, 0, 0]).tolist()[0] == 5
    assert metrics.fitb_accuracy([constant], [0]) == 0.0
    assert metrics.auc(constant[:1], constant[1:]) == 0.5
    assert metrics.ndcg_from_scores([[1, 0, 0, 0, 0]], [constant], 1) == pytest.approx(1 / 5)
