"""Personalized ranking ("For you"): the papers' protocol, training, and what the page needs to explain a list.

Protocol (DVBPR / VECF / MMRec):

* leave-one-out by time: per user with at least three distinct items, the last is the test item, the one
  before it the validation item, the rest are training data;
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
  a detail (logo, pocket, ...), does the peak of the region map of a top-10 item with that detail fall inside
  the detail's box, against the box's share of the grid (chance).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from recsys import metrics
from recsys.artifacts import Artifacts, ArtifactError, load_artifacts
from recsys.catalog import ATTRIBUTE_COLUMNS, Catalog, CatalogError
from recsys.models.base import model_path
from recsys.models.bpr import BPR, PairwiseRanker, UnknownUserError
from recsys.models.dvbpr import DVBPR, ConvAutoencoder, downscale_images
from recsys.models.popularity import Popularity
from recsys.models.vbpr import VBPR, MultimodalVBPR
from recsys.models.vecf import VECF

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None] | None

#: The trained models, in the order the page lists them: the best on the demo world first (it also trains in
#: seconds, where VECF takes minutes on first use).
MODEL_NAMES = ("vbpr-mm", "vecf", "vbpr", "dvbpr-imagenet", "dvbpr-ae", "bpr")
MODEL_TITLES = {
    "vecf": "VECF (attention over regions)",
    "vbpr-mm": "VBPR (image + description)",
    "vbpr": "VBPR",
    "dvbpr-imagenet": "DVBPR (ImageNet encoder + layer)",
    "dvbpr-ae": "DVBPR (autoencoder encoder + layer)",
    "bpr": "BPR-MF",
    "popularity": "Popularity",
}
CUTOFFS = {"NDCG": (10, 50, 100), "HR": (10,), "F1": (10,), "R": (20,)}
AUC_NEGATIVES = 100
SELECTION_CUTOFF = 50
REVIEW_CACHE = "reviews_minilm"
IMAGE_CACHE = "images{size}.npy"
AE_IMAGE_SIZE = 64


class ExplanationUnavailable(ValueError):
    """A model cannot explain an item (no visual regions, or no feature map for it); one sentence says why."""


def model_settings(name: str, quick: bool = False) -> dict:
    """Hyper-parameters of each model (epochs are an upper bound when validation picks the epoch).

    Chosen by validation sweeps on the demo world (:func:`tune`, ``scripts/tune.py``; validation items only):
    with about four training interactions per item, strong L2 on the factors, light L2 on the item biases (which
    carry popularity) and long training matter most -- the earlier settings (one reg of 1e-3, 40 epochs) left BPR
    below popularity.
    """
    epochs = {"bpr": 150, "vbpr": 40, "vbpr-mm": 40, "vbpr-attributes": 40, "dvbpr-imagenet": 60,
              "dvbpr-ae": 60, "vecf": 40}[name]
    if quick:
        epochs = max(3, min(epochs, 40) // 5)
    common = {"n_epochs": epochs, "random_state": 0, "batch_size": 1024, "learning_rate": 0.01, "reg": 0.03,
              "bias_reg": 1e-3}
    vbpr = {"n_factors": 16, "n_visual_factors": 16}
    return common | {
        "bpr": {"n_factors": 32},
        "vbpr": vbpr,
        "vbpr-mm": vbpr,
        "vbpr-attributes": vbpr,
        "dvbpr-imagenet": {"n_factors": 16},
        "dvbpr-ae": {"n_factors": 16},
        "vecf": {"n_factors": 16, "attention_dim": 16, "review_weight": 0.5},
    }[name]


# ====================================================================== data
@dataclass
class PersonalData:
    """The interactions of a catalog as users x items, with the leave-one-out split.

    Attributes
    ----------
    user_ids : list of str
        Row order of the matrices.
    histories : list of ndarray
        Every user's items (row positions), oldest first.
    train : csr_matrix
        Training interactions (all but the last two of users with at least three items).
    valid_item, test_item : ndarray
        Per user, the validation / test item, -1 where the user has none.
    reviews : DataFrame
        ``user``, ``item``, ``review`` of the training interactions that carry a review.
    """

    user_ids: list
    histories: list
    train: sp.csr_matrix
    valid_item: np.ndarray
    test_item: np.ndarray
    reviews: pd.DataFrame
    user_index: dict = field(init=False)

    def __post_init__(self):
        self.user_index = {u: k for k, u in enumerate(self.user_ids)}

    @property
    def n_items(self) -> int:
        return self.train.shape[1]

    @property
    def cold_items(self) -> np.ndarray:
        """Items without any training interaction."""
        return np.asarray(self.train.sum(axis=0)).ravel() == 0

    def all_interactions(self) -> sp.csr_matrix:
        rows = np.repeat(np.arange(len(self.histories)), [len(h) for h in self.histories])
        cols = np.concatenate(self.histories) if self.histories else np.zeros(0, dtype=np.int64)
        return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=self.train.shape)


def interaction_data(catalog: Catalog) -> PersonalData:
    """The leave-one-out split of ``catalog.interactions`` by time (see the module docstring)."""
    if catalog.interactions is None or catalog.interactions.empty:
        raise CatalogError(f"The catalog {catalog.name} has no interactions.parquet, so nothing can be personalized.")
    frame = catalog.interactions[["user_id", "item_id", "timestamp"] + (
        ["review"] if "review" in catalog.interactions.columns else [])].copy()
    frame["item"] = catalog.indices(frame["item_id"])
    frame = frame.sort_values(["user_id", "timestamp"], kind="stable").drop_duplicates(["user_id", "item"])
    user_ids = sorted(frame["user_id"].unique())
    index = {u: k for k, u in enumerate(user_ids)}
    frame["user"] = frame["user_id"].map(index)
    frame["position"] = frame.groupby("user").cumcount()
    frame["length"] = frame.groupby("user")["item"].transform("size")
    held_out = frame["length"] >= 3
    is_test = held_out & (frame["position"] == frame["length"] - 1)
    is_valid = held_out & (frame["position"] == frame["length"] - 2)
    train_rows = frame[~(is_test | is_valid)]
    n_users, n_items = len(user_ids), len(catalog)
    train = sp.csr_matrix((np.ones(len(train_rows), dtype=np.float32), (train_rows["user"], train_rows["item"])),
                          shape=(n_users, n_items))
    valid_item = np.full(n_users, -1, dtype=np.int64)
    test_item = np.full(n_users, -1, dtype=np.int64)
    valid_item[frame.loc[is_valid, "user"].to_numpy()] = frame.loc[is_valid, "item"].to_numpy()
    test_item[frame.loc[is_test, "user"].to_numpy()] = frame.loc[is_test, "item"].to_numpy()
    histories = [g.to_numpy() for _, g in frame.groupby("user")["item"]]
    if "review" in frame.columns:
        reviews = train_rows.loc[train_rows["review"].notna() & (train_rows["review"].astype(str).str.strip() != ""),
                                 ["user", "item", "review"]].reset_index(drop=True)
    else:
        reviews = pd.DataFrame({"user": [], "item": [], "review": []})
    return PersonalData(user_ids, histories, train, valid_item, test_item, reviews)


# ====================================================================== cached side inputs
def review_embeddings(catalog: Catalog, texts: list[str], encoder_spec: str = "minilm") -> np.ndarray:
    """MiniLM sentence embeddings of ``texts``, cached per distinct text under the catalog's ``artifacts/``."""
    folder = Path(catalog.root) / "artifacts"
    vectors_path, texts_path = folder / f"{REVIEW_CACHE}.npy", folder / f"{REVIEW_CACHE}.json"
    cached: dict[str, int] = {}
    vectors = np.zeros((0, 0), dtype=np.float32)
    if vectors_path.is_file() and texts_path.is_file():
        try:
            stored = json.loads(texts_path.read_text(encoding="utf-8"))
            vectors = np.load(vectors_path, allow_pickle=False)
            if stored.get("encoder") == encoder_spec and len(stored["texts"]) == len(vectors):
                cached = {t: k for k, t in enumerate(stored["texts"])}
        except (OSError, ValueError, KeyError):
            cached = {}
    missing = sorted(set(texts) - set(cached))
    if missing:
        from recsys.encoders import create_encoder

        encoder = create_encoder(encoder_spec, device="cpu")
        new = encoder.encode_text(missing)
        all_texts = list(cached) + missing
        vectors = np.concatenate([vectors, new]) if cached else new
        cached = {t: k for k, t in enumerate(all_texts)}
        folder.mkdir(parents=True, exist_ok=True)
        np.save(vectors_path, vectors.astype(np.float32), allow_pickle=False)
        texts_path.write_text(json.dumps({"encoder": encoder_spec, "texts": all_texts}), encoding="utf-8")
        logger.info("encoded %d review texts with %s", len(missing), encoder_spec)
    return vectors[[cached[t] for t in texts]] if texts else np.zeros((0, vectors.shape[-1] if vectors.ndim == 2 else 384), np.float32)


