"""The report rows of the composed task that rank without embeddings: chance, and the generated world's oracle.

Both follow the estimator contract (:class:`recsys.models.base.Estimator`, ``trainable=False`` in the registry, never
saved) and one ranking interface, so the protocol treats them alike:

``fit(catalog)``
    keep what the row reads (the catalog; the oracle its attributes);
``rank_targets(triples, split)``
    the 0-based rank of each triple's target in its category's gallery (the reference excluded), and the
    triple's category, as :func:`recsys.tasks.composed.data.target_ranks` gives for the embedding models;
``rank_text(rows)``
    the rank of each row among all catalog items for the plain text query describing it
    (:func:`recsys.tasks.composed.data.text_queries`).

``composes_queries = False`` tells them from the models of :mod:`recsys.models.composed`.
"""

from __future__ import annotations

import numpy as np

from recsys.catalog import ATTRIBUTE_COLUMNS, Catalog
from recsys.metrics import rank_of
from recsys.models.base import Estimator
from recsys.tasks.composed.data import gallery_rows

#: Attributes a plain text query names (:func:`recsys.tasks.composed.data.attribute_query`): what the oracle can know.
QUERY_ATTRIBUTES = ("category", "color", "pattern", "length", "sleeve", "material")


def _attribute_columns(catalog: Catalog) -> list[str]:
    return [c for c in ATTRIBUTE_COLUMNS if c in catalog.items.columns]


def _candidate_rows(catalog: Catalog, reference: int, target: int, category: str, split: str | None) -> np.ndarray:
    rows = gallery_rows(catalog, category, split)
    rows = rows[rows != reference]
    return rows if target in rows else np.append(rows, target)


class _Ranking(Estimator):
    composes_queries = False

    def __init__(self, *, random_state: int = 0):
        self.random_state = random_state

    def fit(self, catalog: Catalog, *args, **kwargs) -> "_Ranking":
        """Keep the catalog; returns ``self``."""
        self.catalog_ = catalog
        return self


class RandomRanking(_Ranking):
    """Chance: the gallery in a random order (each call draws from a generator seeded with ``random_state``).

    Parameters
    ----------
    random_state : int
    """

    def rank_targets(self, triples: list[dict], split: str | None) -> tuple[np.ndarray, list[str]]:
        """Ranks ``(m,)`` of the targets among uniformly random scores, and each triple's category.

        Raises
        ------
        KeyError
            For a triple whose item is not in the catalog.
        """
        catalog = self.catalog_
        rng = np.random.default_rng(self.random_state)
        lookup = catalog.id_to_index
        ranks, categories = [], []
        for t in triples:
            ref, tgt = lookup[t["reference_id"]], lookup[t["target_id"]]
            category = catalog.items["category"].iat[ref]
            rows = _candidate_rows(catalog, ref, tgt, category, split)
            ranks.append(rank_of(rng.random(len(rows)), int(np.flatnonzero(rows == tgt)[0])))
            categories.append(category)
        return np.asarray(ranks), categories

    def rank_text(self, rows: np.ndarray) -> np.ndarray:
        """Ranks ``(len(rows),)`` of each described row among all items under uniformly random scores."""
        scores = np.random.default_rng(self.random_state).random((len(rows), len(self.catalog_)))
        return np.asarray([rank_of(s, int(r)) for s, r in zip(scores, rows)])


class AttributeOracle(_Ranking):
    """The built-in world's ceiling: it knows every item's attributes.

    A triple's gallery is ranked by how many attributes equal the reference's with the triple's ``changes``
    applied; a text query's by how many of the attributes the query names equal the described item's. Ties are
    broken at random (``random_state``).

    Parameters
    ----------
    random_state : int
    """

    def fit(self, catalog: Catalog, *args, **kwargs) -> "AttributeOracle":
        """Keep the catalog's attributes; returns ``self``.

        Raises
        ------
        ValueError
            When the catalog is not a generated world (it has no stored truth).
        """
        if not catalog.has_truth:
            raise ValueError(f"The catalog {catalog.root} is not a generated world, so it has no attribute oracle.")
        self.catalog_ = catalog
        return self

    def _values(self, columns: list[str]) -> np.ndarray:
        items = self.catalog_.items
        return items[columns].astype(object).where(items[columns].notna(), None).to_numpy()

    def rank_targets(self, triples: list[dict], split: str | None) -> tuple[np.ndarray, list[str]]:
        """Ranks ``(m,)`` by the number of attributes equal to the reference's with the captioned ``changes`` applied.

        Raises
        ------
        ValueError
            When a triple does not record its ``changes``.
        """
        if not all("changes" in t for t in triples):
            raise ValueError("The oracle needs each caption triple's attribute changes, which this catalog lacks.")
        catalog = self.catalog_
        rng = np.random.default_rng(self.random_state)
        columns = _attribute_columns(catalog)
        values = self._values(columns)
        lookup = catalog.id_to_index
        ranks, categories = [], []
        for t in triples:
            ref, tgt = lookup[t["reference_id"]], lookup[t["target_id"]]
            category = catalog.items["category"].iat[ref]
            wanted = dict(zip(columns, values[ref]))
            for attribute, (_, new) in (t.get("changes") or {}).items():
                wanted[attribute] = new
            rows = _candidate_rows(catalog, ref, tgt, category, split)
            matches = sum((values[rows, j] == wanted[c]).astype(float) for j, c in enumerate(columns))
            scores = matches + rng.random(len(rows)) * 1e-3  # random tie-break among equally good items
            ranks.append(rank_of(scores, int(np.flatnonzero(rows == tgt)[0])))
            categories.append(category)
        return np.asarray(ranks), categories

    def rank_text(self, rows: np.ndarray) -> np.ndarray:
        """Ranks ``(len(rows),)`` of each described row among all items, scored by the attributes a query names."""
        rng = np.random.default_rng(self.random_state)
        columns = ["category"] + _attribute_columns(self.catalog_)
        values = self._values(columns)
        named = [j for j, c in enumerate(columns) if c in QUERY_ATTRIBUTES]
        ranks = []
        for r in rows:
            scores = sum((values[:, j] == values[r, j]).astype(float) for j in named) + rng.random(len(values)) * 1e-3
            ranks.append(rank_of(scores, int(r)))
        return np.asarray(ranks)
