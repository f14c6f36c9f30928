"""Complete the look: pick or upload an item, get an outfit of compatible items from the other slots."""

from html import escape

import numpy as np
import streamlit as st

from recsys import ui
from recsys.tasks.compat import service as outfits

ui.run_inside_router()  # a deep link on a fresh server: rerun inside streamlit_app.py

ALTERNATIVES = 5
BEST_MATCHES = 6


def item_card(catalog, slot: str, row: int, score: float, upload_image=None) -> None:
    with st.container(border=True):
        st.markdown(f"**{slot.capitalize()}**")
        if row == outfits.QUERY:
            st.image(upload_image, width="stretch")
            title = "Your photo"
        else:
            st.image(ui.thumbnail(catalog, catalog.items["item_id"].iat[row]), width="stretch")
            title = catalog.items["title"].iat[row]
        st.markdown(f'<div class="card-title" title="{escape(title)}">{escape(title)}</div>', unsafe_allow_html=True)
        st.caption(f"Fit with the rest: {score:.3f}")


def choose_catalog_query(catalog, service, model_name):
    categories = catalog.categories
    preset = st.session_state.get("outfit_query_item")
    if preset in catalog.id_to_index and "outfit_category" not in st.session_state:
        st.session_state["outfit_category"] = catalog.item(preset)["category"]
    category = st.selectbox("Category", categories, key="outfit_category")
    rows = np.flatnonzero(catalog.items["category"].to_numpy() == category)
    rows = np.setdiff1d(rows, service.unavailable_rows())  # an item whose image could not be read is no query
    ids = catalog.items["item_id"].to_numpy()[rows].tolist()
    if not ids:
        st.info(f"No {category} item of the catalog has a readable image.", icon=":material/broken_image:")
        return None, None, None
    index = ids.index(preset) if preset in ids else 0
    item_id = st.selectbox("Item", ids, index=index, key=f"outfit_item_{category}",
                           format_func=lambda i: catalog.item(i)["title"])
    st.session_state["outfit_query_item"] = item_id
    st.image(ui.thumbnail(catalog, item_id), width=180)
    return service.query(model_name, item=item_id), f"item:{item_id}", None


def choose_upload_query(catalog, service, model_name):
    photo = ui.photo_query(service, catalog, "outfit_upload", label="Photo of a clothing item", preview_width=180,
                           category_help="Correct the category if it is wrong: the outfit is built around its slot.")
    if photo is None:
        return None, None, None
    query = service.query(model_name, photo=photo.vector, category=photo.category)
    return query, f"upload:{photo.file_id}:{photo.category}", photo.preview


def reset_outfit() -> None:
    for key in ("outfit_items", "outfit_shown", "outfit_key"):
        st.session_state.pop(key, None)


# ---------------------------------------------------------------------- page
context = ui.context()
catalog = context.catalog
service = ui.task_service("compat")
st.title("Complete the look", anchor=False)
st.caption("A compatibility space learned from outfits proposes items from the other slots and assembles a whole outfit.")

if not service.enough_outfits():
    st.info(
        f"The catalog {catalog.name} has no outfits to learn from. The compatibility model learns which items go "
        f"together from example outfits (outfits.jsonl, at least {outfits.MIN_OUTFITS}). Use the built-in demo world, "
        "or ingest a dataset with outfits: `python scripts/ingest.py --format polyvore --src PATH --out DIR`.",
        icon=":material/styler:",
    )
    st.stop()

if not ui.models_ready("compat", [], what="The catalog's embeddings"):
    st.stop()

model_name = st.segmented_control("Compatibility model", service.models(), default=outfits.DEFAULT_MODEL,
                                  format_func=service.title, key="outfit_model", on_change=reset_outfit)
model_name = model_name or outfits.DEFAULT_MODEL
ui.report_claims(catalog, "compat")
if not ui.models_ready("compat", [model_name], what=f"The {service.title(model_name)} model"):
    st.stop()
try:
    service.ensure_model(model_name)
except ValueError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

