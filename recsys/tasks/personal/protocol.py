"""Personalized ranking ("For you"): the papers' evaluation protocol, models in, metrics out.

Protocol (DVBPR / VECF / MMRec):

* the leave-one-out split of :mod:`recsys.tasks.personal.data` (last item by time for test, the one before it
  for validation);
* sampled AUC as in DVBPR (the held-out item against sampled unobserved items), and full-ranking NDCG@10/50/100,
  HR@10, F1@10 (the visual-clustering paper) and Recall@20 (MMRec), the user's other known items excluded;
* warm and cold-start test items separately: an item is cold when it has no training interaction; a cold test
  item is ranked among the cold items (the cold-start setting), its metrics are prefixed ``cold/``;
* baselines ``random`` and ``popularity`` and, on the built-in world, ``oracle`` (the world's true utility) and
  ``vbpr-attributes`` (VBPR on the labelled attributes the true tastes are linear in: the ceiling for the
  image-feature models, showing how much the image encoder loses);
* model selection (the epoch kept) on validation NDCG@50 only -- with about one hit in fifty users at 10, NDCG@10
  on a thousand validation users moves more between epochs by chance than by learning; the test items are looked
  at once;
* on the built-in world, the pointing game of every model that can point: for users whose true taste includes
  a detail (logo, pocket, ...), does the peak of the region map of a top-10 item with that detail (at the liked
  place, when the taste names one) fall inside the detail's box, against the box's share of the grid (chance);
  and every warm figure again over the users whose taste is a detail at a place (``detail/NDCG@10``, ...): a
  pocket near the hem, which the description does not say and a pooled image vector hardly tells from one on
  the chest -- the subgroup region attention is meant for (VECF, Chen et al. 2019).
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np

from recsys import metrics
from recsys.artifacts import load_artifacts
from recsys.catalog import Catalog, CatalogError
from recsys.models.registry import get_model
from recsys.progress import ProgressCallback
from recsys.store import ModelStore
from recsys.tasks.personal.data import PersonalData, fit_inputs, interaction_data
from recsys.tasks.personal.features import attribute_features
from recsys.tasks.personal.models import TASK, ranker_names
from recsys.utils import top_n

logger = logging.getLogger(__name__)


CUTOFFS = {"NDCG": (10, 50, 100), "HR": (10,), "F1": (10,), "R": (20,)}
AUC_NEGATIVES = 100
#: Fewer candidates than this and a target has nothing to be ranked against (the only cold item of a catalog): its
#: user is left out of the means and counted (``skipped_small_pool``), never scored a perfect 1.
MIN_POOL = 2
SELECTION_CUTOFF = 50
#: Prefix of the figures over the users whose true taste is a detail at a place (built-in world only).
DETAIL_PREFIX = "detail/"


# ====================================================================== ranking the held-out items
def _rank(scores: np.ndarray, candidates: np.ndarray, target: int, rng: np.random.Generator) -> int:
    """0-based rank of ``target`` among ``candidates``; ties are broken at random with the protocol's seed (a constant
    scorer is random), by :func:`recsys.metrics.rank_of`."""
    return metrics.rank_of(scores[candidates], int(np.flatnonzero(candidates == target)[0]), rng=rng)


def rank_targets(score_users: Callable[[np.ndarray], np.ndarray], data: PersonalData, users: np.ndarray,
                 targets: np.ndarray, exclude_valid: bool, seed: int = 0, batch: int = 64) -> dict:
    """Ranks and sampled-AUC wins of each user's target item (see the module docstring for the candidates).

    ``score_users(chunk)`` returns ``(len(chunk), n_items)`` scores. Returns ``{"rank", "auc", "cold"}`` arrays
    aligned with ``users``.
    """
    rng = np.random.default_rng(seed)
    cold = data.cold_items
    cold_idx, all_idx = np.flatnonzero(cold), np.arange(data.n_items)
    ranks, aucs, is_cold, ranked = [], [], [], []
    for start in range(0, len(users), batch):
        chunk = users[start : start + batch]
        scores = np.asarray(score_users(chunk), dtype=np.float64)
        for row, u in enumerate(chunk):
            t = int(targets[start + row])
            known = data.train.indices[data.train.indptr[u] : data.train.indptr[u + 1]]
            if exclude_valid and data.valid_item[u] >= 0:
                known = np.append(known, data.valid_item[u])
            pool = cold_idx if cold[t] else all_idx
            candidates = np.setdiff1d(pool, known)
            is_cold.append(bool(cold[t]))
            if len(candidates) < MIN_POOL:  # e.g. the only cold item: nothing to rank it against
                ranks.append(-1)
                aucs.append(float("nan"))
                ranked.append(False)
                continue
            ranked.append(True)
            ranks.append(_rank(scores[row], candidates, t, rng))
            negatives = np.setdiff1d(candidates, [t])
            sampled = rng.choice(negatives, size=min(AUC_NEGATIVES, len(negatives)), replace=False)
            aucs.append(metrics.sampled_auc(scores[row, [t]], scores[row, sampled][None, :]))
    return {"rank": np.array(ranks), "auc": np.array(aucs), "cold": np.array(is_cold, dtype=bool),
            "ranked": np.array(ranked, dtype=bool)}


def summarize(ranked: dict) -> dict:
    """The report's metrics from :func:`rank_targets`: warm ones plain, cold-start ones prefixed ``cold/``."""
    out: dict = {}
    usable = ranked.get("ranked", np.ones(len(ranked["rank"]), dtype=bool))
    for prefix, mask in (("", ~ranked["cold"] & usable), ("cold/", ranked["cold"] & usable)):
        if not mask.any():
            continue
        r = ranked["rank"][mask]
        out[f"{prefix}AUC"] = float(ranked["auc"][mask].mean())
        for k in CUTOFFS["NDCG"]:
            out[f"{prefix}NDCG@{k}"] = metrics.ndcg_at_k(r, k)
        out[f"{prefix}HR@10"] = metrics.hit_rate_at_k(r, 10)
        out[f"{prefix}F1@10"] = metrics.f1_at_k(r, 10)
        out[f"{prefix}R@20"] = metrics.recall_at_k(r, 20)
        # One held-out item per user makes every metric a mean over users; its standard error says which
        # differences between models a thousand users can tell apart.
        if mask.sum() > 1:
            out[f"{prefix}AUC_se"] = metrics.standard_error(ranked["auc"][mask])
            out[f"{prefix}NDCG@10_se"] = metrics.standard_error(metrics.ndcg_gains(r, 10))
            out[f"{prefix}HR@10_se"] = metrics.standard_error((r < 10).astype(np.float64))
        out[f"{prefix}n_users"] = int(mask.sum())
    skipped = int((~usable).sum())
    if skipped:
        out["skipped_small_pool"] = skipped
    return metrics.defined_errors(out)


