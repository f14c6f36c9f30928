"""Browse: the catalog as a grid of cards, with filters, a title search and paging."""

import streamlit as st

from recsys import ui

ui.run_inside_router()  # a deep link on a fresh server: rerun inside streamlit_app.py

GRID_COLUMNS = 6
PAGE_SIZES = (24, 48, 96)


def find_similar(item_id: str) -> None:
    st.session_state["similar_query_item"] = item_id
    st.switch_page("pages/similar.py")


catalog = ui.current_catalog()
items = catalog.items

st.title("Browse the catalog", anchor=False)
matches = ui.filter_bar(items, "home", on_change=ui.first_page("home"))
shown = ui.pager(matches, len(items), "home", PAGE_SIZES)
if matches.empty:
    st.info("No item matches these filters.", icon=":material/filter_alt_off:")

# The button appears once the Similar items page exists (pages/similar.py).
action = ui.page_exists("similar")
for column, item in ui.grid(shown.itertuples(), GRID_COLUMNS):
    details = [item.category] + [str(getattr(item, c)) for c in ("color", "pattern") if c in items.columns]
    with column:
        if ui.result_card(catalog, item.item_id, " · ".join(details),
                          action=ui.CardAction("Find similar", f"home_similar_{item.item_id}") if action else None):
            find_similar(item.item_id)
