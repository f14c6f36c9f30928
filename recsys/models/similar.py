"""Similar items: nearest neighbours in a precomputed image-embedding space, and the report's untrained rows.

The style-embedding catalogue approach: every item is embedded once by a pretrained CNN (or CLIP) image
encoder, and "similar" is cosine similarity in that space, optionally restricted to the query's category.
The category of an uploaded photo comes from the studio's one photo predictor,
:class:`recsys.photo.PhotoReader`, not from this model.

Every model of the task answers ``neighbours(queries, k)`` (the ``k`` items ranked for each catalog query, the
query itself excluded), so the protocol judges them all alike: :class:`SimilarItems` (the model), and the
report's baselines :class:`RandomNeighbours` (chance) and :class:`AttributeOracle` (the true attributes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.index import VectorIndex
from recsys.models.base import Estimator
from recsys.utils import top_n

#: Attribute columns the oracle compares after the category (those a catalog has).
ORACLE_ATTRIBUTES = ("color", "pattern", "material", "detail", "style")


class SimilarItems(Estimator):
    """Cosine k-NN over item embeddings, optionally re-ranked as a shopper means "similar".

    With the default parameters this is the plain embedding ranking (``visual-similarity``, the report's baseline).
    The ``shopper-similarity`` row of the registry keeps results to the query's category and adds a bonus to items of
    the query's colour and pattern: an embedding of a whole image weighs shape, background and drawing style as much
    as colour, while a shopper asking for "similar" to a red striped shirt means another shirt, red and striped, of a
    similar cut. The ``pool`` nearest items (cosine) are re-ranked by
    ``cosine + colour_weight [same colour] + pattern_weight [same pattern]``.

    Parameters
    ----------
    index_kind : {"auto", "exact", "hnsw", "ivf"}
        Passed to :class:`recsys.index.VectorIndex` (``auto``: exact below 50k items).
    colour_weight, pattern_weight : float
        Bonuses in cosine units (0: plain cosine). The page's "colour against shape" control sets the colour one.
    same_category : bool
        Keep results to the query's category by default (a call may override it).
    pool : int
        Nearest items re-ranked when a bonus applies.

    Attributes
    ----------
    index_ : VectorIndex
    vectors_ : ndarray of shape (n_items, dim)
        L2-normalised item vectors (row ``i`` is catalog row ``i``).
    categories_ : ndarray of str, shape (n_items,)
    colours_, patterns_ : ndarray of str, shape (n_items,), or None
        The catalog's colour and pattern columns ("" where unknown); None when it has none.
    blank_rows_ : ndarray of int64
        Rows whose vector is all zeros -- items whose image could not be read when the embeddings were computed
        (DESIGN section 6) -- which are never a result.

    Saving keeps the parameters and the catalog's shape only: the index is rebuilt from the artifacts'
    vectors on load (the store's provenance guarantees they are the ones it was built on), so no copy of the
    embeddings is written next to the artifacts.
    """

    def __init__(self, *, index_kind: str = "auto", colour_weight: float = 0.0, pattern_weight: float = 0.0,
                 same_category: bool = False, pool: int = 200):
        self.index_kind = index_kind
        self.colour_weight = colour_weight
        self.pattern_weight = pattern_weight
        self.same_category = same_category
        self.pool = pool

    def fit(self, vectors: np.ndarray, categories, colours=None, patterns=None) -> "SimilarItems":
        """Index ``(n_items, dim)`` L2-normalised ``vectors`` with their ``(n_items,)`` categories, and the optional
        colour and pattern of each item; returns ``self``.

        Raises
        ------
        ValueError
            For vectors that are not 2-D, a length mismatch, or an unknown ``index_kind``.
        """
        self.vectors_ = np.asarray(vectors, dtype=np.float32)
        self.categories_ = np.asarray(categories, dtype=str)
        if len(self.categories_) != len(self.vectors_):
            raise ValueError(f"{len(self.vectors_)} vectors but {len(self.categories_)} categories were given.")
        self.colours_ = _attribute(colours, len(self.vectors_), "colours")
        self.patterns_ = _attribute(patterns, len(self.vectors_), "patterns")
        self.index_ = VectorIndex(kind=self.index_kind).fit(self.vectors_, categories=self.categories_)
        self.blank_rows_ = np.flatnonzero(~np.any(self.vectors_ != 0, axis=1))
        return self

    def _rank(self, vector, k: int, category, exclude, colour, pattern, colour_weight) -> tuple[np.ndarray, np.ndarray]:
        colour_weight = self.colour_weight if colour_weight is None else float(colour_weight)
        bonuses = [(w, values, wanted) for w, values, wanted in ((colour_weight, self.colours_, colour),
                                                                  (self.pattern_weight, self.patterns_, pattern))
                   if w and values is not None and wanted not in (None, "")]
        if len(getattr(self, "blank_rows_", ())):  # an item without an image vector is no neighbour of anything
            exclude = list(exclude or []) + self.blank_rows_.tolist()
        scores, positions = self.index_.search(vector, k=max(k, self.pool) if bonuses else k, categories=category,
                                               exclude=exclude)
        scores, positions = scores[0], positions[0]
        if not bonuses:
            return positions, scores
        ranking = scores.astype(np.float64)
        for weight, values, wanted in bonuses:
            ranking = ranking + weight * (values[positions] == wanted)
        order = top_n(ranking, k)
        return positions[order], scores[order]

    def similar_to_item(self, item_idx: int, k: int = 10, same_category: bool | None = None,
                        colour_weight: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to catalog row ``item_idx`` (itself excluded): ``(positions, cosines)``,
        each ``(<= k,)``, best first; fewer than ``k`` when the category has fewer other items. ``same_category`` and
        ``colour_weight`` default to the model's parameters; the query's own colour and pattern get the bonuses.

        Raises
        ------
        IndexError
            For a row outside the catalog.
        """
        same = self.same_category if same_category is None else same_category
        category = self.categories_[item_idx] if same else None
        colour = self.colours_[item_idx] if self.colours_ is not None else None
        pattern = self.patterns_[item_idx] if self.patterns_ is not None else None
        return self._rank(self.vectors_[item_idx], k, category, [item_idx], colour, pattern, colour_weight)

    def similar_to_vector(self, vector: np.ndarray, k: int = 10, category: str | None = None, colour: str | None = None,
                          pattern: str | None = None, colour_weight: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to a ``(dim,)`` embedding (e.g. of an upload): ``(positions, cosines)``,
        within ``category`` when given, with the bonuses for ``colour`` and ``pattern`` when given.

        Raises
        ------
        ValueError
            When ``vector`` does not have the index's dimension.
        """
        return self._rank(vector, k, category, None, colour, pattern, colour_weight)

    def neighbours(self, queries, k: int = 10) -> np.ndarray:
        """``(n_queries, k)`` positions of the nearest items of each catalog row in ``queries`` (the model's own
        category rule and bonuses); a row with fewer than ``k`` candidates is padded with -1."""
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        for r, q in enumerate(queries):
            found = self.similar_to_item(q, k=k)[0]
            rows[r, : len(found)] = found
        return rows

    def score(self, item_idx: int, other_idx=None) -> np.ndarray:
        """Cosine similarity of item ``item_idx`` to all items (or to ``other_idx``): ``(n,)`` float32."""
        others = self.vectors_ if other_idx is None else self.vectors_[np.asarray(other_idx)]
        return others @ self.vectors_[item_idx]

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict, dict]:
        return {}, {"n_items": int(len(self.vectors_)), "dim": int(self.vectors_.shape[1])}

    def _set_state(self, tensors: dict, meta: dict, *, vectors: np.ndarray, categories, colours=None,
                   patterns=None) -> None:
        vectors = np.asarray(vectors)
        if vectors.shape != (meta["n_items"], meta["dim"]):
            raise ValueError(f"the model indexed {meta['n_items']} x {meta['dim']} vectors, not {vectors.shape}")
        self.fit(vectors, categories, colours=colours, patterns=patterns)


def _attribute(values, n_items: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    values = pd.Series(values).fillna("").astype(str).to_numpy()
    if len(values) != n_items:
        raise ValueError(f"{n_items} vectors but {len(values)} {name} were given.")
    return values if (values != "").any() else None


class RandomNeighbours(Estimator):
    """Chance: ``k`` distinct other items drawn uniformly for each query.

    Parameters
    ----------
    random_state : int or numpy.random.Generator
        A generator is used as it is (the protocol shares one across its rows, in a fixed order).
    """

    def __init__(self, *, random_state=0):
        self.random_state = random_state

    def fit(self, vectors=None, categories=None) -> "RandomNeighbours":
        """Remember the catalog's size ``len(categories)`` and start the generator; returns ``self``."""
        self.n_items_ = len(categories)
        self.rng_ = np.random.default_rng(self.random_state)
        return self

    def neighbours(self, queries, k: int = 10) -> np.ndarray:
        """``(n_queries, k)`` random positions per query, the query excluded, without repeats.

        Raises
        ------
        ValueError
            When the catalog has fewer than ``k + 1`` items.
        """
        rows = []
        for q in queries:
            pool = np.delete(np.arange(self.n_items_), q)
            rows.append(self.rng_.choice(pool, size=k, replace=False))
        return np.array(rows)


class AttributeOracle(Estimator):
    """The ceiling row: rank by the true attributes shared with the query, category first.

    The category weighs 100, every other attribute of :data:`ORACLE_ATTRIBUTES` the catalog has weighs 1; ties
    are broken at random (a ``1e-3`` jitter). Meaningful where the attributes are the truth (the generated
    world).

    Parameters
    ----------
    random_state : int or numpy.random.Generator
        Breaks ties; a generator is used as it is.
    """

    def __init__(self, *, random_state=0):
        self.random_state = random_state

    def fit(self, items: pd.DataFrame) -> "AttributeOracle":
        """Read the category and attribute columns of the catalog's ``items`` table; returns ``self``.

        Raises
        ------
        KeyError
            When ``items`` has no ``category`` column.
        """
        columns = ["category"] + [c for c in ORACLE_ATTRIBUTES if c in items.columns]
        self.codes_ = {c: items[c].astype(str).to_numpy() for c in columns}
        self.rng_ = np.random.default_rng(self.random_state)
        return self

    def neighbours(self, queries, k: int = 10) -> np.ndarray:
        """``(n_queries, k)`` positions of the items sharing most attributes with each query (itself excluded)."""
        weights = {"category": 100.0}
        n_items = len(self.codes_["category"])
        rows = []
        for q in queries:
            score = sum(weights.get(c, 1.0) * (codes == codes[q]) for c, codes in self.codes_.items())
            score = score + self.rng_.random(n_items) * 1e-3
            score[q] = -np.inf
            rows.append(top_n(score, k))
        return np.array(rows)
