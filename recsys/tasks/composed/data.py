"""The composed task's data: caption splits, galleries, training inputs, plain text queries, and the two functions
the models' specs give :class:`recsys.store.ModelStore` (:func:`fit`, :func:`inputs`).

FashionIQ's split: models train on the ``train`` caption triples, stop early on the ``val`` triples, and are
evaluated on ``test`` (or ``val`` where test captions are not public). No model sees the text of a validation or
test target (:func:`held_out_rows`), so the models users are served are the ones the report evaluates.

The joint image-text space (``demo-clip``, or open_clip's own) is a model other models read: :func:`fit` and
:func:`inputs` get it through the store (:func:`joint_space`).

References
----------
Wu et al., "Fashion IQ: A New Dataset Towards Retrieving Images by Natural Language Feedback", CVPR 2021.
"""

from __future__ import annotations

import logging
import weakref
from typing import Callable, Sequence

import numpy as np

from recsys.catalog import Catalog
from recsys.data.truth import CATEGORIES
from recsys.encoders import Encoder
from recsys.encoders.pool import shared_encoder
from recsys.metrics import rank_of
from recsys.models.base import StaleModelError
from recsys.models.composed import ComposedModel, JointSpace, Triples
from recsys.models.democlip import MODEL_NAME as JOINT_SPACE
from recsys.models.registry import get_model, list_models, model_info
from recsys.progress import ProgressCallback

logger = logging.getLogger(__name__)

TASK = "composed"


# ---------------------------------------------------------------------- captions and splits
def join_captions(captions: Sequence[str]) -> str:
    """The FashionIQ protocol's query text: the captions joined with "and" (trailing punctuation dropped)."""
    parts = [str(c).strip().strip(".?, ") for c in captions if str(c).strip().strip(".?, ")]
    return " and ".join(parts)


def triples_of(catalog: Catalog, split: str) -> list[dict]:
    """The catalog's caption triples of ``split`` whose reference and target are both in the catalog (and differ)."""
    known = catalog.id_to_index
    return [t for t in catalog.captions
            if t.get("split") == split and t.get("reference_id") in known and t.get("target_id") in known
            and t.get("reference_id") != t.get("target_id")]


def evaluation_split(catalog: Catalog) -> str:
    """``"test"`` when the catalog has test triples, else ``"val"`` (FashionIQ's test captions are not public)."""
    return "test" if triples_of(catalog, "test") else "val"


def held_out_rows(catalog: Catalog) -> np.ndarray:
    """Sorted rows (int64) no model may train on: targets of the validation and test triples (their text included)."""
    ids = {t["target_id"] for split in ("val", "test") for t in triples_of(catalog, split)}
    return np.sort(catalog.indices(sorted(ids))) if ids else np.zeros(0, dtype=np.int64)


def gallery_rows(catalog: Catalog, category: str, split: str | None = None) -> np.ndarray:
    """The rows (int64) a query of ``category`` ranks: the category's items (of ``split`` when items carry one).

    FashionIQ ranks each category's images of the split. Items of the built-in world have no split, so
    there the gallery is the whole category, and the evaluated targets are kept out of all training instead.
    """
    items = catalog.items
    mask = (items["category"] == category).to_numpy()
    if split is not None and "split" in items.columns:
        mask &= (items["split"] == split).to_numpy()
    return np.flatnonzero(mask)


#: Caption vectors already computed, per encoder object and text: the joint space, the combiner, the image-difference
#: model and the protocol all encode the same captions (the encoders are shared, see :func:`text_encoder_for`).
_TEXT_CACHE: "weakref.WeakKeyDictionary[Encoder, dict[str, np.ndarray]]" = weakref.WeakKeyDictionary()
_TEXT_CACHE_SIZE = 100_000


