"""What the For you page calls: :class:`PersonalService` recommends items to a user (or to a new user folded in
from liked items) and explains a recommended item (region scores, score terms, attributes shared with the history).

Models come from the :class:`recsys.store.ModelStore`; a model missing for this catalog is trained here on first
use when the catalog is small enough (about a minute on two cores), otherwise :class:`ModelNotReady` names the
command that trains it. The exceptions a page catches are importable from this module.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from recsys.artifacts import ArtifactError, load_artifacts
from recsys.catalog import ATTRIBUTE_COLUMNS, Catalog, CatalogError
from recsys.models.pairwise import ExplanationUnavailable, UnknownUserError
from recsys.progress import ProgressCallback
from recsys.tasks.base import TaskService
from recsys.tasks.personal.data import PersonalData, interaction_data
from recsys.tasks.personal.models import TASK
from recsys.text import clean_text, normalize_text, quote
from recsys.utils import top_n

__all__ = ["PersonalService", "Recommendation", "Explanation", "ModelNotReady", "ArtifactError", "CatalogError",
           "ExplanationUnavailable", "UnknownUserError", "shared_attributes", "TRAIN_IN_PLACE_LIMIT"]

logger = logging.getLogger(__name__)

#: Above this many interactions a missing model is not trained in place (more than about a minute on two cores).
TRAIN_IN_PLACE_LIMIT = 60_000
#: The longest user id read (characters); ids are short, so a longer text cannot name a user.
MAX_USER_ID_CHARS = 200


class ModelNotReady(RuntimeError):
    """A model is not trained for this catalog and is too large to train while the page waits; one sentence."""


@dataclass
class Recommendation:
    """A ranked list for one user (or a folded-in new user).

    Attributes
    ----------
    model : str
        The registry name of the model that ranked it.
    item_idx, scores : ndarray ``(n,)``
        Item rows, best first, and their scores.
    user_vector : ndarray ``(d,)`` or None
        The user's vector; None when the list fell back to popularity (a user without history).
    history : ndarray of int
        The user's items (or the liked items of a new user), oldest first.
    note : str, optional
        Says when the list fell back to popularity.
    """

    model: str
    item_idx: np.ndarray
    scores: np.ndarray
    user_vector: np.ndarray | None
    history: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    note: str | None = None


@dataclass
class Explanation:
    """Why an item was recommended: its score, its region scores (or why there are none), score terms and the
    attributes it shares with the history."""

    item_idx: int
    score: float | None
    regions: np.ndarray | None
    region_meaning: str | None
    problem: str | None
    terms: dict[str, float]
    shared: list[str]


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


class PersonalService(TaskService):
    """Personalized top-N lists and their explanations for one catalog (cheap to build: everything loads lazily).

    Parameters
    ----------
    catalog : Catalog
    artifacts : recsys.artifacts.Artifacts or None
        None when the catalog has no usable embeddings (:meth:`check` then says why).
    store : recsys.store.ModelStore
    settings : recsys.config.Settings, optional
    """

    task = TASK

    def __init__(self, catalog: Catalog, artifacts, store, settings=None):
        super().__init__(catalog, artifacts, store, settings)
        self._data: PersonalData | None = None
        self._truth = None
        self._model_locks: dict[str, threading.Lock] = {}

    # ------------------------------------------------------------------ what the catalog offers
    def check(self) -> None:
        """Raise when the catalog cannot be personalized.

        Raises
        ------
        CatalogError
            When the catalog has no interactions.
        ArtifactError
            When it has no precomputed embeddings.
        """
        if self.catalog.interactions is None or self.catalog.interactions.empty:
            raise CatalogError("This catalog has no interactions (interactions.parquet), so there is nothing to "
                               "personalize.")
        if self.artifacts is None:
            load_artifacts(self.catalog)  # raises the ArtifactError whose sentence says why they are unusable
            raise ArtifactError("The catalog's precomputed embeddings changed; reload the page.")

    @property
    def data(self) -> PersonalData:
        """The catalog's interactions and their leave-one-out split (computed once; raises ``CatalogError``)."""
        with self._lock:
            if self._data is None:
                self._data = interaction_data(self.catalog)
            return self._data

    def models(self) -> list[str]:
        """The models users can pick, best first (the registry's trainable personal models)."""
        return self.trainable_models()

    def users(self) -> list[str]:
        """Ids of the users with history, sorted."""
        return list(self.data.user_ids)

    def known_users(self) -> set[str]:
        """Users with history plus, on the built-in world, those the world knows without history."""
        known = set(self.data.user_ids)
        truth = self._world_truth()
        return known | set(truth.user_ids) if truth is not None else known

    def user_row(self, user_id: str) -> int | None:
        """Row of ``user_id``; None for a known user without history.

        Raises
        ------
        UnknownUserError
            For an id the catalog does not know (one sentence).
        """
        cleaned = clean_text(user_id, what="user id", max_chars=MAX_USER_ID_CHARS,
                             empty="The user id is empty; type one of the ids listed in the box's help.")
        if not cleaned.usable:
            raise UnknownUserError(cleaned.problem)
        user_id = cleaned.text
        if user_id in self.data.user_index:
            return self.data.user_index[user_id]
        if user_id in self.known_users():
            return None
        raise UnknownUserError(f"There is no user '{quote(user_id)}' in this catalog; pick one from the list.")

    def history(self, user_id: str) -> np.ndarray:
        """The user's items (rows), oldest first; empty for a user without history (raises ``UnknownUserError``)."""
        row = self.user_row(user_id)
        return np.zeros(0, dtype=np.int64) if row is None else self.data.histories[row]

    def cold_items(self) -> np.ndarray:
        """``(n_items,)`` bool: items nobody interacted with in the training split (the cold-start items)."""
        return self.data.cold_items

    def true_tastes(self, user_id: str) -> dict | None:
        """The built-in world's readable tastes of ``user_id`` (cleaned as :meth:`user_row` cleans it), None
        elsewhere or for an unknown user."""
        truth = self._world_truth()
        if truth is None:
            return None
        try:
            return truth.tastes_of(normalize_text(user_id))
        except KeyError:
            return None

    def _world_truth(self):
        if not self.catalog.has_truth:
            return None
        with self._lock:
            if self._truth is None:
                from recsys.tasks.personal.protocol import world_truth

                try:
                    self._truth = world_truth(self.catalog)
                except (CatalogError, OSError, KeyError) as exc:  # a damaged truth only hides the true tastes
                    logger.warning("cannot read the world's truth of %s: %s", self.catalog.name, exc)
                    self._truth = False
            return self._truth or None

    # ------------------------------------------------------------------ models
    def can_train_here(self) -> bool:
        """True when a missing model is trained while the page waits (at most :data:`TRAIN_IN_PLACE_LIMIT`)."""
        interactions = self.catalog.interactions
        return interactions is not None and len(interactions) <= TRAIN_IN_PLACE_LIMIT

    def model(self, name: str, progress: ProgressCallback | None = None):
        """The trained model ``name``: loaded from the store, or trained and saved there first.

        Raises
        ------
        ModelNotReady
            When it is not trained and the catalog is too large to train it here (one sentence with the command).
        KeyError
            For a name the registry does not know.
        ArtifactError, CatalogError
            When the catalog lacks what the model reads.
        """
        with self._lock:
            lock = self._model_locks.setdefault(name, threading.Lock())
        with lock:  # two sessions opening the page on a fresh catalog must not train the same model twice
            model = self.store.get(TASK, name)
            if model is not None:
                return model
            if not self.can_train_here():
                problem = self.store.problem(TASK, name)
                why = f" ({problem})" if problem else ""
                raise ModelNotReady(f"{self.title(name)} is not trained for this catalog yet{why}; run "
                                    f"`python scripts/train.py --catalog {self.catalog.root} --task personal`.")
            logger.info("training %s/%s in place", TASK, name)
            return self.store.fit(TASK, name, progress=progress)

    # ------------------------------------------------------------------ recommending
    def recommend(self, user: str | None = None, *, liked_items: Sequence | None = None, n: int = 12,
                  model: str | None = None, only_cold: bool = False) -> Recommendation:
        """Top-``n`` items for ``user`` (an id), or for a new user folded in from ``liked_items`` (ids or rows).

        A known user without history gets the most popular items, and the note says so. Items the user already
        has, and items whose image could not be read (:meth:`unavailable_rows`), are never recommended; ``only_cold``
        ranks the cold-start items only.

        Raises
        ------
        UnknownUserError
            For an unknown user id.
        ValueError
            When ``liked_items`` is empty, or neither a user nor liked items are given.
        ModelNotReady
            As :meth:`model`.
        """
        name = model or self.models()[0]
        data = self.data
        if liked_items is not None:
            liked = self._rows(liked_items)
            if len(liked) == 0:
                raise ValueError("Pick at least one item you like to get recommendations as a new user.")
            row = None
        elif user is None:
            raise ValueError("Name a user, or pick items you like, to get recommendations.")
        else:
            row = self.user_row(user)
        fitted = self.model(name)
        pool = np.flatnonzero(data.cold_items) if only_cold else np.arange(data.n_items)
        if liked_items is not None:
            vector = fitted.fold_in(liked)
            scores, seen, note, history = fitted.score_vectors(vector), liked, None, liked
        elif row is None:
            counts = np.asarray(data.all_interactions().sum(axis=0)).ravel().astype(np.float64)
            vector, scores, seen = None, counts, np.zeros(0, dtype=np.int64)
            history, note = seen, "This user has no history yet, so these are the most popular items."
        else:
            vector = fitted.user_vectors(row)[0]
            scores, seen, note = fitted.score_vectors(vector), data.histories[row], None
            history = seen
        pool = np.setdiff1d(np.setdiff1d(pool, seen), self.unavailable_rows())  # never an item without an image
        order = pool[top_n(scores[pool], n)]
        return Recommendation(name, order, scores[order], vector, np.asarray(history, dtype=np.int64), note)

    def _rows(self, items: Sequence) -> np.ndarray:
        values = np.asarray(list(items))
        if len(values) and values.dtype.kind not in "iu":
            return np.asarray(self.catalog.indices([str(v) for v in values]), dtype=np.int64)
        return values.astype(np.int64)

    # ------------------------------------------------------------------ explaining
    def explains_regions(self, recommendation: Recommendation) -> bool:
        """True when the list's model can show region scores for its items (never for a popularity fallback)."""
        if recommendation.user_vector is None:
            return False
        fitted = self.model(recommendation.model)
        return bool(fitted.explains_regions and fitted.can_explain(self.artifacts))

    def region_scores(self, recommendation: Recommendation, item_idx: int) -> np.ndarray | None:
        """Region scores ``(h, w)`` of an item of the list, None when its model cannot show them."""
        if not self.explains_regions(recommendation):
            return None
        try:
            return self.model(recommendation.model).region_scores(recommendation.user_vector, int(item_idx),
                                                                  self.artifacts)
        except ExplanationUnavailable:
            return None

    def explain(self, recommendation: Recommendation, item_idx: int) -> Explanation:
        """Why ``item_idx`` is in ``recommendation``: score, region scores (or the sentence saying why there are
        none), score terms and the attributes it shares with the history.

        Raises
        ------
        ModelNotReady
            As :meth:`model`.
        """
        idx = int(item_idx)
        shared = shared_attributes(self.catalog, recommendation.history, idx)
        vector = recommendation.user_vector
        if vector is None:
            return Explanation(idx, None, None, None, "Popular items carry no personal explanation.", {}, shared)
        fitted = self.model(recommendation.model)
        regions, problem = None, None
        try:
            regions = fitted.region_scores(vector, idx, self.artifacts)
        except ExplanationUnavailable as exc:
            problem = str(exc)
        score = float(fitted.score_vectors(vector, [idx])[0])
        return Explanation(idx, score, regions, fitted.region_meaning, problem, fitted.score_terms(vector, idx), shared)
