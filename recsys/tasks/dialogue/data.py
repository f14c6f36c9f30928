"""The dialogue task's data: the split of a catalog's dialogues, model inputs, and the two functions the store calls.

Training uses the dialogues of split ``train`` (each ends in the coordi-set the coordinator proposed);
evaluation records (split ``eval``) carry three candidate coordi-sets with their true ranks (FASCODE's
evaluation files; Kim et al., 2021). A record naming an unknown item id is reported (logged, and listed in
``skipped``) and left out.

:func:`fit` and :func:`inputs` are what :class:`recsys.store.ModelStore` calls; :func:`fit_model` is the one
place a dialogue model is trained (the protocol, the store and the benchmark use it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from recsys.artifacts import ArtifactError, load_artifacts
from recsys.catalog import Catalog
from recsys.data.fascode import rank_problem
from recsys.models.dialogue import FASCODE_SLOTS, DialogueCoordiRecommender, cosine_agreement
from recsys.models.registry import get_model
from recsys.progress import ProgressCallback
from recsys.tasks.compat import data as compat_data
from recsys.tasks.dialogue.messages import dialogue_vectors, user_turns

logger = logging.getLogger(__name__)


#: The compatibility model whose outfit score joins the set score of ``dialogue-infonce``.
COMPAT_MODEL = "type-aware"


class DialogueTaskError(ValueError):
    """The catalog cannot be used for the dialogue task; the message says why in one sentence."""


# ====================================================================== the split
def coordi_row(catalog: Catalog, coordi: dict) -> np.ndarray:
    """Item rows of a coordi ``{slot: item_id}`` in FASCODE slot order, shape ``(4,)``, -1 for an empty slot.

    Raises
    ------
    KeyError
        Naming the first unknown item id.
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
    """The training dialogues and the evaluation records of a catalog, with what was skipped and why.

    Attributes
    ----------
    train_turns : list of list of dict
        The turns of each training dialogue.
    train_coordis : int ndarray of shape (m, 4)
        The coordi-set that ended each training dialogue (:func:`coordi_row`).
    eval_records : list of dict
        Evaluation records (``dialogue_id``, ``turns``, ``candidates`` with ``coordi`` and ``rank``).
    eval_candidates : list of int ndarray of shape (c, 4)
        The candidate sets of each evaluation record as item rows.
    skipped : list of (dialogue_id, reason)
    """

    train_turns: list
    train_coordis: np.ndarray
    eval_records: list
    eval_candidates: list
    skipped: list


def dialogue_data(catalog: Catalog, extended: bool = True) -> DialogueData:
    """Split the catalog's dialogues: ``train`` ones with their final coordi, ``eval`` ones with candidates (the
    evaluation-only ones marked ``extended`` too, unless ``extended`` is False: the quick report).

    Never raises for a record naming an unknown item or whose candidate ranks are not 1..c once each
    (:func:`rank_problem`): it is logged and listed in ``skipped``.
    """
    train_turns, train_coordis, eval_records, eval_candidates, skipped = [], [], [], [], []
    for record in catalog.dialogues:
        dialogue_id = record.get("dialogue_id", "?")
        try:
            if record.get("extended") and not extended:
                continue
            if record.get("split") == "eval" and record.get("candidates"):
                problem = rank_problem([c.get("rank") for c in record["candidates"]])
                if problem:
                    raise KeyError(problem)
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


def n_training_dialogues(catalog: Catalog) -> int:
    """How many of the catalog's dialogue records are not evaluation records (what training would read)."""
    return sum(d.get("split") != "eval" for d in catalog.dialogues)


# ====================================================================== inputs
def image_available(catalog: Catalog) -> np.ndarray:
    """Bool array ``(n_items,)``: False for items whose image is a generated placeholder (an ingest without photos)."""
    if "image_is_placeholder" in catalog.items.columns:
        return ~catalog.items["image_is_placeholder"].fillna(False).to_numpy(dtype=bool)
    return np.ones(len(catalog), dtype=bool)