def encode_texts(encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
    """``(len(texts), encoder.dim)`` float32 vectors of ``texts``; each distinct text is encoded once per encoder
    object (only texts it has not seen reach the encoder).

    Raises
    ------
    recsys.encoders.EncoderError
        When the encoder cannot run (one sentence).
    """
    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    cache = _TEXT_CACHE.setdefault(encoder, {})
    missing = list(dict.fromkeys(t for t in texts if t not in cache))
    if missing:
        vectors = np.asarray(encoder.encode_text(missing), dtype=np.float32)
        if len(cache) + len(missing) > _TEXT_CACHE_SIZE:
            cache.clear()
        cache.update(zip(missing, vectors))
    return np.stack([cache[t] for t in texts])


def training_pairs(catalog: Catalog, triples: list[dict], text_encoder: Encoder,
                   single_captions: bool = True) -> tuple[Triples, list[str]]:
    """Feature triples for training, and their texts: each triple's joined captions and, optionally, each caption
    on its own and the two in the other order (duplicates dropped). Caption features are ``(m, text_encoder.dim)``.

    Raises
    ------
    KeyError
        For a triple whose item is not in the catalog.
    """
    reference, target, texts = [], [], []
    lookup = catalog.id_to_index
    for t in triples:
        variants = [join_captions(t["captions"])]
        if single_captions and len(t["captions"]) > 1:
            variants += [join_captions([c]) for c in t["captions"]] + [join_captions(t["captions"][::-1])]
        for text in dict.fromkeys(v for v in variants if v):
            reference.append(lookup[t["reference_id"]])
            target.append(lookup[t["target_id"]])
            texts.append(text)
    features = encode_texts(text_encoder, texts)
    return Triples(np.asarray(reference, dtype=np.int64), np.asarray(target, dtype=np.int64), features), texts


# ---------------------------------------------------------------------- ranking, shared by training and the protocol
def target_ranks(model: ComposedModel, catalog: Catalog, image_features: np.ndarray, triples: list[dict],
                 caption_features: np.ndarray, split: str | None = None,
                 gallery: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """0-based rank ``(m,)`` of each triple's target in its category's gallery (the reference itself excluded), and
    each triple's category. ``caption_features`` ``(m, d_text)`` are the triples' joined captions.

    Raises
    ------
    KeyError
        For a triple whose item is not in the catalog.
    """
    lookup = catalog.id_to_index
    refs = np.array([lookup[t["reference_id"]] for t in triples], dtype=np.int64)
    tgts = np.array([lookup[t["target_id"]] for t in triples], dtype=np.int64)
    gallery = model.gallery_vectors(image_features) if gallery is None else gallery
    queries = model.compose(gallery[refs], caption_features)
    scores = model.score(queries, gallery)
    categories = catalog.items["category"].to_numpy()[refs].tolist()
    ranks = np.empty(len(triples), dtype=np.int64)
    rows_of = {c: gallery_rows(catalog, c, split) for c in set(categories)}
    for i, category in enumerate(categories):
        rows = rows_of[category]
        rows = rows[rows != refs[i]]
        if tgts[i] not in rows:
            rows = np.append(rows, tgts[i])
        ranks[i] = rank_of(scores[i, rows], int(np.flatnonzero(rows == tgts[i])[0]))
    return ranks, categories


def validation_recall(catalog: Catalog, image_features: np.ndarray, triples: list[dict], caption_features: np.ndarray,
                      k: int = 10, split: str | None = None) -> Callable[[ComposedModel], float] | None:
    """A function model -> mean of R@1, R@k/2, R@k and R@5k on ``triples`` (early stopping), or None without triples.

    Several cut-offs, because a single R@10 saturates on small validation galleries and stops too early.
    """
    if not triples:
        return None

    def recall(model: ComposedModel) -> float:
        ranks, _ = target_ranks(model, catalog, image_features, triples, caption_features, split)
        return float(np.mean([(ranks < cut).mean() for cut in (1, max(1, k // 2), k, 5 * k)]))

    return recall


# ---------------------------------------------------------------------- plain text queries
def attribute_query(row) -> str:
    """A shopper's query for an item of the built-in world, worded unlike its title: "red floral midi dress made of silk"."""
    label = CATEGORIES[row["category"]].label if row["category"] in CATEGORIES else str(row["category"])
    words = [str(row["color"])]
    if row.get("pattern") and row["pattern"] != "solid":
        words.append(str(row["pattern"]))
    if isinstance(row.get("length"), str):
        words.append(f"{row['length']}-length")
    words.append(label)
    extras = []
    if isinstance(row.get("sleeve"), str):
        extras.append("without sleeves" if row["sleeve"] == "sleeveless" else f"with {row['sleeve']} sleeves")
    if isinstance(row.get("material"), str):
        extras.append(f"made of {row['material']}")
    return " ".join(words + extras)


def text_queries(catalog: Catalog) -> tuple[np.ndarray, list[str]]:
    """Rows of the held-out targets and a plain text query for each (attributes on the built-in world, else titles)."""
    rows = held_out_rows(catalog)
    items = catalog.items
    if catalog.has_truth and {"color", "category"} <= set(items.columns):
        texts = [attribute_query(items.iloc[r]) for r in rows]
    else:
        texts = [str(items["title"].iat[r]) for r in rows]
    return rows, texts


# ---------------------------------------------------------------------- encoders and the joint space
def uses_open_clip(artifacts) -> bool:
    """True when the artifacts come from a real joint encoder, whose own image-text space is then used."""
    return artifacts.image_encoder_spec.startswith("open_clip") and artifacts.text_encoder_spec == artifacts.image_encoder_spec


def text_encoder_for(artifacts, device: str | None = None) -> Encoder:
    """The encoder the artifacts' text vectors came from (captions must be encoded the same way): the process's
    encoder pool's (:mod:`recsys.encoders.pool`), one per spec and resolved device.

    Raises
    ------
    recsys.encoders.EncoderError
        When the spec cannot be built or the device is unknown (one sentence).
    """
    return shared_encoder(artifacts.text_encoder_spec, device)


def joint_space(catalog: Catalog, artifacts, store, *, train: bool = False, quick: bool = False,
                progress: ProgressCallback | None = None) -> JointSpace | None:
    """The catalog's joint image-text space: open_clip's own, or the ``demo-clip`` heads from ``store`` (trained and
    saved first when ``train``); None when the heads are not trained (``store.problem`` says why).

    Raises
    ------
    ValueError
        When ``train`` and the heads cannot be trained on this catalog.
    """
    if uses_open_clip(artifacts):
        return JointSpace.identity(artifacts.image_encoder_spec)
    clip = store.get_or_fit(TASK, JOINT_SPACE, quick=quick, progress=progress) if train else store.get(TASK, JOINT_SPACE)
    return None if clip is None else JointSpace.from_democlip(clip)


def load_models(catalog: Catalog, artifacts, store, *, train: bool = False, quick: bool = False,
                progress: ProgressCallback | None = None, names=None) -> dict[str, ComposedModel]:
    """The registered composition models, fitted, in registration order: the training-free ones fitted on the joint
    space, the trained ones from ``store`` (trained and saved first when ``train``; only those in ``names`` when
    given). A model that is not available (not trained, no joint space, no training triples) is left out and logged.
    """
    joint = joint_space(catalog, artifacts, store, train=train, quick=quick, progress=progress)
    models: dict[str, ComposedModel] = {}
    for name in list_models(TASK):
        model = get_model(TASK, name)
        if not getattr(model, "composes_queries", False):
            continue
        if model.uses_joint_space and joint is None:
            logger.info("composed model %s left out: the joint space is not trained", name)
            continue
        if not model_info(TASK, name).trainable:
            models[name] = model.fit(joint=joint)
            continue
        if names is not None and name not in names:
            continue
        try:
            fitted = store.get_or_fit(TASK, name, quick=quick, progress=progress) if train else store.get(TASK, name)
        except ValueError as exc:
            logger.warning("composed model %s left out: %s", name, exc)
            continue
        if fitted is not None:
            models[name] = fitted
    return models


# ---------------------------------------------------------------------- what the model store calls
def fit(store, name: str, *, quick: bool = False, progress: ProgressCallback | None = None):
    """Train the composed model ``name`` users see on the store's catalog: on the ``train`` triples, early-stopped on
    the ``val`` triples, never on a held-out target. A model that reads the joint space gets it from ``store``
    (trained and saved there first).

    Raises
    ------
    ValueError
        When the catalog has no training caption triples, or (for ``demo-clip``) when the artifacts come from
        open_clip, whose own joint space is used.
    KeyError
        For a name the registry does not know.
    """
    catalog, artifacts, seed = store.catalog, store.artifacts, store.seed
    title = model_info(TASK, name).title
    if progress:
        progress(0.0, f"Training the {title}")
    encoder = text_encoder_for(artifacts)
    train_triples = triples_of(catalog, "train")
    if name == JOINT_SPACE:
        if uses_open_clip(artifacts):
            raise ValueError(f"The artifacts come from {artifacts.image_encoder_spec}, whose own image-text space is "
                             f"used; demo-clip is not trained for them.")
        rows = np.setdiff1d(np.arange(len(catalog)), held_out_rows(catalog))
        clip = get_model(TASK, name, quick=quick, random_state=seed)
        if not clip.caption_weight:  # learned from titles and descriptions alone: no caption to encode
            return clip.fit(artifacts.image, artifacts.text_title, artifacts.text_description, items=rows)
        train, _ = training_pairs(catalog, train_triples, encoder)
        return clip.fit(artifacts.image, artifacts.text_title, artifacts.text_description, items=rows,
                        caption_reference=train.reference, caption_target=train.target, caption_features=train.captions)
    if not train_triples:
        raise ValueError(f"The catalog {catalog.root} has no training caption triples, so the {title} cannot be "
                         f"trained; only the training-free models are available.")
    model = get_model(TASK, name, quick=quick, random_state=seed)
    joint = None
    if model.uses_joint_space:
        joint = joint_space(catalog, artifacts, store, train=True, quick=quick)
    # Each triple's joined captions only: the single captions and the other order quadruple the texts to encode and
    # the rows of an epoch (on a demo world's 1,920 training triples, 1,500 of them mined: 7,356 texts, 28 s to
    # encode and 32 s to fit, against 10 s and 14 s) for a validation recall (mean of R@1, 5, 10, 50) of 0.853
    # instead of 0.795 at the learning rate of then: time the first run cannot spare.
    train, _ = training_pairs(catalog, train_triples, encoder, single_captions=False)
    val_triples = triples_of(catalog, "val")
    val_features = encode_texts(encoder, [join_captions(t["captions"]) for t in val_triples]) if val_triples else None
    validate = validation_recall(catalog, artifacts.image, val_triples, val_features)
    candidates = np.setdiff1d(np.arange(len(catalog)), held_out_rows(catalog))
    model.fit(artifacts.image, train, joint=joint, validation=validate, candidates=candidates)
    logger.info("trained the composed %s in %.1f s (%d epochs, best %d)", name, model.fit_seconds_,
                len(model.history_), model.best_epoch_)
    return model


def inputs(store, name: str) -> dict:
    """Side inputs the saved model ``name`` is loaded with: ``{"joint": JointSpace}`` for a model that reads the
    joint space (from ``store``, whose split seed the model's own provenance is checked against), else nothing.

    Raises
    ------
    StaleModelError
        When the model reads the joint space and the catalog's demo-clip heads are missing or out of date.
    """
    model = get_model(TASK, name)
    if not getattr(model, "uses_joint_space", False):
        return {}
    joint = joint_space(store.catalog, store.artifacts, store)
    if joint is None:
        reason = store.problem(TASK, JOINT_SPACE) or "it has not been trained"
        raise StaleModelError(f"The saved {name} model reads the catalog's demo-clip joint space, which is not "
                              f"usable ({reason.rstrip('.')}).")
    return {"joint": joint}
