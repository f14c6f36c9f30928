"""Complete the look: the compatibility protocols and training entry point.

Protocols (the papers' own):

* ``triplet_acc`` -- complete-the-look triplet accuracy: held-out triplets (anchor, positive = another
  category's item of the same outfit, negative = an item of the positive's category from another outfit);
  a hit when the positive is closer (more compatible) than the negative.
* ``FITB`` -- Polyvore fill-in-the-blank with 4 candidates: one item of a held-out outfit is blanked; the
  candidates are the true item and three others of its category; the model picks the candidate that makes
  the whole set score highest. A catalog that ships its own questions (``polyvore/fitb_*.jsonl``, written
  by the Polyvore adapter) is evaluated on those.
* ``AUC`` -- Polyvore outfit compatibility: held-out outfits against random outfits with the same
  categories (or the catalog's ``polyvore/compatibility_*.jsonl`` questions), scored as whole sets.

Compared models: ``random``, ``visual-similarity`` (raw image vectors), the paper's ``triplet`` model, the
``type-aware`` model and, on a generated world, ``oracle`` (:meth:`WorldTruth.compatibility`).
Evaluation owns the split: outfits marked ``split`` (a real dataset) keep theirs, others are split 80/20
by ``seed``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np

from recsys.artifacts import load_artifacts
from recsys.catalog import Catalog
from recsys.metrics import auc, fitb_accuracy, triplet_accuracy
from recsys.models.base import model_path
from recsys.models.compat import (
    TripletCompatibility,
    TypeAwareCompatibility,
    VisualSimilarityCompatibility,
    category_pools,
    compatibility_features,
    triplets_from_outfits,
)

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]
TEST_SHARE = 0.2
MIN_OUTFITS = 10
N_CANDIDATES = 4
MODEL_CLASSES = {"triplet": TripletCompatibility, "type-aware": TypeAwareCompatibility}
#: Training schedules; ``quick`` is for smoke tests on the tiny world.
EPOCHS = {False: 40, True: 6}


#: Up to this many training outfits the app trains a missing model in place (well under a minute on 2 cores).
IN_PLACE_TRAINING_OUTFITS = 300


class ModelNotTrained(ValueError):
    """A model is not trained for this catalog and is too big to train while the user waits; the message gives the command."""


class NoOutfitsError(ValueError):
    """A catalog has too few outfits to learn or evaluate compatibility; the message says what is needed."""


@dataclass
class CompatData:
    """What the compatibility models learn from and are evaluated on, for one catalog."""

    features: np.ndarray
    image: np.ndarray
    categories: np.ndarray
    slots: np.ndarray
    train_outfits: list
    test_outfits: list
    fingerprint: str


def outfit_rows(catalog: Catalog) -> tuple[list[np.ndarray], list[str]]:
    """Each outfit as item rows, with its split name (``""`` when the catalog does not say)."""
    rows, splits = [], []
    for outfit in catalog.outfits:
        rows.append(catalog.indices(outfit["item_ids"]))
        splits.append(str(outfit.get("split", "")))
    return rows, splits


def split_outfits(catalog: Catalog, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Train and test outfits: the catalog's own ``split`` marks when present, else 80/20 by ``seed``."""
    rows, splits = outfit_rows(catalog)
    rows_splits = [(r, s) for r, s in zip(rows, splits) if len(r) >= 2]
    if len(rows_splits) < MIN_OUTFITS:
        raise NoOutfitsError(
            f"The catalog {catalog.name} has {len(rows_splits)} outfit(s) of two or more items; a compatibility model "
            f"needs at least {MIN_OUTFITS} in outfits.jsonl (the built-in world has them; for your own data, ingest "
            "a dataset with outfits such as Polyvore: scripts/ingest.py --format polyvore)."
        )
    marked = {s for _, s in rows_splits}
    if "train" in marked and len(marked) > 1:
        train = [r for r, s in rows_splits if s == "train"]
        test = [r for r, s in rows_splits if s != "train"]
    else:
        order = np.random.default_rng(seed).permutation(len(rows_splits))
        n_test = max(1, int(round(TEST_SHARE * len(rows_splits))))
        test = [rows_splits[k][0] for k in order[:n_test]]
        train = [rows_splits[k][0] for k in order[n_test:]]
    return train, test


