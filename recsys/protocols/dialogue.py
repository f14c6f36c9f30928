"""FASCODE's protocol for dialogue-based coordi-set recommendation, and the task's training entry point.

Training uses the dialogues of split ``train`` (each ends in the coordi-set the coordinator proposed);
evaluation ranks the three candidate coordi-sets of every ``eval`` dialogue and compares the predicted ranks
with the true ones by weighted Kendall's tau (:func:`recsys.metrics.weighted_kendall_tau`), averaged over
dialogues, as in the paper (0.141 for the paper's model; the challenge winners reached about 0.78).

Models compared:

``random``
    Candidates in a random order (WKT about 0).
``zero-shot``
    No training: a set's score is the cosine between the user's words and its items' description vectors.
``text-only``
    The paper's model reading item text only (the modality ablation).
``dialogue-mse``
    The paper's model: projection net + transfer net, MSE + item-id head, 15% missing-modality training.
``dialogue-infonce``
    The contrastive (InfoNCE) variant, ranked by distance only.
``dialogue-infonce+compat``
    The same, with the set score adding the outfit score of the type-aware compatibility model (or, for a
    catalog without outfits, the cosine agreement of the set's items; see :func:`compatibility_scorer`).
``oracle``
    On the built-in world: ranks from the true coordi score (:meth:`WorldTruth.coordi_score`).

An evaluation record whose candidate names an unknown item id is reported (logged, and counted in
``skipped``) and left out.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from recsys import metrics
from recsys.catalog import Catalog
from recsys.models.base import load_model, model_path, save_model
from recsys.models.dialogue import FASCODE_SLOTS, DialogueCoordiRecommender, cosine_agreement, dialogue_vectors

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]

#: The trained models, by name: constructor arguments of :class:`DialogueCoordiRecommender`.
MODEL_CONFIGS = {
    "dialogue-mse": dict(objective="mse"),
    "text-only": dict(objective="mse", use_image=False),
    "dialogue-infonce": dict(objective="infonce", compat_weight=0.5),
}
#: The models the page offers and ``train`` saves.
SAVED_MODELS = ("dialogue-infonce", "dialogue-mse")
QUICK_EPOCHS = 15
#: The compatibility model whose outfit score joins the set score of ``dialogue-infonce+compat``.
COMPAT_MODEL = "type-aware"


class DialogueTaskError(ValueError):
    """The catalog cannot be used for the dialogue task; the message says why in one sentence."""


# ====================================================================== data
def coordi_row(catalog: Catalog, coordi: dict) -> np.ndarray:
    """Item rows of a coordi ``{slot: item_id}`` in FASCODE slot order, -1 for an empty slot.

    Raises ``KeyError`` naming the first unknown item id.
    """
    lookup = catalog.id_to_index
    row = np.full(len(FASCODE_SLOTS), -1, dtype=np.int64)
    for s, slot in enumerate(FASCODE_SLOTS):
        item_id = coordi.get(slot)
        if item_id:
            if item_id not in lookup:
                raise KeyError(f"Unknown item id {item_id!r}.")
            row[s] = lookup[item_id]
    return row


@dataclass
class DialogueData:
    """The training dialogues and the evaluation records of a catalog, with what was skipped and why."""

    train_turns: list
    train_coordis: np.ndarray
    eval_records: list
    eval_candidates: list
    skipped: list


def dialogue_data(catalog: Catalog) -> DialogueData:
    """Split the catalog's dialogues: ``train`` ones with their final coordi, ``eval`` ones with candidates."""
    train_turns, train_coordis, eval_records, eval_candidates, skipped = [], [], [], [], []
    for record in catalog.dialogues:
        dialogue_id = record.get("dialogue_id", "?")
        try:
            if record.get("split") == "eval" and record.get("candidates"):
                rows = np.stack([coordi_row(catalog, c["coordi"]) for c in record["candidates"]])
                eval_records.append(record)
                eval_candidates.append(rows)
            elif record.get("split", "train") == "train" and record.get("coordi"):
                row = coordi_row(catalog, record["coordi"])
                if (row >= 0).any():
                    train_turns.append(record.get("turns", []))
                    train_coordis.append(row)
        except KeyError as exc:
            reason = f"{exc.args[0]} -- the record is skipped"
            skipped.append((dialogue_id, reason))
            logger.warning("dialogue %s: %s", dialogue_id, reason)
    coordis = np.stack(train_coordis) if train_coordis else np.zeros((0, len(FASCODE_SLOTS)), dtype=np.int64)
    return DialogueData(train_turns, coordis, eval_records, eval_candidates, skipped)


