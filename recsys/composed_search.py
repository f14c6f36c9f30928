"""Text-guided search on a catalog: the data splits, training and loading of the composed-retrieval models,
and the search the page runs (reference + stacked captions, or free text), with every bad input turned into a note.

The models themselves are in :mod:`recsys.models.composed`; the FashionIQ protocol is
:mod:`recsys.protocols.composed`.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from recsys.artifacts import Artifacts
from recsys.catalog import ATTRIBUTE_COLUMNS, Catalog
from recsys.encoders import Encoder, create_encoder, l2_normalize
from recsys.encoders.democlip import MODEL_NAME as DEMOCLIP_NAME, DemoClip
from recsys.index import VectorIndex
from recsys.models.base import load_model, model_path, save_model
from recsys.models.composed import (
    Combiner,
    ComposedModel,
    ImageDifference,
    ImageOnly,
    JointSpace,
    TextOnly,
    Triples,
    ZeroShotSum,
    compose_turns,
)

logger = logging.getLogger(__name__)

#: File names (under ``<catalog>/artifacts/models/``) of the trained models.
SAVED_NAMES = {"image-difference": "composed-image-difference", "combiner": "composed-combiner"}
TRAINED_MODELS = ("image-difference", "combiner")
ProgressCallback = Callable[[float, str], None]


# ---------------------------------------------------------------------- captions and splits
def join_captions(captions: Sequence[str]) -> str:
    """The FashionIQ protocol's query text: the two captions joined with "and" (trailing punctuation dropped)."""
    parts = [str(c).strip().strip(".?, ") for c in captions if str(c).strip().strip(".?, ")]
    return " and ".join(parts)


def triples_of(catalog: Catalog, split: str) -> list[dict]:
    """The catalog's caption triples of ``split`` whose reference and target are both in the catalog."""
    known = catalog.id_to_index
    return [t for t in catalog.captions
            if t.get("split") == split and t.get("reference_id") in known and t.get("target_id") in known
            and t.get("reference_id") != t.get("target_id")]


def evaluation_split(catalog: Catalog) -> str:
    """``"test"`` when the catalog has test triples, else ``"val"`` (FashionIQ's test captions are not public)."""
    return "test" if triples_of(catalog, "test") else "val"


def held_out_rows(catalog: Catalog) -> np.ndarray:
    """Rows no model may train on: targets of the validation and test triples (their text included)."""
    ids = {t["target_id"] for split in ("val", "test") for t in triples_of(catalog, split)}
    return np.sort(catalog.indices(sorted(ids))) if ids else np.zeros(0, dtype=np.int64)


def gallery_rows(catalog: Catalog, category: str, split: str | None = None) -> np.ndarray:
    """The gallery a query of ``category`` ranks: the category's items (of ``split`` when items carry one).

    FashionIQ ranks each category's images of the split. Items of the built-in world have no split, so
    there the gallery is the whole category, and the evaluated targets are kept out of all training instead.
    """
    items = catalog.items
    mask = (items["category"] == category).to_numpy()
    if split is not None and "split" in items.columns:
        mask &= (items["split"] == split).to_numpy()
    return np.flatnonzero(mask)


def training_pairs(catalog: Catalog, triples: list[dict], text_encoder: Encoder, single_captions: bool = True) -> tuple[Triples, list[str]]:
    """Feature triples for training: each triple's joined captions and, optionally, each caption on its own."""
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
    features = text_encoder.encode_text(texts) if texts else np.zeros((0, text_encoder.dim), dtype=np.float32)
    return Triples(np.asarray(reference, dtype=np.int64), np.asarray(target, dtype=np.int64), features), texts