def prepare(catalog: Catalog, seed: int = 0, artifacts=None) -> CompatData:
    """Features (image + title + description vectors), categories, slots and the outfit split of a catalog."""
    artifacts = artifacts if artifacts is not None else load_artifacts(catalog)
    train, test = split_outfits(catalog, seed)
    return CompatData(
        features=compatibility_features(artifacts),
        image=np.asarray(artifacts.image, dtype=np.float32),
        categories=catalog.items["category"].to_numpy().astype(str),
        slots=catalog.items["slot"].to_numpy().astype(str),
        train_outfits=train,
        test_outfits=test,
        fingerprint=catalog.fingerprint(),
    )


# ---------------------------------------------------------------------- models
def saved_model_path(catalog: Catalog, name: str):
    return model_path(catalog.root, f"compat-{name}")


def fit_model(name: str, data: CompatData, seed: int = 0, quick: bool = False,
              progress: ProgressCallback | None = None):
    """Fit the compatibility model ``name`` (``triplet`` or ``type-aware``) on the training outfits."""
    model = MODEL_CLASSES[name](epochs=EPOCHS[quick], random_state=seed)
    return model.fit(data.features, data.train_outfits, data.categories, types=data.slots, progress=progress)


def _fit_record(data: CompatData, seed: int, quick: bool) -> dict:
    return {"catalog_fingerprint": data.fingerprint, "seed": seed, "quick": quick,
            "train_outfits": len(data.train_outfits), "features": ["image", "title", "description"]}


def load_saved(catalog: Catalog, name: str, data: CompatData, seed: int = 0, quick: bool = False):
    """The saved model ``name`` when it was trained on this catalog's split with this seed, else None."""
    path = saved_model_path(catalog, name)
    if not path.with_suffix(".json").is_file():
        return None
    try:
        model = MODEL_CLASSES[name].load(path)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        logger.warning("ignoring the saved %s model at %s: %s", name, path, exc)
        return None
    meta = model.meta_
    wanted = _fit_record(data, seed, quick)
    if any(meta.get(k) != v for k, v in wanted.items()) or len(model.item_embeddings_) != len(data.features):
        return None
    return model


def load_or_train_in_place(catalog: Catalog, name: str, data: CompatData, progress: ProgressCallback | None = None):
    """The saved model; else, for a small catalog, one trained now and saved; else :class:`ModelNotTrained`."""
    model = load_saved(catalog, name, data)
    if model is not None:
        return model
    if len(data.train_outfits) > IN_PLACE_TRAINING_OUTFITS:
        raise ModelNotTrained(
            f"The {name} compatibility model is not trained for this catalog yet ({len(data.train_outfits):,} training "
            f"outfits take a few minutes); run: python scripts/train.py --catalog {catalog.root} --task compat"
        )
    return load_or_fit(catalog, name, data, progress=progress, save=True)


def load_or_fit(catalog: Catalog, name: str, data: CompatData, seed: int = 0, quick: bool = False,
                progress: ProgressCallback | None = None, save: bool = False):
    """The saved model when it matches this catalog and split, else a freshly fitted one (saved if asked)."""
    model = load_saved(catalog, name, data, seed, quick)
    if model is None:
        model = fit_model(name, data, seed, quick, progress)
        if save:
            model.save(saved_model_path(catalog, name), extra=_fit_record(data, seed, quick))
    return model