def small_images(catalog: Catalog, size: int = AE_IMAGE_SIZE) -> np.ndarray:
    """The catalog's images downscaled to ``size`` pixels, cached as ``artifacts/images<size>.npy``."""
    path = Path(catalog.root) / "artifacts" / IMAGE_CACHE.format(size=size)
    if path.is_file():
        images = np.load(path, allow_pickle=False)
        if images.shape == (len(catalog), size, size, 3):
            return images
    images = downscale_images(catalog, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, images, allow_pickle=False)
    return images


def autoencoder_codes(catalog: Catalog, quick: bool = False, seed: int = 0, retrain: bool = False) -> tuple[np.ndarray, ConvAutoencoder]:
    """Codes of the catalog's images from the conv autoencoder trained on them (trained once, then loaded)."""
    images = small_images(catalog)
    path = model_path(catalog.root, "personal-autoencoder" + ("-quick" if quick else ""))
    autoencoder = None
    if not retrain and path.with_suffix(".safetensors").is_file():
        try:
            autoencoder = ConvAutoencoder.load(path)
        except (ValueError, FileNotFoundError, RuntimeError):
            autoencoder = None
    if autoencoder is None:
        autoencoder = ConvAutoencoder(n_epochs=3 if quick else 12, random_state=seed).fit(images)
        autoencoder.save(path)
    return autoencoder.transform(images), autoencoder