def summarize_subgroup(ranked: dict, mask: np.ndarray, prefix: str) -> dict:
    """:func:`summarize` of the users in boolean ``mask`` (aligned with ``ranked``), warm targets only, every key
    prefixed with ``prefix``."""
    figures = summarize({key: values[mask] for key, values in ranked.items()})
    return {prefix + key: value for key, value in figures.items() if not key.startswith("cold/")
            and key != "skipped_small_pool"}


def per_user_figures(ranked: dict, subgroup: np.ndarray | None = None) -> dict:
    """Each warm test user's AUC, NDCG@10 and HR@10 (NaN for cold or unranked targets), as
    :data:`recsys.metrics.PER_QUERY` holds them: the same users in the same order for every row, so two rows'
    figures pair. With ``subgroup`` (a mask over the users) also the ``detail/`` figures (NaN outside it)."""
    warm = ~ranked["cold"] & ranked.get("ranked", np.ones(len(ranked["rank"]), dtype=bool))
    r = ranked["rank"]
    figures = {"AUC": np.asarray(ranked["auc"], dtype=np.float64),
               "NDCG@10": metrics.ndcg_gains(r, 10), "HR@10": (r < 10).astype(np.float64)}
    out = {metric: (np.where(warm, values, np.nan), None) for metric, values in figures.items()}
    if subgroup is not None:
        out |= {DETAIL_PREFIX + metric: (np.where(subgroup, values, np.nan), None)
                for metric, (values, _) in out.items()}
    return out


