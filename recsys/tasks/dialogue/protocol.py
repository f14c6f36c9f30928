"""FASCODE's protocol for dialogue-based coordi-set recommendation: models in, weighted Kendall's tau out.

Evaluation ranks the three candidate coordi-sets of every ``eval`` dialogue (:mod:`.data` holds the split) and
compares the predicted ranks with the true ones by weighted Kendall's tau
(:func:`recsys.metrics.weighted_kendall_tau`), averaged over dialogues, as in the paper (Kim et al., "FASCODE",
2021: 0.141 for the paper's model; the challenge winners reached about 0.78).

Rows (labelled by the registry, :mod:`.models`): ``random`` (candidates in a random order), ``zero-shot`` (no
training: the cosine between the user's words and the candidates' item descriptions), every trainable dialogue
model (fitted on the training dialogues, ranked by distance only), ``<model>+compat`` for a model with a
compatibility weight (the set score adds the type-aware compatibility model's outfit score, or the cosine
agreement fallback for a catalog without outfits; :func:`.data.compatibility_scorer`), and ``oracle`` on the
built-in world (ranks from the true coordi score).
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from recsys import metrics
from recsys.catalog import Catalog
from recsys.models.registry import list_models
from recsys.progress import ProgressCallback
from recsys.tasks.dialogue.data import (
    DialogueTaskError,
    LazyTextEncoder,
    compatibility_scorer,
    dialogue_data,
    encoded_dialogues,
    fit_model,
    require_artifacts,
)

logger = logging.getLogger(__name__)


def mean_wkt(score_lists: Sequence[np.ndarray], true_ranks: Sequence[np.ndarray]) -> dict:
    """Mean weighted Kendall's tau and top-1 accuracy of predicted candidate scores against true ranks.

    Predicted ranks break ties against the model (:func:`recsys.metrics.pessimistic_ranks`): evaluation files list
    the best candidate first, so a tie broken by position would give a model that scores every candidate alike a
    perfect WKT. Returns ``{"WKT": float in [-1, 1] or None, "top1_acc": float in [0, 1] or None, "dialogues": int}``
    plus ``"undefined"`` (dialogues whose tau or scores are not finite, left out of the means; the loader already
    skips records whose true ranks are not a ranking) when there are any.
    """
    taus, hits = [], []
    for scores, truth in zip(score_lists, true_ranks):
        truth, scores = np.asarray(truth), np.asarray(scores, dtype=np.float64)
        if not np.isfinite(scores).all():
            taus.append(float("nan"))
            hits.append(float("nan"))
            continue
        predicted = metrics.pessimistic_ranks(scores, relevance=-truth)
        taus.append(metrics.weighted_kendall_tau(predicted, truth))
        hits.append(float(truth[int(np.argmin(predicted))] == truth.min()))
    wkt, undefined = metrics.defined_mean(taus)
    top1, _ = metrics.defined_mean(hits)
    result = metrics.defined_errors({"WKT": wkt, "WKT_se": metrics.standard_error(taus), "top1_acc": top1,
                                     "top1_acc_se": metrics.standard_error(hits), "dialogues": len(taus)})
    if undefined:
        result["undefined"] = undefined
    result[metrics.PER_QUERY] = {"WKT": (np.asarray(taus, dtype=np.float64), None),
                                 "top1_acc": (np.asarray(hits, dtype=np.float64), None)}
    return result


def zero_shot_scores(eval_vectors: np.ndarray, candidates: Sequence[np.ndarray], item_text: np.ndarray) -> list:
    """Scores of every candidate set: mean cosine of its items' description vectors with the user's words.

    ``eval_vectors`` are :func:`.messages.dialogue_vectors` ``(m, 2 * d)`` (the first half, the mean user turn,
    is the query); ``item_text`` is ``(n_items, d)``, unit rows, in the text encoder's own space.
    """
    dim = item_text.shape[1]
    out = []
    for vector, rows in zip(eval_vectors, candidates):
        query = vector[:dim] / max(np.linalg.norm(vector[:dim]), 1e-12)
        out.append(np.array([np.mean([item_text[i] @ query for i in row if i >= 0]) for row in rows]))
    return out


def evaluate(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress: ProgressCallback | None = None,
             models=None, store=None) -> dict:
    """Weighted Kendall's tau of every row on the catalog's evaluation dialogues (see the module docstring).

    Returns ``{row: {"WKT", "top1_acc", "dialogues", "skipped"[, "fit_seconds"]}}``. ``models`` (optional) limits
    the trained models evaluated (the baselines and oracle are always reported). ``store`` (optional): a
    :class:`recsys.store.ModelStore` of split ``seed`` whose full-schedule dialogue and compatibility models are the
    same fits as those trained here, taken instead of training them twice (the first-run quick report).

    Raises
    ------
    DialogueTaskError
        When the catalog has no precomputed embeddings, no evaluation dialogues, or too few training dialogues.
    recsys.encoders.EncoderError
        When the artifacts' text encoder cannot be built.
    """
    report = progress or (lambda fraction, message: None)
    artifacts = require_artifacts(catalog)
    data = dialogue_data(catalog, extended=not quick)  # the quick report: without the evaluation-only dialogues
    if not data.eval_records:
        raise DialogueTaskError(f"The catalog {catalog.name} has no evaluation dialogues with candidate coordi-sets.")
    spec, encoder = artifacts.text_encoder_spec, LazyTextEncoder(artifacts.text_encoder_spec)
    report(0.02, "Encoding the dialogues")
    train_vectors = encoded_dialogues(spec, data.train_turns, encoder)
    eval_vectors = encoded_dialogues(spec, [r.get("turns", []) for r in data.eval_records], encoder)
    true_ranks = [np.array([int(c["rank"]) for c in r["candidates"]]) for r in data.eval_records]
    results: dict[str, dict] = {}

    rng = np.random.default_rng(seed)
    results["random"] = mean_wkt([rng.random(len(c)) for c in data.eval_candidates], true_ranks)
    item_text = np.asarray(artifacts.text_description, dtype=np.float32)
    results["zero-shot"] = mean_wkt(zero_shot_scores(eval_vectors, data.eval_candidates, item_text), true_ranks)

    report(0.04, "Fitting the compatibility model")
    reuse = store if store is not None and store.seed == seed else None
    compatibility, compat_name = compatibility_scorer(catalog, artifacts, seed=seed, quick=quick, reuse=reuse)
    names = [n for n in list_models("dialogue", trainable=True) if models is None or n in models]
    for k, name in enumerate(names):
        def step(fraction: float, message: str, k=k, name=name) -> None:
            report(0.05 + 0.9 * (k + fraction) / len(names), f"{name}: {message}")

        model = reuse.get("dialogue", name, full_only=True) if reuse is not None else None
        if model is None:
            model = fit_model(name, catalog, artifacts=artifacts, data=data, train_vectors=train_vectors, seed=seed,
                              quick=quick, progress=step)
        distance_only = [-model.set_distances(v, rows) for v, rows in zip(eval_vectors, data.eval_candidates)]
        results[name] = mean_wkt(distance_only, true_ranks)
        if hasattr(model, "fit_seconds_"):  # a model taken from the store was not fitted here
            results[name]["fit_seconds"] = round(model.fit_seconds_, 2)
        if model.compat_weight:
            with_compat = [model.set_scores(v, rows, compatibility)
                           for v, rows in zip(eval_vectors, data.eval_candidates)]
            results[f"{name}+compat"] = mean_wkt(with_compat, true_ranks)
            logger.info("%s+compat uses %s", name, compat_name)

    if catalog.has_truth:
        from recsys.data.truth import WorldTruth

        truth = WorldTruth.from_catalog(catalog)
        oracle = [np.array([truth.coordi_score(r["dialogue_id"], c["coordi"]) for c in r["candidates"]])
                  for r in data.eval_records]
        results["oracle"] = mean_wkt(oracle, true_ranks)
    for scores in results.values():
        scores["skipped"] = len(data.skipped)
    report(1.0, "Done")
    return results