def side_inputs(catalog: Catalog, artifacts: Artifacts, data: PersonalData, name: str, X: sp.csr_matrix | None = None,
                quick: bool = False, seed: int = 0) -> dict:
    """What model ``name`` is fitted (and loaded) with, besides the interactions."""
    if name in ("vbpr", "dvbpr-imagenet"):
        return {"item_features": np.asarray(artifacts.image, dtype=np.float32)}
    if name == "vbpr-mm":
        return {"item_features": np.asarray(artifacts.image, dtype=np.float32),
                "text_features": np.asarray(artifacts.text_description, dtype=np.float32)}
    if name == "dvbpr-ae":
        codes, _ = autoencoder_codes(catalog, quick=quick, seed=seed)
        return {"item_features": codes}
    if name == "vecf":
        if artifacts.feature_maps is None:
            raise ArtifactError(
                f"VECF needs feature maps, but the artifacts were computed with {artifacts.image_encoder_spec}; "
                "run scripts/precompute.py with --image-encoder effnet-lite0.")
        return {"feature_maps": np.asarray(artifacts.feature_maps)}
    return {}


def attribute_features(catalog: Catalog) -> np.ndarray | None:
    """One-hot codes of the catalog's labelled attributes (colour, pattern, ...), or None when it has none.

    On the built-in world users' true tastes are linear in exactly these codes, so VBPR fitted on them is the
    ceiling of what any image encoder's features can give VBPR there (the ``vbpr-attributes`` report row).
    """
    columns = [c for c in ATTRIBUTE_COLUMNS if c in catalog.items.columns and catalog.items[c].notna().any()]
    if not columns:
        return None
    codes = pd.get_dummies(catalog.items[columns].astype("string"), dummy_na=False)
    return codes.to_numpy(dtype=np.float32)


