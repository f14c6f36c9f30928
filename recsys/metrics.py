"""Evaluation metrics as small pure functions (the papers' definitions, library implementations where they exist).

Models know nothing of these; the protocols in ``recsys.evaluate`` call them.

Degenerate inputs have one rule, stated in each docstring and tested in ``tests/test_metric_edges.py``:

- a figure that cannot be computed -- no query, a pool with nothing to rank against, a query with no relevant item,
  a correlation of a constant ranking -- is NaN ("undefined"), returned silently (no warning); reports never show it:
  they average with :func:`defined_mean`, which drops and counts undefined figures, and say "n/a" when none is left;
- ties never favour the model: broken pessimistically (:func:`pessimistic_ranks`, :func:`rank_of`, a tie for the
  top of FITB, a triplet or a pointing-game peak is a miss), at random with a seed (:func:`rank_of` with ``rng``),
  or averaged over every order of the tied items (:func:`ndcg_from_scores`, :func:`auc`: the expected value of a
  random tie-break);
- a cutoff ``k`` below 1 is a caller's error (``ValueError``).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import weightedtau
from sklearn.metrics import ndcg_score, roc_auc_score


def auc(positive_scores, negative_scores) -> float:
    """Area under the ROC curve of positives against negatives (ties count one half), scikit-learn's ``roc_auc_score``.

    One positive against one negative is 1, 0 or 0.5; constant scores give 0.5. NaN (undefined) without a positive
    or without a negative.
    """
    positive_scores, negative_scores = np.ravel(positive_scores), np.ravel(negative_scores)
    if len(positive_scores) == 0 or len(negative_scores) == 0:
        return float("nan")
    labels = np.r_[np.ones(len(positive_scores)), np.zeros(len(negative_scores))]
    return float(roc_auc_score(labels, np.r_[positive_scores, negative_scores]))


def sampled_auc(positive_score: np.ndarray, negative_scores: np.ndarray) -> float:
    """DVBPR's per-user AUC: the share of sampled negatives scored below the held-out positive, averaged.

    ``positive_score`` has shape ``(n_users,)`` and ``negative_scores`` ``(n_users, n_negatives)``; a tie counts
    one half. NaN (undefined) for no user or no negative.
    """
    positive_score = np.asarray(positive_score, dtype=np.float64)[:, None]
    negative_scores = np.asarray(negative_scores, dtype=np.float64)
    if positive_score.size == 0 or negative_scores.size == 0:
        return float("nan")
    wins = (positive_score > negative_scores).mean(axis=1) + 0.5 * (positive_score == negative_scores).mean(axis=1)
    return float(wins.mean())


def rank_of(scores: np.ndarray, target: int, rng: np.random.Generator | None = None) -> int:
    """0-based rank of ``target`` among ``scores`` (higher is better). Ties are never broken in the model's favour:
    pessimistically (the target after every candidate it ties with), or uniformly at random when a seeded ``rng`` is
    given -- so a constant scorer ranks like chance, not like an oracle. The single-target case of
    :func:`pessimistic_ranks`. A pool of one gives 0 (protocols skip such pools: nothing was ranked).

    A NaN score is a score the model failed to give, so it never helps the model: a NaN target ranks last, and a NaN
    candidate ranks ahead of the target.

    Raises
    ------
    IndexError
        When ``target`` is not an index of ``scores``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if np.isnan(scores[target]):
        return len(scores) - 1
    greater = int((scores > scores[target]).sum()) + int(np.isnan(scores).sum())
    ties = int((scores == scores[target]).sum()) - 1
    if rng is None:
        return greater + ties
    return greater + (int(rng.integers(0, ties + 1)) if ties > 0 else 0)


def pessimistic_ranks(scores, relevance) -> np.ndarray:
    """1-based predicted ranks of candidates by ``scores`` (higher is better), ties broken against the model: among
    candidates with equal scores the less relevant (lower ``relevance``) is ranked first.

    The one tie rule of every protocol that ranks a few candidates: files often list the best candidate first, and a
    tie broken by position would hand a model that cannot tell them apart a perfect score.

    Raises
    ------
    ValueError
        When ``scores`` and ``relevance`` differ in length.
    """
    scores, relevance = np.asarray(scores, dtype=np.float64), np.asarray(relevance, dtype=np.float64)
    if scores.shape != relevance.shape:
        raise ValueError(f"{scores.shape[0] if scores.ndim else 1} scores but {relevance.size} relevance values.")
    order = np.lexsort((relevance, -scores))  # by score, high first; within a tie, the least relevant first
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def _check_cutoff(k: int) -> None:
    if k < 1:
        raise ValueError(f"The cutoff k must be at least 1, not {k}.")


