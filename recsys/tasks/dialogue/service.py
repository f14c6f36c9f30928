"""What the Stylist chat page calls: :class:`StylistService` (and the :class:`Stylist` it serves a model with).

After every user turn the stylist encodes the dialogue so far, transfers it into the item space, proposes the
nearest item of every slot, and ranks candidate coordi-sets by the set score (Kim et al., "FASCODE", 2021).
Models come from the :class:`recsys.store.ModelStore`; nothing here trains or loads a file by itself.

The page imports only this module and :mod:`recsys.ui`, so the names it needs are re-exported here:
:data:`FASCODE_SLOTS`, :func:`check_message`, :func:`weighted_kendall_tau` and the exceptions it catches.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from recsys.catalog import Catalog
from recsys.encoders import EncoderError
from recsys.metrics import weighted_kendall_tau
from recsys.models.dialogue import CATALOG_TO_FASCODE, FASCODE_SLOTS, DialogueCoordiRecommender
from recsys.progress import ProgressCallback
from recsys.tasks.base import TaskService
from recsys.tasks.dialogue.data import (
    DialogueTaskError,
    compatibility_scorer,
    dialogue_data,
    n_training_dialogues,
    text_encoder,
)
from recsys.tasks.dialogue.messages import MessageCheck, check_message, dialogue_vectors, encoder_reads_only_english
from recsys.tasks.dialogue.requests import SlotRequest, conversation_request
from recsys.understand import apply as constraints_at_work
from recsys.utils import top_n

__all__ = ["FASCODE_SLOTS", "DialogueTaskError", "EncoderError", "MessageCheck", "ModelNotTrained", "Proposal",
           "Reply", "Stylist", "StylistService", "check_message", "weighted_kendall_tau"]

logger = logging.getLogger(__name__)


#: Up to this many training dialogues the page trains a missing model itself (about a minute on 2 cores).
IN_PLACE_TRAINING_DIALOGUES = 100
#: The model the chat starts with: the contrastive one, whose set score adds outfit compatibility.
DEFAULT_MODEL = "dialogue-infonce"


class ModelNotTrained(DialogueTaskError):
    """The chosen dialogue model is not trained (or is stale) for this catalog; the message says how to train it."""


@dataclass
class Proposal:
    """What the stylist answers after a user turn.

    Attributes
    ----------
    coordi : dict
        ``{slot: item row}``, the nearest item of each slot (the paper's predicted set).
    candidates : list of dict
        ``{"coordi": {slot: item row or -1}, "score": float, "rank": int, "true_rank": int or None}``,
        best first.
    seconds : float
        Time from the turns to the proposal (encoding, transfer, search and ranking).
    """

    coordi: dict
    candidates: list
    seconds: float
    #: One sentence per slot whose stated request no item meets (the closest item is proposed instead).
    unmet: list = field(default_factory=list)


class Stylist:
    """A fitted dialogue model served to a chat: encode the turns, propose a coordi-set, rank candidate sets.

    Parameters
    ----------
    model : DialogueCoordiRecommender
        Fitted.
    encoder : recsys.encoders.Encoder
        The text encoder the model's dialogue vectors were made with (``encoder.dim`` x 2 = its input width).
    compatibility : callable, optional
        ``compatibility(item rows) -> float`` for the set score (used when ``model.compat_weight`` is set).
    items : pandas.DataFrame, optional
        The catalog's items table, for what a conversation asks for (without it, proposals are the model's alone).
    unavailable : sequence of int, optional
        Catalog rows never proposed (items whose image could not be read, DESIGN section 6).
    """

    def __init__(self, model: DialogueCoordiRecommender, encoder, compatibility=None, items=None, unavailable=()):
        self.model = model
        self.encoder = encoder
        self.compatibility = compatibility
        self.items = items
        self.available = np.ones(len(model.item_slot_), dtype=bool)
        self.available[np.asarray(unavailable, dtype=np.int64)] = False

    def _nearest(self, vector: np.ndarray, k: int, request: SlotRequest | None) -> tuple[dict, list[str]]:
        # The model's nearest items of each slot, within what the conversation asked for that slot (DESIGN
        # section 14): items meeting it first, in the model's order; the closest ones, with a sentence, otherwise.
        # An unavailable item is never among them.
        scores = self.model.score(vector)[0]
        if request is None or self.items is None or request.empty:
            nearest = {}
            for s, slot in enumerate(FASCODE_SLOTS):  # the model's propose(), less the unavailable items
                mine = np.flatnonzero((self.model.item_slot_ == s) & self.available)
                nearest[slot] = [int(i) for i in mine[top_n(scores[mine], k)]]
            return nearest, []
        nearest, unmet = {}, []
        for s, slot in enumerate(FASCODE_SLOTS):
            allowed = (self.model.item_slot_ == s) & self.available
            mine = request.for_slot(slot)
            bonus = constraints_at_work.preference_bonus(self.items, mine)
            nearest[slot] = [int(r) for r in constraints_at_work.rank(scores, self.items, mine, k=k, allowed=allowed,
                                                                        bonus=bonus)]
            sentence = constraints_at_work.unmet_sentence(self.items, mine, allowed, where=f"in the {slot} slot")
            if sentence:
                unmet.append(sentence)
        return nearest, unmet

    def respond(self, turns: Sequence[dict], candidates: np.ndarray | None = None,
                true_ranks: Sequence[int] | None = None, n_alternatives: int = 3,
                request: SlotRequest | None = None) -> Proposal:
        """Propose a set for the dialogue so far and rank ``candidates`` (``(c, 4)`` item rows, -1 empty).

        Without candidates, the ``n_alternatives`` sets made of the 1st, 2nd, ... nearest item of every slot
        are ranked; neither the proposal nor these sets hold an unavailable item. ``request`` (what the conversation asked for, :func:`recsys.tasks.dialogue.requests.
        conversation_request`) limits each slot's nearest items to those meeting it where the catalog has any;
        the candidate sets of an evaluation dialogue are ranked by the model alone, as the protocol ranks them.

        Raises
        ------
        recsys.encoders.EncoderError
            When the text encoder cannot run.
        """
        started = time.perf_counter()
        vector = dialogue_vectors(self.encoder, [list(turns)])
        nearest, unmet = self._nearest(vector, n_alternatives, request)
        coordi = {slot: rows[0] for slot, rows in nearest.items() if rows}
        if candidates is None:
            width = min(len(rows) for rows in nearest.values())
            candidates = np.array([[nearest[s][j] for s in FASCODE_SLOTS] for j in range(width)], dtype=np.int64)
        candidates = np.asarray(candidates, dtype=np.int64)
        scores = self.model.set_scores(vector, candidates, self.compatibility)
        order = np.argsort(-scores, kind="stable")
        ranked = [{"coordi": {s: int(candidates[j][k]) for k, s in enumerate(FASCODE_SLOTS)},
                   "score": float(scores[j]), "rank": rank + 1,
                   "true_rank": int(true_ranks[j]) if true_ranks is not None else None}
                  for rank, j in enumerate(order)]
        return Proposal(coordi=coordi, candidates=ranked, seconds=time.perf_counter() - started, unmet=unmet)


@dataclass
class Reply:
    """The outcome of one chat step.

    Attributes
    ----------
    proposal : Proposal or None
        None when nothing was proposed (an unusable message, or no turns yet).
    turns : list of dict
        The dialogue after the step: the user's message (when usable) and the coordinator's answer appended.
    notes : list of str
        What the user should be told about their message (problems first), one sentence each.
    """

    proposal: Proposal | None
    turns: list
    notes: list = field(default_factory=list)
    #: What the conversation asked for, in the catalog's words ("black · jacket → outer"), "" when nothing.
    understood: str = ""
    #: ``(key, label)`` of each understood part, for the page's removable chips.
    parts: list = field(default_factory=list)


@dataclass(frozen=True)
class ModelSummary:
    """What the page says about a served model: its title, training seconds and the compatibility in its score."""

    name: str
    title: str
    fit_seconds: float
    compatibility: str


class StylistService(TaskService):
    """The Stylist chat of one catalog: its dialogues, the dialogue models of the store, and chat replies.

    Cheap to construct; the text encoder, the dialogues' split and each served model are made on first use and
    kept (the object is shared by every session of a catalog version, so first uses are locked).

    Parameters
    ----------
    catalog : Catalog
    artifacts : recsys.artifacts.Artifacts or None
        None when the catalog has no precomputed embeddings (every model method then raises
        :class:`DialogueTaskError` saying how to compute them).
    store : recsys.store.ModelStore
    settings : recsys.config.Settings, optional
        Its ``device`` is where the chat's text encoder runs (default: CPU).
    """

    default_model = DEFAULT_MODEL
    task = "dialogue"

    def __init__(self, catalog: Catalog, artifacts, store, settings=None):
        super().__init__(catalog, artifacts, store, settings)
        self._data = None
        self._stylists: dict[str, tuple[Stylist, str]] = {}

    # ------------------------------------------------------------------ the catalog's dialogues
    def has_dialogues(self) -> bool:
        """True when the catalog has dialogue records at all."""
        return bool(self.catalog.dialogues)

    def _split(self):
        with self._lock:
            if self._data is None:
                self._data = dialogue_data(self.catalog)
            return self._data

    def evaluation_ids(self) -> list[str]:
        """Ids of the evaluation dialogues (records with candidate coordi-sets), in file order."""
        return [r["dialogue_id"] for r in self._split().eval_records]

    def evaluation_turns(self, dialogue_id: str) -> list[dict]:
        """A copy of the turns of evaluation dialogue ``dialogue_id``.

        Raises
        ------
        KeyError
            For an id that is not an evaluation dialogue (one sentence).
        """
        record, _ = self._evaluation(dialogue_id)
        return [dict(t) for t in record.get("turns", [])]

    def skipped(self) -> list[tuple[str, str]]:
        """``(dialogue_id, reason)`` of each record left out because it names an unknown item."""
        return list(self._split().skipped)

    def _evaluation(self, dialogue_id: str):
        data = self._split()
        for record, rows in zip(data.eval_records, data.eval_candidates):
            if record["dialogue_id"] == dialogue_id:
                return record, rows
        raise KeyError(f"There is no evaluation dialogue {dialogue_id!r} in this catalog.")

    # ------------------------------------------------------------------ models
    def models(self) -> list[str]:
        """Names of the trainable dialogue models, the default first (label them with :meth:`title`)."""
        return self.trainable_models(self.default_model)

    def _require_artifacts(self):
        if self.artifacts is None:
            raise DialogueTaskError("The dialogue task needs the catalog's precomputed embeddings; run "
                                    f"scripts/precompute.py --catalog {self.catalog.root}.")
        return self.artifacts

    def status(self, name: str):
        """The store's :class:`recsys.store.ModelStatus` of model ``name`` (``ready``, or ``reason`` why not).

        Raises
        ------
        DialogueTaskError
            When the catalog has no precomputed embeddings.
        KeyError
            For an unknown model.
        """
        self._require_artifacts()
        return super().status(name)

    def trains_here(self) -> bool:
        """True when a missing model is small enough to train while the page waits (see
        :data:`IN_PLACE_TRAINING_DIALOGUES`); otherwise the page shows :meth:`train_command`."""
        return n_training_dialogues(self.catalog) <= IN_PLACE_TRAINING_DIALOGUES

    def train_command(self) -> str:
        """The command line that trains the dialogue models of this catalog."""
        return f"python scripts/train.py --catalog {self.catalog.root} --task dialogue"

    def train(self, name: str, progress: ProgressCallback | None = None) -> DialogueCoordiRecommender:
        """Train model ``name`` on the catalog's training dialogues and save it in the store.

        Raises
        ------
        DialogueTaskError
            When the catalog has no precomputed embeddings or too few training dialogues.
        recsys.encoders.EncoderError
            When the artifacts' text encoder cannot be built.
        """
        self._require_artifacts()
        with self._lock:
            self._stylists.pop(name, None)
        return self.store.fit("dialogue", name, progress=progress)

    def _encoder(self, spec: str):
        return text_encoder(spec, device=self.device)  # the process's encoder pool's

    def stylist(self, name: str | None = None) -> Stylist:
        """The :class:`Stylist` serving the trained model ``name`` (default :attr:`default_model`).

        Raises
        ------
        DialogueTaskError
            When the catalog has no precomputed embeddings.
        ModelNotTrained
            When the store has no trained, current model ``name`` (the sentence says why and how to train it).
        recsys.encoders.EncoderError
            When the model's text encoder cannot be built.
        """
        return self._served(name or self.default_model)[0]

    def _served(self, name: str) -> tuple[Stylist, str]:
        artifacts = self._require_artifacts()
        with self._lock:
            if name not in self._stylists:
                model = self.store.get("dialogue", name)
                if model is None:
                    reason = self.store.problem("dialogue", name) or "It has not been trained for this catalog yet."
                    raise ModelNotTrained(f"The {self.title(name)} model is not ready: {reason.rstrip('.')}; "
                                          f"train it with {self.train_command()}.")
                encoder = self._encoder(model.text_encoder or artifacts.text_encoder_spec)
                compatibility, compat_name = compatibility_scorer(self.catalog, artifacts, store=self.store)
                self._stylists[name] = (Stylist(model, encoder, compatibility, self.catalog.items,
                                               unavailable=self.unavailable_rows()), compat_name)
            return self._stylists[name]

    def summary(self, name: str | None = None) -> ModelSummary:
        """Title, training seconds and compatibility function of the served model ``name`` (raises as
        :meth:`stylist`)."""
        name = name or self.default_model
        stylist, compat_name = self._served(name)
        return ModelSummary(name, self.title(name), float(getattr(stylist.model, "fit_seconds_", 0.0)), compat_name)

    def _warm(self) -> None:
        self.evaluation_ids()
        self.summary()  # the default model, its text encoder and the compatibility model
        self.vocabulary

    def understand(self, turns: Sequence[dict], ignore: Sequence[str] = ()) -> SlotRequest:
        """What the user turns of ``turns`` ask for, slot by slot (:func:`conversation_request`), without the parts
        whose keys are in ``ignore``. Never raises."""
        return conversation_request(turns, self.vocabulary, ignore=ignore)

    # ------------------------------------------------------------------ the chat
    def check_message(self, text: str | None) -> MessageCheck:
        """:func:`check_message`, noting a non-English message when the artifacts' text encoder reads English only.

        Never raises.
        """
        spec = getattr(self.artifacts, "text_encoder_spec", "") or getattr(self.settings, "text_encoder", "")
        return check_message(text, english_only_encoder=encoder_reads_only_english(str(spec or "minilm")))

    def rank_candidates(self, turns: Sequence[dict], evaluation_id: str, model: str | None = None) -> Proposal:
        """Propose a set for ``turns`` and rank the candidate sets of evaluation dialogue ``evaluation_id``
        (each candidate carries its true rank).

        Raises
        ------
        KeyError
            For an unknown evaluation dialogue; otherwise as :meth:`stylist`.
        """
        record, rows = self._evaluation(evaluation_id)
        true_ranks = [int(c["rank"]) for c in record["candidates"]]
        return self.stylist(model).respond(turns, candidates=rows, true_ranks=true_ranks)

    def reply(self, message: str | None, history: Sequence[dict] = (), *, model: str | None = None,
              evaluation_id: str | None = None, ignore: Sequence[str] = (), understood: bool = True) -> Reply:
        """One chat step: check ``message``, add it to ``history``, propose a set and answer.

        ``message`` None answers ``history`` as it is (a loaded evaluation dialogue). With ``evaluation_id``,
        that dialogue's candidate sets are ranked; otherwise alternatives made of the nearest items are. The
        proposal meets what the conversation asked for (:meth:`understand`, less the parts in ``ignore``) where the
        catalog can; ``understood`` False proposes by the model alone (the report's rows without understanding).

        Raises
        ------
        DialogueTaskError, ModelNotTrained, recsys.encoders.EncoderError
            As :meth:`stylist`.
        KeyError
            For an unknown evaluation dialogue.
        """
        turns = [dict(t) for t in history]
        notes: list[str] = []
        if message is not None:
            check = self.check_message(message)
            notes = check.problems + check.notes
            if not check.usable:
                return Reply(None, turns, notes)
            turns.append({"speaker": "US", "text": check.text, "tags": []})
        if not turns:
            return Reply(None, turns, notes)
        request = self.understand(turns, ignore) if understood else None
        if request is not None:
            if any(c.slot for c in request.constraints):  # a follow-up about a garment named before
                notes = [n for n in notes if not n.startswith("The message names no slot")]
            notes += [n for n in request.notes if n not in notes]
        if evaluation_id:
            record, rows = self._evaluation(evaluation_id)
            true_ranks = [int(c["rank"]) for c in record["candidates"]]
            proposal = self.stylist(model).respond(turns, candidates=rows, true_ranks=true_ranks, request=request)
        else:
            proposal = self.stylist(model).respond(turns, request=request)
        if turns[-1].get("speaker") == "US":
            titles = [self.catalog.items.iloc[r].title for r in proposal.coordi.values() if r >= 0]
            text = "How about this coordi: " + ", ".join(titles) + "?"
            if proposal.unmet:
                text = " ".join(proposal.unmet) + " " + text
            turns.append({"speaker": "CO", "text": text, "tags": ["SUGGEST"]})
        summary = request.summary() if request is not None else ""
        return Reply(proposal, turns, notes, summary, request.parts() if request is not None else [])
