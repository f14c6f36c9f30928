"""Assembling outfits around a query item with a compatibility model ("complete the look").

An outfit has one item per slot of a template: ``top + bottom + shoes`` or ``onepiece + shoes``, with
``outer`` and ``accessory`` optional. The builder scores the *whole set* (the model's mean pairwise
compatibility over all the outfit's items, query included), not only each item's fit with the query: it
starts from each slot's best match for the query and then improves one slot at a time, choosing the item
that maximises the whole set's score given the others, until nothing changes (coordinate ascent).

The user can lock slots (kept as they are), re-roll the rest (the items shown before are excluded, so a
re-roll always shows something new) and swap one slot for its next best given the rest of the outfit.

The query can be a catalog item or an uploaded photo: the builder works on embedding rows, and an upload
is one extra row computed with the model's ``transform``.

The whole-set score is the papers' outfit score (mean pairwise compatibility, as in Vasileva et al., ECCV 2018,
for outfit compatibility); the search itself is the studio's own, not taken from a paper.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from recsys.utils import top_n

logger = logging.getLogger(__name__)

REQUIRED_TEMPLATES = (("top", "bottom", "shoes"), ("onepiece", "shoes"))
OPTIONAL_SLOTS = ("outer", "accessory")
SLOT_ORDER = ("outer", "top", "onepiece", "bottom", "shoes", "accessory")
QUERY = -1  # the row of the query in an outfit's ``items`` when it is an upload


@dataclass(frozen=True)
class Query:
    """What to complete: a catalog row, or an upload given by its embedding and type code.

    Attributes
    ----------
    slot : str
        The query's slot (its place in the outfit).
    row : int or None
        Catalog row of a catalog item; None for an upload.
    embedding : ndarray or None
        Model embedding of an upload.
    type_code : int or None
        The model's type code of an upload.
    """

    slot: str
    row: int | None = None
    embedding: np.ndarray | None = None
    type_code: int | None = None


@dataclass
class Outfit:
    """One item per slot (``items[slot] = catalog row``, :data:`QUERY` for an uploaded query)."""

    items: dict
    score: float
    item_scores: dict = field(default_factory=dict)

    def rows(self) -> list[int]:
        """The catalog rows of the outfit, in slot order of :attr:`items`, without the uploaded query."""
        return [r for r in self.items.values() if r != QUERY]

    def ordered_slots(self) -> list[str]:
        """The outfit's slots in display order (:data:`SLOT_ORDER`)."""
        return [s for s in SLOT_ORDER if s in self.items]


