"""Similar items: pick a catalog item or upload a photo, and see the most similar items and where they sit on the map."""

from html import escape

import numpy as np
import streamlit as st

from recsys import services, viz
from recsys.artifacts import ArtifactError
from recsys.encoders import EncoderError
from recsys.imageio import ImageInputError

GRID_COLUMNS = 6
FROM_CATALOG, FROM_UPLOAD = "From the catalog", "Upload a photo"
#: Below this share of the neighbours' votes the page asks the user to choose the category.
CONFIDENT_VOTE = 0.5
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


def choose_catalog_item(catalog) -> int:
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
    return catalog.id_to_index[wanted]


def upload_query(catalog, arts, model):
    """The uploaded photo's vector and the category to search, or ``(None, None)``."""
    upload = st.file_uploader("Photo of a garment", type=["jpg", "jpeg", "png", "webp", "gif"], key="similar_upload")
    if upload is None:
        st.caption("JPEG, PNG, WebP or GIF; the photo stays in this session only.")
        return None, None
    try:
        image, vector = services.embed_upload(upload.getvalue(), arts.image_encoder_spec)
    except ImageInputError as exc:
        st.error(str(exc), icon=":material/broken_image:")
        return None, None
    except EncoderError as exc:
        st.error(str(exc), icon=":material/error:")
        return None, None
    st.image(image, width=220, caption=upload.name)
    guess = model.predict_category(vector)
    categories = catalog.categories
    if guess.confidence >= CONFIDENT_VOTE:
        st.success(f"Looks like **{guess.category}** ({guess.confidence:.0%} of the neighbours' votes).",
                   icon=":material/check_circle:")
    else:
        runner_up = ", ".join(f"{c} {s:.0%}" for c, s in list(guess.shares.items())[:3])
        st.warning(f"Not sure what this is ({runner_up}); please choose the category.", icon=":material/help:")
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


catalog = services.current_catalog()
items = catalog.items
st.title("Similar items", anchor=False)

try:
    arts = services.artifacts(catalog)
    model = services.similar_items(catalog)
except ArtifactError as exc:
    offer_to_compute_embeddings(catalog, str(exc))

if "similar_source" not in st.session_state:
    st.session_state["similar_source"] = FROM_CATALOG
controls, settings = st.columns([3, 2])
with controls:
    source = st.segmented_control("Query", [FROM_CATALOG, FROM_UPLOAD], key="similar_source")
with settings:
    k = st.slider("How many results", 4, 48, 12, step=2, key="similar_k")
    same_category = st.toggle("Same category only", value=True, key="similar_same_category")

query_idx, query_vector, query_category = None, None, None
with controls:
    if source == FROM_UPLOAD:
        query_vector, query_category = upload_query(catalog, arts, model)
    else:
        query_idx = choose_catalog_item(catalog)

if query_idx is not None:
    query = items.iloc[query_idx]
    with controls:
        left, right = st.columns([1, 3])
        left.image(services.thumbnail(catalog, query.item_id), width="stretch")
        right.markdown(f"**{escape(query.title)}**  \n{escape(str(query.description))}")
    positions, scores = model.similar_to_item(query_idx, k=k, same_category=same_category)
    query_xy = arts.map2d[query_idx]
elif query_vector is not None:
    positions, scores = model.similar_to_vector(query_vector, k=k, category=query_category if same_category else None)
    # t-SNE has no transform for new points: place the photo among its nearest neighbours.
    query_xy = arts.map2d[positions[:5]].mean(axis=0) if len(positions) else None
else:
    st.stop()

if len(positions) == 0:
    st.info("No other item of this category in the catalog.", icon=":material/inventory_2:")
    st.stop()

st.subheader(f"{len(positions)} most similar items", anchor=False)
results = items.iloc[positions]
for start in range(0, len(results), GRID_COLUMNS):
    row = list(zip(results.iloc[start:start + GRID_COLUMNS].itertuples(), scores[start:start + GRID_COLUMNS]))
    for column, (item, score) in zip(st.columns(GRID_COLUMNS), row):
        with column:
            result_card(catalog, item, float(score))

with st.expander("Where these items sit on the catalog map", expanded=True, icon=":material/scatter_plot:"):
    st.caption("t-SNE of the image embeddings, coloured by category; the star is the query"
               + (" (placed among its nearest neighbours)" if query_idx is None else "")
               + ", ringed points its results.")
    figure = viz.embedding_map(arts.map2d, items["category"], items["title"], query_xy=query_xy,
                               result_positions=np.asarray(positions), query_label="your photo" if query_idx is None
                               else str(items["title"].iat[query_idx]))
    st.plotly_chart(figure, key="similar_map")