# ---------------------------------------------------------------------- questions
def fitb_questions(data: CompatData, rng: np.random.Generator, catalog: Catalog | None = None,
                   limit: int | None = None) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """FITB questions ``(rest_of_outfit, candidates (m, 4), answer_index (m,))``.

    From the catalog's own Polyvore questions when it has them, else one per held-out outfit of three or
    more items: a random position is blanked, and three other items of the blank's category (outside the
    outfit) join the true one, in random order.
    """
    shipped = _shipped_questions(catalog, "fitb") if catalog is not None else []
    rests, candidates, answers = [], [], []
    if shipped:
        for record in shipped:
            try:
                rest = catalog.indices(record["question"])
                options = catalog.indices(record["candidates"])
            except KeyError:
                continue
            if len(options) != N_CANDIDATES or len(rest) < 1:
                continue
            rests.append(rest)
            candidates.append(options)
            answers.append(int(record["answer"]))
    else:
        by_category = {c: np.flatnonzero(data.categories == c) for c in np.unique(data.categories)}
        for outfit in data.test_outfits:
            if len(outfit) < 3:
                continue
            blank = int(rng.integers(len(outfit)))
            truth_item = int(outfit[blank])
            pool = np.setdiff1d(by_category[data.categories[truth_item]], outfit)
            if len(pool) < N_CANDIDATES - 1:
                continue
            options = np.r_[truth_item, rng.choice(pool, size=N_CANDIDATES - 1, replace=False)]
            order = rng.permutation(N_CANDIDATES)
            rests.append(np.delete(outfit, blank))
            candidates.append(options[order])
            answers.append(int(np.flatnonzero(order == 0)[0]))
    if limit is not None:
        rests, candidates, answers = rests[:limit], candidates[:limit], answers[:limit]
    return rests, np.array(candidates, dtype=np.int64).reshape(-1, N_CANDIDATES), np.array(answers, dtype=np.int64)


def compatibility_questions(data: CompatData, rng: np.random.Generator, catalog: Catalog | None = None,
                            ) -> tuple[list[np.ndarray], np.ndarray]:
    """Outfits and labels (1 = a real outfit, 0 = random items with the same categories) for the AUC."""
    shipped = _shipped_questions(catalog, "compatibility") if catalog is not None else []
    sets, labels = [], []
    if shipped:
        for record in shipped:
            try:
                rows = catalog.indices(record["item_ids"])
            except KeyError:
                continue
            if len(rows) >= 2:
                sets.append(rows)
                labels.append(int(record["label"]))
        if len(set(labels)) == 2:
            return sets, np.array(labels)
        sets, labels = [], []
    by_category = {c: np.flatnonzero(data.categories == c) for c in np.unique(data.categories)}
    for outfit in data.test_outfits:
        sets.append(outfit)
        labels.append(1)
        sets.append(np.array([int(rng.choice(by_category[data.categories[i]])) for i in outfit]))
        labels.append(0)
    return sets, np.array(labels)


def _shipped_questions(catalog: Catalog, kind: str) -> list[dict]:
    records = []
    for path in sorted((catalog.root / "polyvore").glob(f"{kind}_*.jsonl")) if (catalog.root / "polyvore").is_dir() else []:
        if path.stem.endswith("_train"):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records


# ---------------------------------------------------------------------- scoring
class _OracleScorer:
    """The world's true compatibility behind the models' scoring interface."""

    name = "oracle"

    def __init__(self, truth):
        self.truth = truth

    def pair_compatibility(self, a_idx, b_idx) -> np.ndarray:
        return self.truth.pair_compatibility(a_idx, b_idx)

    def outfit_score(self, item_idx) -> float:
        return self.truth.compatibility([int(i) for i in item_idx])


class _RandomScorer:
    """Chance: every pair and every set gets an independent uniform score."""

    name = "random"

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def pair_compatibility(self, a_idx, b_idx) -> np.ndarray:
        return self.rng.random(np.broadcast(np.asarray(a_idx), np.asarray(b_idx)).shape)

    def outfit_score(self, item_idx) -> float:
        return float(self.rng.random())


