"""What the Complete-the-look page calls: ``OutfitService.complete(item | photo)`` and the board's helpers.

The service holds one catalog's artifacts and model store; it loads (or, when asked, trains) a compatibility model
through :class:`recsys.store.ModelStore` on first use and keeps one :class:`OutfitBuilder` per model. The page
passes the model name with every call, so switching models needs no new service. Everything here is plain
Python: the page's Streamlit caches live in :mod:`recsys.ui`.

The exception classes a page catches are re-exported here (``ArtifactError``, ``EncoderError``,
``ImageInputError``), with the builder's constants (``OPTIONAL_SLOTS``, ``QUERY``, ``SLOT_ORDER``).
"""

from __future__ import annotations

import numpy as np

from recsys.artifacts import ArtifactError
from recsys.encoders import EncoderError
from recsys.imageio import ImageInputError
from recsys.photo import CategoryGuess
from recsys.progress import ProgressCallback
from recsys.tasks.base import TaskService
from recsys.tasks.compat.builder import OPTIONAL_SLOTS, QUERY, SLOT_ORDER, Outfit, OutfitBuilder, Query
from recsys.tasks.compat.data import MIN_OUTFITS, NoOutfitsError, count_outfits, features_for_image, split_outfits

__all__ = ["OutfitService", "DEFAULT_MODEL", "Outfit", "Query", "OPTIONAL_SLOTS", "QUERY", "SLOT_ORDER", "MIN_OUTFITS",
           "ArtifactError", "EncoderError", "ImageInputError", "NoOutfitsError", "CategoryGuess"]

TASK = "compat"
#: The model the page opens with.
DEFAULT_MODEL = "type-aware"
#: Up to this many training outfits the app trains a missing model in place (well under a minute on 2 cores).
IN_PLACE_TRAINING_OUTFITS = 300