# ---------------------------------------------------------------------- evaluation helper shared with training
def target_ranks(model: ComposedModel, catalog: Catalog, image_features: np.ndarray, triples: list[dict],
                 caption_features: np.ndarray, split: str | None = None, gallery: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """0-based rank of each triple's target in its category's gallery (the reference itself excluded).

    Returns the ranks and each triple's category.
    """
    from recsys.metrics import rank_of

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


# ---------------------------------------------------------------------- the joint space
def uses_open_clip(artifacts: Artifacts) -> bool:
    """True when the artifacts come from a real joint encoder, whose own image-text space is then used."""
    return artifacts.image_encoder_spec.startswith("open_clip") and artifacts.text_encoder_spec == artifacts.image_encoder_spec


def _fit_meta(catalog: Catalog, artifacts: Artifacts) -> dict:
    return {"catalog_fingerprint": catalog.fingerprint(), "image_encoder": artifacts.image_encoder_spec,
            "text_encoder": artifacts.text_encoder_spec}


def _matches(meta: dict, catalog: Catalog, artifacts: Artifacts) -> bool:
    expected = _fit_meta(catalog, artifacts)
    return all(meta.get(k) == v for k, v in expected.items())


def train_democlip(catalog: Catalog, artifacts: Artifacts, text_encoder: Encoder, seed: int = 0, quick: bool = False) -> DemoClip:
    """Fit the catalog's ``demo-clip`` heads on titles, descriptions and training captions (held-out targets excluded)."""
    train, _ = training_pairs(catalog, triples_of(catalog, "train"), text_encoder)
    rows = np.setdiff1d(np.arange(len(catalog)), held_out_rows(catalog))
    clip = DemoClip(epochs=8 if quick else 40, random_state=seed)
    return clip.fit(artifacts.image, artifacts.text_title, artifacts.text_description, items=rows,
                    caption_reference=train.reference, caption_target=train.target, caption_features=train.captions)


def load_joint_space(catalog: Catalog, artifacts: Artifacts) -> JointSpace:
    """The catalog's joint space: open_clip's own, or the saved ``demo-clip`` heads (``FileNotFoundError`` if untrained)."""
    if uses_open_clip(artifacts):
        return JointSpace.identity(artifacts.image_encoder_spec)
    path = model_path(catalog.root, DEMOCLIP_NAME)
    clip, meta = DemoClip.load(path)
    if not _matches(meta, catalog, artifacts):
        raise FileNotFoundError(f"The demo-clip weights in {path.parent} belong to other artifacts; train them again with "
                                f"python scripts/train.py --catalog {catalog.root} --task composed.")
    return JointSpace.from_democlip(clip)


# ---------------------------------------------------------------------- training and loading every model
@dataclass
class ComposedModels:
    """Everything composed retrieval needs on one catalog: the joint space and the models by name."""

    joint: JointSpace
    models: dict[str, ComposedModel]
    summary: dict = field(default_factory=dict)


def baselines(joint: JointSpace) -> dict[str, ComposedModel]:
    return {"image-only": ImageOnly(), "text-only": TextOnly(joint), "zero-shot": ZeroShotSum(joint)}


def train_models(catalog: Catalog, artifacts: Artifacts, text_encoder: Encoder, seed: int = 0, quick: bool = False,
                 save: bool = True, progress: ProgressCallback | None = None) -> ComposedModels:
    """Fit demo-clip (unless open_clip artifacts), the image-difference model and the combiner; save them.

    Training uses the ``train`` triples only, early-stops on the ``val`` triples, and never sees the text of
    a validation or test target.
    """
    summary: dict = {}
    meta = _fit_meta(catalog, artifacts)
    if progress:
        progress(0.0, "Training the joint image-text space (demo-clip)")
    if uses_open_clip(artifacts):
        joint = JointSpace.identity(artifacts.image_encoder_spec)
        summary["joint-space"] = {"name": joint.name, "trained": False}
    else:
        clip = train_democlip(catalog, artifacts, text_encoder, seed=seed, quick=quick)
        if save:
            clip.save(model_path(catalog.root, DEMOCLIP_NAME), extra=meta)
        joint = JointSpace.from_democlip(clip)
        summary["demo-clip"] = {"fit_seconds": round(clip.fit_seconds_, 2), "epochs": clip.epochs,
                                "final_loss": round(clip.history_[-1], 4)}
    models: dict[str, ComposedModel] = baselines(joint)
    train_triples = triples_of(catalog, "train")
    val_triples = triples_of(catalog, "val")
    if not train_triples:
        logger.warning("the catalog has no training caption triples; only the training-free models are available")
        return ComposedModels(joint, models, summary)
    train, _ = training_pairs(catalog, train_triples, text_encoder)
    val_features = text_encoder.encode_text([join_captions(t["captions"]) for t in val_triples]) if val_triples else None
    validate = validation_recall(catalog, artifacts.image, val_triples, val_features)
    candidates = np.setdiff1d(np.arange(len(catalog)), held_out_rows(catalog))
    epochs = {"epochs": 6} if quick else {}
    for k, (name, model) in enumerate((("image-difference", ImageDifference(random_state=seed, **epochs)),
                                       ("combiner", Combiner(joint, random_state=seed, **epochs)))):
        if progress:
            progress((k + 1) / 3, f"Training the {name} model")
        if name == "combiner":
            model.fit(artifacts.image, train, candidates=candidates, validation=validate)
        else:
            model.fit(artifacts.image, train, validation=validate)
        models[name] = model
        summary[name] = {"fit_seconds": round(model.fit_seconds_, 2), "epochs_run": len(model.history_),
                         "best_epoch": model.best_epoch_, "train_pairs": len(train),
                         "best_val": max((h.get("val", float("nan")) for h in model.history_), default=None)}
        if save:
            tensors, params = model.state()
            save_model(model_path(catalog.root, SAVED_NAMES[name]), tensors,
                       {**params, **meta, "model": name, "history": model.history_, "fit_seconds": model.fit_seconds_,
                        "image_dim": int(artifacts.image.shape[1]), "text_dim": int(text_encoder.dim)})
    if progress:
        progress(1.0, "Done")
    return ComposedModels(joint, models, summary)


def load_models(catalog: Catalog, artifacts: Artifacts) -> ComposedModels:
    """The saved models of the catalog; ``FileNotFoundError`` (one sentence with the command) when any is missing or stale."""
    joint = load_joint_space(catalog, artifacts)
    models = baselines(joint)
    for name in TRAINED_MODELS:
        tensors, meta = load_model(model_path(catalog.root, SAVED_NAMES[name]))
        if not _matches(meta, catalog, artifacts):
            raise FileNotFoundError(f"The saved {name} model belongs to other artifacts; train it again with "
                                    f"python scripts/train.py --catalog {catalog.root} --task composed.")
        if name == "image-difference":
            models[name] = ImageDifference.from_state(tensors, meta, meta["image_dim"], meta["text_dim"])
        else:
            models[name] = Combiner.from_state(tensors, meta, joint)
    return ComposedModels(joint, models)


def text_encoder_for(artifacts: Artifacts, device: str = "cpu") -> Encoder:
    """The text encoder the artifacts' text vectors came from (captions must be encoded the same way)."""
    return create_encoder(artifacts.text_encoder_spec, device)


# ---------------------------------------------------------------------- checking what the user typed
_ENGLISH_HINT = "the text encoder was trained on English, so it may match poorly"


def caption_notes(text: str, encoder: Encoder) -> tuple[str | None, list[str]]:
    """Clean one caption and say what is unusual about it.

    Returns ``(text to encode or None, notes)``: None when the caption has nothing to encode (empty, only
    punctuation, only emoji), with a note saying why; long text is kept (the encoder cuts it) with a note.
    """
    text = " ".join(str(text or "").split())
    if not text:
        return None, ["The caption is empty."]
    if not any(ch.isalnum() for ch in text):
        return None, [f"The caption \u201c{text[:40]}\u201d has no words (only punctuation or symbols), so it was ignored."]
    notes = []
    if any(unicodedata.category(ch) == "So" for ch in text):
        notes.append("Emoji and symbols carry no meaning for the text encoder; only the words were used.")
    scripts = {unicodedata.name(ch, "").split(" ")[0] for ch in text if ch.isalpha() and not ch.isascii()}
    scripts.discard("LATIN")
    if scripts:
        language = "Korean" if "HANGUL" in scripts else "non-Latin script"
        notes.append(f"The caption is in {language} text; {_ENGLISH_HINT}.")
    if encoder.truncates(text):
        notes.append(f"The caption is longer than the text encoder's context of {encoder.max_tokens} tokens; "
                     f"only its beginning was used.")
    return text, notes


def attribute_moves(catalog: Catalog, reference_id: str, item_id: str) -> dict[str, tuple[str, str]]:
    """Attributes that differ between the reference and a result: ``{attribute: (reference value, result value)}``."""
    columns = [c for c in ATTRIBUTE_COLUMNS if c in catalog.items.columns]
    ref, item = catalog.item(reference_id), catalog.item(item_id)
    moves = {}
    for column in columns:
        a, b = ref[column], item[column]
        if (a is None or a != a) and (b is None or b != b):  # both missing (NaN != NaN)
            continue
        if a != b:
            moves[column] = (str(a), str(b))
    return moves


# ---------------------------------------------------------------------- the search the page runs
@dataclass
class SearchResult:
    """Ranked items with scores, the model that ranked them, and the notes to show the user."""

    item_ids: list[str]
    scores: list[float]
    model: str
    notes: list[str] = field(default_factory=list)
    used_captions: list[str] = field(default_factory=list)


class TextGuidedSearch:
    """Reference + stacked captions, or free text, against a catalog's gallery.

    Parameters
    ----------
    catalog : Catalog
    artifacts : Artifacts
    models : ComposedModels
    text_encoder : Encoder
        The encoder of the artifacts' text vectors.
    index_factory : callable, optional
        ``(vectors, categories=...) -> fitted index`` with :meth:`recsys.index.VectorIndex.search`'s signature;
        default :func:`make_index`.
    """

    def __init__(self, catalog: Catalog, artifacts: Artifacts, models: ComposedModels, text_encoder: Encoder,
                 index_factory: Callable | None = None):
        self.catalog = catalog
        self.artifacts = artifacts
        self.models = models
        self.text_encoder = text_encoder
        self._index_factory = index_factory or make_index
        self._indexes: dict[str, object] = {}
        self._image_encoder: Encoder | None = None

    @property
    def model_names(self) -> list[str]:
        return list(self.models.models)

    def _index(self, name: str):
        if name not in self._indexes:
            self._indexes[name] = self._index_factory(self.models.models[name].gallery_vectors(self.artifacts.image),
                                                      categories=self.catalog.items["category"].to_numpy())
        return self._indexes[name]

    def reference_features(self, item_id: str) -> np.ndarray:
        return np.asarray(self.artifacts.image[self.catalog.indices([item_id])], dtype=np.float32)

    def upload_features(self, image) -> np.ndarray:
        """Image features of an uploaded photo, from the artifacts' image encoder."""
        if self._image_encoder is None:
            self._image_encoder = create_encoder(self.artifacts.image_encoder_spec, "cpu")
        return self._image_encoder.encode_images([image])

    def search(self, reference: np.ndarray | None, captions: Sequence[str], model: str = "combiner", k: int = 24,
               category: str | None = None, exclude: Sequence[str] = ()) -> SearchResult:
        """Rank the gallery for a reference (image features, or None for free text) and captions applied in order.

        Empty or word-less captions are skipped with a note; with no caption left the reference alone ranks
        (image similarity); with neither, nothing is searched.
        """
        notes: list[str] = []
        used: list[str] = []
        for caption in captions:
            text, caption_notes_ = caption_notes(caption, self.text_encoder)
            notes += caption_notes_
            if text is not None:
                used.append(text)
        if reference is None and not used:
            return SearchResult([], [], model, notes + ["Type a description or pick a reference image to search."])
        if reference is None:
            name = "text-only"
            query = self.models.models[name].compose(None, self.text_encoder.encode_text([" ".join(used)]))
        elif not used:
            name = "image-only"
            notes.append("No usable caption, so the results are ranked by image similarity to the reference alone.")
            query = self.models.models[name].gallery_vectors(reference)
        else:
            name = model if model in self.models.models else "zero-shot"
            turns = [self.text_encoder.encode_text([c]) for c in used]
            query = compose_turns(self.models.models[name], reference, turns)
        excluded = self.catalog.indices(list(exclude)).tolist() if exclude else None
        # Unit queries: the ranking is unchanged (gallery rows are unit vectors) and the scores read as cosines.
        scores, rows = self._index(name).search(l2_normalize(query), k, categories=category, exclude=excluded)
        ids = self.catalog.items["item_id"].to_numpy()[rows[0]].tolist()
        return SearchResult(ids, [float(s) for s in scores[0]], name, notes, used)


def make_index(vectors: np.ndarray, categories=None) -> VectorIndex:
    """The studio's FAISS index over gallery vectors (inner product; exact or HNSW by size), filterable by category."""
    return VectorIndex().fit(vectors, categories=categories)


def timed(function: Callable, *args, **kwargs) -> tuple[object, float]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started
