"""Browse: the catalog as a grid of cards, with filters, a title search and paging."""

from html import escape

import streamlit as st

from recsys import services

services.run_inside_router()  # a deep link on a fresh server: rerun inside streamlit_app.py

GRID_COLUMNS = 6
PAGE_SIZES = (24, 48, 96)


def back_to_first_page() -> None:
    st.session_state["home_page_number"] = 1


def turn_page(step: int) -> None:
    st.session_state["home_page_number"] = st.session_state.get("home_page_number", 1) + step


def find_similar(item_id: str) -> None:
    st.session_state["similar_query_item"] = item_id
    st.switch_page("pages/similar.py")


def item_card(catalog, item) -> None:
    with st.container(border=True):
        st.image(services.thumbnail(catalog, item.item_id), width="stretch")
        title = escape(item.title)
        details = [item.category] + [str(getattr(item, c)) for c in ("color", "pattern") if c in catalog.items.columns]
        st.markdown(
            f'<div class="card-title" title="{title}">{title}</div>'
            f'<div class="card-details">{escape(" · ".join(details))}</div>',
            unsafe_allow_html=True,
        )
        # The button appears once the Similar items page exists (pages/similar.py).
        if services.page_exists("similar") and st.button(
            "Find similar", key=f"home_similar_{item.item_id}", icon=":material/image_search:", width="stretch"
        ):
            find_similar(item.item_id)


catalog = services.current_catalog()
items = catalog.items

st.title("Browse the catalog", anchor=False)

filter_columns = services.filter_columns(items)
filter_bar = st.columns([1] * len(filter_columns) + [2])
selections = {
    column: slot.multiselect(
        column.capitalize(),
        services.filter_options(items, column),
        key=f"home_filter_{column}",
        placeholder="All",
        on_change=back_to_first_page,
    )
    for slot, column in zip(filter_bar, filter_columns)
}
search = filter_bar[-1].text_input(
    "Search titles", key="home_search", placeholder="e.g. striped shirt", on_change=back_to_first_page
)
for sentence in services.title_search(search).messages:
    st.info(sentence, icon=":material/search:")
matches = services.filter_items(items, selections, search)

page_size = st.session_state.get("home_page_size", PAGE_SIZES[0])
pages = services.page_count(len(matches), page_size)
# Filters can shrink the result under the current page; clamp before the page widget is drawn.
st.session_state["home_page_number"] = min(max(st.session_state.get("home_page_number", 1), 1), pages)
page_number = st.session_state["home_page_number"]

with st.container(horizontal=True, vertical_alignment="bottom"):
    st.markdown(f"**{len(matches):,}** of {len(items):,} items")
    st.space("stretch")
    st.selectbox("Items per page", PAGE_SIZES, key="home_page_size", on_change=back_to_first_page, width=130)
    st.button(
        "Previous", key="home_previous_page", icon=":material/chevron_left:",
        disabled=page_number <= 1, on_click=turn_page, args=(-1,),
    )
    st.number_input("Page", min_value=1, max_value=pages, step=1, key="home_page_number", width=110)
    st.markdown(f"of {pages}")
    st.button(
        "Next", key="home_next_page", icon=":material/chevron_right:",
        disabled=page_number >= pages, on_click=turn_page, args=(1,),
    )

if matches.empty:
    st.info("No item matches these filters.", icon=":material/filter_alt_off:")

shown = services.page_of(matches, page_number, page_size)
for start in range(0, len(shown), GRID_COLUMNS):
    for column, item in zip(st.columns(GRID_COLUMNS), shown.iloc[start : start + GRID_COLUMNS].itertuples()):
        with column:
            item_card(catalog, item)
