"""Training triplets of the compatibility models (Complete the Look, Kang et al. CVPR 2019; Vasileva et al. ECCV
2018): an anchor, a positive from the same outfit in another category, and a negative of the positive's category
from another outfit. :class:`TripletSampler` works out each outfit's pairs and pools once and draws an epoch's
triplets from them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def triplets_from_outfits(
    outfits: Sequence[Sequence[int]], categories: np.ndarray, rng: np.random.Generator,
    pools: dict | None = None, max_per_outfit: int | None = None,
) -> np.ndarray:
    """Complete-the-look triplets ``(anchor, positive, negative)`` as an ``(m, 3)`` int64 array of item rows.

    For every ordered pair of items of different categories in an outfit, the anchor is the first, the
    positive the second, and the negative an item of the positive's category drawn from another outfit
    (from ``pools``: category -> item rows seen in outfits; default: the outfits given). Follows Kang et al.,
    "Complete the Look", CVPR 2019, section 4. One draw of a :class:`TripletSampler` (build the sampler once
    to draw fresh triplets every epoch).

    Parameters
    ----------
    outfits : sequence of int sequences
        Item rows of each outfit.
    categories : array of str, shape ``(n_items,)``
    rng : numpy Generator
        Draws the negatives (and the pairs kept when ``max_per_outfit`` caps them).
    pools : dict, optional
        ``category -> item rows`` negatives are drawn from (see :func:`category_pools`).
    max_per_outfit : int, optional
        Cap on the (anchor, positive) pairs of one outfit.

    Raises
    ------
    IndexError
        When an outfit names a row outside ``categories``.
    """
    return TripletSampler(outfits, categories, pools).draw(rng, max_per_outfit)


class TripletSampler:
    """The fixed part of :func:`triplets_from_outfits`, computed once: each outfit's ordered pairs of items of
    different categories, and the negatives each pair may draw (the positive's category pool minus the outfit).

    :meth:`draw` then costs a few vectorised draws per outfit, and consumes ``rng`` exactly as
    :func:`triplets_from_outfits` always has (same triplets for the same generator state).

    Parameters
    ----------
    outfits : sequence of int sequences
        Item rows of each outfit.
    categories : array of str, shape ``(n_items,)``
    pools : dict, optional
        ``category -> item rows`` negatives are drawn from (default: :func:`category_pools` of ``outfits``).

    Raises
    ------
    IndexError
        When an outfit names a row outside ``categories``.
    """

    def __init__(self, outfits: Sequence[Sequence[int]], categories: np.ndarray, pools: dict | None = None):
        categories = np.asarray(categories)
        if pools is None:
            pools = category_pools(outfits, categories)
        empty = np.array([], dtype=np.int64)
        # Per outfit: pairs (k, 2), and for each pair the offset and length of its negatives in ``negatives``.
        self._plans: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        for outfit in outfits:
            outfit = np.asarray(outfit)
            pairs = [(a, p) for a in outfit for p in outfit if a != p and categories[a] != categories[p]]
            blocks, start, where = [], 0, {}
            offsets, lengths = np.zeros(len(pairs), np.int64), np.zeros(len(pairs), np.int64)
            for j, (_, positive) in enumerate(pairs):
                category = categories[positive]
                if category not in where:
                    pool = np.asarray(pools.get(category, empty), dtype=np.int64)
                    allowed = pool[~np.isin(pool, outfit)]
                    where[category] = (start, len(allowed))
                    blocks.append(allowed)
                    start += len(allowed)
                offsets[j], lengths[j] = where[category]
            self._plans.append((np.array(pairs, dtype=np.int64).reshape(-1, 2), offsets, lengths,
                                np.concatenate(blocks) if blocks else empty))

    def draw(self, rng: np.random.Generator, max_per_outfit: int | None = None) -> np.ndarray:
        """Fresh triplets ``(m, 3)`` int64: negatives (and, past ``max_per_outfit``, the kept pairs) drawn from ``rng``."""
        rows = []
        for pairs, offsets, lengths, negatives in self._plans:
            keep = np.arange(len(pairs))
            if max_per_outfit is not None and len(pairs) > max_per_outfit:
                keep = rng.choice(len(pairs), size=max_per_outfit, replace=False)
            keep = keep[lengths[keep] > 0]
            if len(keep):
                drawn = negatives[offsets[keep] + rng.integers(0, lengths[keep])]
                rows.append(np.column_stack([pairs[keep], drawn]))
        return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 3), dtype=np.int64)


def category_pools(outfits: Sequence[Sequence[int]], categories: np.ndarray) -> dict:
    """category -> sorted unique item rows (int64) of that category that appear in ``outfits``."""
    categories = np.asarray(categories)
    seen = np.unique(np.concatenate([np.asarray(o, dtype=np.int64) for o in outfits])) if len(outfits) else np.array([], int)
    return {c: seen[categories[seen] == c] for c in np.unique(categories[seen])}
