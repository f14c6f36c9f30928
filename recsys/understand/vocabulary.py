"""A catalog's own words: the phrases that name its categories and attribute values, for reading what people type.

:class:`Vocabulary` is built from a catalog's items table once (:meth:`Vocabulary.from_items`) and maps each phrase
(a tuple of tokens) to its :class:`Meaning` s, from four sources in order of trust: the catalog's own values
(``tshirt``, ``checked``), the title words that name one value (on the built-in world "mini" names length
``short``, "cropped" length ``midi``: learned from the titles, not listed), the general lexicon
(:mod:`recsys.understand.lexicon`: "trainers", "plaid", "jumper"), and the nearest catalog colour of a CSS colour
name. A phrase keeps only the meanings of its most trusted source. A catalog without attribute columns still has
its categories; one with neither gets an empty vocabulary, and requests then fall back to the embeddings alone.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.understand import lexicon

#: Attribute columns read, besides ``category`` (the catalog format's optional attributes, DESIGN section 3).
ATTRIBUTES = ("color", "pattern", "sleeve", "length", "detail", "style", "material")
#: Sources, most trusted first.
SOURCES = ("catalog", "title", "lexicon", "colour-name")
#: The shortest misspelt word read, and how alike it must be (difflib's ratio) to a catalog word: "balck" is
#: black (0.8), "read" is not red (a common word, never read as a misspelling).
FUZZY_MIN_CHARS, FUZZY_CUTOFF = 4, 0.8
#: A title word names a value when at least this many items carry it and this share of them have that value.
TITLE_MIN_ITEMS, TITLE_PURITY = 3, 0.95
_LEXICON_WORDS = frozenset(w for groups in (*lexicon.SYNONYMS.values(), lexicon.SLOT_WORDS, lexicon.OCCASIONS)
                           for phrases in (groups.values() if isinstance(groups, dict) else [groups])
                           for p in phrases for w in [p] if " " not in p)
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[,.;:!?()/]", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lower-case word and punctuation tokens of ``text`` (hyphens and underscores split words: "t-shirt" is
    ``["t", "shirt"]``; an apostrophe keeps "don't" whole)."""
    text = str(text).lower().replace("\u2019", "'").replace("-", " ").replace("_", " ")
    return _TOKEN.findall(text)


def squash(value) -> str:
    """``value`` lower case without spaces, hyphens or punctuation (how lexicon concepts meet catalog values)."""
    return re.sub(r"[\W_]+", "", str(value).lower())


@dataclass(frozen=True)
class Meaning:
    """What a phrase says.

    Attributes
    ----------
    attribute : str
        ``category`` or an attribute column; "" for a negation cue or a garment the catalog lacks.
    values : tuple of str
        Catalog values, any of (for ``kind == "garment"``: the word itself).
    kind : str
        ``value``, ``slot`` (a whole slot: any of its categories), ``occasion`` (a style preferred, not required),
        ``comparative`` (``direction`` -1 down / +1 up the attribute's order), ``negation`` or ``garment``.
    source : str
        One of :data:`SOURCES`.
    slot : str or None
        For ``kind == "slot"``: the catalog slot.
    direction : int
    """

    attribute: str
    values: tuple = ()
    kind: str = "value"
    source: str = "catalog"
    slot: str | None = None
    direction: int = 0