class OutfitService(TaskService):
    """Outfits around a catalog item or a photo, with one catalog's compatibility models.

    Parameters
    ----------
    catalog : Catalog
    artifacts : recsys.artifacts.Artifacts or None
        The precomputed embeddings (None when the catalog has none: only :meth:`enough_outfits` then works).
    store : recsys.store.ModelStore
        Where trained models are loaded from and saved to.
    settings : recsys.config.Settings, optional

    Every method taking ``model`` loads that model on first use (see :meth:`ensure_model`); a missing one is
    trained then, so ask :meth:`status` and :meth:`trains_in_place` first where training would be too slow.
    """

    task = TASK

    def __init__(self, catalog, artifacts, store, settings=None):
        super().__init__(catalog, artifacts, store, settings)
        self._builders: dict[str, OutfitBuilder] = {}
        self._reference: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ what the catalog allows
    def enough_outfits(self) -> bool:
        """True when the catalog has the :data:`MIN_OUTFITS` outfits a compatibility model needs."""
        return count_outfits(self.catalog) >= MIN_OUTFITS

    # ------------------------------------------------------------------ models
    def models(self) -> list[str]:
        """The trainable models the page offers, :data:`DEFAULT_MODEL` first."""
        return self.trainable_models(DEFAULT_MODEL)

    def n_training_outfits(self) -> int:
        """How many outfits a model of this catalog trains on.

        Raises
        ------
        NoOutfitsError
            When the catalog has too few outfits.
        """
        return len(split_outfits(self.catalog, self.store.seed)[0])

    def trains_in_place(self) -> bool:
        """True when a missing model trains quickly enough to do it while the user waits."""
        return self.n_training_outfits() <= IN_PLACE_TRAINING_OUTFITS

    def training_hint(self, model: str) -> str:
        """One sentence: ``model`` is not trained, and the command that trains it."""
        return (f"The {model} compatibility model is not trained for this catalog yet "
                f"({self.n_training_outfits():,} training outfits take a few minutes); run: "
                f"python scripts/train.py --catalog {self.catalog.root} --task compat")

    def ensure_model(self, model: str, progress: ProgressCallback | None = None):
        """The fitted ``model``: the store's saved one, else trained now on this catalog and saved.

        Raises
        ------
        KeyError
            For a model the registry does not know.
        NoOutfitsError, ValueError
            When the catalog cannot train it (one sentence).
        ArtifactError
            When the catalog has no artifacts.
        """
        return self._builder(model, progress).model

    def _builder(self, model: str, progress: ProgressCallback | None = None) -> OutfitBuilder:
        with self._lock:
            if model not in self._builders:
                self.require_artifacts()
                fitted = self.store.get_or_fit(TASK, model, progress=progress)
                slots = self.catalog.items["slot"].to_numpy().astype(str)
                slots[self.unavailable_rows()] = ""  # an item whose image could not be read fills no slot
                self._builders[model] = OutfitBuilder(fitted, slots)
            return self._builders[model]

    # ------------------------------------------------------------------ queries
    def query(self, model: str, *, item: str | None = None, photo: np.ndarray | None = None,
              category: str | None = None) -> Query:
        """What to complete: a catalog ``item`` (id), or a ``photo`` (its ``(d,)`` image vector) of ``category``.

        Raises
        ------
        ValueError
            When neither or both are given, or the photo's category is missing or not in the catalog
            (:class:`recsys.tasks.base.ItemUnavailableError` for an item whose image could not be read).
        KeyError
            For an unknown item id.
        """
        if (item is None) == (photo is None):
            raise ValueError("Give either a catalog item or a photo to complete.")
        if item is not None:
            row = int(self.catalog.indices([item])[0])
            self.require_available(item)
            return Query(slot=str(self.catalog.items["slot"].iat[row]), row=row)
        slots = self.catalog.items.loc[self.catalog.items["category"] == category, "slot"]
        if slots.empty:
            raise ValueError(f"The catalog has no category {category!r}; choose one of {', '.join(self.catalog.categories)}.")
        slot = str(slots.iloc[0])
        fitted = self.ensure_model(model)
        embedding = fitted.transform(features_for_image(photo, self.artifacts))[0]
        return Query(slot=slot, embedding=embedding, type_code=fitted.type_code(slot))

    # ------------------------------------------------------------------ outfits
    def missing_slots(self, model: str, query: Query) -> list[str]:
        """Required slots the catalog has no items for, so no outfit can be completed around ``query``."""
        return self._builder(model).missing_required_slots(query.slot)

    def complete(self, model: str, *, item: str | None = None, photo: np.ndarray | None = None,
                 category: str | None = None, query: Query | None = None, optional=OPTIONAL_SLOTS) -> Outfit:
        """The best-scoring outfit around a catalog ``item``, a ``photo`` of ``category``, or a built ``query``.

        Parameters
        ----------
        model : str
            A trainable compat model of the registry.
        optional : sequence of str
            Optional slots (``outer``, ``accessory``) to include when the catalog has items for them.

        Raises
        ------
        ValueError
            When the catalog lacks a slot the outfit needs (the message names it), or for a bad query.
        """
        query = query if query is not None else self.query(model, item=item, photo=photo, category=category)
        return self._builder(model).assemble(query, optional=optional)

    def outfit(self, model: str, query: Query, items: dict) -> Outfit:
        """``items`` (``slot -> row``) scored as a whole and per item."""
        return self._builder(model).score_outfit(query, items)

    def reroll(self, model: str, query: Query, outfit: Outfit, locked_slots=(), shown: dict | None = None,
               optional=OPTIONAL_SLOTS) -> tuple[Outfit, dict]:
        """A new outfit keeping ``locked_slots``; the others avoid what was ``shown`` (returned updated).

        Raises
        ------
        ValueError
            When nothing fits the locked items.
        """
        return self._builder(model).reroll(query, outfit, locked_slots=locked_slots, shown=shown, optional=optional)

    def swap(self, model: str, query: Query, outfit: Outfit, slot: str) -> Outfit:
        """``outfit`` with ``slot`` replaced by the next best item given the rest."""
        return self._builder(model).swap_next_best(query, outfit, slot)

    def alternatives(self, model: str, query: Query, outfit: Outfit, slot: str, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` best items for ``slot`` with the rest kept: ``[(row, whole-set score)]``."""
        return self._builder(model).alternatives(query, outfit, slot, k=k)

    def best_matches(self, model: str, query: Query, k: int = 6) -> dict:
        """The ``k`` items of every other slot most compatible with the query: ``{slot: [(row, score)]}``."""
        return self._builder(model).top_k(query, k=k)

    def better_than(self, model: str, score: float) -> float | None:
        """Share of random outfits scoring below ``score`` (None when the catalog has no complete template)."""
        with self._lock:
            if model not in self._reference:
                self._reference[model] = self._builder(model).reference_scores()
            reference = self._reference[model]
        return float((reference < score).mean()) if len(reference) else None
