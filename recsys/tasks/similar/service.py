"""What the Similar items page calls: ``SimilarService.similar(item | photo)`` and the catalog map around it.

The service holds one catalog's artifacts and model store. The model is the store's saved ``visual-similarity``
index when there is one for these artifacts, else one built in memory on first use (building an exact index is
a copy of the vectors, so the page never waits for training and never writes into the catalog). A photo's
category and colour come from the studio's one photo reader, :meth:`TaskService.read_photo`. Everything here is
plain Python: the page's Streamlit caches live in :mod:`recsys.ui`.

The exception classes the page catches are re-exported here (``ArtifactError``, ``EncoderError``,
``ImageInputError``), with :class:`CategoryGuess`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.artifacts import ArtifactError
from recsys.encoders import EncoderError
from recsys.imageio import ImageInputError
from recsys.photo import CategoryGuess, PhotoReading
from recsys.photo_store import classifier, photo_reader
from recsys.tasks.base import ItemUnavailableError, TaskService  # noqa: F401  (the page catches it)
from recsys.tasks.similar import data
from recsys.tasks.similar.models import TASK

__all__ = ["SimilarService", "SimilarResult", "MODEL", "ArtifactError", "EncoderError", "ImageInputError",
           "CategoryGuess", "PhotoReading", "REASON_COLUMNS"]

#: The registered model the page serves.
MODEL = "shopper-similarity"
#: What a result may share with its query, as "why similar" chips: (items column, chip text).
REASON_COLUMNS = (("category", "same category"), ("color", "same colour"), ("pattern", "same pattern"),
                  ("material", "same material"), ("style", "same style"))
#: Nearest neighbours whose map positions place a photo on the catalog map (t-SNE cannot place new points).
MAP_NEIGHBOURS = 5


@dataclass(frozen=True)
class SimilarResult:
    """The answer to one query.

    Attributes
    ----------
    positions : ndarray of int, shape (m,)
        Catalog rows of the results, most similar first (``m <= k``: a small category may have fewer items).
    scores : ndarray of float32, shape (m,)
        Their cosine similarity to the query (the look; the ranking also weighs colour and pattern).
    item_ids : list of str
    query_index : int or None
        The query's catalog row (None for a photo).
    category : str or None
        The category searched (None: every category).
    query_xy : ndarray of shape (2,) or None
        Where the query sits on the catalog map: its own point, or for a photo the mean of its
        :data:`MAP_NEIGHBOURS` nearest results (None when there are none).
    reasons : list of list of str
        Per result, the "why similar" chips: what it shares with the query (:data:`REASON_COLUMNS`).
    """

    positions: np.ndarray
    scores: np.ndarray
    item_ids: list
    query_index: int | None
    category: str | None
    query_xy: np.ndarray | None
    reasons: list


class SimilarService(TaskService):
    """Similar items of a catalog item or an uploaded photo, for one catalog.

    Parameters
    ----------
    catalog : Catalog
    artifacts : recsys.artifacts.Artifacts or None
        The precomputed embeddings; None when the catalog has none (:meth:`require_artifacts` then says why).
    store : recsys.store.ModelStore or None
        Where a saved ``visual-similarity`` model is looked up.
    settings : recsys.config.Settings, optional

    The constructor is cheap; the index and the photo predictor are built on first use (thread-safe: one service
    serves every browser session of a catalog).
    """

    task = TASK

    def __init__(self, catalog, artifacts, store, settings=None):
        super().__init__(catalog, artifacts, store, settings)
        self._model = None

    def model(self):
        """The fitted :class:`recsys.models.similar.SimilarItems` (saved one if current, else built in memory).

        Raises
        ------
        ArtifactError
            When the catalog has no artifacts.
        """
        with self._lock:
            if self._model is None:
                artifacts = self.require_artifacts()
                saved = self.store.get(TASK, MODEL) if self.store is not None else None
                self._model = saved if saved is not None else data.fit_index(self.catalog, artifacts, MODEL)
            return self._model

    def index_note(self) -> str | None:
        """The sentence saying that the configured index backend (``RECSYS_INDEX_BACKEND``, ``RECSYS_MILVUS_URI``)
        could not be used and the in-process index serves instead; None when it could.

        Raises
        ------
        ArtifactError
            When the catalog has no artifacts.
        """
        return getattr(getattr(self.model(), "index_", None), "backend_note_", None)

    def _warm(self) -> None:
        # A first upload otherwise waits for the photo reader (colour prototypes, the classifier's label vectors) and
        # the ImageNet classifier, on top of the model every query needs.
        self.model()
        photo_reader(self.store, self.device)
        classifier(self.store, self.device)

    # ------------------------------------------------------------------ queries
    def similar(self, item: str | int | None = None, photo: np.ndarray | None = None, *, k: int = 12,
                same_category: bool = True, category: str | None = None, colour: str | None = None,
                colour_weight: float | None = None) -> SimilarResult:
        """The ``k`` items most similar to a catalog ``item`` (id or row) or a ``photo`` (its ``(d,)`` image vector).

        ``same_category`` keeps results to the query's category: the item's own, or for a photo ``category``
        (default: the predicted one, :meth:`read_photo`). Items of the query's colour (the item's own, or for a photo
        ``colour``, as read or corrected) rank first by ``colour_weight`` (cosine units; default the model's). A
        catalog item is never its own result.

        Raises
        ------
        ValueError
            Unless exactly one of ``item`` and ``photo`` is given, or when ``photo`` has another dimension than the
            artifacts.
        KeyError
            For an item id the catalog does not have.
        ItemUnavailableError
            For an item whose image could not be read (never a result either).
        ArtifactError
            When the catalog has no artifacts.
        """
        if (item is None) == (photo is None):
            raise ValueError("Ask for the items similar to either a catalog item or a photo, not both or neither.")
        model = self.model()
        map2d = self.require_artifacts().map2d
        if item is not None:
            row = self._row(item)
            self.require_available(str(self.catalog.items["item_id"].iat[row]))
            positions, scores = model.similar_to_item(row, k=k, same_category=same_category,
                                                      colour_weight=colour_weight)
            searched = str(self.catalog.items["category"].iat[row]) if same_category else None
            query_xy = np.asarray(map2d[row])
            query = self.catalog.items.iloc[row].to_dict()
        else:
            row = None
            wanted = category or self.read_photo(photo).category.category
            searched = wanted if same_category else None
            positions, scores = model.similar_to_vector(photo, k=k, category=searched, colour=colour,
                                                        colour_weight=colour_weight)
            query_xy = np.asarray(map2d[positions[:MAP_NEIGHBOURS]]).mean(axis=0) if len(positions) else None
            query = {"category": wanted, "color": colour}
        item_ids = list(self.catalog.items["item_id"].iloc[positions])
        return SimilarResult(positions, scores, item_ids, row, searched, query_xy, self.reasons(query, positions))

    def reasons(self, query: dict, positions) -> list[list[str]]:
        """Per catalog row in ``positions``, the chips of :data:`REASON_COLUMNS` it shares with ``query`` (a dict of
        column values; a missing or empty value shares nothing)."""
        items = self.catalog.items
        columns = [(c, text) for c, text in REASON_COLUMNS if c in items.columns and query.get(c) not in (None, "")]
        return [[text for c, text in columns if str(items[c].iat[int(p)]) == str(query[c])] for p in positions]

    def _row(self, item: str | int) -> int:
        if isinstance(item, (int, np.integer)):
            if not 0 <= int(item) < len(self.catalog):
                raise KeyError(f"The catalog has no row {item}; it has {len(self.catalog)} items.")
            return int(item)
        if item not in self.catalog.id_to_index:
            raise KeyError(f"The catalog {self.catalog.name} has no item {item!r}.")
        return self.catalog.id_to_index[item]

    # ------------------------------------------------------------------ the catalog map
    def embedding_map(self, result: SimilarResult | None = None, query_label: str = "query"):
        """A plotly figure of the catalog map (t-SNE of the image embeddings, coloured by category), with the
        ``result``'s query as a star and its results ringed (:func:`recsys.viz.embedding_map`).

        Raises
        ------
        ArtifactError
            When the catalog has no artifacts.
        """
        from recsys import viz

        items = self.catalog.items
        return viz.embedding_map(self.require_artifacts().map2d, items["category"], items["title"],
                                 query_xy=None if result is None else result.query_xy,
                                 result_positions=() if result is None else np.asarray(result.positions),
                                 query_label=query_label)
