"""What every task service shares: the catalog, its artifacts and model store, and the model labels and status.

Pages reach a service through :func:`recsys.ui.caches.task_service`, which builds one per catalog version and shares
it between browser sessions, so services guard their lazy state with ``self._lock``.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from recsys.artifacts import load_artifacts
from recsys.models.registry import list_models, model_title
from recsys.photo_store import photo_reader, read_photo

logger = logging.getLogger(__name__)


class ItemUnavailableError(ValueError):
    """A catalog item whose image could not be read when the embeddings were computed; the message says so in one
    sentence."""


class TaskService:
    """Base of the task facades (``SimilarService``, ``OutfitService``, ``PersonalService``, ``StylistService``,
    ``SearchService``).

    Parameters
    ----------
    catalog : recsys.catalog.Catalog
    artifacts : recsys.artifacts.Artifacts or None
        None when the catalog has no usable embeddings; :meth:`require_artifacts` then says why.
    store : recsys.store.ModelStore
    settings : recsys.config.Settings, optional
        Its ``device`` is where encoders run.
    """

    #: The task name of :data:`recsys.tasks.TASKS`; subclasses set it.
    task = ""

    def __init__(self, catalog, artifacts, store, settings=None):
        self.catalog = catalog
        self.artifacts = artifacts
        self.store = store
        self.settings = settings
        self._lock = threading.RLock()
        self._vocabulary = None

    @property
    def vocabulary(self):
        """The catalog's words (:class:`recsys.understand.Vocabulary`) for reading what people type, built on first
        use. Never raises."""
        from recsys.understand import Vocabulary

        with self._lock:
            if self._vocabulary is None:
                self._vocabulary = Vocabulary.from_items(self.catalog.items)
            return self._vocabulary

    def require_artifacts(self):
        """The artifacts.

        Raises
        ------
        recsys.artifacts.ArtifactError
            When the catalog has no usable precomputed embeddings: the sentence says why and which command makes
            them.
        """
        if self.artifacts is None:
            with self._lock:
                if self.artifacts is None:
                    self.artifacts = load_artifacts(self.catalog)  # raises the sentence that says what is wrong
        return self.artifacts

    def unavailable_rows(self) -> np.ndarray:
        """``(m,)`` int64 catalog rows of the items whose image could not be read when the embeddings were computed
        (:attr:`recsys.artifacts.Artifacts.unavailable`): no page offers them as a result (DESIGN section 6). Empty
        when the catalog has no artifacts."""
        if self.artifacts is None:
            return np.zeros(0, dtype=np.int64)
        return self.artifacts.unavailable_rows

    def require_available(self, item_id: str) -> None:
        """Nothing when ``item_id`` can be a query or a result.

        Raises
        ------
        ItemUnavailableError
            One sentence naming the item, when its image could not be read when the embeddings were computed.
        """
        reason = self.artifacts.unavailable.get(str(item_id)) if self.artifacts is not None else None
        if reason:
            raise ItemUnavailableError(f"Item {item_id} is unavailable: {reason} when the embeddings were computed; "
                                       f"replace its image and compute them again.")

    @property
    def photo_encoder_spec(self) -> str:
        """The image encoder spec a photo must be embedded with (the artifacts' own).

        Raises
        ------
        recsys.artifacts.ArtifactError
            When the catalog has no artifacts.
        """
        return self.require_artifacts().image_encoder_spec

    @property
    def device(self) -> str | None:
        """Where this service's encoders run: the settings' device (None: :func:`recsys.encoders.create_encoder`
        then reads ``RECSYS_DEVICE`` itself)."""
        return getattr(self.settings, "device", None)

    def read_photo(self, image_vector, image=None):
        """The :class:`recsys.photo.PhotoReading` of an uploaded photo: category (with confidence and runner-up),
        slot and colour in this catalog's vocabulary, from its ``(d,)`` catalog embedding and, when given, the decoded
        ``image`` (the classifier's evidence and the colour need the pixels). The one reader every upload goes
        through (:func:`recsys.photo_store.read_photo`).

        Raises
        ------
        recsys.artifacts.ArtifactError
            When the catalog has no artifacts.
        ValueError
            When ``image_vector`` does not have the catalog's dimension.
        """
        self.require_artifacts()
        if image is None:
            return photo_reader(self.store, self.device).read(image_vector)
        return read_photo(self.store, image, image_vector, self.device)

    def trainable_models(self, default: str | None = None) -> list[str]:
        """The task's trainable models in registry order, ``default`` first when given."""
        names = list_models(self.task, trainable=True)
        return sorted(names, key=lambda n: n != default) if default else names

    def warm(self) -> None:
        """Load now what the page's first result needs (models, encoders), so the first visit does not wait for it;
        the app calls it in the background at server start. Never raises: a problem shows when the page asks."""
        try:
            self._warm()
        except Exception as exc:  # the page reports it in one sentence when it needs the same thing
            logger.info("warming the %s service failed: %s", type(self).__name__, exc)

    def _warm(self) -> None:
        """What :meth:`warm` loads; nothing by default (the page's own loads take well under a second)."""

    def title(self, model: str) -> str:
        """The registry's label of ``model``."""
        return model_title(self.task, model)

    def status(self, model: str):
        """The store's :class:`recsys.store.ModelStatus` of ``model`` (loads it when it is saved)."""
        return self.store.model_status(self.task, model)


def warm_in_background(services) -> threading.Thread:
    """Start a daemon thread that calls :meth:`TaskService.warm` of each of ``services`` in turn; returns it."""
    def work() -> None:
        for service in services:
            service.warm()

    thread = threading.Thread(target=work, name="recsys-warm-up", daemon=True)
    thread.start()
    return thread

