"""Widgets more than one page draws: the photo upload-and-read widget, the catalog-item picker, the title search,
the result card and its grid, and the report's claims under a page's controls."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import pandas as pd
import streamlit as st

from recsys import viz
from recsys.browse import filter_columns, filter_items, filter_options, page_count, page_of, title_search
from recsys.catalog import Catalog
from recsys.encoders import EncoderError
from recsys.imageio import ALLOWED_FORMATS, MIN_PHOTO_SIDE, ImageInputError
from recsys.ui.caches import THUMBNAIL_SIZE, embed_upload, thumbnail

#: The file endings an upload may have: those of the formats the image reader accepts (recsys.imageio).
_ENDINGS = {"JPEG": ("jpg", "jpeg"), "PNG": ("png",), "GIF": ("gif",), "WEBP": ("webp",), "BMP": ("bmp",),
            "TIFF": ("tif", "tiff")}
UPLOAD_TYPES = [ending for name in ALLOWED_FORMATS for ending in _ENDINGS[name]]
_FORMAT_NAMES = {"WEBP": "WebP"}
#: The one sentence under an empty uploader: what may be uploaded, and that it stays in the session.
UPLOAD_HINT = ("Upload a photo of one piece of clothing ("
               + ", ".join(_FORMAT_NAMES.get(f, f) for f in ALLOWED_FORMATS[:-1])
               + f" or {_FORMAT_NAMES.get(ALLOWED_FORMATS[-1], ALLOWED_FORMATS[-1])}, at least {MIN_PHOTO_SIDE} pixels on "
               "each side); it stays in this session only.")
#: Most items a picker lists (the title search narrows the rest).
MAX_OPTIONS = 300


@dataclass
class PhotoQuery:
    """An uploaded photo as a page searches with it.

    ``vector`` is the photo's image embedding (shape ``(dim,)``); ``category`` is the one read from it, or the one
    the user corrected it to; ``colour`` likewise (None when not asked for or not read); ``preview`` the letterboxed
    square shown; ``file_id`` Streamlit's id of the upload (it changes with every new file).
    """

    vector: object
    category: str
    colour: str | None
    preview: object
    file_id: str
    name: str


def photo_query(service, catalog: Catalog, key: str, *, label: str = "Photo of a garment",
                category_label: str = "Category", category_help: str | None = None, with_colour: bool = False,
                preview_width: int = 200) -> PhotoQuery | None:
    """The photo upload-and-read widget: the uploader (keyed ``key``), the photo, the sentence of what it shows and
    the category (and with ``with_colour`` the colour) to correct; None until a usable photo and a category are
    there (what is wrong is said in one sentence).

    ``service`` is the page's task service (``photo_encoder_spec``, ``read_photo(vector, image)``). When the reading
    is unsure the category starts empty and nothing is returned until the user chooses one, so no result stands
    under a question.
    """
    upload = st.file_uploader(label, type=UPLOAD_TYPES, key=key)
    if upload is None:
        st.info(UPLOAD_HINT, icon=":material/upload:")
        return None
    try:
        image, vector = embed_upload(upload.getvalue(), service.photo_encoder_spec, upload.name)
    except ImageInputError as exc:
        st.error(str(exc), icon=":material/broken_image:")
        return None
    except EncoderError as exc:
        st.error(str(exc), icon=":material/error:")
        return None
    # A letterboxed square: Streamlit scales to the width, and a 2048 x 1 photo would scale to no height.
    preview = viz.square_thumbnail(image, 2 * THUMBNAIL_SIZE)
    st.image(preview, width=preview_width, caption=upload.name)
    try:
        with st.spinner("Reading the photo (the first one after the studio starts takes longer) ..."):
            reading = service.read_photo(vector, image)
    except ValueError as exc:  # a photo the reader cannot read (e.g. too small to tell a garment): its sentence
        st.error(str(exc), icon=":material/broken_image:")
        return None
    if reading.unsure:
        st.warning(reading.sentence(), icon=":material/help:")
    else:
        st.success(reading.sentence(), icon=":material/check_circle:")
    left, right = st.columns(2) if with_colour else (st.container(), None)
    category = left.selectbox(category_label, reading.category_choices(catalog.categories),
                              index=None if reading.unsure else 0, placeholder="Choose a category",
                              key=f"{key}_category_{upload.file_id}",
                              help=category_help or "Correct the category if it is wrong.")
    colour = None
    if with_colour and reading.colour is not None:
        colour = right.selectbox("Colour", list(reading.colour.shares), index=0, key=f"{key}_colour_{upload.file_id}",
                                 help=f"Read from the garment's pixels ({reading.colour.confidence:.0%} of them); "
                                      "correct it if it is wrong: items of this colour rank first.")
    if category is None:
        return None
    return PhotoQuery(vector, category, colour, preview, upload.file_id, upload.name)


def title_matches(items: pd.DataFrame, text: str, selections: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """The rows of ``items`` whose title matches ``text`` (and whose columns take the ``selections``), after the
    title search's sentences about the text (e.g. words it ignored) are shown."""
    for sentence in title_search(text).messages:
        st.info(sentence, icon=":material/search:")
    return filter_items(items, selections or {}, text)


def filter_bar(items: pd.DataFrame, key: str, on_change: Callable | None = None) -> pd.DataFrame:
    """A row of filters, one multiselect per filterable column (keyed ``<key>_filter_<column>``), and a title search
    (``<key>_search``); returns the rows of ``items`` that pass them. ``on_change`` runs when any of them changes."""
    columns = filter_columns(items)
    bar = st.columns([1] * len(columns) + [2])
    selections = {column: slot.multiselect(column.capitalize(), filter_options(items, column), placeholder="All",
                                           key=f"{key}_filter_{column}", on_change=on_change)
                  for slot, column in zip(bar, columns)}
    text = bar[-1].text_input("Search titles", key=f"{key}_search", placeholder="e.g. striped shirt",
                              on_change=on_change)
    return title_matches(items, text, selections)