def _fit_inputs(catalog, artifacts, data, name, X, quick, seed) -> dict:
    """Side inputs plus, for VECF, K-means features and the review supervision of the training pairs."""
    if name == "vbpr-attributes":
        attributes = attribute_features(catalog)
        if attributes is None:
            raise ValueError(f"The catalog {catalog.name} has no labelled attributes for vbpr-attributes.")
        return {"item_features": attributes}
    side = side_inputs(catalog, artifacts, data, name, quick=quick, seed=seed)
    if name == "vecf":
        side["item_features"] = np.asarray(artifacts.image, dtype=np.float32)
        observed = X.tocsr()
        reviews = data.reviews
        if len(reviews):
            keep = np.asarray(observed[reviews["user"].to_numpy(), reviews["item"].to_numpy()]).ravel() > 0
            reviews = reviews[keep]
        if len(reviews):
            side["review_users"] = reviews["user"].to_numpy()
            side["review_items"] = reviews["item"].to_numpy()
            side["review_targets"] = review_embeddings(catalog, reviews["review"].astype(str).tolist())
    return side


def make_model(name: str, quick: bool = False) -> PairwiseRanker:
    cls = {"bpr": BPR, "vbpr": VBPR, "vbpr-mm": MultimodalVBPR, "vbpr-attributes": VBPR, "dvbpr-imagenet": DVBPR,
           "dvbpr-ae": DVBPR, "vecf": VECF}[name]
    return cls(**model_settings(name, quick))


# ====================================================================== ranking metrics
def _rank(scores: np.ndarray, candidates: np.ndarray, target: int, rng: np.random.Generator) -> int:
    """0-based rank of ``target`` among ``candidates``; ties are broken at random (a constant scorer is random)."""
    s = scores[candidates]
    t = scores[target]
    greater = int((s > t).sum())
    ties = int((s == t).sum()) - 1
    return greater + int(rng.integers(0, ties + 1)) if ties > 0 else greater


def rank_targets(score_users: Callable[[np.ndarray], np.ndarray], data: PersonalData, users: np.ndarray,
                 targets: np.ndarray, exclude_valid: bool, seed: int = 0, batch: int = 64) -> dict:
    """Ranks and sampled-AUC wins of each user's target item (see the module docstring for the candidates).

    Returns ``{"rank", "auc", "cold"}`` arrays aligned with ``users``.
    """
    rng = np.random.default_rng(seed)
    cold = data.cold_items
    cold_idx, all_idx = np.flatnonzero(cold), np.arange(data.n_items)
    ranks, aucs, is_cold = [], [], []
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
            ranks.append(_rank(scores[row], candidates, t, rng))
            negatives = np.setdiff1d(candidates, [t])
            sampled = rng.choice(negatives, size=min(AUC_NEGATIVES, len(negatives)), replace=False)
            aucs.append(metrics.sampled_auc(scores[row, [t]], scores[row, sampled][None, :]))
            is_cold.append(bool(cold[t]))
    return {"rank": np.array(ranks), "auc": np.array(aucs), "cold": np.array(is_cold, dtype=bool)}


def summarize(ranked: dict) -> dict:
    """The report's metrics from :func:`rank_targets`: warm ones plain, cold-start ones prefixed ``cold/``."""
    out: dict = {}
    for prefix, mask in (("", ~ranked["cold"]), ("cold/", ranked["cold"])):
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
            out[f"{prefix}AUC (se)"] = float(stats.sem(ranked["auc"][mask]))
            out[f"{prefix}NDCG@10 (se)"] = float(stats.sem(np.where(r < 10, 1.0 / np.log2(r + 2.0), 0.0)))
            out[f"{prefix}HR@10 (se)"] = float(stats.sem((r < 10).astype(np.float64)))
        out[f"{prefix}n_users"] = int(mask.sum())
    return out


