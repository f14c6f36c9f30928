"""The text sweep (issue 14): every service that takes what a user typed reads it through ``recsys.text``.

Composed and decomposed Hangul and accents give the same result, zero-width and bidirectional controls are invisible
to every input, whitespace- and emoji-only texts get one sentence, and very long texts are cut with one.
"""

from __future__ import annotations

import unicodedata

import pandas as pd
import pytest

from _pages import open_page

from recsys.browse import MAX_SEARCH_CHARS, filter_items, title_search
from recsys.tasks.composed.service import MAX_CAPTION_CHARS, caption_notes
from recsys.tasks.dialogue.messages import MAX_MESSAGE_CHARS, check_message, named_slots
from recsys.text import MAX_TEXT_CHARS, clean_text, has_words, normalize_text


HANGUL = "빨간 치마"  # "red skirt"
HANGUL_NFD = unicodedata.normalize("NFD", HANGUL)
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


class FakeEncoder:
    max_tokens = 8

    def truncates(self, text: str) -> bool:
        return len(text.split()) > self.max_tokens


# ---------------------------------------------------------------------- the normaliser
def test_the_two_spellings_of_hangul_and_accents_become_one():
    assert HANGUL_NFD != HANGUL and len(HANGUL_NFD) == 11  # conjoining jamo: 3 + 3, a space, 2 + 2
    assert normalize_text(HANGUL_NFD) == HANGUL
    assert normalize_text("cafe\u0301 au lait") == "caf\u00e9 au lait"
    # a combining accent kept apart from its letter by a zero-width space still joins it
    assert normalize_text("e\u200b\u0301") == "\u00e9"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (f"red{ZERO_WIDTH} shirt", "red shirt"),
        (f"{BIDI}red shirt{BIDI}", "red shirt"),
        ("\u202eprd\u202c shirt", "prd shirt"),  # a right-to-left override pasted with the text
        ("  red\t\n shirt\u00a0\u3000 ", "red shirt"),
        ("red\x00\x07 shirt", "red shirt"),
        ("red \ud800shirt", "red shirt"),  # a lone surrogate cannot be sent to a browser
        (None, ""),
        (12, "12"),
    ],
)
def test_invisible_characters_are_dropped_and_whitespace_collapsed(raw, clean):
    assert normalize_text(raw) == clean


def test_empty_after_cleaning_gets_one_sentence_and_long_text_is_cut_with_one():
    for raw in ("", "   \t\n", ZERO_WIDTH * 3, BIDI, None):
        cleaned = clean_text(raw, what="caption")
        assert not cleaned.usable and cleaned.text == ""
        assert cleaned.problem.startswith("The caption is empty") and cleaned.problem.count(".") == 1
        assert cleaned.messages == [cleaned.problem]
    long = clean_text("a" * 5000)
    assert long.usable and len(long.text) == MAX_TEXT_CHARS and long.problem is None
    assert long.note == f"The text is very long; only its first {MAX_TEXT_CHARS:,} characters are read."
    assert clean_text("red shirt").messages == []
    assert clean_text("x", empty="Say something.").problem is None
    assert clean_text(" ", empty="Say something.").problem == "Say something."


def test_emoji_and_punctuation_have_no_words():
    assert not has_words("🔥👗✨") and not has_words("?!… ,,") and not has_words("")
    assert has_words("👗 치마") and has_words("3")


# ---------------------------------------------------------------------- the stylist's messages
def test_a_message_reads_the_same_in_either_spelling():
    composed, decomposed = check_message(HANGUL), check_message(HANGUL_NFD)
    assert decomposed.text == composed.text == HANGUL
    assert decomposed.notes == composed.notes
    assert named_slots(decomposed.text) == ["bottom"]  # 치마 (skirt) is found in the decomposed spelling too
    assert check_message(f"a navy{ZERO_WIDTH} coat{BIDI}").text == "a navy coat"


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ("   ", "The message is empty"),
        (ZERO_WIDTH * 4, "The message is empty"),
        (BIDI + "\n\t", "The message is empty"),
        ("🔥🔥👗", "has no words"),
        ("?!...", "has no words"),
    ],
)
def test_messages_with_nothing_to_read_are_unusable_with_one_sentence(message, says):
    check = check_message(message)
    assert not check.usable and check.text == ""
    assert len(check.problems) == 1 and says in check.problems[0]


def test_a_very_long_message_is_cut_at_the_limit_with_a_note():
    check = check_message("a red top " * 2000)
    assert check.usable and len(check.text) == MAX_MESSAGE_CHARS
    assert any("very long" in n for n in check.notes)


# ---------------------------------------------------------------------- captions and free text
def test_a_caption_reads_the_same_in_either_spelling():
    assert caption_notes(HANGUL_NFD, FakeEncoder()) == caption_notes(HANGUL, FakeEncoder())
    assert caption_notes("e\u0301carlate", FakeEncoder())[0] == "\u00e9carlate"


