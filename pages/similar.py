"""Similar items: pick a catalog item or upload a photo, and see the most similar items and where they sit on the map."""

from html import escape

import streamlit as st

from recsys import services
from recsys.tasks.similar import service as similar_service

services.run_inside_router()  # a deep link on a fresh server: rerun inside streamlit_app.py

GRID_COLUMNS = 6
FROM_CATALOG, FROM_UPLOAD = "From the catalog", "Upload a photo"
#: Below this predicted probability the page asks the user to choose the category.
CONFIDENT = 0.5
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
    """The uploaded photo's vector and the category to search, or ``(None, None)``."""
    upload = st.file_uploader("Photo of a garment", type=["jpg", "jpeg", "png", "webp", "gif"], key="similar_upload")
    if upload is None:
        st.caption("JPEG, PNG, WebP or GIF; the photo stays in this session only.")
        return None, None
    try:
        image, vector = services.embed_upload(upload.getvalue(), similar.photo_encoder_spec, upload.name)
    except similar_service.ImageInputError as exc:
        st.error(str(exc), icon=":material/broken_image:")
        return None, None
    except similar_service.EncoderError as exc:
        st.error(str(exc), icon=":material/error:")
        return None, None
    st.image(image, width=220, caption=upload.name)
    guess = similar.guess_category(vector)
    categories = catalog.categories
    if guess.confidence >= CONFIDENT:
        st.success(f"Looks like **{guess.category}** ({guess.confidence:.0%} sure).", icon=":material/check_circle:")
    else:
        leading = ", ".join(f"{c} {s:.0%}" for c, s in list(guess.shares.items())[:3])
        st.warning(f"Not sure what this is ({leading}); please choose the category.", icon=":material/help:")
    category = st.selectbox("Category", categories, index=categories.index(guess.category),
                            key="similar_upload_category", help="Correct the predicted category if it is wrong.")
    return vector, category


def result_card(catalog, item, score: float) -> None:
    with st.container(border=True):
        st.image(services.thumbnail(catalog, item.item_id), width="stretch")
        st.markdown(f'<div class="card-title" title="{escape(item.title)}">{escape(item.title)}</div>'
                    f'<div class="card-details">{escape(item.category)} · similarity {score:.3f}</div>',
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

if "similar_source" not in st.session_state:
    st.session_state["similar_source"] = FROM_CATALOG
controls, settings = st.columns([3, 2])
with controls:
    source = st.segmented_control("Query", [FROM_CATALOG, FROM_UPLOAD], key="similar_source")
with settings:
    k = st.slider("How many results", 4, 48, 12, step=2, key="similar_k")
    same_category = st.toggle("Same category only", value=True, key="similar_same_category")

query_item, query_vector, query_category = None, None, None
with controls:
    if source == FROM_UPLOAD:
        query_vector, query_category = upload_query(catalog, similar)
    else:
        query_item = choose_catalog_item(catalog)

if query_item is not None:
    query = catalog.item(query_item)
    with controls:
        left, right = st.columns([1, 3])
        left.image(services.thumbnail(catalog, query_item), width="stretch")
        right.markdown(f"**{escape(query.title)}**  \n{escape(str(query.description))}")
    result = similar.similar(item=query_item, k=k, same_category=same_category)
elif query_vector is not None:
    result = similar.similar(photo=query_vector, k=k, same_category=same_category, category=query_category)
else:
    st.stop()

if len(result.positions) == 0:
    st.info("No other item of this category in the catalog.", icon=":material/inventory_2:")
    st.stop()

st.subheader(f"{len(result.positions)} most similar items", anchor=False)
results = items.iloc[result.positions]
for start in range(0, len(results), GRID_COLUMNS):
    row = list(zip(results.iloc[start:start + GRID_COLUMNS].itertuples(), result.scores[start:start + GRID_COLUMNS]))
    for column, (item, score) in zip(st.columns(GRID_COLUMNS), row):
        with column:
            result_card(catalog, item, float(score))

with st.expander("Where these items sit on the catalog map", expanded=True, icon=":material/scatter_plot:"):
    st.caption("t-SNE of the image embeddings, coloured by category; the star is the query"
               + (" (placed among its nearest neighbours)" if query_item is None else "")
               + ", ringed points its results.")
    label = "your photo" if query_item is None else str(query.title)
    st.plotly_chart(similar.embedding_map(result, query_label=label), key="similar_map")