def validation_callback(data: PersonalData, users: np.ndarray, every: int = 5, aucs: dict | None = None) -> Callable:
    """Early stopping on validation NDCG@50 (every ``every`` epochs), never touching test items.

    ``aucs``, when given, collects each scored epoch's validation sampled AUC.
    """
    targets = data.valid_item[users]

    def on_epoch(epoch: int, model: PairwiseRanker) -> float | None:
        if epoch % every and epoch != model.n_epochs:
            return None
        model.module_.eval()
        ranked = rank_targets(lambda chunk: model.score(chunk), data, users, targets, exclude_valid=False, seed=epoch)
        model.module_.train()
        if aucs is not None:
            aucs[epoch] = float(ranked["auc"].mean())
        return metrics.ndcg_at_k(ranked["rank"], SELECTION_CUTOFF)

    return on_epoch


# ====================================================================== explanations
def region_map(model, artifacts: Artifacts | None, user_vector: np.ndarray, item_idx: int) -> np.ndarray:
    """Which regions of item ``item_idx``'s image drove the score for ``user_vector``, on the feature-map grid.

    VECF: its attention weights. VBPR / DVBPR (ImageNet): the visual term split over the regions -- the score is
    linear in the pooled feature, the mean of the regions' features, so each region's share is ``w_u . F_k``.

    Raises
    ------
    ExplanationUnavailable
        For a model without visual regions, or an item without a feature map.
    """
    name = type(model).__name__
    if isinstance(model, VECF):
        try:
            return model.attention_map(user_vector, item_idx)
        except IndexError as exc:
            raise ExplanationUnavailable(str(exc)) from None
    if not hasattr(model, "visual_direction"):
        raise ExplanationUnavailable(f"{name} has no image regions to explain its score with; pick VECF, VBPR or DVBPR (ImageNet).")
    if artifacts is None or artifacts.feature_maps is None or artifacts.fmap_pca_components is None:
        raise ExplanationUnavailable("The precomputed artifacts hold no feature maps, so no item's regions can be shown.")
    if not _decomposes(model, artifacts):
        raise ExplanationUnavailable(
            f"{name} scores codes of its own encoder (the autoencoder), which have no image regions to show.")
    if not 0 <= int(item_idx) < len(artifacts.feature_maps):
        raise ExplanationUnavailable(f"Item {item_idx} has no feature map in the precomputed artifacts.")
    w = model.visual_direction(user_vector)
    cells = np.asarray(artifacts.feature_maps[int(item_idx)], dtype=np.float32)  # (C, h, w)
    components = np.asarray(artifacts.fmap_pca_components, dtype=np.float32)
    mean = np.asarray(artifacts.fmap_pca_mean, dtype=np.float32)
    projected = components @ w  # the region's PCA code dotted with C w == w . F_k (minus mean)
    regions = np.tensordot(projected, cells, axes=(0, 0)) + float(mean @ w)
    # The models score the L2-normalized pooled vector, so the regions are divided by the pooled vector's norm:
    # their mean is then the image term of the score (up to the PCA truncation of the stored maps).
    pooled = components.T @ cells.reshape(len(cells), -1).mean(axis=1) + mean
    return regions / max(float(np.linalg.norm(pooled)), 1e-12)


def _decomposes(model, artifacts: Artifacts) -> bool:
    """True when the model scores the pooled vectors whose regions the stored feature maps hold."""
    features = model.side_["item_features"]
    return features.shape[1] == artifacts.fmap_pca_components.shape[1] and features.shape[1] == artifacts.image.shape[1]