def _mean(values: np.ndarray) -> float:
    """The mean, or NaN (undefined) for no value -- without numpy's empty-slice warning."""
    return float(values.mean()) if values.size else float("nan")


def hit_rate_at_k(ranks, k: int) -> float:
    """Share of queries whose single relevant item ranks in the top ``k`` (``ranks`` are 0-based); NaN for no query.

    Raises
    ------
    ValueError
        When ``k`` is below 1.
    """
    _check_cutoff(k)
    return _mean(np.asarray(ranks) < k)


def recall_at_k(ranks, k: int) -> float:
    """Recall@K with one relevant item per query, as in FashionIQ and MMRec (equals the hit rate); NaN for no query.

    Raises
    ------
    ValueError
        When ``k`` is below 1.
    """
    return hit_rate_at_k(ranks, k)


def precision_at_k(relevant_in_rank_order, k: int) -> float:
    """Mean share of relevant results in the top ``k``; rows are queries, columns ranked results (0/1; one row may be
    given as a 1-D list). A query with fewer than ``k`` results counts the missing ones as misses (the share is of
    ``k``, as in cornac and trec_eval). NaN for no query.

    Raises
    ------
    ValueError
        When ``k`` is below 1.
    """
    _check_cutoff(k)
    relevant = np.asarray(relevant_in_rank_order, dtype=np.float64)
    if relevant.ndim == 1:  # one query, possibly with no result at all (a precision of 0)
        relevant = relevant[None, :]
    return _mean(relevant[:, :k].sum(axis=1) / k)


