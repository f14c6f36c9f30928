"""Complete the look: the papers' compatibility protocols (models in, metrics out).

* ``triplet_acc`` -- complete-the-look triplet accuracy (Kang et al., CVPR 2019): held-out triplets (anchor,
  positive = another category's item of the same outfit, negative = an item of the positive's category from
  another outfit); a hit when the positive is closer (more compatible) than the negative.
* ``FITB`` -- Polyvore fill-in-the-blank with 4 candidates (Han et al. 2017; Vasileva et al. 2018): the model
  picks the candidate that makes the whole set score highest. The wrong candidates share the answer's category, as
  Polyvore Outfits' resampled questions (telling apart items of one type is what type-aware embeddings are for).
* ``FITB-any`` -- the same questions' other form, the original Polyvore one: the wrong candidates are items of any
  category (:data:`recsys.tasks.compat.data.FITB_FORMS`).
* ``AUC`` -- Polyvore outfit compatibility: held-out outfits against random outfits with the same categories,
  scored as whole sets.

Compared rows: every registered compat model -- ``random``, ``visual-similarity`` (raw image vectors), the
paper's ``triplet`` model, the ``type-aware`` model and, on a generated world, ``oracle``. The split and the
questions come from :mod:`recsys.tasks.compat.data`.
"""

from __future__ import annotations

import logging

import numpy as np

from recsys.catalog import Catalog
from recsys.metrics import PER_QUERY, auc, auc_standard_error, defined_errors, fitb_hits, standard_error
from recsys.models.compat import category_pools, triplets_from_outfits
from recsys.models.registry import get_model, list_models, model_info
from recsys.progress import ProgressCallback
from recsys.tasks.compat.data import (
    N_CANDIDATES,
    compatibility_questions,
    fit_on_split,
    fitb_questions,
    prepare,
)

logger = logging.getLogger(__name__)


def _share(hits: np.ndarray) -> tuple[float, float]:
    return (float(hits.mean()) if len(hits) else float("nan")), standard_error(hits)


def _fitb_hits(scorer, fitb) -> np.ndarray:
    """``(m,)`` float hits of one scorer on FITB questions ``(rests, candidates, answers)``."""
    rests, candidates, answers = fitb
    fitb_scores = np.array([[scorer.outfit_score(np.r_[rest, c]) for c in options]
                            for rest, options in zip(rests, candidates)]).reshape(-1, N_CANDIDATES)
    return np.asarray(fitb_hits(fitb_scores, answers), dtype=np.float64)


def _score(scorer, triplets: np.ndarray, fitb, compat, fitb_any) -> dict:
    """``triplet_acc``, ``FITB``, ``FITB-any`` and ``AUC`` of one scorer on fixed questions, each with its standard
    error (``*_se``: over triplets, over FITB questions, Hanley & McNeil's for the AUC)."""
    positive = scorer.pair_compatibility(triplets[:, 0], triplets[:, 1])
    negative = scorer.pair_compatibility(triplets[:, 0], triplets[:, 2])
    # In the order the questions were first scored in: the random row draws its scores as it is asked.
    hits = _fitb_hits(scorer, fitb)
    sets, labels = compat
    set_scores = np.array([scorer.outfit_score(s) for s in sets])
    any_hits = _fitb_hits(scorer, fitb_any)
    # Higher compatibility = smaller distance: a triplet is a hit when the positive scores above the negative (a tie
    # is a miss).
    triplet_hits = np.asarray(positive > negative, dtype=np.float64)
    triplet_acc, triplet_se = _share(triplet_hits)
    fitb_acc, fitb_se = _share(hits)
    any_acc, any_se = _share(any_hits)
    n_pos, n_neg = int((labels == 1).sum()), int((labels == 0).sum())
    set_auc = auc(set_scores[labels == 1], set_scores[labels == 0])
    return defined_errors({"triplet_acc": triplet_acc, "triplet_acc_se": triplet_se, "FITB": fitb_acc,
                           "FITB_se": fitb_se, "FITB-any": any_acc, "FITB-any_se": any_se, "AUC": set_auc,
                           "AUC_se": auc_standard_error(set_auc, n_pos, n_neg)}
                          ) | {PER_QUERY: {"FITB": (hits, None), "FITB-any": (any_hits, None),
                                           "triplet_acc": (triplet_hits, None)}}