query_column, board_column = st.columns([1, 3], gap="large")
with query_column:
    source = st.radio("Start from", ["Catalog item", "Your photo"], horizontal=True, key="outfit_source")
    if source == "Catalog item":
        query, query_key, upload_image = choose_catalog_query(catalog, service, model_name)
    else:
        query, query_key, upload_image = choose_upload_query(catalog, service, model_name)
    optional = st.multiselect("Optional slots", list(outfits.OPTIONAL_SLOTS), default=list(outfits.OPTIONAL_SLOTS),
                              key="outfit_optional", on_change=reset_outfit)

if query is None:
    st.stop()

missing = service.missing_slots(model_name, query)
if missing:
    with board_column:
        st.warning(f"The catalog has no {' or '.join(missing)} items, so no outfit can be completed around this "
                   f"{query.slot}; the best matches per slot are below.", icon=":material/block:")

query_key = f"{model_name}|{query_key}|{','.join(optional)}"
if st.session_state.get("outfit_key") != query_key:
    st.session_state["outfit_key"] = query_key
    st.session_state["outfit_shown"] = {}
    try:
        st.session_state["outfit_items"] = (service.complete(model_name, query=query, optional=optional).items
                                            if not missing else None)
    except ValueError as exc:
        st.session_state["outfit_items"] = None
        with board_column:
            st.warning(str(exc), icon=":material/block:")

items = st.session_state.get("outfit_items")
with board_column:
    if items:
        outfit = service.outfit(model_name, query, items)
        locked = [s for s in outfit.ordered_slots() if s != query.slot and st.session_state.get(f"outfit_lock_{s}")]
        with st.container(horizontal=True, vertical_alignment="bottom"):
            share = service.better_than(model_name, outfit.score)
            st.metric("Outfit score", f"{outfit.score:.3f}",
                      help="The model's mean compatibility over every pair of items in the outfit (0 to 1).")
            if share is not None:
                st.metric("Better than", f"{share:.0%}", help="Share of random outfits that score lower.")
            st.space("stretch")
            if st.button("Re-roll unlocked", icon=":material/casino:", key="outfit_reroll"):
                new, shown = service.reroll(model_name, query, outfit, locked_slots=locked,
                                            shown=st.session_state.get("outfit_shown"), optional=optional)
                st.session_state["outfit_items"], st.session_state["outfit_shown"] = new.items, shown
                st.rerun()
        columns = st.columns(len(outfit.items))
        for column, slot in zip(columns, outfit.ordered_slots()):
            with column:
                row = outfit.items[slot]
                item_card(catalog, slot, row, outfit.item_scores[slot], upload_image)
                if slot == query.slot:
                    st.caption("Your item")
                    continue
                st.toggle("Lock", key=f"outfit_lock_{slot}")
                if st.button("Next best", key=f"outfit_swap_{slot}", icon=":material/swap_horiz:",
                             disabled=bool(st.session_state.get(f"outfit_lock_{slot}")), width="stretch"):
                    st.session_state["outfit_items"] = service.swap(model_name, query, outfit, slot).items
                    st.rerun()

        st.subheader("Alternatives per slot", anchor=False)
        tabs = st.tabs([s.capitalize() for s in outfit.ordered_slots() if s != query.slot])
        for tab, slot in zip(tabs, [s for s in outfit.ordered_slots() if s != query.slot]):
            with tab:
                alternatives = service.alternatives(model_name, query, outfit, slot, k=ALTERNATIVES)
                for column, (row, score) in zip(st.columns(ALTERNATIVES), alternatives):
                    with column:
                        st.image(ui.thumbnail(catalog, catalog.items["item_id"].iat[row]), width="stretch")
                        st.caption(f"{catalog.items['title'].iat[row]} · outfit score {score:.3f}")

    st.subheader("Best matches for the item, per slot", anchor=False)
    matches = service.best_matches(model_name, query, k=BEST_MATCHES)
    for slot in [s for s in outfits.SLOT_ORDER if s in matches]:
        st.markdown(f"**{slot.capitalize()}**")
        if not matches[slot]:
            st.caption(f"The catalog has no {slot} items.")
            continue
        for column, (row, score) in zip(st.columns(BEST_MATCHES), matches[slot]):
            with column:
                st.image(ui.thumbnail(catalog, catalog.items["item_id"].iat[row]), width="stretch")
                st.caption(f"{catalog.items['title'].iat[row]} · {score:.3f}")