class OutfitBuilder:
    """Recommend and assemble outfits with a fitted compatibility model.

    Parameters
    ----------
    model
        A fitted model of :mod:`recsys.models.compat` (``item_embeddings_``, ``item_types_``,
        ``compatibility``, ``outfit_score``).
    slots : array of str, length n_items
        Each catalog item's slot.
    candidates_per_slot : int
        How many of each slot's best matches for the query the whole-set search considers.
    max_sweeps : int
        Bound on the coordinate-ascent passes.
    """

    def __init__(self, model, slots, candidates_per_slot: int = 40, max_sweeps: int = 6):
        self.model = model
        self.slots = np.asarray(slots).astype(str)
        self.candidates_per_slot = candidates_per_slot
        self.max_sweeps = max_sweeps
        self.slot_rows_ = {s: np.flatnonzero(self.slots == s) for s in np.unique(self.slots)}

    # ------------------------------------------------------------------ pieces
    def _members(self, query: Query, members) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and type codes of outfit members (catalog rows, or :data:`QUERY` for an upload)."""
        embeddings, types = [], []
        for row in members:
            if row == QUERY:
                embeddings.append(query.embedding)
                types.append(query.type_code)
            else:
                embeddings.append(self.model.item_embeddings_[row])
                types.append(self.model.item_types_[row])
        dim = self.model.item_embeddings_.shape[1]
        return np.asarray(embeddings, dtype=np.float32).reshape(-1, dim), np.asarray(types, dtype=np.int64)

    def compatibility_with(self, query: Query, rows) -> np.ndarray:
        """Model compatibility of the query with catalog ``rows``."""
        return self._pair_matrix(query, [query.row if query.row is not None else QUERY], np.asarray(rows))[:, 0]

    def _pair_matrix(self, query: Query, members: list[int], rows: np.ndarray) -> np.ndarray:
        """Compatibility ``(len(rows), len(members))`` of candidate rows with outfit members (query included)."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(members):
            return np.zeros((len(rows), 0))
        emb, types = self._members(query, members)
        return self.model.compatibility(self.model.item_embeddings_[rows][:, None, :], self.model.item_types_[rows][:, None],
                                        emb[None, :, :], types[None, :])

    def set_score(self, query: Query, members: list[int]) -> float:
        """The model's whole-set score: mean compatibility over all pairs of ``members``."""
        if len(members) < 2:
            return 0.0
        emb, types = self._members(query, members)
        a, b = np.triu_indices(len(members), k=1)
        return float(self.model.compatibility(emb[a], types[a], emb[b], types[b]).mean())

    def available_slots(self) -> list[str]:
        """The slots (in :data:`SLOT_ORDER`) for which the catalog has at least one item to recommend."""
        return [s for s in SLOT_ORDER if len(self.slot_rows_.get(s, ())) > 0]

    def missing_required_slots(self, query_slot: str) -> list[str]:
        """Required slots the catalog has no items for, for every template that fits the query."""
        missing = []
        for template in self._templates(query_slot, include_empty=True):
            missing.append([s for s in template if s != query_slot and len(self.slot_rows_.get(s, ())) == 0])
        best = min(missing, key=len) if missing else []
        return best

    def _templates(self, query_slot: str, include_empty: bool = False) -> list[tuple]:
        templates = [t for t in REQUIRED_TEMPLATES if query_slot in t or query_slot in OPTIONAL_SLOTS + ("shoes",)]
        if query_slot in ("top", "bottom"):
            templates = [REQUIRED_TEMPLATES[0]]
        elif query_slot == "onepiece":
            templates = [REQUIRED_TEMPLATES[1]]
        if not include_empty:
            templates = [t for t in templates if all(s == query_slot or len(self.slot_rows_.get(s, ())) for s in t)]
        return templates

    # ------------------------------------------------------------------ recommending
    def top_k(self, query: Query, k: int = 5, slots=None, exclude=()) -> dict:
        """The ``k`` most compatible items of every other slot: ``{slot: [(row, score), ...]}``."""
        result = {}
        excluded = set(int(e) for e in exclude)
        if query.row is not None:
            excluded.add(int(query.row))
        for slot in slots or self.available_slots():
            if slot == query.slot:
                continue
            rows = np.array([r for r in self.slot_rows_.get(slot, ()) if r not in excluded], dtype=np.int64)
            if len(rows) == 0:
                result[slot] = []
                continue
            scores = self.compatibility_with(query, rows)
            best = top_n(scores, k)
            result[slot] = [(int(rows[i]), float(scores[i])) for i in best]
        return result

    def assemble(self, query: Query, optional=OPTIONAL_SLOTS, locked: dict | None = None, exclude: dict | None = None) -> Outfit:
        """The best-scoring outfit around ``query``.

        Parameters
        ----------
        query : Query
        optional : sequence of str
            Optional slots (``outer``, ``accessory``) to include when the catalog has items for them.
        locked : dict, optional
            ``slot -> row`` kept as they are.
        exclude : dict, optional
            ``slot -> rows`` never chosen for that slot (what a re-roll has shown before).

        Raises
        ------
        ValueError
            When the catalog lacks a slot every outfit for this query needs; the message names it.
        """
        locked = dict(locked or {})
        exclude = {s: set(int(r) for r in rows) for s, rows in (exclude or {}).items()}
        templates = self._templates(query.slot)
        if not templates:
            missing = self.missing_required_slots(query.slot)
            raise ValueError(f"The catalog has no {' or '.join(missing)} items, so no outfit can be completed around this {query.slot}.")
        best = None
        for template in templates:
            if any(s in locked for s in set(sum(REQUIRED_TEMPLATES, ())) - set(template)):
                continue  # a locked top or dress fixes the template
            slots = list(template) + [s for s in optional if s != query.slot and len(self.slot_rows_.get(s, ()))]
            if query.slot not in slots:
                slots.insert(0, query.slot)
            outfit = self._assemble_slots(query, slots, locked, exclude)
            if outfit is not None and (best is None or outfit.score > best.score):
                best = outfit
        if best is None:
            raise ValueError("No outfit fits the locked items and the items left after re-rolling; unlock a slot.")
        return best

    def _candidates(self, query: Query, slot: str, exclude: set) -> np.ndarray:
        rows = self.slot_rows_.get(slot, np.array([], dtype=np.int64))
        rows = rows[~np.isin(rows, list(exclude) + ([query.row] if query.row is not None else []))]
        if len(rows) == 0:
            return rows
        scores = self.compatibility_with(query, rows)
        return rows[top_n(scores, self.candidates_per_slot)]

    def _assemble_slots(self, query: Query, slots: list[str], locked: dict, exclude: dict) -> Outfit | None:
        items = {query.slot: query.row if query.row is not None else QUERY}
        pools = {}
        for slot in slots:
            if slot == query.slot:
                continue
            if slot in locked:
                items[slot] = int(locked[slot])
                continue
            pool = self._candidates(query, slot, exclude.get(slot, set()))
            if len(pool) == 0:
                return None
            pools[slot] = pool
            items[slot] = int(pool[0])
        for _ in range(self.max_sweeps):
            changed = False
            for slot, pool in pools.items():
                others = [r for s, r in items.items() if s != slot]
                totals = self._pair_matrix(query, others, pool).sum(axis=1)
                choice = int(pool[int(np.argmax(totals))])
                if choice != items[slot]:
                    items[slot], changed = choice, True
            if not changed:
                break
        return self.score_outfit(query, items)

    def score_outfit(self, query: Query, items: dict) -> Outfit:
        """``items`` (``slot -> row``) as an :class:`Outfit`: the whole-set score and each item's mean fit with the rest."""
        members = list(items.values())
        item_scores = {}
        for slot, row in items.items():
            others = [r for s, r in items.items() if s != slot]
            emb, types = self._members(query, [row])
            other_emb, other_types = self._members(query, others)
            item_scores[slot] = float(self.model.compatibility(emb, types, other_emb, other_types).mean()) if others else 0.0
        ordered = {s: items[s] for s in SLOT_ORDER if s in items}
        return Outfit(items=ordered, score=self.set_score(query, members), item_scores=item_scores)

    def alternatives(self, query: Query, outfit: Outfit, slot: str, k: int = 5) -> list[tuple[int, float]]:
        """The slot's items ranked by the whole set's score with the rest of ``outfit`` kept: ``[(row, set score)]``."""
        others = [r for s, r in outfit.items.items() if s != slot]
        rows = self.slot_rows_.get(slot, np.array([], dtype=np.int64))
        if query.row is not None:
            rows = rows[rows != query.row]
        if len(rows) == 0:
            return []
        rest_score = self.set_score(query, others)
        n = len(others)
        rest_pairs = n * (n - 1) / 2
        with_candidate = (rest_score * rest_pairs + self._pair_matrix(query, others, rows).sum(axis=1)) / (rest_pairs + n)
        order = top_n(with_candidate, k)
        return [(int(rows[i]), float(with_candidate[i])) for i in order]

    def swap_next_best(self, query: Query, outfit: Outfit, slot: str) -> Outfit:
        """``outfit`` with ``slot`` replaced by the item ranked just below its current one (wrapping round);
        ``outfit`` itself when the slot has no other item."""
        ranked = [row for row, _ in self.alternatives(query, outfit, slot, k=len(self.slot_rows_.get(slot, ())))]
        if not ranked:
            return outfit
        current = outfit.items.get(slot)
        position = ranked.index(current) if current in ranked else -1
        items = dict(outfit.items)
        items[slot] = ranked[(position + 1) % len(ranked)]
        return self.score_outfit(query, items)

    def reroll(self, query: Query, outfit: Outfit, locked_slots=(), shown: dict | None = None,
               optional=OPTIONAL_SLOTS) -> tuple[Outfit, dict]:
        """A new outfit keeping ``locked_slots`` of ``outfit``; unlocked slots avoid everything shown before.

        Returns the outfit and the updated ``shown`` (``slot -> rows``). When a slot has nothing new left,
        its memory is cleared so the next re-roll starts over.

        Raises
        ------
        ValueError
            When no outfit fits the locked items even with the memory cleared (one sentence).
        """
        shown = {s: set(r) for s, r in (shown or {}).items()}
        for slot, row in outfit.items.items():
            if row != QUERY and slot not in locked_slots:
                shown.setdefault(slot, set()).add(int(row))
        locked = {s: outfit.items[s] for s in locked_slots if s in outfit.items and s != query.slot}
        try:
            new = self.assemble(query, optional=optional, locked=locked, exclude=shown)
        except ValueError:
            shown = {}
            new = self.assemble(query, optional=optional, locked=locked)
        return new, shown

    def reference_scores(self, n: int = 200, seed: int = 0) -> np.ndarray:
        """Whole-set scores of ``n`` random outfits (top+bottom+shoes or onepiece+shoes), to read a score against."""
        rng = np.random.default_rng(seed)
        templates = [t for t in REQUIRED_TEMPLATES if all(len(self.slot_rows_.get(s, ())) for s in t)]
        scores = []
        for k in range(n if templates else 0):
            template = templates[k % len(templates)]
            rows = [int(rng.choice(self.slot_rows_[s])) for s in template]
            scores.append(self.model.outfit_score(rows))
        return np.array(scores)