def _first_page(key: str) -> None:
    st.session_state[f"{key}_page_number"] = 1


def _turn_page(key: str, step: int) -> None:
    st.session_state[f"{key}_page_number"] = st.session_state.get(f"{key}_page_number", 1) + step


def pager(matches: pd.DataFrame, total: int, key: str, sizes: Sequence[int] = (24, 48, 96)) -> pd.DataFrame:
    """A row with the count of ``matches`` out of ``total``, the page size (``<key>_page_size``), previous and next
    buttons and the page number (``<key>_page_number``); returns the rows of the page shown. Call
    ``first_page(key)`` (the filters' ``on_change``) to go back to page 1."""
    page_size = st.session_state.get(f"{key}_page_size", sizes[0])
    pages = page_count(len(matches), page_size)
    # Filters can shrink the result under the current page; clamp before the page widget is drawn.
    number = st.session_state[f"{key}_page_number"] = min(max(st.session_state.get(f"{key}_page_number", 1), 1), pages)
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.markdown(f"**{len(matches):,}** of {total:,} items")
        st.space("stretch")
        st.selectbox("Items per page", sizes, key=f"{key}_page_size", on_change=_first_page, args=(key,), width=130)
        st.button("Previous", key=f"{key}_previous_page", icon=":material/chevron_left:", disabled=number <= 1,
                  on_click=_turn_page, args=(key, -1))
        st.number_input("Page", min_value=1, max_value=pages, step=1, key=f"{key}_page_number", width=110)
        st.markdown(f"of {pages}")
        st.button("Next", key=f"{key}_next_page", icon=":material/chevron_right:", disabled=number >= pages,
                  on_click=_turn_page, args=(key, 1))
    return page_of(matches, number, page_size)


def first_page(key: str) -> Callable[[], None]:
    """The callback that sends :func:`pager` ``key`` back to its first page (for the filters' ``on_change``)."""
    return lambda: _first_page(key)


def _remember(state: str, choice_key: str) -> None:
    st.session_state[state] = st.session_state[choice_key]


def item_picker(catalog: Catalog, state: str, search_key: str, choice_key: str, *, label: str = "Item",
                placeholder: str = "e.g. red floral dress") -> str | None:
    """The catalog-item picker: a title search (keyed ``search_key``) and a list of the matching items (keyed
    ``choice_key``); returns the chosen item's id, or None when nothing matches.

    ``state`` is the session key of the chosen item, which another page or a card's button may set before the page
    is drawn: the list then follows it.
    """
    items = catalog.items
    wanted = st.session_state.get(state)
    text = st.text_input("Search titles", key=search_key, placeholder=placeholder)
    matches = title_matches(items, text)
    options = list(matches["item_id"].iloc[:MAX_OPTIONS])
    if wanted in catalog.id_to_index and wanted not in options:
        options.insert(0, wanted)
    if not options:
        st.info("No item title matches this search.", icon=":material/search_off:")
        return None
    if matches.empty:
        st.info("No item title matches this search; showing the current item.", icon=":material/search_off:")
    titles = dict(zip(items["item_id"], items["title"]))
    # The widget follows the query, whichever page or button set it last.
    st.session_state[choice_key] = st.session_state[state] = wanted if wanted in options else options[0]
    return st.selectbox(label, options, format_func=lambda i: f"{titles[i]}  ({i})", key=choice_key,
                        on_change=_remember, args=(state, choice_key))


@dataclass
class CardAction:
    """The button under a result card: ``on_click(*args)`` runs before the rerun (None: the caller reads the click
    from :func:`result_card`'s return value)."""

    label: str
    key: str
    icon: str = ":material/image_search:"
    on_click: Callable | None = None
    args: tuple = ()


def result_card(catalog: Catalog, item_id: str, details: str, *, chips: Sequence[str] = (), note: str | None = None,
                action: CardAction | None = None) -> bool:
    """An item as a bordered card: thumbnail, title, ``details`` (category, score ...), ``chips`` (reasons), a
    ``note`` line and the ``action`` button; True on the run its button was clicked."""
    item = catalog.item(item_id)
    with st.container(border=True):
        st.image(thumbnail(catalog, item_id), width="stretch")
        html = (f'<div class="card-title" title="{escape(item.title)}">{escape(item.title)}</div>'
                f'<div class="card-details">{escape(details)}</div>')
        if chips:
            html += (f'<div class="card-chips" title="{escape(", ".join(chips))}">'
                     + "".join(f'<span class="chip">{escape(chip)}</span>' for chip in chips) + "</div>")
        st.markdown(html, unsafe_allow_html=True)
        if note:
            st.caption(note)
        if action is None:
            return False
        return st.button(action.label, key=action.key, icon=action.icon, width="stretch", on_click=action.on_click,
                         args=action.args)


def grid(entries: Iterable, columns: int) -> Iterator[tuple]:
    """``(column, entry)`` for ``entries`` laid out in rows of ``columns`` (draw each entry inside ``with column``)."""
    entries = list(entries)
    for start in range(0, len(entries), columns):
        yield from zip(st.columns(columns), entries[start:start + columns])


def report_claims(catalog: Catalog, task: str) -> None:
    """What the catalog's report found about ``task``'s models, a loss included, one caption a claim."""
    from recsys import reports

    for line in reports.catalog_claims(catalog.root, task):
        st.caption(line)