def can_explain(model, artifacts: Artifacts | None) -> bool:
    """True when :func:`region_map` can explain the model's scores."""
    if isinstance(model, VECF):
        return True
    return (hasattr(model, "visual_direction") and artifacts is not None and artifacts.feature_maps is not None
            and artifacts.fmap_pca_components is not None and _decomposes(model, artifacts))


def detail_boxes(catalog: Catalog) -> np.ndarray | None:
    columns = ["detail_x0", "detail_y0", "detail_x1", "detail_y1"]
    if not set(columns) <= set(catalog.items.columns):
        return None
    return catalog.items[columns].to_numpy(dtype=np.float64)


def pointing(model, artifacts, data: PersonalData, truth, catalog: Catalog, users: np.ndarray,
             user_vectors: np.ndarray, top_lists: np.ndarray) -> tuple[float, float, int] | None:
    """Pointing game over users whose true taste includes a detail and their top items having that detail."""
    boxes = detail_boxes(catalog)
    if boxes is None or "detail" not in catalog.items.columns:
        return None
    details = catalog.items["detail"].fillna("none").to_numpy()
    image_size = catalog.load_image(catalog.items["item_id"].iat[0]).size[0]
    maps, chosen = [], []
    for row, u in enumerate(users):
        try:
            liked = truth.tastes_of(data.user_ids[u]).get("liked_detail", "")
        except KeyError:
            continue
        liked = [d for d in str(liked).split(",") if d]
        for i in top_lists[row]:
            if details[i] in liked and boxes[i, 2] > boxes[i, 0] >= 0:
                maps.append(region_map(model, artifacts, user_vectors[row], int(i)))
                chosen.append(boxes[i])
    if not maps:
        return None
    hit, chance = metrics.pointing_game(np.stack(maps), np.stack(chosen), image_size=image_size)
    return hit, chance, len(maps)


# ====================================================================== evaluate / train
def _truth(catalog: Catalog):
    if not catalog.has_truth:
        return None
    from recsys.data.demo_world import WorldTruth

    return WorldTruth.from_catalog(catalog)


def evaluate(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress: Progress = None) -> dict:
    """The protocol of the module docstring; ``{model_name: {metric: value}}``."""
    report = progress or (lambda fraction, message: None)
    data = interaction_data(catalog)
    artifacts = load_artifacts(catalog)
    truth = _truth(catalog)
    rng = np.random.default_rng(seed)
    test_users = np.flatnonzero(data.test_item >= 0)
    if len(test_users) == 0:
        raise CatalogError(f"No user of {catalog.name} has the three interactions leave-one-out needs.")
    if quick and len(test_users) > 300:
        test_users = np.sort(rng.choice(test_users, 300, replace=False))
    val_users = test_users if len(test_users) <= 1000 else np.sort(rng.choice(test_users, 1000, replace=False))
    targets = data.test_item[test_users]
    results: dict = {}

    def record(name: str, score_users, extra: dict | None = None) -> None:
        ranked = rank_targets(score_users, data, test_users, targets, exclude_valid=True, seed=seed)
        results[name] = summarize(ranked) | (extra or {})

    report(0.0, "Baselines")
    random_rng = np.random.default_rng(seed + 1)
    record("random", lambda chunk: random_rng.random((len(chunk), data.n_items)))
    popularity = Popularity().fit(data.train)
    record("popularity", lambda chunk: popularity.score(chunk))
    if truth is not None:
        user_ids = np.array(data.user_ids)
        record("oracle", lambda chunk: truth.utility(list(user_ids[chunk])))

    ceiling = truth is not None and attribute_features(catalog) is not None
    names = MODEL_NAMES + (("vbpr-attributes",) if ceiling else ())
    for k, name in enumerate(names):
        report((k + 1) / (len(names) + 1), f"Training {name}")
        started = time.perf_counter()
        model = make_model(name, quick)
        every = 1 if quick else 5
        model.fit(data.train, on_epoch=validation_callback(data, val_users, every),
                  **_fit_inputs(catalog, artifacts, data, name, data.train, quick, seed))
        fit_seconds = time.perf_counter() - started
        extra = {"best_epoch": int(model.best_epoch_), "fit_seconds": round(fit_seconds, 1),
                 f"val/NDCG@{SELECTION_CUTOFF}": max((h.get("validation", -1) for h in model.history_), default=float("nan"))}
        record(name, lambda chunk: model.score(chunk), extra)
        if truth is not None and can_explain(model, artifacts):
            vectors = model.user_vectors(test_users)
            tops = []
            for start in range(0, len(test_users), 64):
                chunk = test_users[start : start + 64]
                scores = model.score(chunk)
                scores[data.train[chunk].nonzero()] = -np.inf
                tops.append(np.argsort(-scores, axis=1)[:, :10])
            outcome = pointing(model, artifacts, data, truth, catalog, test_users, vectors, np.concatenate(tops))
            if outcome is not None:
                results[name].update(pointing_game=outcome[0], pointing_chance=outcome[1], pointing_n=outcome[2])
    report(1.0, "Done")
    return results