def score_protocols(scorer, triplets: np.ndarray, fitb, compat) -> dict:
    """``triplet_acc``, ``FITB`` and ``AUC`` of one scorer on fixed questions."""
    positive = scorer.pair_compatibility(triplets[:, 0], triplets[:, 1])
    negative = scorer.pair_compatibility(triplets[:, 0], triplets[:, 2])
    rests, candidates, answers = fitb
    fitb_scores = np.array([[scorer.outfit_score(np.r_[rest, c]) for c in options]
                            for rest, options in zip(rests, candidates)]).reshape(-1, N_CANDIDATES)
    sets, labels = compat
    set_scores = np.array([scorer.outfit_score(s) for s in sets])
    results = {
        # Higher compatibility = smaller distance: the accuracy counts the positive's distance below the negative's.
        "triplet_acc": triplet_accuracy(-positive, -negative),
        "FITB": fitb_accuracy(fitb_scores, answers) if len(answers) else float("nan"),
        "AUC": auc(set_scores[labels == 1], set_scores[labels == 0]) if len(set(labels.tolist())) == 2 else float("nan"),
    }
    return results


def evaluate(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress: ProgressCallback | None = None,
             artifacts=None) -> dict:
    """Run the three protocols for every model and baseline; ``{model: {metric: value}}``."""
    data = prepare(catalog, seed, artifacts=artifacts)
    rng = np.random.default_rng(seed + 1)
    pools = category_pools(data.test_outfits + data.train_outfits, data.categories)
    triplets = triplets_from_outfits(data.test_outfits, data.categories, rng, pools)
    fitb = fitb_questions(data, rng, catalog)
    compat = compatibility_questions(data, rng, catalog)
    scorers = [_RandomScorer(seed), VisualSimilarityCompatibility().fit(data.image)]
    for k, name in enumerate(MODEL_CLASSES):
        if progress:
            progress(k / (len(MODEL_CLASSES) + 1), f"Fitting the {name} model")
        scorers.append(load_or_fit(catalog, name, data, seed, quick))
    if catalog.has_truth:
        from recsys.data.demo_world import WorldTruth

        scorers.append(_OracleScorer(WorldTruth.from_catalog(catalog)))
    report = {}
    for scorer in scorers:
        report[scorer.name] = score_protocols(scorer, triplets, fitb, compat)
    counts = {"triplets": int(len(triplets)), "fitb_questions": int(len(fitb[2])), "auc_sets": int(len(compat[1])),
              "train_outfits": len(data.train_outfits), "test_outfits": len(data.test_outfits)}
    logger.info("compat protocol sizes: %s", counts)
    if progress:
        progress(1.0, "Done")
    return report


def fitb_gap_closed(report: dict, model: str, metric: str = "FITB") -> float | None:
    """Share of the visual-similarity-to-oracle gap a model closes: ``(model - baseline) / (oracle - baseline)``."""
    if "oracle" not in report or "visual-similarity" not in report:
        return None
    baseline, oracle = report["visual-similarity"][metric], report["oracle"][metric]
    if oracle == baseline:
        return None
    return (report[model][metric] - baseline) / (oracle - baseline)


def train(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress: ProgressCallback | None = None) -> dict:
    """Fit both models on the training outfits and save them under the catalog's ``artifacts/models/``."""
    data = prepare(catalog, seed)
    summary = {}
    for k, name in enumerate(MODEL_CLASSES):
        def step(fraction: float, message: str, k=k) -> None:
            if progress:
                progress((k + fraction) / len(MODEL_CLASSES), message)

        model = fit_model(name, data, seed, quick, step)
        path = saved_model_path(catalog, name)
        model.save(path, extra=_fit_record(data, seed, quick))
        summary[name] = {"seconds": round(model.fit_seconds_, 2), "final_loss": round(model.history_[-1], 4),
                         "triplets_per_epoch": model.n_triplets_per_epoch_, "epochs": model.epochs,
                         "path": str(path.with_suffix(".safetensors"))}
    return summary