def require_artifacts(catalog: Catalog, artifacts=None):
    """``artifacts``, or the catalog's precomputed artifacts loaded now when ``artifacts`` is None.

    Raises
    ------
    DialogueTaskError
        When the catalog has no usable precomputed embeddings (one sentence naming the command to run).
    """
    if artifacts is not None:
        return artifacts

    try:
        return load_artifacts(catalog)
    except (ArtifactError, FileNotFoundError) as exc:
        raise DialogueTaskError(
            f"The dialogue task needs the catalog's precomputed embeddings ({exc}); "
            f"run scripts/precompute.py --catalog {catalog.root}."
        ) from None


def text_encoder(spec: str, device: str | None = None):
    """The text encoder ``spec`` that dialogues are embedded with (the artifacts' own text encoder), on ``device``
    (default: the ``RECSYS_DEVICE`` setting), from the process's encoder pool (:mod:`recsys.encoders.pool`).

    Raises
    ------
    recsys.encoders.EncoderError
        When the encoder cannot be built (one sentence naming the spec).
    """
    from recsys.encoders.pool import shared_encoder

    return shared_encoder(spec, device)


class LazyTextEncoder:
    """The text encoder ``spec`` on ``device``, built on first use: hand it to :func:`encoded_dialogues` calls that
    may all find their vectors already computed, and the encoder is never loaded.

    Any attribute (``dim``, ``encode_text``, ...) is the built encoder's.

    Raises
    ------
    recsys.encoders.EncoderError
        On first use, when the encoder cannot be built.
    """

    def __init__(self, spec: str, device: str | None = None):
        self._spec, self._device, self._encoder = spec, device, None

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._encoder is None:
            self._encoder = text_encoder(self._spec, device=self._device)
        return getattr(self._encoder, name)


#: Dialogue vectors this process has computed, by (encoder spec, digest of the users' words); the oldest go first.
_VECTORS: "OrderedDict[tuple[str, str], np.ndarray]" = OrderedDict()
_VECTORS_KEPT = 8
_VECTORS_LOCK = threading.Lock()


def encoded_dialogues(spec: str, dialogues: Sequence[Sequence[dict]], encoder=None) -> np.ndarray:
    """:func:`~recsys.tasks.dialogue.messages.dialogue_vectors` of ``dialogues`` with the text encoder ``spec``,
    shape ``(m, 2 * dim)`` float32, remembered in this process.

    Training each dialogue model and evaluating them read the same dialogues: the set-up would otherwise load the
    text encoder and encode every training dialogue once per model. The key is ``spec`` and the users' words (the
    only text the vectors read), so an edited dialogue is encoded again. Returns a fresh copy.

    Parameters
    ----------
    spec : str
        The artifacts' text encoder spec.
    dialogues : sequence of turn lists
    encoder : recsys.encoders.Encoder, optional
        Used on a miss; built from ``spec`` (:func:`text_encoder`) only when needed.

    Raises
    ------
    recsys.encoders.EncoderError
        When the encoder must be built or run and cannot be.
    """
    words = json.dumps([user_turns(turns) for turns in dialogues], ensure_ascii=False)
    key = (str(spec), hashlib.sha1(words.encode("utf-8")).hexdigest())
    with _VECTORS_LOCK:
        known = _VECTORS.get(key)
    if known is None:
        known = dialogue_vectors(encoder if encoder is not None else text_encoder(spec), dialogues)
        with _VECTORS_LOCK:
            _VECTORS[key] = known
            while len(_VECTORS) > _VECTORS_KEPT:
                _VECTORS.popitem(last=False)
    return known.copy()