@dataclass
class Vocabulary:
    """The phrases of one catalog (see the module docstring).

    Attributes
    ----------
    phrases : dict
        ``{token tuple: [Meaning]}``.
    values : dict
        ``{attribute: [catalog values]}`` for ``category`` and each attribute column the catalog fills.
    slot_of : dict
        ``{category: catalog slot}`` (empty without a ``slot`` column).
    lightness : dict
        ``{colour value: CIE L*}`` for colour values CSS names.
    order : dict
        ``{attribute: {value: rank}}`` for lengths and sleeves whose words :data:`lexicon.ORDER_WORDS` orders.
    plain : dict
        ``{attribute: value}`` -- the value meaning "none of them" (``solid``, ``none``).
    """

    phrases: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    slot_of: dict = field(default_factory=dict)
    lightness: dict = field(default_factory=dict)
    order: dict = field(default_factory=dict)
    plain: dict = field(default_factory=dict)
    longest: int = 1

    @property
    def attributes(self) -> list[str]:
        """``category`` and the attribute columns with values, in :data:`lexicon.ATTRIBUTE_PRIORITY` order."""
        known = [a for a in lexicon.ATTRIBUTE_PRIORITY if a in self.values]
        return known + [a for a in self.values if a not in known]

    @property
    def empty(self) -> bool:
        """True when the catalog names nothing a request could ask for (no categories, no attributes)."""
        return not self.values

    # ------------------------------------------------------------------ building
    @classmethod
    def from_items(cls, items: pd.DataFrame) -> "Vocabulary":
        """The vocabulary of an items table (``category``, optional ``slot``, ``title`` and attribute columns).

        Never raises for missing columns: what is absent is left out.
        """
        vocab = cls()
        for column in ("category",) + ATTRIBUTES:
            if column in items.columns:
                values = sorted({str(v) for v in items[column].dropna().unique() if str(v).strip()})
                if values:
                    vocab.values[column] = values
        if "slot" in items.columns and "category" in items.columns:
            slots = items.dropna(subset=["slot", "category"]).groupby("category")["slot"].agg(lambda s: s.mode().iat[0])
            vocab.slot_of = {str(k): str(v) for k, v in slots.items()}
        vocab._add_catalog_values()
        if "title" in items.columns:
            vocab._add_title_words(items)
        vocab._add_lexicon()
        vocab._add_css_colours()
        vocab._add_variants()
        vocab._index_orders()
        vocab.longest = max((len(p) for p in vocab.phrases), default=1)
        return vocab

    def _add(self, phrase, meaning: Meaning) -> None:
        key = tuple(tokens(phrase)) if isinstance(phrase, str) else tuple(phrase)
        if not key:
            return
        known = self.phrases.get(key)
        if known:
            rank, mine = SOURCES.index(known[0].source), SOURCES.index(meaning.source)
            if mine > rank:
                return
            if mine < rank:
                known.clear()
            if meaning in known:
                return
            known.append(meaning)
        else:
            self.phrases[key] = [meaning]

    def _find(self, attribute: str, concept: str) -> tuple:
        target = squash(concept)
        found = tuple(v for v in self.values.get(attribute, ()) if squash(v) in (target, target + "s", target + "es")
                      or target in (squash(v) + "s",))
        return found

    def _add_catalog_values(self) -> None:
        for attribute, values in self.values.items():
            for value in values:
                if squash(value) in lexicon.PLAIN_VALUES and attribute != "pattern":
                    continue  # "none", "no": only the lexicon's phrases ("no details") name them
                self._add(value, Meaning(attribute, (value,)))
            plain = [v for v in values if squash(v) in lexicon.PLAIN_VALUES]
            if plain:
                self.plain[attribute] = plain[0]

    def _add_title_words(self, items: pd.DataFrame) -> None:
        # A word of the titles that the catalog's values do not spell, carried by one value of an attribute (on the
        # built-in world "mini", "maxi", "cropped", "ankle"): the catalog's own name for that value.
        words = items["title"].fillna("").astype(str).map(lambda t: sorted(set(tokens(t))))
        exploded = pd.DataFrame({"row": np.arange(len(items)), "word": words.to_numpy()}).explode("word").dropna()
        if exploded.empty:
            return
        exploded = exploded[exploded["word"].str.len() >= 3]
        known = exploded["word"].map(lambda w: (w,) in self.phrases or w in _LEXICON_WORDS or w in lexicon.COMMON_WORDS)
        exploded = exploded[~known.to_numpy(dtype=bool)]
        counts = exploded["word"].value_counts()
        exploded = exploded[exploded["word"].isin(counts[counts >= TITLE_MIN_ITEMS].index)]
        if exploded.empty:
            return
        for attribute in self.values:
            column = items[attribute].to_numpy()
            frame = exploded.assign(value=column[exploded["row"].to_numpy()]).dropna(subset=["value"])
            for word, group in frame.groupby("word"):
                shares = group["value"].astype(str).value_counts(normalize=True)
                base = (items[attribute].astype(str) == shares.index[0]).mean()
                if shares.iat[0] >= TITLE_PURITY and len(group) >= TITLE_MIN_ITEMS and base < 0.5 \
                        and len(group) >= TITLE_PURITY * counts[word]:
                    self._add((word,), Meaning(attribute, (shares.index[0],), source="title"))

    def _add_lexicon(self) -> None:
        for attribute, concepts in lexicon.SYNONYMS.items():
            if attribute not in self.values:
                continue
            by_phrase: dict[str, list] = defaultdict(list)
            for concept, phrases in concepts.items():
                found = self._find(attribute, concept)
                for phrase in phrases if found else ():
                    by_phrase[phrase] += [v for v in found if v not in by_phrase[phrase]]
            for phrase, values in by_phrase.items():
                self._add(phrase, Meaning(attribute, tuple(values), source="lexicon"))
        for phrase, parts in lexicon.COMPOUNDS.items():
            meanings = [Meaning(a, self._find(a, c), source="lexicon") for a, c in parts.items() if a in self.values]
            if meanings and all(m.values for m in meanings) and len(meanings) == len(parts):
                for meaning in meanings:
                    self._add(phrase, meaning)
        by_slot: dict[str, list] = defaultdict(list)
        for category, slot in self.slot_of.items():
            by_slot[slot].append(category)
        for slot, phrases in lexicon.SLOT_WORDS.items():
            if by_slot.get(slot):
                for phrase in phrases:
                    self._add(phrase, Meaning("category", tuple(sorted(by_slot[slot])), kind="slot", source="lexicon",
                                              slot=slot))
        if "style" in self.values:
            for concept, phrases in lexicon.OCCASIONS.items():
                found = self._find("style", concept)
                for phrase in phrases if found else ():
                    self._add(phrase, Meaning("style", found, kind="occasion", source="lexicon"))
        for phrase, (attribute, direction) in lexicon.COMPARATIVES.items():
            if attribute in self.values:
                self._add(phrase, Meaning(attribute, (), kind="comparative", source="lexicon", direction=direction))
        for phrase in lexicon.NEGATION_CUES:
            self._add(phrase, Meaning("", (), kind="negation", source="lexicon"))
        garments = set(lexicon.OTHER_GARMENTS)
        if "category" in self.values:
            garments |= {p for c, ps in lexicon.SYNONYMS["category"].items() if not self._find("category", c) for p in ps}
        for word in garments:
            if tuple(tokens(word)) not in self.phrases:
                self._add(word, Meaning("", (word,), kind="garment", source="lexicon"))

    def _add_css_colours(self) -> None:
        from PIL import ImageColor

        colours = {v: css_lightness_lab(v) for v in self.values.get("color", ())}
        self.lightness = {v: lab[0] for v, lab in colours.items() if lab is not None}
        known = {v: lab for v, lab in colours.items() if lab is not None}
        if len(known) < 2:
            return
        names, labs = list(known), np.array(list(known.values()))
        for name in ImageColor.colormap:
            if (name,) in self.phrases or name in ("linen", "snow", "peru"):
                continue
            lab = css_lightness_lab(name)
            nearest = names[int(np.argmin(np.linalg.norm(labs - np.asarray(lab), axis=1)))]
            self._add((name,), Meaning("color", (nearest,), source="colour-name"))

    def _add_variants(self) -> None:
        # Plurals and singulars of every phrase's last word, where the variant means nothing else already.
        for phrase, meanings in list(self.phrases.items()):
            last = phrase[-1]
            variants = {last + "s", last + "es"} | ({last[:-1]} if last.endswith("s") and len(last) > 3 else set())
            for variant in variants:
                key = phrase[:-1] + (variant,)
                if key not in self.phrases:
                    self.phrases[key] = list(meanings)

    def _index_orders(self) -> None:
        for attribute, words in lexicon.ORDER_WORDS.items():
            ranks = {}
            for value in self.values.get(attribute, ()):
                found = [words.index(w) for w in tokens(value) if w in words]
                if found:
                    ranks[value] = min(found)
            if len(ranks) >= 2:
                self.order[attribute] = ranks

    # ------------------------------------------------------------------ reading
    def fuzzy(self, word: str) -> tuple[str, list] | None:
        """``(catalog word, meanings)`` a misspelt single ``word`` most likely is, or None (too short, a common
        English word, or nothing alike enough: :data:`FUZZY_CUTOFF`)."""
        if len(word) < FUZZY_MIN_CHARS or word in lexicon.COMMON_WORDS or not word.isalpha():
            return None
        single = [p[0] for p, ms in self.phrases.items() if len(p) == 1 and len(p[0]) >= FUZZY_MIN_CHARS
                  and ms[0].source in ("catalog", "title", "lexicon") and ms[0].kind != "negation"]
        close = difflib.get_close_matches(word, single, n=1, cutoff=FUZZY_CUTOFF)
        return (close[0], self.phrases[(close[0],)]) if close else None

    def values_between(self, attribute: str, value: str, direction: int) -> tuple:
        """The catalog values of ``attribute`` past ``value`` in ``direction`` (-1: darker / shorter, +1: lighter /
        longer), nearest first; () when the attribute has no order or ``value`` has no place in it."""
        if attribute == "color":
            scale, margin = self.lightness, lexicon.COMPARABLE_LIGHTNESS
        else:
            scale, margin = self.order.get(attribute, {}), 0.5
        if value not in scale:
            return ()
        past = [v for v in scale if (scale[v] - scale[value]) * direction >= margin]
        return tuple(sorted(past, key=lambda v: abs(scale[v] - scale[value])))


def css_lightness_lab(name: str) -> tuple[float, float, float] | None:
    """CIE L*a*b* (D65) of a CSS colour name (:mod:`PIL.ImageColor`), or None when it is not one."""
    from PIL import ImageColor

    try:
        rgb = np.asarray(ImageColor.getrgb(str(name).strip().lower().replace(" ", "")), dtype=np.float64)[:3] / 255.0
    except ValueError:
        return None
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return (float(116 * f[1] - 16), float(500 * (f[0] - f[1])), float(200 * (f[1] - f[2])))