def image_available(catalog: Catalog) -> np.ndarray:
    """False for items whose image is a generated placeholder (an ingest without photos)."""
    if "image_is_placeholder" in catalog.items.columns:
        return ~catalog.items["image_is_placeholder"].fillna(False).to_numpy(dtype=bool)
    return np.ones(len(catalog), dtype=bool)


def _artifacts(catalog: Catalog):
    from recsys.artifacts import ArtifactError, load_artifacts

    try:
        return load_artifacts(catalog)
    except (ArtifactError, FileNotFoundError) as exc:
        raise DialogueTaskError(
            f"The dialogue task needs the catalog's precomputed embeddings ({exc}); "
            f"run scripts/precompute.py --catalog {catalog.root}."
        ) from None


def _text_encoder(spec: str):
    from recsys.encoders import create_encoder

    return create_encoder(spec, device="cpu")


# ====================================================================== compatibility
def compatibility_scorer(catalog: Catalog, artifacts, *, seed: int = 0, quick: bool = False,
                         fit: bool = False) -> tuple[Callable[[Sequence[int]], float], str]:
    """The outfit-compatibility function used in the set score, and its name.

    The type-aware compatibility model of :mod:`recsys.protocols.compat` (trained on the catalog's outfits)
    is used when it is saved for this catalog, or -- with ``fit=True`` -- fitted here; a catalog without
    outfits (a FASCODE ingest) gets the world-agnostic fallback: cosine agreement of the set's image vectors.
    """
    try:
        from recsys.protocols import compat as compat_task

        data = compat_task.prepare(catalog, seed, artifacts=artifacts)
        if fit:
            model = compat_task.load_or_fit(catalog, COMPAT_MODEL, data, seed=seed, quick=quick)
        else:
            model = compat_task.load_saved(catalog, COMPAT_MODEL, data, seed=seed, quick=False)
        if model is not None:
            return model.outfit_score, f"{COMPAT_MODEL} compatibility model"
    except ImportError:
        pass
    except Exception as exc:  # no outfits, or an unusable saved model: the chat must still answer
        logger.info("no compatibility model for %s (%s); using cosine agreement", catalog.name, exc)
    vectors = np.asarray(artifacts.image, dtype=np.float32)
    return (lambda idx: cosine_agreement(vectors, idx)), "cosine agreement of image vectors (fallback)"


# ====================================================================== training
def fit_model(name: str, catalog: Catalog, *, artifacts=None, encoder=None, data: DialogueData | None = None,
              train_vectors: np.ndarray | None = None, seed: int = 0, quick: bool = False,
              progress: ProgressCallback | None = None) -> DialogueCoordiRecommender:
    """Fit the model ``name`` of :data:`MODEL_CONFIGS` on the catalog's training dialogues."""
    artifacts = artifacts if artifacts is not None else _artifacts(catalog)
    data = data if data is not None else dialogue_data(catalog)
    if len(data.train_turns) < 2:
        raise DialogueTaskError(f"The catalog {catalog.name} has fewer than two training dialogues with a coordi-set.")
    if train_vectors is None:
        encoder = encoder if encoder is not None else _text_encoder(artifacts.text_encoder_spec)
        train_vectors = dialogue_vectors(encoder, data.train_turns)
    config = dict(MODEL_CONFIGS[name], random_state=seed)
    if quick:
        config["epochs"] = QUICK_EPOCHS
    model = DialogueCoordiRecommender(**config)
    return model.fit(train_vectors, data.train_coordis, artifacts.image, artifacts.text_description,
                     list(catalog.items["slot"]), image_available=image_available(catalog), progress=progress)


def save(model: DialogueCoordiRecommender, catalog: Catalog, name: str, text_encoder_spec: str) -> None:
    params = {"model": name, "params": model.get_params(), "text_encoder": text_encoder_spec,
              "catalog_fingerprint": catalog.fingerprint(), "fit_seconds": round(model.fit_seconds_, 2),
              "final_loss": model.history_[-1] if model.history_ else None}
    save_model(model_path(catalog.root, name), model.to_tensors(), params)


