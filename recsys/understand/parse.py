"""Reading a request: a message, caption or search turned into constraints in the catalog's own vocabulary.

:func:`understand` scans the text for the longest phrases the catalog's :class:`~recsys.understand.vocabulary.
Vocabulary` knows (a misspelt word is read as the catalog word it is closest to, with a note), marks what negation
cues rule out (NegEx-style scopes that end at a clause boundary: Chapman et al., J. Biomed. Inform. 2001), and
groups each attribute with the garment it is about -- the nearest category or slot word of its clause ("a grey
hoodie and black trousers": grey is the hoodie's, black the trousers'), else the last one named before it, else
the request as a whole. The result (:class:`Understanding`) says what it understood in one line
(:meth:`Understanding.summary`, e.g. "black · jacket → outer; not: white") and can drop a part the user removes.

Nothing here ranks or reads embeddings: :mod:`recsys.understand.apply` turns constraints into item masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from recsys.text import normalize_text, quote
from recsys.understand import lexicon
from recsys.understand.vocabulary import Meaning, Vocabulary, tokens

#: The longest text read (characters, after cleaning); the rest is not scanned (the embeddings still read it).
MAX_UNDERSTOOD_CHARS = 2000
#: Words that start a new clause inside a sentence (an attribute belongs to a garment of its own clause).
_CLAUSE_WORDS = ("and", "plus", "also", "then", "&")
_SENTENCE_ENDS = (".", "!", "?", ";")
#: How an attribute that two catalog columns share is read when nothing says which: a bare "short" is a length.
_AMBIGUITY_ORDER = ("category", "color", "pattern", "material", "length", "sleeve", "detail", "style")
_SLEEVE_WORDS, _LENGTH_WORDS = ("sleeve", "sleeves", "sleeved", "arms"), ("length", "cut", "hem", "hemline")


@dataclass(frozen=True)
class Constraint:
    """One thing a request asks for or rules out.

    Attributes
    ----------
    attribute : str
        ``category`` or an attribute column of the catalog.
    values : tuple of str
        Catalog values (any of); () for an unresolved comparative.
    negated : bool
        True: none of ``values`` may be taken.
    soft : bool
        A preference (an occasion's style), never a requirement.
    slot : str or None
        The catalog slot of the garment it is about; None: the request as a whole.
    group : int
        Which garment of the request it belongs to (-1: the request as a whole).
    words : str
        The words that said it.
    direction : int
        For a comparative (darker, shorter): -1 or +1 along the attribute's order, resolved against a reference.
    """

    attribute: str
    values: tuple = ()
    negated: bool = False
    soft: bool = False
    slot: str | None = None
    group: int = -1
    words: str = ""
    direction: int = 0

    @property
    def key(self) -> str:
        """A stable name of the constraint (what a removed part is remembered by)."""
        what = "|".join(self.values) if self.values else ("up" if self.direction > 0 else "down")
        return f"{'not ' if self.negated else ''}{'~' if self.soft else ''}{self.attribute}={what}@{self.slot or '*'}"

    @property
    def label(self) -> str:
        """The constraint in the catalog's words: "black", "jacket", "solid or striped", "darker"."""
        if self.direction and not self.values:
            return {("color", -1): "darker", ("color", 1): "lighter"}.get((self.attribute, self.direction),
                                                                          ("longer " if self.direction > 0 else "shorter ")
                                                                          + self.attribute)
        if self.attribute == "category" and len(self.values) > 2 and self.slot:
            return f"any {self.slot}"
        text = " or ".join(self.values)
        if self.attribute in ("sleeve", "length") and text not in ("sleeveless",):
            text = f"{text} {self.attribute}"
        return text


@dataclass
class Understanding:
    """What a request asks for, in the catalog's vocabulary.

    Attributes
    ----------
    text : str
        The request as read (cleaned).
    constraints : list of Constraint
    notes : list of str
        One sentence each: misspellings read, a garment the catalog lacks, a contradiction dropped.
    unmet : list of str
        Words naming something the catalog has none of ("scarf").
    """

    text: str = ""
    constraints: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    unmet: list = field(default_factory=list)

    @property
    def hard(self) -> list[Constraint]:
        """The requirements (not the preferences)."""
        return [c for c in self.constraints if not c.soft]

    def parts(self) -> list[tuple[str, str]]:
        """``(key, label)`` of every constraint, to show as removable chips ("not white", "~formal")."""
        return [(c.key, ("not " if c.negated else "") + ("prefers " if c.soft else "") + c.label)
                for c in self.constraints]

    def without(self, keys) -> "Understanding":
        """A copy without the constraints whose :attr:`Constraint.key` is in ``keys``."""
        keys = set(keys)
        return replace(self, constraints=[c for c in self.constraints if c.key not in keys])

    def summary(self) -> str:
        """One line: each garment's wanted values, the slot it fills, what is ruled out; "" when nothing was
        understood. E.g. ``"black · jacket → outer; not: white"``."""
        groups: dict[int, list[Constraint]] = {}
        for c in self.constraints:
            groups.setdefault(c.group, []).append(c)
        lines = []
        for group in sorted(groups, key=lambda g: (g < 0, g)):
            mine = groups[group]
            wanted = [c.label for c in mine if not c.negated and not c.soft]
            ruled_out = [c.label for c in mine if c.negated]
            preferred = [c.label for c in mine if c.soft and not c.negated]
            slot = next((c.slot for c in mine if c.slot), None)
            text = " · ".join(wanted) + (f" → {slot}" if slot and wanted else "")
            if ruled_out:
                text += ("; " if text else "") + "not: " + ", ".join(ruled_out)
            if preferred:
                text += ("; " if text else "") + "prefers: " + ", ".join(preferred)
            lines.append(text)
        return " | ".join(line for line in lines if line)


@dataclass
class _Mention:
    start: int
    words: str
    meanings: list
    negated: bool = False
    read_as: str | None = None  # the catalog word a misspelling was read as

    @property
    def kind(self) -> str:
        return self.meanings[0].kind if self.meanings else ("boundary" if self.words in lexicon.BOUNDARY_TOKENS
                                                              else "word")

    @property
    def is_anchor(self) -> bool:
        return any(m.attribute == "category" and m.kind in ("value", "slot") for m in self.meanings)


def _scan(words: list[str], vocabulary: Vocabulary) -> list[_Mention]:
    mentions, i = [], 0
    while i < len(words):
        for length in range(min(vocabulary.longest, len(words) - i), 0, -1):
            meanings = vocabulary.phrases.get(tuple(words[i:i + length]))
            if meanings:
                mentions.append(_Mention(i, " ".join(words[i:i + length]), list(meanings)))
                i += length
                break
        else:
            guess = None if words[i] in lexicon.BOUNDARY_TOKENS else vocabulary.fuzzy(words[i])
            if guess is not None and guess[1][0].kind in ("value", "slot", "comparative", "garment"):
                mentions.append(_Mention(i, words[i], list(guess[1]), read_as=guess[0]))
            else:
                mentions.append(_Mention(i, words[i], []))
            i += 1
    return mentions


def _mark_negations(mentions: list[_Mention]) -> None:
    negating, taken, since = False, 0, 0
    for m in mentions:
        if m.kind == "boundary":
            negating = False
        elif m.kind == "negation":
            negating, taken, since = True, 0, 0
        elif negating and m.meanings and m.is_anchor and taken:
            negating = False  # "not white sneakers": the garment after a ruled-out value is still wanted
        elif negating and m.meanings:
            m.negated, taken, since = True, taken + 1, 0
        elif negating:
            if taken and m.words in lexicon.SCOPE_ENDS:
                negating = False
            elif m.words not in ("or", "nor"):
                since += 1
                negating = since <= 5


def _disambiguate(m: _Mention, following: str) -> list[Meaning]:
    values = [x for x in m.meanings if x.kind == "value"]
    attributes = {x.attribute for x in values}
    if len(values) < 2 or len(attributes) < 2 or any(x.source != "catalog" for x in values):
        return m.meanings  # one meaning, or a compound ("jeans": trousers and denim; "ankle": boots, short)
    if following in _SLEEVE_WORDS and "sleeve" in attributes:
        return [x for x in values if x.attribute == "sleeve"]
    if following in _LENGTH_WORDS and "length" in attributes:
        return [x for x in values if x.attribute == "length"]
    best = min(attributes, key=lambda a: _AMBIGUITY_ORDER.index(a) if a in _AMBIGUITY_ORDER else 99)
    return [x for x in values if x.attribute == best]


def understand(text, vocabulary: Vocabulary, *, max_chars: int = MAX_UNDERSTOOD_CHARS) -> Understanding:
    """What ``text`` asks for in ``vocabulary``'s terms (see the module docstring).

    Parameters
    ----------
    text : str or None
        A chat message, caption or search, as typed.
    vocabulary : Vocabulary
        The catalog's (:meth:`Vocabulary.from_items`).
    max_chars : int
        Only this many characters are scanned.

    Returns
    -------
    Understanding
        Empty constraints when nothing names the catalog's words (another language, emoji, an empty
        vocabulary): the caller then ranks by the embeddings alone. Never raises.
    """
    cleaned = normalize_text(text)[:max_chars]
    words = tokens(cleaned)
    mentions = _scan(words, vocabulary)
    _mark_negations(mentions)
    found = Understanding(text=cleaned)
    for m in mentions:
        if m.read_as:
            found.notes.append(f"\u201c{quote(m.words)}\u201d is read as \u201c{m.read_as}\u201d.")
        if m.kind == "garment" and not m.negated:
            found.unmet.append(m.words)
    # Sentence and clause of every mention: an attribute belongs to a garment of its own clause first.
    sentence = clause = 0
    place = []
    for m in mentions:
        if m.words in _SENTENCE_ENDS:
            sentence += 1
        if m.kind == "boundary" or m.words in _CLAUSE_WORDS:
            clause += 1
        place.append((sentence, clause))
    anchors = [k for k, m in enumerate(mentions) if m.is_anchor and not m.negated]
    group_of_anchor: dict[int, int] = {}
    category_key: dict[tuple, int] = {}
    for k in anchors:
        values = tuple(sorted({v for x in mentions[k].meanings if x.attribute == "category" for v in x.values}))
        group_of_anchor[k] = category_key.setdefault(values, len(category_key))
    _merge_slot_words(mentions, anchors, place, group_of_anchor, vocabulary)
    constraints: list[Constraint] = []
    slot_of_group: dict[int, str | None] = {}
    for k in anchors:
        m = mentions[k]
        for x in m.meanings:
            if x.attribute == "category":
                slot = x.slot if x.kind == "slot" else _one_slot(vocabulary, x.values)
                slot_of_group.setdefault(group_of_anchor[k], slot)
    for k, m in enumerate(mentions):
        if not m.meanings or m.kind in ("negation", "garment"):
            continue
        following = mentions[k + 1].words if k + 1 < len(mentions) else ""
        group = _group_of(k, m, mentions, anchors, place, group_of_anchor)
        for x in _disambiguate(m, following):
            if x.kind == "negation" or (x.kind == "comparative" and m.negated):
                continue
            soft = x.kind == "occasion"
            g = -1 if soft else group
            constraints.append(Constraint(x.attribute, tuple(x.values), negated=m.negated, soft=soft,
                                          slot=slot_of_group.get(g), group=g, words=m.words, direction=x.direction))
    found.constraints = _tidy(constraints, found.notes)
    for word in found.unmet:
        found.notes.append(f"This catalog has no {word}; the closest items are shown.")
    return found


def _merge_slot_words(mentions, anchors, place, group_of_anchor, vocabulary: Vocabulary) -> None:
    """A slot word followed closely by a garment of the sentence ("for the outer, a jacket"; "shoes: black boots")
    names that garment's place, not a second garment: it joins the garment's group and asks nothing itself."""
    for k in anchors:
        if not any(x.kind == "slot" for x in mentions[k].meanings):
            continue
        slot = next(x.slot for x in mentions[k].meanings if x.kind == "slot")
        later = [a for a in anchors if a > k and place[a][0] == place[k][0]
                 and not any(x.kind == "slot" for x in mentions[a].meanings)]
        joined = later and not any(m.words in _CLAUSE_WORDS for m in mentions[k + 1:later[0]])
        if joined and (later[0] - k <= 4 or _one_slot(vocabulary, _categories(mentions[later[0]])) == slot):
            group_of_anchor[k] = group_of_anchor[later[0]]
            mentions[k].meanings = [x for x in mentions[k].meanings if x.kind != "slot"]


def _categories(m: _Mention) -> tuple:
    return tuple(v for x in m.meanings if x.attribute == "category" for v in x.values)


def _one_slot(vocabulary: Vocabulary, categories) -> str | None:
    slots = {vocabulary.slot_of.get(c) for c in categories}
    return slots.pop() if len(slots) == 1 else None


def _group_of(k: int, m: _Mention, mentions, anchors, place, group_of_anchor) -> int:
    if m.is_anchor:
        return -1 if m.negated else group_of_anchor[k]
    same_clause = [a for a in anchors if place[a] == place[k]]
    if same_clause:
        nearest = min(same_clause, key=lambda a: (abs(a - k), a < k))
        return group_of_anchor[nearest]
    before = [a for a in anchors if a < k]
    if before:
        return group_of_anchor[before[-1]]
    after = [a for a in anchors if a > k and place[a][0] == place[k][0]]
    return group_of_anchor[after[0]] if after else -1


def _tidy(constraints: list[Constraint], notes: list[str]) -> list[Constraint]:
    """Merge each garment's positive values of one attribute (any of), and drop a value both asked for and ruled
    out (with a note)."""
    merged: dict[tuple, Constraint] = {}
    for c in constraints:
        key = (c.group, c.attribute, c.negated, c.soft, c.direction)
        if key in merged and not c.direction:
            old = merged[key]
            values = old.values + tuple(v for v in c.values if v not in old.values)
            merged[key] = replace(old, values=values, words=f"{old.words}, {c.words}")
        else:
            merged.setdefault(key, c)
    out = list(merged.values())
    for c in [c for c in out if c.negated]:
        for other in [o for o in out if not o.negated and o.group == c.group and o.attribute == c.attribute]:
            clash = set(other.values) & set(c.values)
            if not clash:
                continue
            notes.append(f"The request both asks for and rules out {', '.join(sorted(clash))}, so neither is used.")
            out.remove(other)
            kept = tuple(v for v in other.values if v not in clash)
            if kept:
                out.append(replace(other, values=kept))
            out.remove(c)
            kept = tuple(v for v in c.values if v not in clash)
            if kept:
                out.append(replace(c, values=kept))
            break
    return out