def evaluate(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress: ProgressCallback | None = None,
             artifacts=None, models=None, store=None) -> dict:
    """Run the three protocols for every registered compat model; ``{model: {metric: value}}``.

    The trained models are fitted here on the training outfits of the ``seed`` split, or taken from ``store`` when it
    has them on the full schedule; ``oracle`` is reported only on a generated world.

    Parameters
    ----------
    catalog : Catalog
    seed : int
        Seeds the split, the questions (``seed + 1``), the random row and the models.
    quick : bool
        Fewer training epochs, and the test outfits without the evaluation-only ones (the first run's quick
        report).
    progress : callable ``(fraction, message)``, optional
    artifacts : recsys.artifacts.Artifacts, optional
        Loaded from the catalog when not given.
    models : collection of str, optional
        Evaluate only these trained models (the baselines and oracle are always reported); default: every one.
    store : recsys.store.ModelStore, optional
        Where trained models of split ``seed`` may be taken from instead of fitted here: a saved model trained on the
        full schedule is the same fit (same split, seed and settings), so the first-run quick report measures the
        page models without training them twice. Without it, every model is fitted here.

    Raises
    ------
    NoOutfitsError
        When the catalog has too few outfits (a ``ValueError``).
    recsys.artifacts.ArtifactError
        When the catalog has no usable precomputed embeddings.
    """
    # The quick report (first run) leaves out the evaluation-only outfits; the full evaluation reads them all.
    data = prepare(catalog, seed, artifacts=artifacts, extended=not quick)
    rng = np.random.default_rng(seed + 1)
    pools = category_pools(data.test_outfits + data.train_outfits, data.categories)
    triplets = triplets_from_outfits(data.test_outfits, data.categories, rng, pools)
    fitb = fitb_questions(data, rng, catalog)
    compat = compatibility_questions(data, rng, catalog)
    # Drawn after the others, so that adding this form left every earlier question as it was.
    fitb_any = fitb_questions(data, rng, catalog, form="any")

    trainable = [n for n in list_models("compat", trainable=True) if models is None or n in models]
    scorers = {}
    for name in list_models("compat"):
        if model_info("compat", name).trainable and name not in trainable:
            continue
        if name in trainable:
            if progress:
                progress(trainable.index(name) / (len(trainable) + 1), f"Fitting the {name} model")
            saved = store.get("compat", name, full_only=True) if store is not None and store.seed == seed else None
            scorers[name] = saved if saved is not None else fit_on_split(name, data, seed=seed, quick=quick)
        elif name == "random":
            scorers[name] = get_model("compat", name, random_state=seed).fit()
        elif name == "visual-similarity":
            scorers[name] = get_model("compat", name).fit(data.image)
        elif name == "oracle" and catalog.has_truth:
            from recsys.data.truth import WorldTruth

            scorers[name] = get_model("compat", name).fit(WorldTruth.from_catalog(catalog))
    report = {name: _score(scorer, triplets, fitb, compat, fitb_any) for name, scorer in scorers.items()}
    counts = {"triplets": int(len(triplets)), "fitb_questions": int(len(fitb[2])),
              "fitb_any_questions": int(len(fitb_any[2])), "auc_sets": int(len(compat[1])),
              "train_outfits": len(data.train_outfits), "test_outfits": len(data.test_outfits)}
    logger.info("compat protocol sizes: %s", counts)
    if progress:
        progress(1.0, "Done")
    return report