def load(catalog: Catalog, name: str) -> tuple[DialogueCoordiRecommender, dict] | None:
    """The saved model ``name`` of this catalog, or None when it is missing or was fit on another catalog."""
    try:
        tensors, meta = load_model(model_path(catalog.root, name))
    except FileNotFoundError:
        return None
    if meta.get("catalog_fingerprint") != catalog.fingerprint() or len(tensors["item_slot"]) != len(catalog):
        logger.info("saved %s was fit on another catalog; it will be retrained", name)
        return None
    return DialogueCoordiRecommender.from_tensors(tensors, meta["params"]), meta


def load_or_train(catalog: Catalog, name: str, *, seed: int = 0,
                  progress: ProgressCallback | None = None) -> tuple[DialogueCoordiRecommender, dict]:
    """The saved model ``name``, trained (and saved) first when it is missing or stale."""
    found = load(catalog, name)
    if found is not None:
        return found
    artifacts = _artifacts(catalog)
    model = fit_model(name, catalog, artifacts=artifacts, seed=seed, progress=progress)
    save(model, catalog, name, artifacts.text_encoder_spec)
    return load(catalog, name)


def train(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress: ProgressCallback | None = None) -> dict:
    """Fit and save the page's models (:data:`SAVED_MODELS`) on the training dialogues."""
    artifacts = _artifacts(catalog)
    encoder = _text_encoder(artifacts.text_encoder_spec)
    data = dialogue_data(catalog)
    started = time.perf_counter()
    vectors = dialogue_vectors(encoder, data.train_turns)
    encode_seconds = time.perf_counter() - started
    summary = {}
    for k, name in enumerate(SAVED_MODELS):
        def step(fraction: float, message: str, k=k, name=name) -> None:
            if progress:
                progress((k + fraction) / len(SAVED_MODELS), f"{name}: {message}")

        model = fit_model(name, catalog, artifacts=artifacts, data=data, train_vectors=vectors, seed=seed,
                          quick=quick, progress=step)
        save(model, catalog, name, artifacts.text_encoder_spec)
        summary[name] = {"fit_seconds": round(model.fit_seconds_, 2), "encode_seconds": round(encode_seconds, 2),
                         "dialogues": len(data.train_turns), "final_loss": round(model.history_[-1], 4),
                         "skipped": len(data.skipped)}
    return summary


# ====================================================================== evaluation
def ranks_from_scores(scores: np.ndarray) -> np.ndarray:
    """1-based ranks, the highest score first (ties broken by position)."""
    return np.argsort(np.argsort(-np.asarray(scores), kind="stable"), kind="stable") + 1


def mean_wkt(score_lists: Sequence[np.ndarray], true_ranks: Sequence[np.ndarray]) -> dict:
    """Mean weighted Kendall's tau and top-1 accuracy of predicted candidate scores against true ranks."""
    taus, hits = [], []
    for scores, truth in zip(score_lists, true_ranks):
        predicted = ranks_from_scores(scores)
        taus.append(metrics.weighted_kendall_tau(predicted, truth))
        hits.append(float(truth[int(np.argmax(scores))] == truth.min()))
    return {"WKT": float(np.mean(taus)), "top1_acc": float(np.mean(hits)), "dialogues": len(taus)}


