"""The one normaliser of user text: every service that takes what a user typed cleans it here first.

What a user types reaches the studio in many equivalent spellings: Hangul and accented letters composed (NFC) or
decomposed (NFD, what macOS file names and some keyboards give), zero-width and bidirectional control characters
pasted along with a title, runs of spaces, tabs and line breaks, and now and then a whole page of text.
:func:`clean_text` turns all of them into one canonical string (Unicode NFC, invisible format characters removed,
whitespace collapsed, cut at a length cap) and says in one sentence what the user should know: that nothing is left
(``problem``), or that the text was cut (``note``). Callers never lose state on an empty text: they show the
sentence and keep everything else as it was.

Follows the Unicode Standard Annex #15 (normalization forms) and the character categories of the Unicode Character
Database as Python's :mod:`unicodedata` ships them; no Streamlit, no model code.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

#: The longest text a service reads by default (characters, after cleaning); the rest is cut with a note.
MAX_TEXT_CHARS = 1000
#: Characters of a user's text quoted back in a message (a quote never floods the page).
QUOTE_CHARS = 40

# Unicode general categories dropped: format characters (zero-width space, joiners, the bidirectional embeddings,
# overrides and isolates, the byte-order mark, soft hyphens), controls that are not whitespace, and lone surrogates
# (which cannot be encoded to send to a browser).
_DROPPED_CATEGORIES = frozenset({"Cf", "Cc", "Cs"})


@dataclass(frozen=True)
class CleanText:
    """A user's text made canonical, and what to tell the user about it.

    Attributes
    ----------
    text : str
        The cleaned text: NFC, no invisible characters, single spaces, at most the cap; "" when nothing is left.
    problem : str or None
        One sentence when the text is empty after cleaning (nothing to use); None otherwise.
    note : str or None
        One sentence when the text was cut at the cap; None otherwise.
    """

    text: str
    problem: str | None = None
    note: str | None = None

    @property
    def usable(self) -> bool:
        """True when something is left to use."""
        return bool(self.text)

    @property
    def messages(self) -> list[str]:
        """The sentences to show the user (the problem, then the note), possibly none."""
        return [m for m in (self.problem, self.note) if m]


def normalize_text(text) -> str:
    """``text`` in canonical form: Unicode NFC, format and control characters removed, whitespace collapsed.

    ``None`` becomes ""; any other object is read through ``str``. Composed and decomposed spellings of the same
    letters (``"한"`` and ``"\\u1112\\u1161\\u11ab"``, ``"é"`` and ``"e\\u0301"``) give the same string; zero-width
    and bidirectional controls (U+200B..U+200F, U+202A..U+202E, U+2066..U+2069, U+FEFF, ...) are dropped; every run
    of Unicode whitespace (tabs, line breaks, U+00A0, U+3000, ...) becomes one space, none at either end. Never
    raises.
    """
    text = "" if text is None else str(text)
    if text.isascii() and text.isprintable():  # the common case: nothing to normalise but the spaces
        return " ".join(text.split())
    kept = "".join(ch if ch.isspace() or unicodedata.category(ch) not in _DROPPED_CATEGORIES else ""
                   for ch in text)
    # NFC after the drop: a combining mark separated from its letter by an invisible character joins it again.
    return " ".join(unicodedata.normalize("NFC", kept).split())


def has_words(text: str) -> bool:
    """True when ``text`` has at least one letter or digit (emoji, punctuation and symbols alone have none)."""
    return any(ch.isalnum() for ch in text)


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` cut to ``limit`` characters (with an ellipsis when cut), to quote it back in one sentence."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def clean_text(text, *, what: str = "text", max_chars: int = MAX_TEXT_CHARS, empty: str | None = None) -> CleanText:
    """Clean what a user typed (:func:`normalize_text`) and cut it at ``max_chars`` characters.

    Parameters
    ----------
    text : str or None
        The raw input of a text box or chat message.
    what : str
        What the text is, for the sentences ("message", "caption", "title search", "user id").
    max_chars : int
        The longest text kept (characters, after cleaning); longer text is cut there, with a note.
    empty : str, optional
        The sentence for a text that is empty after cleaning; default "The <what> is empty ...".

    Returns
    -------
    CleanText
        ``problem`` set when nothing is left (whitespace only, invisible characters only), ``note`` set when the text
        was cut. Never raises.
    """
    cleaned = normalize_text(text)
    if not cleaned:
        default = f"The {what} is empty (it holds only spaces or invisible characters); type some words."
        return CleanText("", problem=empty or default)
    if len(cleaned) > max_chars:
        return CleanText(cleaned[:max_chars], note=f"The {what} is very long; only its first {max_chars:,} characters are read.")
    return CleanText(cleaned)