def tune(catalog: Catalog, name: str, grid: dict[str, list], *, seed: int = 0, quick: bool = False,
         every: int = 5) -> list[dict]:
    """Validation-only sweep of model ``name`` over every combination of ``grid`` (hyper-parameter -> values).

    Each setting is fitted on the training split and scored on the validation items (test items are never
    looked at), keeping its best epoch as :func:`evaluate` does. Rows come back best first by validation
    NDCG@50, each with its sampled AUC at that epoch too.

    Raises
    ------
    ValueError
        For an unknown model or a hyper-parameter the model does not have.
    """
    if name not in MODEL_NAMES + ("vbpr-attributes",):
        raise ValueError(f"There is no personal model '{name}'; pick one of {', '.join(MODEL_NAMES)}.")
    hyper = type(make_model(name))._hyper
    unknown = sorted(set(grid) - set(hyper))
    if unknown:
        raise ValueError(f"{name} has no hyper-parameter {', '.join(unknown)}; it has {', '.join(hyper)}.")
    data = interaction_data(catalog)
    users = np.flatnonzero(data.valid_item >= 0)
    artifacts = None if name == "vbpr-attributes" else load_artifacts(catalog)
    side = _fit_inputs(catalog, artifacts, data, name, data.train, quick, seed)
    rows = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        model = make_model(name, quick)
        for key, value in params.items():
            setattr(model, key, value)
        aucs: dict[int, float] = {}
        started = time.perf_counter()
        model.fit(data.train, on_epoch=validation_callback(data, users, every, aucs), **side)
        best = max((h for h in model.history_ if "validation" in h), key=lambda h: h["validation"])
        rows.append(params | {"best_epoch": best["epoch"], f"val/NDCG@{SELECTION_CUTOFF}": best["validation"],
                              "val/AUC": aucs[best["epoch"]], "fit_seconds": round(time.perf_counter() - started, 1)})
        logger.info("%s %s: %s", name, params, rows[-1])
    return sorted(rows, key=lambda row: -row[f"val/NDCG@{SELECTION_CUTOFF}"])


def train(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress: Progress = None) -> dict:
    """Fit every model on all interactions and save it under ``artifacts/models/personal-<name>``."""
    report = progress or (lambda fraction, message: None)
    data = interaction_data(catalog)
    artifacts = load_artifacts(catalog)
    summary = {}
    for k, name in enumerate(MODEL_NAMES):
        report(k / len(MODEL_NAMES), f"Training {name}")
        model = fit_full(catalog, artifacts, data, name, quick=quick, seed=seed)
        summary[name] = {"fit_seconds": round(model.fit_seconds_, 1), "epochs": model.n_epochs,
                         "path": str(model_path(catalog.root, f"personal-{name}"))}
    report(1.0, "Done")
    return summary