def evaluate(catalog: Catalog, *, seed: int = 0, quick: bool = False, progress: ProgressCallback | None = None) -> dict:
    """Weighted Kendall's tau of every model on the catalog's evaluation dialogues (see the module docstring)."""
    report = progress or (lambda fraction, message: None)
    artifacts = _artifacts(catalog)
    data = dialogue_data(catalog)
    if not data.eval_records:
        raise DialogueTaskError(f"The catalog {catalog.name} has no evaluation dialogues with candidate coordi-sets.")
    encoder = _text_encoder(artifacts.text_encoder_spec)
    report(0.02, "Encoding the dialogues")
    train_vectors = dialogue_vectors(encoder, data.train_turns)
    eval_vectors = dialogue_vectors(encoder, [r.get("turns", []) for r in data.eval_records])
    true_ranks = [np.array([int(c["rank"]) for c in r["candidates"]]) for r in data.eval_records]
    results: dict[str, dict] = {}

    rng = np.random.default_rng(seed)
    results["random"] = mean_wkt([rng.random(len(c)) for c in data.eval_candidates], true_ranks)

    # zero-shot: the user's words against the items' descriptions, in the text encoder's own space
    item_text = np.asarray(artifacts.text_description, dtype=np.float32)
    dim = item_text.shape[1]
    zero_shot = []
    for vector, rows in zip(eval_vectors, data.eval_candidates):
        query = vector[:dim] / max(np.linalg.norm(vector[:dim]), 1e-12)
        zero_shot.append(np.array([np.mean([item_text[i] @ query for i in row if i >= 0]) for row in rows]))
    results["zero-shot"] = mean_wkt(zero_shot, true_ranks)

    report(0.04, "Loading or fitting the compatibility model")
    compatibility, compat_name = compatibility_scorer(catalog, artifacts, seed=seed, quick=quick, fit=True)
    names = list(MODEL_CONFIGS)
    for k, name in enumerate(names):
        def step(fraction: float, message: str, k=k, name=name) -> None:
            report(0.05 + 0.9 * (k + fraction) / len(names), f"{name}: {message}")

        model = fit_model(name, catalog, artifacts=artifacts, data=data, train_vectors=train_vectors, seed=seed,
                          quick=quick, progress=step)
        distance_only = [model.set_scores(v, rows) if not model.compat_weight else -model.set_distances(v, rows)
                         for v, rows in zip(eval_vectors, data.eval_candidates)]
        results[name] = {**mean_wkt(distance_only, true_ranks), "fit_seconds": round(model.fit_seconds_, 2)}
        if model.compat_weight:
            with_compat = [model.set_scores(v, rows, compatibility) for v, rows in zip(eval_vectors, data.eval_candidates)]
            results[f"{name}+compat"] = mean_wkt(with_compat, true_ranks)
            logger.info("%s+compat uses %s", name, compat_name)

    if catalog.has_truth:
        from recsys.data.demo_world import WorldTruth

        truth = WorldTruth.from_catalog(catalog)
        oracle = [np.array([truth.coordi_score(r["dialogue_id"], c["coordi"]) for c in r["candidates"]])
                  for r in data.eval_records]
        results["oracle"] = mean_wkt(oracle, true_ranks)
    for scores in results.values():
        scores["skipped"] = len(data.skipped)
    report(1.0, "Done")
    return results


# ====================================================================== the chat
def build_stylist(catalog: Catalog, name: str = "dialogue-infonce", *, seed: int = 0,
                  progress: ProgressCallback | None = None):
    """A :class:`~recsys.models.dialogue.Stylist` for the catalog: the saved model ``name`` (trained and
    saved first when missing), the text encoder of the catalog's artifacts, and the compatibility scorer.

    Returns ``(stylist, info)`` where ``info`` holds the model's saved metadata and ``compatibility``
    (the name of the compatibility function in use).
    """
    from recsys.models.dialogue import Stylist

    if name not in MODEL_CONFIGS:
        raise DialogueTaskError(f"Unknown dialogue model '{name}'; choose one of {', '.join(MODEL_CONFIGS)}.")
    artifacts = _artifacts(catalog)
    model, meta = load_or_train(catalog, name, seed=seed, progress=progress)
    encoder = _text_encoder(meta.get("text_encoder") or artifacts.text_encoder_spec)
    compatibility, compat_name = compatibility_scorer(catalog, artifacts)
    return Stylist(model, encoder, compatibility), {**meta, "compatibility": compat_name}


def encoder_reads_only_english(spec: str) -> bool:
    """True for the packaged all-MiniLM-L6-v2 (``minilm`` without a folder), which was trained on English."""
    return spec.strip() == "minilm"


def is_trained(catalog: Catalog, name: str) -> bool:
    """True when the model ``name`` is saved for this very catalog (reads only its small JSON)."""
    path = model_path(catalog.root, name)
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return path.with_suffix(".safetensors").is_file() and meta.get("catalog_fingerprint") == catalog.fingerprint()