@pytest.mark.parametrize("caption", [ZERO_WIDTH * 5, "\u200b", BIDI, " \u3000 \n"])
def test_a_caption_of_invisible_characters_is_empty_with_one_sentence(caption):
    text, notes = caption_notes(caption, FakeEncoder())
    assert text is None
    assert len(notes) == 1 and notes[0].startswith("The caption is empty")


def test_a_huge_caption_is_cut_and_quoted_short():
    text, notes = caption_notes("red " * 5000, FakeEncoder())
    assert len(text) == MAX_CAPTION_CHARS
    assert any("very long" in n for n in notes) and any("longer than the text encoder" in n for n in notes)
    text, notes = caption_notes("!" * 5000, FakeEncoder())
    assert text is None and len(notes[0]) < 200  # the word-less caption is quoted in 40 characters, not 2000


# ---------------------------------------------------------------------- title searches (Browse, Similar, Search)
@pytest.fixture
def items() -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": ["a", "b", "c", "d"],
        "title": [HANGUL, unicodedata.normalize("NFD", "Café noir shirt"), "Red shirt", None],
        "category": ["skirt", "shirt", "shirt", "shirt"],
    })


@pytest.mark.parametrize(
    ("search", "ids"),
    [
        (HANGUL, ["a"]),
        (HANGUL_NFD, ["a"]),  # decomposed search, composed title
        ("치마", ["a"]),
        ("café", ["b"]),  # composed search, decomposed title
        ("CAFÉ", ["b"]),
        ("sh\u200birt", ["b", "c"]),
        ("\u202ered\u202c", ["c"]),
        ("  red   shirt ", ["c"]),
        ("", ["a", "b", "c", "d"]),
        (ZERO_WIDTH, ["a", "b", "c", "d"]),
        ("🔥", []),
    ],
)
def test_title_search_matches_in_every_spelling(items, search, ids):
    assert filter_items(items, {}, search)["item_id"].tolist() == ids


def test_title_search_says_when_it_is_blank_or_cut(items):
    assert title_search("red").messages == []
    # An empty box is how the pages open: no search and no sentence (it said "holds only spaces" on first open).
    assert title_search("").messages == [] and title_search(None).messages == []
    assert title_search("   ").messages == [title_search("   ").problem]
    assert "every item is shown" in title_search(ZERO_WIDTH).problem
    long = title_search("red " * 1000)
    assert len(long.text) == MAX_SEARCH_CHARS and "very long" in long.note
    assert filter_items(items, {"category": ["shirt"]}, "red " * 1000)["item_id"].tolist() == ["c"]


# ---------------------------------------------------------------------- user ids (For you)
@pytest.fixture(scope="module")
def personal_service(tiny_catalog, tiny_artifacts):
    from recsys.store import ModelStore
    from recsys.tasks.personal.service import PersonalService

    return PersonalService(tiny_catalog, tiny_artifacts, ModelStore(tiny_catalog, tiny_artifacts))


def test_a_user_id_with_invisible_characters_is_the_same_user(personal_service):
    from recsys.tasks.personal.service import UnknownUserError

    user = personal_service.users()[0]
    row = personal_service.user_row(user)
    assert personal_service.user_row(f" \u200b{user}\u200e\n") == row
    with pytest.raises(UnknownUserError, match="^The user id is empty"):
        personal_service.user_row(ZERO_WIDTH)
    with pytest.raises(UnknownUserError) as info:
        personal_service.user_row("x" * 10_000)
    assert len(str(info.value)) < 200  # the unknown id is quoted short


# ---------------------------------------------------------------------- the pages

@pytest.mark.slow
def test_pages_say_one_sentence_for_invisible_text_and_keep_their_state(monkeypatch, tiny_ready_dir):
    # Text-guided search: two captions applied, then one of zero-width spaces: the message, and both chips stay.
    app = open_page(monkeypatch, tiny_ready_dir, "pages/search.py")
    for caption in ("is red", HANGUL_NFD, ZERO_WIDTH * 3):
        app.text_input(key="search_caption").input(caption)
        next(b for b in app.button if b.label == "Apply caption").click()
        app.run()
        assert not app.exception, [e.value for e in app.exception]
    assert [b.label for b in app.button if b.key and b.key.startswith("search_chip_")] == ["is red", HANGUL]
    assert any(w.value.startswith("The caption is empty") for w in app.warning)
    # Stylist chat: a message of invisible characters adds no turn and says so.
    app = open_page(monkeypatch, tiny_ready_dir, "pages/stylist.py")
    app.chat_input(key="stylist_input").set_value("a navy coat for an interview").run()
    turns = len(app.chat_message)
    app.chat_input(key="stylist_input").set_value(BIDI + ZERO_WIDTH).run()
    assert not app.exception, [e.value for e in app.exception]
    assert len(app.chat_message) == turns
    assert any(w.value.startswith("The message is empty") for w in app.warning)
    assert any(s.value == "Proposed coordi-set" for s in app.subheader)  # the last proposal stays