# ====================================================================== training
def fit_model(name: str, catalog: Catalog, *, artifacts=None, encoder=None, data: DialogueData | None = None,
              train_vectors: np.ndarray | None = None, seed: int = 0, quick: bool = False,
              progress: ProgressCallback | None = None) -> DialogueCoordiRecommender:
    """Fit the registered dialogue model ``name`` on the catalog's training dialogues.

    ``data``, ``encoder`` and ``train_vectors`` (``(m, 2 * text dim)``) may be passed when the caller has them
    already; without ``train_vectors`` the encoding is shared through :func:`encoded_dialogues`. The model records
    the artifacts' text encoder spec.

    Raises
    ------
    DialogueTaskError
        When the catalog has no precomputed embeddings or fewer than two training dialogues.
    KeyError
        For a name the registry does not know.
    """
    artifacts = require_artifacts(catalog, artifacts)
    data = data if data is not None else dialogue_data(catalog)
    if len(data.train_turns) < 2:
        raise DialogueTaskError(f"The catalog {catalog.name} has fewer than two training dialogues with a coordi-set.")
    if train_vectors is None:
        train_vectors = encoded_dialogues(artifacts.text_encoder_spec, data.train_turns, encoder)
    model = get_model("dialogue", name, quick=quick, random_state=seed, text_encoder=str(artifacts.text_encoder_spec))
    return model.fit(train_vectors, data.train_coordis, artifacts.image, artifacts.text_description,
                     list(catalog.items["slot"]), image_available=image_available(catalog), progress=progress)


def fit(store, name: str, *, quick: bool = False,
        progress: ProgressCallback | None = None) -> DialogueCoordiRecommender:
    """The model users see: ``name`` fitted on all of the store's catalog's training dialogues (the store saves it).

    Raises
    ------
    DialogueTaskError
        When the catalog has no precomputed embeddings or too few training dialogues.
    """
    return fit_model(name, store.catalog, artifacts=store.artifacts, seed=store.seed, quick=quick, progress=progress)


def inputs(store, name: str) -> dict:
    """Side inputs a saved dialogue model is loaded with: the text encoder spec dialogues will be encoded with.

    :meth:`DialogueCoordiRecommender._set_state` refuses (as stale) a model trained with another text encoder.
    """
    artifacts = store.artifacts
    spec = getattr(artifacts, "text_encoder_spec", "") if artifacts is not None else ""
    return {"text_encoder": str(spec or "")}


# ====================================================================== compatibility
def compatibility_scorer(catalog: Catalog, artifacts, *, seed: int = 0, quick: bool = False,
                         store=None, reuse=None) -> tuple[Callable[[Sequence[int]], float], str]:
    """The outfit-compatibility function used in the set score, ``compatibility(item rows) -> float``, and its name.

    With ``store`` (the chat): the type-aware compatibility model (Vasileva et al., ECCV 2018) the store has
    saved for this catalog, never trained here. Without (the protocol): that model fitted now on the compat
    task's training outfits of split ``seed`` (:func:`recsys.tasks.compat.data.fit_on_split`), so the figures do
    not depend on which files happen to be saved, unless ``reuse`` (a store of split ``seed``) has that model on
    the full schedule, which is the same fit (the first-run quick report). A catalog without outfits (a FASCODE ingest), or no model,
    gets the world-agnostic fallback: cosine agreement of the set's image vectors (:func:`cosine_agreement`).
    Never raises for a missing or unusable model: the chat must still answer.
    """
    try:
        if store is not None:
            model = store.get("compat", COMPAT_MODEL)
        else:
            model = reuse.get("compat", COMPAT_MODEL, full_only=True) if reuse is not None else None
        if model is None and store is None:
            split = compat_data.prepare(catalog, seed, artifacts=artifacts)
            model = compat_data.fit_on_split(COMPAT_MODEL, split, seed=seed, quick=quick)
        if model is not None:
            return model.outfit_score, f"{COMPAT_MODEL} compatibility model"
    except Exception as exc:  # no outfits, or an unusable saved model: the chat must still answer
        logger.info("no compatibility model for %s (%s); using cosine agreement", catalog.name, exc)
    vectors = np.asarray(artifacts.image, dtype=np.float32)
    return (lambda idx: cosine_agreement(vectors, idx)), "cosine agreement of image vectors (fallback)"
