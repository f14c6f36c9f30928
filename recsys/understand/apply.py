"""Constraints at work: item masks, a ranking that puts what satisfies a request first, captions resolved against
a reference, turns merged into one request, and the sentence a request that cannot be met gets.

Every model ranks *within* what was asked (:func:`rank`): an item's rank key is a tier -- whether it meets every
requirement of one of the request's garments, then how much of it it meets (weighted by
:data:`recsys.understand.lexicon.ATTRIBUTE_PRIORITY`: the category first) -- and inside a tier the model's own score
plus small bonuses for what is preferred. So a request the catalog can meet shows only items that meet it, in the
model's order; one it cannot meet shows the closest items and says which part cannot be met.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import pandas as pd

from recsys.understand import lexicon
from recsys.understand.parse import Constraint
from recsys.understand.vocabulary import Vocabulary

#: How much meeting a requirement of each attribute counts when nothing meets all of them (powers of two: the
#: category outweighs everything below it).
WEIGHTS = {a: 2.0 ** (len(lexicon.ATTRIBUTE_PRIORITY) - k) for k, a in enumerate(lexicon.ATTRIBUTE_PRIORITY)}
#: The tier step, far above any model score (cosines and distances live within a few units).
_TIER = 1000.0
#: Score bonus of a preferred value (an occasion's style, the plain value after a negation).
PREFERENCE_BONUS = 0.05
#: Score bonus of each attribute a caption keeps from the reference ("keep the rest of the reference").
KEEP_BONUS = 0.3


def constraint_mask(items: pd.DataFrame, constraint: Constraint) -> np.ndarray:
    """Bool ``(n,)``: the items that meet ``constraint`` (an item without the attribute meets a negation only)."""
    if constraint.attribute not in items.columns:
        return np.full(len(items), constraint.negated)
    inside = items[constraint.attribute].astype(object).isin(list(constraint.values)).to_numpy()
    return ~inside if constraint.negated else inside


def _groups(constraints: Sequence[Constraint]) -> tuple[list[Constraint], dict[int, list[Constraint]]]:
    hard = [c for c in constraints if not c.soft and (c.values or not c.direction)]
    shared = [c for c in hard if c.group < 0]
    groups: dict[int, list[Constraint]] = {}
    for c in hard:
        if c.group >= 0:
            groups.setdefault(c.group, []).append(c)
    return shared, groups


def satisfaction(items: pd.DataFrame, constraints: Sequence[Constraint]) -> tuple[np.ndarray, np.ndarray]:
    """``(meets all, weight met)``, each ``(n,)``: whether an item meets every requirement of one of the request's
    garments (with the requirements of the request as a whole), and the largest weight (:data:`WEIGHTS`) of
    requirements it meets for one garment."""
    shared, groups = _groups(constraints)
    alternatives = [shared + mine for mine in groups.values()] or [shared]
    full = np.zeros(len(items), dtype=bool)
    weight = np.zeros(len(items))
    for alternative in alternatives:
        ok = np.ones(len(items), dtype=bool)
        met = np.zeros(len(items))
        for c in alternative:
            mask = constraint_mask(items, c)
            ok &= mask
            met += WEIGHTS.get(c.attribute, 1.0) * mask
        full |= ok
        weight = np.maximum(weight, met)
    return full, weight


def preference_bonus(items: pd.DataFrame, constraints: Sequence[Constraint], vocabulary: Vocabulary | None = None,
                     keep: dict | None = None) -> np.ndarray:
    """``(n,)`` score bonuses: :data:`PREFERENCE_BONUS` per preferred value met (soft constraints; the plain value of
    an attribute whose other value was ruled out and none asked for), :data:`KEEP_BONUS` per ``keep`` attribute
    ``{attribute: value}`` equal to the reference's."""
    bonus = np.zeros(len(items))
    for c in constraints:
        if c.soft:
            bonus += PREFERENCE_BONUS * constraint_mask(items, replace(c, negated=False))
    if vocabulary is not None:
        asked = {(c.group, c.attribute) for c in constraints if not c.negated and not c.soft}
        for c in constraints:
            plain = vocabulary.plain.get(c.attribute)
            if c.negated and plain and plain not in c.values and (c.group, c.attribute) not in asked:
                bonus += PREFERENCE_BONUS * constraint_mask(items, Constraint(c.attribute, (plain,)))
    for attribute, value in (keep or {}).items():
        if attribute in items.columns:
            bonus += KEEP_BONUS * (items[attribute].astype(object) == value).to_numpy()
    return bonus


