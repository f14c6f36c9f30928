"""Similar items: pick a catalog item or upload a photo, and see the most similar items and where they sit on the map."""

from html import escape

import streamlit as st

from recsys import services
from recsys.tasks.similar import service as similar_service

services.run_inside_router()  # a deep link on a fresh server: rerun inside streamlit_app.py

GRID_COLUMNS = 6
FROM_CATALOG, FROM_UPLOAD = "From the catalog", "Upload a photo"
MAX_OPTIONS = 300


def use_as_query(item_id: str) -> None:
    st.session_state["similar_query_item"] = item_id
    st.session_state["similar_source"] = FROM_CATALOG
    st.session_state["similar_search"] = ""


def remember_choice() -> None:
    st.session_state["similar_query_item"] = st.session_state["similar_item_choice"]


def offer_to_compute_embeddings(catalog, problem: str) -> None:
    st.warning(problem, icon=":material/warning:")
    st.caption("Similar items are found in the precomputed image embeddings of the catalog.")
    if st.button("Compute the embeddings now", icon=":material/memory:", key="similar_compute"):
        bar = st.progress(0.0, text="Encoding the catalog ...")
        services.compute_artifacts(catalog, progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
        st.rerun()
    st.stop()


def choose_catalog_item(catalog) -> str:
    """The query item: the one chosen here, or handed over by another page (``similar_query_item``)."""
    items = catalog.items
    wanted = st.session_state.get("similar_query_item")
    if wanted not in catalog.id_to_index:
        wanted = items["item_id"].iat[0]
    search = st.text_input("Search titles", key="similar_search", placeholder="e.g. red floral dress")
    for sentence in services.title_search(search).messages:
        st.info(sentence, icon=":material/search:")
    matches = services.filter_items(items, {}, search)
    if matches.empty:
        st.info("No item title matches this search; showing the current item.", icon=":material/search_off:")
    options = list(matches["item_id"].iloc[:MAX_OPTIONS])
    if wanted not in options:
        options.insert(0, wanted)
    titles = dict(zip(items["item_id"], items["title"]))
    # The widget follows the query, whichever page or button set it last.
    st.session_state["similar_item_choice"] = wanted
    st.session_state["similar_query_item"] = wanted
    st.selectbox("Item", options, format_func=lambda i: f"{titles[i]}  ({i})", key="similar_item_choice",
                 on_change=remember_choice)
    return wanted


def upload_query(catalog, similar):
    """The uploaded photo's vector, the category to search and its colour, or ``(None, None, None)``."""
    upload = st.file_uploader("Photo of a garment", type=["jpg", "jpeg", "png", "webp", "gif"], key="similar_upload")
    if upload is None:
        st.info("Upload a photo of one piece of clothing (JPEG, PNG, WebP or GIF; it stays in this session only).",
                icon=":material/upload:")
        return None, None, None
    try:
        image, vector = services.embed_upload(upload.getvalue(), similar.photo_encoder_spec, upload.name)
    except similar_service.ImageInputError as exc:
        st.error(str(exc), icon=":material/broken_image:")
        return None, None, None
    except similar_service.EncoderError as exc:
        st.error(str(exc), icon=":material/error:")
        return None, None, None
    # A letterboxed square: Streamlit scales to the width, and a 2048 x 1 photo would scale to no height.
    st.image(services.viz.square_thumbnail(image, 2 * services.THUMBNAIL_SIZE), width=220, caption=upload.name)
    try:
        with st.spinner("Reading the photo (the first one after the studio starts takes longer) ..."):
            reading = similar.read_photo(vector, image)
    except ValueError as exc:  # a photo the reader cannot read (e.g. too small to tell a garment): its sentence
        st.error(str(exc), icon=":material/broken_image:")
        return None, None, None
    if reading.unsure:
        st.warning(reading.sentence(), icon=":material/help:")
    else:
        st.success(reading.sentence(), icon=":material/check_circle:")
    left, right = st.columns(2)
    category = left.selectbox("Category", reading.category_choices(catalog.categories), index=0,
                              key=f"similar_upload_category_{upload.file_id}",
                              help="Correct the category if it is wrong: the search stays inside it.")
    colour = None
    if reading.colour is not None:
        colours = list(reading.colour.shares)
        colour = right.selectbox("Colour", colours, index=0, key=f"similar_upload_colour_{upload.file_id}",
                                 help=f"Read from the garment's pixels ({reading.colour.confidence:.0%} of them); "
                                      "correct it if it is wrong: items of this colour rank first.")
    return vector, category, colour


def result_card(catalog, item, score: float, reasons: list[str]) -> None:
    with st.container(border=True):
        st.image(services.thumbnail(catalog, item.item_id), width="stretch")
        chips = "".join(f'<span class="chip">{escape(reason)}</span>' for reason in reasons)
        st.markdown(f'<div class="card-title" title="{escape(item.title)}">{escape(item.title)}</div>'
                    f'<div class="card-details">{escape(item.category)} · look {score:.3f}</div>'
                    f'<div class="card-chips" title="{escape(", ".join(reasons))}">{chips}</div>',
                    unsafe_allow_html=True)
        st.button("Find similar", key=f"similar_pivot_{item.item_id}", icon=":material/image_search:",
                  width="stretch", on_click=use_as_query, args=(item.item_id,))


catalog = services.context().catalog
similar = services.task_service("similar")
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
    for line in services.reports.catalog_claims(catalog.root, "similar"):  # what the report found, a loss included
        st.caption(line)

query_item, query_vector, query_category, query_colour = None, None, None, None
with controls:
    if source == FROM_UPLOAD:
        query_vector, query_category, query_colour = upload_query(catalog, similar)
    else:
        query_item = choose_catalog_item(catalog)

if query_item is not None:
    query = catalog.item(query_item)
    with controls:
        left, right = st.columns([1, 3])
        left.image(services.thumbnail(catalog, query_item), width="stretch")
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
results = items.iloc[result.positions]
for start in range(0, len(results), GRID_COLUMNS):
    row = list(zip(results.iloc[start:start + GRID_COLUMNS].itertuples(), result.scores[start:start + GRID_COLUMNS],
                   result.reasons[start:start + GRID_COLUMNS]))
    for column, (item, score, reasons) in zip(st.columns(GRID_COLUMNS), row):
        with column:
            result_card(catalog, item, float(score), reasons)

with st.expander("Where these items sit on the catalog map", expanded=True, icon=":material/scatter_plot:"):
    st.caption("t-SNE of the image embeddings, coloured by category; the star is the query"
               + (" (placed among its nearest neighbours)" if query_item is None else "")
               + ", ringed points its results.")
    label = "your photo" if query_item is None else str(query.title)
    st.plotly_chart(similar.embedding_map(result, query_label=label), key="similar_map")
