"""What the Text-guided search page calls: :class:`SearchService` (a reference plus stacked captions, or free text,
against a catalog's gallery), the caption checks, and the exceptions the page shows as sentences.

The service loads its models from the :class:`recsys.store.ModelStore` lazily and trains the missing ones through
it (:meth:`SearchService.train`, with progress); every bad input becomes a note on the result, not an exception.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from recsys.artifacts import ArtifactError
from recsys.catalog import ATTRIBUTE_COLUMNS, Catalog
from recsys.encoders import Encoder, EncoderError
from recsys.imageio import ImageInputError
from recsys.index import VectorIndex
from recsys.models.composed import ComposedModel, compose_turns
from recsys.models.registry import list_models
from recsys.progress import ProgressCallback
from recsys.tasks.base import ItemUnavailableError, TaskService
from recsys.tasks.composed import data
from recsys.tasks.composed.models import PAGE_MODELS
from recsys.text import clean_text, has_words, quote
from recsys.understand import understand
from recsys.understand import apply as constraints_at_work
from recsys.utils import l2_normalize

logger = logging.getLogger(__name__)

__all__ = ["PAGE_MODELS", "ArtifactError", "EncoderError", "ImageInputError", "ItemUnavailableError", "SearchResult",
           "SearchService", "SearchUnavailable", "attribute_moves", "caption_notes", "make_index"]

#: The fallbacks when a query has no usable caption, or no reference.
IMAGE_ONLY, TEXT_ONLY = "image-only", "text-only"
#: The composition model offered first.
DEFAULT_MODEL = "combiner"


class SearchUnavailable(RuntimeError):
    """The search asked for cannot run on this catalog (one sentence saying why and what to do)."""


# ---------------------------------------------------------------------- checking what the user typed
#: The longest caption read (characters); far beyond any text encoder's context, so a cut loses nothing it reads.
MAX_CAPTION_CHARS = 2000
_ENGLISH_HINT = "the text encoder was trained on English, so it may match poorly"


def caption_notes(text: str, encoder: Encoder, max_chars: int = MAX_CAPTION_CHARS) -> tuple[str | None, list[str]]:
    """Clean one caption (:func:`recsys.text.clean_text`) and say what is unusual about it.

    Returns ``(text to encode or None, notes)``: None when the caption has nothing to encode (empty, only spaces or
    invisible characters, only punctuation, only emoji), with a note saying why; text longer than ``max_chars``
    characters is cut there, and text longer than the encoder's context is kept (the encoder cuts it), each with a
    note. Composed and decomposed spellings (NFC, NFD) give the same text. ``encoder`` needs ``truncates(text)`` and
    ``max_tokens``. Never raises.
    """
    cleaned = clean_text(text, what="caption", max_chars=max_chars,
                         empty="The caption is empty (only spaces or invisible characters); type a change, e.g. "
                               "\u201cis red\u201d.")
    if not cleaned.usable:
        return None, [cleaned.problem]
    text = cleaned.text
    if not has_words(text):
        return None, [f"The caption \u201c{quote(text)}\u201d has no words (only punctuation or symbols), so it was ignored."]
    notes = [cleaned.note] if cleaned.note else []
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
    """Attributes that differ between the reference and a result: ``{attribute: (reference value, result value)}``.

    Raises
    ------
    KeyError
        For an item id the catalog does not have.
    """
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


def make_index(vectors: np.ndarray, categories=None) -> VectorIndex:
    """The studio's FAISS index over ``(n, d)`` gallery vectors (inner product; exact or approximate by size),
    filterable by category."""
    return VectorIndex().fit(vectors, categories=categories)


# ---------------------------------------------------------------------- the search the page runs
@dataclass
class SearchResult:
    """Ranked items with scores (cosines, best first), the model that ranked them, and the notes to show the user."""

    item_ids: list[str]
    scores: list[float]
    model: str
    notes: list[str] = field(default_factory=list)
    used_captions: list[str] = field(default_factory=list)
    #: What was understood (:meth:`recsys.understand.Understanding.summary`), "" when nothing.
    understood: str = ""
    #: ``(key, label)`` of each understood part, for the page's removable chips.
    parts: list = field(default_factory=list)


class SearchService(TaskService):
    """Text-guided search on one catalog: reference + stacked captions, or free text (DESIGN section 11).

    Cheap to construct; the text encoder, the models and the indexes load on first use and are shared by the
    callers of one instance (it is safe to call from several threads).

    Parameters
    ----------
    catalog : Catalog
    artifacts : recsys.artifacts.Artifacts or None
        None when the catalog has no usable embeddings: every search method then raises ``ArtifactError``.
    store : recsys.store.ModelStore
        Where the trained models come from and go to.
    settings : recsys.config.Settings, optional
        Its ``device`` runs the text encoder (CPU without settings).
    index_factory : callable, optional
        ``(vectors, categories=...) -> fitted index`` with :meth:`recsys.index.VectorIndex.search`'s signature;
        default :func:`make_index`.
    """

    task = data.TASK

    def __init__(self, catalog: Catalog, artifacts, store, settings=None, index_factory: Callable | None = None):
        super().__init__(catalog, artifacts, store, settings)
        self._index_factory = index_factory or make_index
        self._models: dict[str, ComposedModel] | None = None
        self._saved_at_load: frozenset = frozenset()
        self._indexes: dict[str, object] = {}
        self._galleries: dict[str, np.ndarray] = {}
        self._unavailable: dict[str, str] = {}

    # ------------------------------------------------------------------ what it works on
    @property
    def text_encoder(self) -> Encoder:
        """The encoder of the artifacts' text vectors (captions are encoded the same way).

        Raises
        ------
        ArtifactError, EncoderError
            When there are no artifacts, or the encoder cannot be built.
        """
        return data.text_encoder_for(self.require_artifacts(), self.device)

    @property
    def joint_name(self) -> str:
        """The joint image-text space's name (``demo-clip`` or the open_clip spec); raises ``ArtifactError``."""
        artifacts = self.require_artifacts()
        return artifacts.image_encoder_spec if data.uses_open_clip(artifacts) else data.JOINT_SPACE

    # ------------------------------------------------------------------ models: status and training
    def statuses(self) -> dict:
        """``{name: recsys.store.ModelStatus}`` of the task's trained models (the joint space included)."""
        return self.store.status(data.TASK)

    def missing(self) -> list[str]:
        """Trained models that are missing or stale and can be trained here, in training order."""
        return [name for name, status in self.statuses().items() if not status.ready and name not in self._unavailable]

    @property
    def ready(self) -> bool:
        """True when every model that can be trained on this catalog is trained."""
        return not self.missing()

    def train(self, progress: ProgressCallback | None = None, quick: bool = False) -> dict[str, str]:
        """Train (and save) the missing or stale models through the store; returns ``{name: reason}`` of those that
        cannot be trained on this catalog (e.g. no training captions). ``progress(fraction, message)`` is called as
        training goes; ``quick`` trains few epochs (smoke tests).

        Raises
        ------
        ArtifactError
            When the catalog has no artifacts.
        """
        self.require_artifacts()  # the one sentence before any work
        with self._lock:
            names = self.missing()
            for k, name in enumerate(names):
                def step(fraction: float, message: str, k: int = k) -> None:
                    if progress:
                        progress(min(1.0, (k + fraction) / len(names)), message)

                try:
                    self.store.fit(data.TASK, name, quick=quick, progress=step)
                except ValueError as exc:
                    self._unavailable[name] = str(exc)
                    logger.info("composed model %s cannot be trained here: %s", name, exc)
            self._models, self._indexes = None, {}
            if progress:
                progress(1.0, "Done")
            return dict(self._unavailable)

    def models(self) -> dict[str, ComposedModel]:
        """The available composition models by name (registry order): training-free ones and trained ones the store
        has (see :meth:`train`), read again when a model was saved since (a training the page started in the
        background). Raises ``ArtifactError`` without artifacts."""
        with self._lock:
            saved = self._saved_models()
            if self._models is None or saved - self._saved_at_load:
                self._models = data.load_models(self.catalog, self.require_artifacts(), self.store)
                self._saved_at_load = saved
            return self._models

    def _saved_models(self) -> frozenset:
        return frozenset(name for name in list_models(data.TASK, trainable=True)
                         if self.store is not None and self.store.path(data.TASK, name).with_suffix(".json").is_file())

    def composition_choices(self) -> list[str]:
        """Available models that read both the reference and the captions, the default first."""
        names = [n for n, m in self.models().items() if m.reads_reference and m.reads_caption]
        return sorted(names, key=lambda n: n != DEFAULT_MODEL)

    @staticmethod
    def registered_models() -> list[str]:
        """Every registered model of the task, report rows included."""
        return list_models(data.TASK)

    def _model(self, name: str) -> ComposedModel:
        models = self.models()
        if name not in models:
            raise SearchUnavailable(f"The {self.title(name)} is not available on this catalog; train the "
                                    f"models with python scripts/train.py --catalog {self.catalog.root} --task composed.")
        return models[name]

    def _index(self, name: str):
        with self._lock:
            if name not in self._indexes:
                vectors = self._model(name).gallery_vectors(self.require_artifacts().image)
                self._indexes[name] = self._index_factory(vectors, categories=self.catalog.items["category"].to_numpy())
            return self._indexes[name]

    def _gallery(self, name: str) -> np.ndarray:
        with self._lock:
            if name not in self._galleries:
                self._galleries[name] = np.asarray(self._model(name).gallery_vectors(self.require_artifacts().image),
                                                   dtype=np.float32)
            return self._galleries[name]

    def reference_attributes(self, item_id: str) -> dict:
        """``{attribute: value}`` of a catalog item (category and attribute columns; missing values left out).

        Raises
        ------
        KeyError
            For an item id the catalog does not have.
        """
        item = self.catalog.item(item_id)
        return {a: str(item[a]) for a in self.vocabulary.values if a in item.index and item[a] == item[a]
                and item[a] is not None}

    def load(self) -> "SearchService":
        """Build the text encoder and load the models now (they load lazily otherwise), so that a problem raises
        here rather than in the middle of a search; returns ``self``.

        Raises
        ------
        ArtifactError, EncoderError
            When there are no artifacts, or the text encoder cannot be built (one sentence).
        """
        self.text_encoder  # builds it (cached)
        self.models()
        self.vocabulary
        return self

    def _warm(self) -> None:
        self.load()

    # ------------------------------------------------------------------ queries
    def reference_features(self, item_id: str) -> np.ndarray:
        """Image features ``(1, d_image)`` of a catalog item.

        Raises
        ------
        KeyError
            For an unknown id.
        ItemUnavailableError
            One sentence, for an item whose image could not be read (its row is zero: nothing to search with).
        """
        self.require_available(item_id)
        return np.asarray(self.require_artifacts().image[self.catalog.indices([item_id])], dtype=np.float32)

    def caption_notes(self, text: str) -> tuple[str | None, list[str]]:
        """:func:`caption_notes` with the service's text encoder."""
        return caption_notes(text, self.text_encoder)

    def attribute_moves(self, reference_id: str, item_id: str) -> dict[str, tuple[str, str]]:
        """:func:`attribute_moves` on the service's catalog."""
        return attribute_moves(self.catalog, reference_id, item_id)

    def search(self, reference: np.ndarray | None, captions: Sequence[str], model: str = DEFAULT_MODEL, k: int = 24,
               category: str | None = None, exclude: Sequence[str] = (), *, reference_attributes: dict | None = None,
               understood: bool = True, ignore: Sequence[str] = ()) -> SearchResult:
        """Rank the gallery for a reference and captions applied in order.

        Parameters
        ----------
        reference : array (1, d_image) or None
            The reference's image features (a catalog item's or an upload's); None searches by the captions alone.
        captions : sequence of str
            Applied in order (multi-turn). Empty or word-less captions are skipped with a note; with no caption
            left the reference alone ranks (image similarity); with neither, nothing is searched.
        model : str
            A name from :meth:`composition_choices` (another available one is used when it is missing).
        k : int
            Results wanted.
        category : str, optional
            Only items of this category.
        exclude : sequence of str
            Item ids never returned (the reference itself); items whose image could not be read
            (:meth:`unavailable_rows`) never are either.
        reference_attributes : dict, optional
            ``{attribute: value}`` of the reference (:meth:`reference_attributes` for a catalog item; the photo
            reader's category and colour for an upload): what the captions change is read against it, and what they
            leave alone is kept (DESIGN section 14).
        understood : bool
            Read the captions into constraints and rank what meets them first (the page); False ranks by the
            model alone (the report's rows without understanding).
        ignore : sequence of str
            Keys of understood parts the user removed (:meth:`recsys.understand.Understanding.parts`).

        Raises
        ------
        ArtifactError
            When the catalog has no artifacts.
        SearchUnavailable
            When no model can answer (e.g. free text without a joint space).
        """
        notes: list[str] = []
        used: list[str] = []
        for caption in captions:
            text, caption_notes_ = self.caption_notes(caption)
            notes += caption_notes_
            if text is not None:
                used.append(text)
        if reference is None and not used:
            return SearchResult([], [], model, notes + ["Type a description or pick a reference image to search."])
        encoder = self.text_encoder
        constraints, keep, parts, summary = [], {}, [], ""
        if understood and used:
            readings = [understand(c, self.vocabulary).without(ignore) for c in used]
            for reading in readings:
                notes += reading.notes
            if reference is None:
                constraints = [c for reading in readings for c in reading.constraints if not c.direction]
            else:
                constraints, keep, more = constraints_at_work.resolve_captions(
                    [r.constraints for r in readings], dict(reference_attributes or {}), self.vocabulary)
                notes += more
            parts = [p for reading in readings for p in reading.parts()]
            summary = "; ".join(r.summary() for r in readings if r.summary())
            if category is not None and any(c.attribute == "category" and not c.negated for c in constraints):
                category = None  # the caption names the category it wants
        if reference is None:
            name = TEXT_ONLY
            query = self._model(name).compose(None, encoder.encode_text([" ".join(used)]))
        elif not used:
            name = IMAGE_ONLY
            if captions:  # with none given, the page already says the ranking is by image similarity
                notes.append("No usable caption, so the results are ranked by image similarity to the reference "
                             "alone.")
            query = self._model(name).gallery_vectors(reference)
        else:
            choices = self.composition_choices()
            if not choices:
                raise SearchUnavailable("No composition model is available on this catalog; train the models with "
                                        f"python scripts/train.py --catalog {self.catalog.root} --task composed.")
            name = model if model in choices else choices[0]
            turns = [encoder.encode_text([c]) for c in used]
            query = compose_turns(self._model(name), reference, turns)
        excluded = self.catalog.indices(list(exclude)).tolist() if exclude else []
        excluded = sorted(set(excluded) | set(self.unavailable_rows().tolist())) or None
        if constraints or keep:
            ids, scores, unmet = self._constrained(name, query, k, category, excluded, constraints, keep)
            return SearchResult(ids, scores, name, notes + ([unmet] if unmet else []), used, summary, parts)
        # Unit queries: the ranking is unchanged (gallery rows are unit vectors) and the scores read as cosines.
        scores, rows = self._index(name).search(l2_normalize(query), k, categories=category, exclude=excluded)
        ids = self.catalog.items["item_id"].to_numpy()[rows[0]].tolist()
        return SearchResult(ids, [float(s) for s in scores[0]], name, notes, used, summary, parts)

    def _constrained(self, name: str, query: np.ndarray, k: int, category: str | None, excluded, constraints,
                     keep: dict) -> tuple[list[str], list[float], str | None]:
        # Every item is scored (a matrix product: milliseconds on a catalog of thousands) so that what meets the
        # request ranks first in the model's own order (recsys.understand.apply.rank).
        items = self.catalog.items
        cosines = self._gallery(name) @ l2_normalize(query)[0]
        allowed = np.ones(len(items), dtype=bool)
        if category is not None:
            allowed &= (items["category"] == category).to_numpy()
        if excluded:
            allowed[excluded] = False
        bonus = constraints_at_work.preference_bonus(items, constraints, self.vocabulary, keep)
        rows = constraints_at_work.rank(cosines, items, constraints, k=k, allowed=allowed, bonus=bonus)
        unmet = constraints_at_work.unmet_sentence(items, constraints, allowed,
                                                   where=f"among the {category} items" if category else "in this catalog")
        return items["item_id"].to_numpy()[rows].tolist(), [float(cosines[r]) for r in rows], unmet

    def search_text(self, text: str, k: int = 24, category: str | None = None, *, understood: bool = True,
                    ignore: Sequence[str] = ()) -> SearchResult:
        """Free-text search: the items the description ``text`` fits best (see :meth:`search`; same errors).

        A description that is empty once cleaned (:func:`recsys.text.clean_text`: only spaces or invisible
        characters) searches nothing and says so in the result's one note.
        """
        cleaned = clean_text(text, what="description", max_chars=MAX_CAPTION_CHARS,
                             empty="The description is empty (only spaces or invisible characters); type what you "
                                   "are looking for, e.g. \u201cred floral dress\u201d.")
        if not cleaned.usable:
            return SearchResult([], [], TEXT_ONLY, [cleaned.problem])
        return self.search(None, [text], k=k, category=category, understood=understood, ignore=ignore)