def detail_users(truth, data: PersonalData, users: np.ndarray) -> np.ndarray | None:
    """Boolean mask over ``users``: whose true taste is a detail at a place (the users region attention is for),
    None when the truth has no readable tastes for a place."""
    if truth is None or "liked_place" not in truth.user_table.columns:
        return None
    liked = truth.user_table.set_index("user_id")["liked_place"].reindex(data.user_ids).fillna("").astype(str)
    return liked.to_numpy()[users] != ""


def validation_callback(data: PersonalData, users: np.ndarray, every: int = 5, aucs: dict | None = None) -> Callable:
    """Early stopping on validation NDCG@50 (every ``every`` epochs), never touching test items.

    ``aucs``, when given, collects each scored epoch's validation sampled AUC.
    """
    targets = data.valid_item[users]

    def on_epoch(epoch: int, model) -> float | None:
        if epoch % every and epoch != model.n_epochs:
            return None
        model.module_.eval()
        ranked = rank_targets(lambda chunk: model.score(chunk), data, users, targets, exclude_valid=False, seed=epoch)
        model.module_.train()
        if aucs is not None:
            aucs[epoch] = float(ranked["auc"].mean())
        return metrics.ndcg_at_k(ranked["rank"], SELECTION_CUTOFF)

    return on_epoch


# ====================================================================== the pointing game
def detail_boxes(catalog: Catalog) -> np.ndarray | None:
    """``(n_items, 4)`` boxes ``x0, y0, x1, y1`` (pixels) of each item's detail, None for a catalog without them."""
    columns = ["detail_x0", "detail_y0", "detail_x1", "detail_y1"]
    if not set(columns) <= set(catalog.items.columns):
        return None
    return catalog.items[columns].to_numpy(dtype=np.float64)


def pointing(model, artifacts, data: PersonalData, truth, catalog: Catalog, users: np.ndarray,
             user_vectors: np.ndarray, top_lists: np.ndarray) -> tuple[float, float, int] | None:
    """Pointing game over users whose true taste includes a detail and their top items having it (where liked).

    Returns ``(hit rate, chance, number of maps)``, or None when no top item has a liked detail.
    """
    boxes = detail_boxes(catalog)
    if boxes is None or "detail" not in catalog.items.columns:
        return None
    details = catalog.items["detail"].fillna("none").to_numpy()
    places = (catalog.items["detail_place"].fillna("").astype(str).to_numpy() if "detail_place" in catalog.items
              else np.full(len(details), ""))
    image_size = catalog.load_image(catalog.items["item_id"].iat[0]).size[0]
    maps, chosen = [], []
    for row, u in enumerate(users):
        try:
            tastes = truth.tastes_of(data.user_ids[u])
        except KeyError:
            continue
        liked = [d for d in str(tastes.get("liked_detail", "")).split(",") if d]
        place = str(tastes.get("liked_place", "") or "")
        for i in top_lists[row]:
            if details[i] in liked and (not place or places[i] == place) and boxes[i, 2] > boxes[i, 0] >= 0:
                maps.append(model.region_scores(user_vectors[row], int(i), artifacts))
                chosen.append(boxes[i])
    if not maps:
        return None
    hit, chance = metrics.pointing_game(np.stack(maps), np.stack(chosen), image_size=image_size)
    return hit, chance, len(maps)


def world_truth(catalog: Catalog):
    """The built-in world's :class:`WorldTruth` of ``catalog``, None for a catalog without one."""
    if not catalog.has_truth:
        return None
    from recsys.data.truth import WorldTruth

    return WorldTruth.from_catalog(catalog)