def f1_at_k(ranks, k: int, n_relevant: int = 1) -> float:
    """F1@K with ``n_relevant`` relevant items per query (the one at 0-based ``ranks``), averaged over queries: a hit
    gives ``2 / (k + n_relevant)``, a miss 0. NaN for no query.

    Raises
    ------
    ValueError
        When ``k`` or ``n_relevant`` is below 1.
    """
    _check_cutoff(k)
    if n_relevant < 1:
        raise ValueError(f"A query needs at least one relevant item, not {n_relevant}.")
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        return float("nan")
    hits = (ranks < k).astype(np.float64)
    precision, recall = hits / k, hits / n_relevant
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(hits > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float(f1.mean())


def ndcg_gains(ranks, k: int) -> np.ndarray:
    """Each query's NDCG@K ``(n,)`` with one relevant item, from its 0-based rank: ``1 / log2(rank + 2)`` inside the
    top k, else 0 (what :func:`ndcg_at_k` averages, and what a standard error or a paired difference is over).

    Raises
    ------
    ValueError
        When ``k`` is below 1.
    """
    _check_cutoff(k)
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def ndcg_at_k(ranks, k: int) -> float:
    """NDCG@K with one relevant item per query (:func:`ndcg_gains`) averaged over queries, NaN for no query.

    Raises
    ------
    ValueError
        When ``k`` is below 1.
    """
    return _mean(ndcg_gains(ranks, k))


def ndcg_from_scores(relevance: np.ndarray, scores: np.ndarray, k: int) -> float:
    """NDCG@K for graded, non-negative relevance ``(n_queries, n_candidates)`` (one query may be 1-D), scikit-learn's
    ``ndcg_score`` (linear gain; tied scores averaged over every order of the tied candidates, the expected value of
    a random tie-break), averaged over queries.

    A query without any relevant candidate is undefined (0 / 0) and left out of the mean; a query with one candidate
    scores 1 (any order is ideal). NaN when no query is defined.

    Raises
    ------
    ValueError
        When ``k`` is below 1 or the shapes differ.
    """
    _check_cutoff(k)
    relevance = np.atleast_2d(np.asarray(relevance, dtype=np.float64))
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if relevance.shape != scores.shape:
        raise ValueError(f"Relevance of shape {relevance.shape} does not match scores of shape {scores.shape}.")
    defined = relevance.sum(axis=1) > 0
    if not defined.any():
        return float("nan")
    if relevance.shape[1] == 1:
        return 1.0
    return float(ndcg_score(relevance[defined], scores[defined], k=k))


def triplet_accuracy(positive_distance, negative_distance) -> float:
    """Share of triplets whose positive is closer to the anchor than the negative (complete-the-look); an equal
    distance is a miss. NaN for no triplet."""
    return _mean(np.asarray(positive_distance) < np.asarray(negative_distance))


def fitb_hits(candidate_scores, answer_index) -> np.ndarray:
    """Per question of fill-in-the-blank, whether the answer scores strictly above every other candidate (a tie for
    the top is a miss): bool ``(n_questions,)``; empty for questions of one candidate (nothing to choose between)."""
    candidate_scores = np.atleast_2d(np.asarray(candidate_scores, dtype=np.float64))
    answers = np.asarray(answer_index, dtype=np.int64).reshape(-1)
    if candidate_scores.size == 0 or len(answers) == 0 or candidate_scores.shape[1] < 2:
        return np.zeros(0, dtype=bool)
    answer_scores = candidate_scores[np.arange(len(answers)), answers]
    others = candidate_scores.copy()
    others[np.arange(len(answers)), answers] = -np.inf
    return answer_scores > others.max(axis=1)


def fitb_accuracy(candidate_scores, answer_index) -> float:
    """Fill-in-the-blank accuracy: the share of :func:`fitb_hits` (rows are questions; a tie for the top counts as a
    miss, :func:`pessimistic_ranks`). NaN for no question, and for questions of one candidate."""
    return _mean(fitb_hits(candidate_scores, answer_index))


def standard_error(values) -> float:
    """Standard error of the mean of the finite ``values`` (per-query figures): ``std(ddof=1) / sqrt(n)``.

    NaN (undefined) for fewer than two finite values. For a share (0/1 values) it is the usual
    ``sqrt(p (1 - p) / n)`` up to the ``n / (n - 1)`` of the unbiased variance.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan")
    return float(values.std(ddof=1) / np.sqrt(len(values)))


#: The key of a report row's per-query figures, ``{metric: (values, strata or None)}``: what the evaluation pairs two
#: rows' figures on (:func:`paired_difference`); :func:`recsys.reports.pop_paired_claims` takes it out of the
#: report before it is written.
PER_QUERY = "_per_query"


def paired_difference(a, b, strata=None) -> tuple[float, float, int]:
    """Mean difference of two methods' per-query figures ``a - b`` (aligned ``(n,)`` arrays; NaN where a query's
    figure is undefined) and its paired standard error, over the queries both define: ``(difference, se, n)``.

    The paired error (the standard error of the per-query differences) is the one for two methods scored on the same
    queries: what varies between queries (a hard user, an easy outfit) moves both figures and cancels, so it is far
    smaller than the two errors combined as if independent (the paired t-test; e.g. Smucker, Allan & Carterette,
    "A comparison of statistical significance tests for information retrieval evaluation", CIKM 2007).
    ``strata`` (``(n,)`` labels), when given, is for a figure that is an unweighted mean over strata (FashionIQ's mean
    over categories): the difference is the mean of the strata's mean differences, and the error the strata's own
    errors combined as for a mean of independent means. NaN where fewer than two queries (per stratum) are defined.

    Raises
    ------
    ValueError
        When ``a`` and ``b`` do not hold the same number of queries.
    """
    a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"Per-query figures of {len(a)} and {len(b)} queries cannot be paired.")
    keep = np.isfinite(a) & np.isfinite(b)
    differences = (a - b)[keep]
    if strata is None:
        return (_mean(differences), standard_error(differences), int(keep.sum()))
    labels = np.asarray(strata).reshape(-1)[keep]
    groups = [differences[labels == s] for s in np.unique(labels)]
    if not groups:
        return float("nan"), float("nan"), 0
    errors = [standard_error(g) for g in groups]
    return (float(np.mean([g.mean() for g in groups])), float(np.sqrt(np.sum(np.square(errors)))) / len(groups),
            int(keep.sum()))


def defined_errors(figures: dict) -> dict:
    """``figures`` without the standard errors (keys ending ``_se``) that could not be computed (NaN: fewer than two
    queries): a report shows the value alone rather than an undefined error."""
    return {k: v for k, v in figures.items() if not (k.endswith("_se") and not np.isfinite(v))}


def auc_standard_error(value: float, n_positive: int, n_negative: int) -> float:
    """Standard error of an AUC from ``n_positive`` positives and ``n_negative`` negatives (Hanley & McNeil,
    "The meaning and use of the area under a ROC curve", Radiology 1982, eq. 2). NaN when the AUC is undefined or
    either count is zero."""
    if not np.isfinite(value) or n_positive < 1 or n_negative < 1:
        return float("nan")
    q1, q2 = value / (2.0 - value), 2.0 * value**2 / (1.0 + value)
    variance = (value * (1.0 - value) + (n_positive - 1) * (q1 - value**2)
                + (n_negative - 1) * (q2 - value**2)) / (n_positive * n_negative)
    return float(np.sqrt(max(variance, 0.0)))


def weighted_kendall_tau(predicted_ranks, true_ranks) -> float:
    """Weighted Kendall's tau between two rankings of the same candidates (1 = best), as in FASCODE.

    Uses ``scipy.stats.weightedtau`` with hyperbolic weights, so disagreements at the top cost most;
    ranks are negated because scipy weights by score (higher = more important). Two candidates give 1 or -1.

    NaN (undefined) for fewer than two candidates, and when either ranking is constant (all tied: a correlation with
    a constant has no value). Protocols pass :func:`pessimistic_ranks`, which never tie.
    """
    predicted = -np.asarray(predicted_ranks, dtype=np.float64)
    true = -np.asarray(true_ranks, dtype=np.float64)
    if len(predicted) < 2 or np.ptp(predicted) == 0 or np.ptp(true) == 0:
        return float("nan")
    return float(weightedtau(true, predicted).statistic)


def pointing_game(attention_maps, boxes, image_size: int = 224) -> tuple[float, float]:
    """Pointing game: how often an attention map's peak falls inside the object's box, and the chance rate.

    Parameters
    ----------
    attention_maps : array of shape (n, h, w)
        Attention over a regular grid of regions covering the image.
    boxes : array of shape (n, 4)
        ``(x0, y0, x1, y1)`` in image pixels.

    Returns
    -------
    hit_rate, chance : float
        ``chance`` is the mean share of grid cells whose centre lies in the box, the hit rate of a
        uniformly random peak. A peak shared by several cells (a constant map) is a hit only when all of them are
        in the box. Both NaN for no map.
    """
    maps = np.asarray(attention_maps, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    n, h, w = maps.shape
    if n == 0:
        return float("nan"), float("nan")
    cy = (np.arange(h) + 0.5) * image_size / h
    cx = (np.arange(w) + 0.5) * image_size / w
    hits, chance = [], []
    for attention, (x0, y0, x1, y1) in zip(maps, boxes):
        inside = ((cx[None, :] >= x0) & (cx[None, :] <= x1)) & ((cy[:, None] >= y0) & (cy[:, None] <= y1))
        peak = attention == attention.max()  # argmax would settle a tie by position, in the model's favour or not
        hits.append(bool(inside[peak].all()))
        chance.append(inside.mean())
    return float(np.mean(hits)), float(np.mean(chance))


def defined_mean(values) -> tuple[float | None, int]:
    """The mean of the finite ``values`` and how many were not finite (NaN or infinite: a figure that could not be
    computed for that query). None when no value is finite, never NaN: one undefined query must not drag a mean."""
    values = np.asarray(list(values), dtype=np.float64)
    finite = np.isfinite(values)
    return (float(values[finite].mean()) if finite.any() else None), int((~finite).sum())


def reliability_bins(confidence, correct, edges=(0.0, 0.4, 0.6, 0.8, 0.9, 1.0)) -> list[dict]:
    """A reliability table (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017): for each confidence
    bin ``[lo, hi)`` (the last one closed), ``n``, the mean ``confidence`` and the ``accuracy`` of its predictions
    (both None for an empty bin).

    Raises
    ------
    ValueError
        For arrays of different lengths or edges that are not increasing.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if confidence.shape != correct.shape:
        raise ValueError(f"{confidence.size} confidences and {correct.size} outcomes: one outcome per prediction.")
    if edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("Bin edges must be at least two increasing numbers.")
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, edges.size - 2)
    rows = []
    for b in range(edges.size - 1):
        inside = which == b
        n = int(inside.sum())
        rows.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": n,
                     "confidence": float(confidence[inside].mean()) if n else None,
                     "accuracy": float(correct[inside].mean()) if n else None})
    return rows


def expected_calibration_error(confidence, correct, edges=(0.0, 0.4, 0.6, 0.8, 0.9, 1.0)) -> float:
    """Expected calibration error: the count-weighted mean of ``|accuracy - confidence|`` over the
    :func:`reliability_bins` (0 for perfect calibration; NaN without predictions)."""
    rows = [r for r in reliability_bins(confidence, correct, edges) if r["n"]]
    total = sum(r["n"] for r in rows)
    if not total:
        return float("nan")
    return float(sum(r["n"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / total)
