"""Similar items: pick a catalog item or upload a photo, and see the most similar items and where they sit on the map."""

from html import escape

import streamlit as st

from recsys import ui
from recsys.tasks.similar import service as similar_service

ui.run_inside_router()  # a deep link on a fresh server: rerun inside streamlit_app.py

GRID_COLUMNS = 6
FROM_CATALOG, FROM_UPLOAD = "From the catalog", "Upload a photo"


def use_as_query(item_id: str) -> None:
    st.session_state["similar_query_item"] = item_id
    st.session_state["similar_source"] = FROM_CATALOG
    st.session_state["similar_search"] = ""


def offer_to_compute_embeddings(catalog, problem: str) -> None:
    st.warning(problem, icon=":material/warning:")
    st.caption("Similar items are found in the precomputed image embeddings of the catalog.")
    if st.button("Compute the embeddings now", icon=":material/memory:", key="similar_compute"):
        bar = st.progress(0.0, text="Encoding the catalog ...")
        ui.compute_artifacts(catalog, progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
        st.rerun()
    st.stop()


catalog = ui.context().catalog
similar = ui.task_service("similar")
items = catalog.items
st.title("Similar items", anchor=False)

try:
    similar.model()
except similar_service.ArtifactError as exc:
    offer_to_compute_embeddings(catalog, str(exc))
else:
    if similar.index_note():  # RECSYS_INDEX_BACKEND / RECSYS_MILVUS_URI could not be used: the in-process index serves
        st.info(similar.index_note(), icon=":material/database:")

if "similar_source" not in st.session_state:
    st.session_state["similar_source"] = FROM_CATALOG
controls, settings = st.columns([3, 2])
with controls:
    source = st.segmented_control("Query", [FROM_CATALOG, FROM_UPLOAD], key="similar_source")
with settings:
    k = st.slider("How many results", 4, 48, 12, step=2, key="similar_k")
    same_category = st.toggle("Same category only", value=True, key="similar_same_category")
    colour_weight = st.slider("Colour against shape", 0.0, 0.6, 0.3, step=0.05, key="similar_colour_weight",
                              help="How much sharing the query's colour counts next to the look (cosine units): "
                                   "0 ranks by the look alone.")
    ui.report_claims(catalog, "similar")

query_item, query_vector, query_category, query_colour = None, None, None, None
with controls:
    if source == FROM_UPLOAD:
        photo = ui.photo_query(similar, catalog, "similar_upload", with_colour=True, preview_width=220,
                               category_help="Correct the category if it is wrong: the search stays inside it.")
        if photo is not None:
            query_vector, query_category, query_colour = photo.vector, photo.category, photo.colour
    else:
        query_item = ui.item_picker(catalog, "similar_query_item", "similar_search", "similar_item_choice")

if query_item is not None:
    query = catalog.item(query_item)
    with controls:
        left, right = st.columns([1, 3])
        left.image(ui.thumbnail(catalog, query_item), width="stretch")
        right.markdown(f"**{escape(query.title)}**  \n{escape(str(query.description))}")
    try:
        result = similar.similar(item=query_item, k=k, same_category=same_category, colour_weight=colour_weight)
    except similar_service.ItemUnavailableError as exc:  # its image could not be read: no vector to search with
        st.info(str(exc), icon=":material/broken_image:")
        st.stop()
elif query_vector is not None:
    result = similar.similar(photo=query_vector, k=k, same_category=same_category, category=query_category,
                             colour=query_colour, colour_weight=colour_weight)
else:
    st.stop()

if len(result.positions) == 0:
    st.info("No other item of this category in the catalog.", icon=":material/inventory_2:")
    st.stop()

st.subheader(f"{len(result.positions)} most similar items", anchor=False)
for column, (position, score, reasons) in ui.grid(zip(result.positions, result.scores, result.reasons), GRID_COLUMNS):
    item_id = items["item_id"].iat[int(position)]
    with column:
        ui.result_card(catalog, item_id, f"{items['category'].iat[int(position)]} · look {float(score):.3f}",
                       chips=reasons, action=ui.CardAction("Find similar", f"similar_pivot_{item_id}",
                                                           on_click=use_as_query, args=(item_id,)))

with st.expander("Where these items sit on the catalog map", expanded=True, icon=":material/scatter_plot:"):
    st.caption("t-SNE of the image embeddings, coloured by category; the star is the query"
               + (" (placed among its nearest neighbours)" if query_item is None else "")
               + ", ringed points its results.")
    label = "your photo" if query_item is None else str(query.title)
    st.plotly_chart(similar.embedding_map(result, query_label=label), key="similar_map")
