"""Dialogue text: chat turns to dialogue vectors, and the checks a user's chat message goes through.

A FASCODE dialogue is a list of turns ``{"speaker": "US" | "CO" | "AC", "text": str, "tags": [...],
"item_ids": [...]}`` (DESIGN section 3); the models read only the user's (``US``) words, embedded by the text
encoder of the catalog's artifacts (Kim et al., "FASCODE", 2021, embed the dialogue with a sentence encoder too).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from recsys.text import clean_text, has_words, quote

#: Words that name a slot in a message (English, and the Korean of the FASCODE data).
SLOT_WORDS = {
    "outer": ("outer", "jacket", "coat", "cardigan", "blazer", "parka", "vest", "아우터", "자켓", "재킷", "코트",
              "점퍼", "가디건", "카디건", "조끼"),
    "top": ("top", "shirt", "tee", "blouse", "sweater", "knit", "hoodie", "polo", "tank", "상의", "셔츠",
            "블라우스", "니트", "티셔츠", "맨투맨"),
    "bottom": ("bottom", "pants", "trousers", "jeans", "skirt", "shorts", "leggings", "dress", "하의", "바지",
               "치마", "스커트", "원피스", "청바지"),
    "shoes": ("shoes", "shoe", "sneaker", "boot", "heel", "sandal", "loafer", "신발", "구두", "운동화",
              "부츠", "샌들"),
}
#: The longest message the stylist reads (characters); the rest is cut with a note.
MAX_MESSAGE_CHARS = 1000


# ====================================================================== dialogue text
def user_turns(turns: Iterable[dict], speakers: Sequence[str] = ("US",)) -> list[str]:
    """The non-empty texts of the turns spoken by ``speakers`` (default: the user), in order."""
    return [str(t.get("text") or "").strip() for t in turns
            if t.get("speaker") in speakers and str(t.get("text") or "").strip()]


def dialogue_vectors(encoder, dialogues: Sequence[Sequence[dict]], speakers: Sequence[str] = ("US",)) -> np.ndarray:
    """Embed dialogues as ``[mean of the user turns, last user turn]``, shape ``(m, 2 * encoder.dim)``, float32.

    Each turn is encoded on its own, so one very long message is cut at the encoder's limit without pushing the
    rest of the conversation out; a text that recurs (greetings, stock requests) is encoded once. A dialogue
    without user text gets zeros.

    Raises
    ------
    recsys.encoders.EncoderError
        From ``encoder.encode_text`` when the encoder cannot run.
    """
    texts, owner = [], []
    for k, turns in enumerate(dialogues):
        for text in user_turns(turns, speakers):
            texts.append(text)
            owner.append(k)
    dim = int(encoder.dim)
    out = np.zeros((len(dialogues), 2 * dim), dtype=np.float32)
    if not texts:
        return out
    distinct: dict[str, int] = {}
    position = np.array([distinct.setdefault(text, len(distinct)) for text in texts])
    vectors = encoder.encode_text(list(distinct))[position]
    owner = np.asarray(owner)
    for k in range(len(dialogues)):
        rows = vectors[owner == k]
        if len(rows):
            out[k, :dim] = rows.mean(axis=0)
            out[k, dim:] = rows[-1]
    return out


# ====================================================================== message checks
def named_slots(text: str) -> list[str]:
    """The FASCODE slots a message names, in slot order (``[]`` when it names none)."""
    lowered = text.lower()
    found = []
    for slot, words in SLOT_WORDS.items():
        for word in words:
            # Latin words must stand alone ("top" is not "laptop"); Korean words are matched inside eojeol.
            pattern = rf"\b{re.escape(word)}s?\b" if word.isascii() else re.escape(word)
            if re.search(pattern, lowered):
                found.append(slot)
                break
    return found


def is_mostly_latin(text: str) -> bool:
    """True when at least half of the letters of ``text`` are Latin (the default text encoder reads English)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return True
    latin = sum(1 for c in letters if "LATIN" in unicodedata.name(c, ""))
    return latin >= len(letters) / 2


def encoder_reads_only_english(spec: str) -> bool:
    """True for the packaged all-MiniLM-L6-v2 (``minilm`` without a folder), which was trained on English."""
    return spec.strip() == "minilm"


@dataclass
class MessageCheck:
    """A user message made ready for the model, and what the user should be told about it.

    Attributes
    ----------
    text : str
        The cleaned message (:func:`recsys.text.clean_text`: NFC, invisible characters dropped, whitespace
        collapsed, cut to the limit); "" when unusable.
    problems : list of str
        Why the message cannot be used (one sentence each).
    notes : list of str
        What the user should know about how it is read (one sentence each).
    """

    text: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """True when the cleaned message is not empty, so the model can read it."""
        return bool(self.text)


def check_message(text: str | None, english_only_encoder: bool = True, max_chars: int = MAX_MESSAGE_CHARS) -> MessageCheck:
    """Clean a chat message (:func:`recsys.text.clean_text`) and list what is wrong or worth saying about it.

    An empty message (whitespace or invisible characters only) and one without a letter or digit (emoji or
    punctuation only) are unusable; a very long one is cut to ``max_chars``; a message in another language is
    kept, with a note when the text encoder reads English only; a message naming no slot is kept, with a
    note that the proposal covers every slot. Each problem and note is one sentence. Never raises.
    """
    cleaned = clean_text(text, what="message", max_chars=max_chars,
                         empty="The message is empty; tell the stylist what you are looking for.")
    check = MessageCheck(text=cleaned.text)
    if not cleaned.usable:
        check.problems.append(cleaned.problem)
        return check
    if not has_words(cleaned.text):
        check.text = ""
        check.problems.append(f"The message \u201c{quote(cleaned.text)}\u201d has no words (only emoji, punctuation or "
                              "symbols); tell the stylist what you are looking for in words.")
        return check
    if cleaned.note:
        check.notes.append(cleaned.note)
    if english_only_encoder and not is_mostly_latin(check.text):
        check.notes.append(
            "The message is not in English, and the text encoder in use reads English only, so it is matched poorly; "
            "name a multilingual sentence-transformers folder with RECSYS_TEXT_ENCODER=minilm:/path/to/model."
        )
    if not named_slots(check.text):
        check.notes.append("The message names no slot (outer, top, bottom, shoes); the proposal covers all four.")
    return check