# ====================================================================== evaluate
def evaluate(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress: ProgressCallback | None = None, models=None,
             store=None) -> dict:
    """The protocol of the module docstring: ``{model_name: {metric: value}}``. ``models`` (optional) limits the
    trained models evaluated (the baselines and oracle are always reported). ``store`` gives the components the
    models read (the autoencoder; a store of split ``seed`` is made when it is of another seed); its page models are
    not read: they are fitted on every interaction, test items included, so every model is fitted here on the
    training interactions.

    Raises
    ------
    CatalogError
        When the catalog has no interactions, or no user has the three interactions leave-one-out needs.
    recsys.artifacts.ArtifactError
        When the catalog has no usable precomputed embeddings.
    """
    report = progress or (lambda fraction, message: None)
    data = interaction_data(catalog)
    artifacts = load_artifacts(catalog)
    truth = world_truth(catalog)
    rng = np.random.default_rng(seed)
    test_users = np.flatnonzero(data.test_item >= 0)
    if len(test_users) == 0:
        raise CatalogError(f"No user of {catalog.name} has the three interactions leave-one-out needs.")
    if quick and len(test_users) > 300:
        test_users = np.sort(rng.choice(test_users, 300, replace=False))
    val_users = test_users if len(test_users) <= 1000 else np.sort(rng.choice(test_users, 1000, replace=False))
    targets = data.test_item[test_users]
    results: dict = {}
    likes_detail = detail_users(truth, data, test_users)

    def record(name: str, score_users, extra: dict | None = None) -> None:
        ranked = rank_targets(score_users, data, test_users, targets, exclude_valid=True, seed=seed)
        results[name] = summarize(ranked) | (extra or {})
        subgroup = likes_detail is not None and likes_detail.any()
        if subgroup:
            results[name] |= summarize_subgroup(ranked, likes_detail, DETAIL_PREFIX)
        results[name][metrics.PER_QUERY] = per_user_figures(ranked, likes_detail if subgroup else None)

    report(0.0, "Baselines")
    random_scores = get_model(TASK, "random", random_state=seed + 1).fit(data.train)
    record("random", random_scores.score)
    popularity = get_model(TASK, "popularity").fit(data.train)
    record("popularity", lambda chunk: popularity.score(chunk))
    if truth is not None:
        user_ids = np.array(data.user_ids)
        record("oracle", lambda chunk: truth.utility(list(user_ids[chunk])))

    # The components the models read (the autoencoder) come from a store of this split's seed.
    own_store = store if store is not None and store.seed == seed else ModelStore(catalog, artifacts, seed=seed)
    names = ranker_names(ceiling=truth is not None and attribute_features(catalog) is not None)
    names = [n for n in names if models is None or n in models]
    for k, name in enumerate(names):
        report((k + 1) / (len(names) + 1), f"Training {name}")
        started = time.perf_counter()
        model = get_model(TASK, name, quick=quick)
        every = 1 if quick else 5
        model.fit(data.train, on_epoch=validation_callback(data, val_users, every),
                  **fit_inputs(catalog, artifacts, data, name, data.train, quick, seed, store=own_store))
        fit_seconds = time.perf_counter() - started
        extra = {"best_epoch": int(model.best_epoch_), "fit_seconds": round(fit_seconds, 1),
                 f"val/NDCG@{SELECTION_CUTOFF}": max((h.get("validation", -1) for h in model.history_), default=float("nan"))}
        record(name, lambda chunk: model.score(chunk), extra)
        if truth is not None and model.can_explain(artifacts):
            vectors = model.user_vectors(test_users)
            tops = []
            for start in range(0, len(test_users), 64):
                chunk = test_users[start : start + 64]
                scores = model.score(chunk)
                scores[data.train[chunk].nonzero()] = -np.inf
                tops.append(top_n(scores, 10, axis=1))
            outcome = pointing(model, artifacts, data, truth, catalog, test_users, vectors, np.concatenate(tops))
            if outcome is not None:
                results[name].update(pointing_game=outcome[0], pointing_chance=outcome[1], pointing_n=outcome[2])
    report(1.0, "Done")
    return results