def fit_full(catalog: Catalog, artifacts: Artifacts, data: PersonalData, name: str, quick: bool = False,
             seed: int = 0) -> PairwiseRanker:
    """Fit ``name`` on every interaction (no held-out items: this is the model users see) and save it."""
    X = data.all_interactions()
    model = make_model(name, quick)
    model.random_state = seed
    model.fit(X, **_fit_inputs(catalog, artifacts, data, name, X, quick, seed))
    model.save(model_path(catalog.root, f"personal-{name}"))
    return model


def load_trained(catalog: Catalog, artifacts: Artifacts, data: PersonalData, name: str) -> PairwiseRanker | None:
    """The saved model ``name`` if it exists and matches this catalog's users and items, else None."""
    path = model_path(catalog.root, f"personal-{name}")
    if not path.with_suffix(".safetensors").is_file():
        return None
    cls = type(make_model(name))
    try:
        model = cls.load(path, **side_inputs(catalog, artifacts, data, name))
    except (ValueError, FileNotFoundError, RuntimeError, KeyError) as exc:
        logger.warning("cannot load %s (%s); it will be retrained", path, exc)
        return None
    if model.n_users_ != len(data.user_ids) or model.n_items_ != len(catalog):
        return None
    return model


# ====================================================================== what the page shows
@dataclass
class Recommendation:
    """A ranked list for one user (or a folded-in new user); ``note`` says when it fell back to popularity."""

    item_idx: np.ndarray
    scores: np.ndarray
    user_vector: np.ndarray | None
    note: str | None = None


def resolve_user(data: PersonalData, user_id: str, known_users: set | None = None) -> int | None:
    """Row of ``user_id``; None for a known user without history; :class:`UnknownUserError` for an unknown id."""
    user_id = (user_id or "").strip()
    if user_id in data.user_index:
        return data.user_index[user_id]
    if known_users and user_id in known_users:
        return None
    raise UnknownUserError(f"There is no user '{user_id}' in this catalog; pick one from the list.")


def recommend(model: PairwiseRanker | None, data: PersonalData, user: int | None, n: int = 12,
              liked: np.ndarray | None = None, only_cold: bool = False) -> Recommendation:
    """Top-``n`` items for a user row, or for a new user folded in from ``liked`` items.

    A user without history (``user`` None and nothing liked) gets the most popular items, and the note says so.
    Items the user already has are never recommended.
    """
    cold = data.cold_items
    pool = np.flatnonzero(cold) if only_cold else np.arange(data.n_items)
    all_data = data.all_interactions()
    if liked is not None:
        liked = np.asarray(liked, dtype=np.int64)
        if len(liked) == 0:
            raise ValueError("Pick at least one item you like to get recommendations as a new user.")
        vector = model.fold_in(liked)
        scores, seen, note = model.score_vectors(vector), liked, None
    elif user is None:
        counts = np.asarray(all_data.sum(axis=0)).ravel().astype(np.float64)
        vector, scores, seen = None, counts, np.zeros(0, dtype=np.int64)
        note = "This user has no history yet, so these are the most popular items."
    else:
        vector = model.user_vectors(user)[0]
        scores, seen, note = model.score_vectors(vector), data.histories[user], None
    pool = np.setdiff1d(pool, seen)
    order = pool[np.argsort(-scores[pool], kind="stable")][:n]
    return Recommendation(order, scores[order], vector, note)


def shared_attributes(catalog: Catalog, history: np.ndarray, item_idx: int) -> list[str]:
    """``attribute: value`` pairs of the item that also occur in the user's history, most frequent first."""
    columns = [c for c in ATTRIBUTE_COLUMNS if c in catalog.items.columns]
    if len(history) == 0 or not columns:
        return []
    past = catalog.items.iloc[np.asarray(history)]
    item = catalog.items.iloc[int(item_idx)]
    shared = []
    for column in columns:
        value = item[column]
        if pd.isna(value) or value in ("", "none"):
            continue
        count = int((past[column] == value).sum())
        if count:
            shared.append((count, f"{column}: {value} ({count} of {len(past)} past items)"))
    return [text for _, text in sorted(shared, key=lambda pair: -pair[0])]