def rank(scores: np.ndarray, items: pd.DataFrame, constraints: Sequence[Constraint], *, k: int,
         allowed: np.ndarray | None = None, bonus: np.ndarray | None = None) -> np.ndarray:
    """Rows of the ``k`` best items: those meeting the request first, then those meeting most of it, each tier in
    the order of the model's ``scores`` ``(n,)`` (higher is better) plus ``bonus``. ``allowed`` (bool ``(n,)``)
    limits the rows (a category filter, the reference left out)."""
    scores = np.asarray(scores, dtype=np.float64)
    full, weight = satisfaction(items, constraints)
    key = np.where(np.isfinite(scores), scores, -_TIER) + (0.0 if bonus is None else bonus)
    key = key + _TIER * weight + _TIER * 1000.0 * full
    if allowed is not None:
        key = np.where(allowed, key, -np.inf)
    k = int(min(k, np.isfinite(key).sum()))
    top = np.argpartition(-key, k - 1)[:k] if 0 < k < len(key) else np.arange(len(key))[:k]
    return top[np.argsort(-key[top], kind="stable")]


def unmet_sentence(items: pd.DataFrame, constraints: Sequence[Constraint], allowed: np.ndarray | None = None,
                   where: str = "in this catalog") -> str | None:
    """One sentence saying which part of the request no item ``allowed`` meets, or None when some item meets it
    all."""
    full, _ = satisfaction(items, constraints)
    scope = np.ones(len(items), dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    if (full & scope).any() or not [c for c in constraints if not c.soft]:
        return None
    shared, groups = _groups(constraints)
    for alternative in [shared + mine for mine in groups.values()] or [shared]:
        alone = [c for c in alternative if not (constraint_mask(items, c) & scope).any()]
        if alone:
            what = ", ".join(("not " if c.negated else "") + c.label for c in alone)
            return f"Nothing {where} is {what}, so that part cannot be met; the closest items are shown."
    labels = [("not " if c.negated else "") + c.label for c in (shared + next(iter(groups.values()), []))]
    joined = ", ".join(labels[:-1]) + " and " + labels[-1] if len(labels) > 1 else labels[0]
    return f"No item {where} is {joined} at once; the items shown meet most of it."


def resolve_captions(captions: Sequence[Sequence[Constraint]], reference: dict, vocabulary: Vocabulary
                     ) -> tuple[list[Constraint], dict, list[str]]:
    """Captions applied in order to a reference: ``(constraints, kept, notes)``.

    Each caption's values replace what the reference (or an earlier caption) had for that attribute; a negation
    rules values out (and drops them from an earlier caption's); a comparative ("darker", "shorter") becomes the
    values past the current one (:meth:`Vocabulary.values_between`). ``kept`` is ``{attribute: reference value}``
    for every attribute no caption touched (the category left out: the search's own filter keeps it).
    ``reference`` is ``{attribute: value}`` (missing values left out).
    """
    stated: dict[str, Constraint] = {}
    ruled_out: dict[str, set] = {}
    soft: list[Constraint] = []
    notes: list[str] = []
    for caption in captions:
        for c in caption:
            c = replace(c, group=-1, slot=None)
            if c.soft:
                soft.append(c)
                continue
            if c.direction and not c.values:
                current = stated[c.attribute].values if c.attribute in stated else (reference.get(c.attribute),)
                values = vocabulary.values_between(c.attribute, current[0], c.direction) if len(current) == 1 else ()
                if not values:
                    notes.append(f"\u201c{c.words}\u201d cannot be read against the reference's "
                                 f"{c.attribute} ({current[0] or 'not known'}); it is left to the model.")
                    continue
                c = replace(c, values=values)
            if c.negated:
                ruled_out.setdefault(c.attribute, set()).update(c.values)
                if c.attribute in stated:
                    kept = tuple(v for v in stated[c.attribute].values if v not in c.values)
                    stated[c.attribute] = replace(stated[c.attribute], values=kept)
            else:
                stated[c.attribute] = c
                ruled_out.get(c.attribute, set()).difference_update(c.values)
    constraints = [c for c in stated.values() if c.values] + soft
    constraints += [Constraint(a, tuple(sorted(v)), negated=True) for a, v in ruled_out.items() if v]
    touched = set(stated) | {a for a, v in ruled_out.items() if v}
    kept = {a: v for a, v in reference.items() if a not in touched and a != "category" and v is not None}
    return constraints, kept, notes


def merge_turns(turns: Sequence[Sequence[Constraint]]) -> list[Constraint]:
    """Constraints of a conversation's turns, in order, as one request: a later value for the same garment's
    attribute replaces the earlier one ("actually, blue"), a later negation drops the value it rules out, and
    everything else said before is kept. Garments are told apart by their slot (None: the request as a whole)."""
    merged: list[Constraint] = []
    for turn in turns:
        for c in turn:
            if c.negated:
                for old in [o for o in merged if not o.negated and o.slot == c.slot and o.attribute == c.attribute]:
                    merged.remove(old)
                    kept = tuple(v for v in old.values if v not in c.values)
                    if kept:
                        merged.append(replace(old, values=kept))
            elif not c.soft:
                merged = [o for o in merged if not (o.slot == c.slot and o.attribute == c.attribute
                                                    and (not o.negated or set(o.values) & set(c.values)))]
            merged.append(c)
    return merged
