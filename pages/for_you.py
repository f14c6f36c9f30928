"""For you: a personalized top-N list per user, each item with a heatmap of the image regions behind its score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from recsys import services, viz
from recsys.artifacts import ArtifactError, load_artifacts
from recsys.catalog import CatalogError
from recsys.models.bpr import UnknownUserError
from recsys.protocols import personal

GRID_COLUMNS = 4
HISTORY_SHOWN = 8
CELL = 224
#: Above this many interactions the page does not train in place (more than about a minute on two cores).
TRAIN_IN_PLACE_LIMIT = 60_000
TERM_LABELS = {"latent": "item bias and factors", "image": "image", "description": "description"}


@st.cache_resource(show_spinner=False, max_entries=2)
def interaction_data(root: str, items_mtime: int):
    return personal.interaction_data(services.load_catalog(root))


@st.cache_resource(show_spinner=False, max_entries=2)
def artifacts_of(root: str, manifest_mtime: int):
    return load_artifacts(services.load_catalog(root))


@st.cache_resource(show_spinner=False, max_entries=12)
def trained_model(root: str, name: str, items_mtime: int, manifest_mtime: int):
    catalog = services.load_catalog(root)
    data = interaction_data(root, items_mtime)
    artifacts = artifacts_of(root, manifest_mtime)
    model = personal.load_trained(catalog, artifacts, data, name)
    if model is None:
        model = personal.fit_full(catalog, artifacts, data, name)
    return model


@st.cache_resource(show_spinner=False, max_entries=2)
def world_truth(root: str, items_mtime: int):
    from recsys.data.demo_world import WorldTruth

    return WorldTruth.from_catalog(services.load_catalog(root))


def mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def model_is_saved(root: Path, name: str) -> bool:
    return personal.model_path(root, f"personal-{name}").with_suffix(".safetensors").is_file()


def get_model(catalog, name: str):
    """The trained model, trained here first when that is quick enough; None (with a sentence) otherwise."""
    root = catalog.root
    keys = (str(root), name, mtime(root / "items.parquet"), mtime(root / "artifacts" / "manifest.json"))
    if not model_is_saved(root, name) and len(catalog.interactions) > TRAIN_IN_PLACE_LIMIT:
        st.info(f"{personal.MODEL_TITLES[name]} is not trained for this catalog yet; run "
                f"`python scripts/train.py --catalog {root} --task personal`.", icon=":material/model_training:")
        return None
    with st.spinner(f"Loading {personal.MODEL_TITLES[name]} (trained here on first use) ..."):
        return trained_model(*keys)


def region_weights(model, artifacts, vector, item_idx):
    """The item's region map for this user, or None when the model cannot explain it."""
    if vector is None or not personal.can_explain(model, artifacts):
        return None
    try:
        return personal.region_map(model, artifacts, vector, int(item_idx))
    except personal.ExplanationUnavailable:
        return None


def card_image(catalog, item_id: str, weights, opacity: float, size: int = CELL):
    image = catalog.load_image(item_id)
    if weights is None:
        return viz.square_thumbnail(image, size)
    return viz.heatmap_overlay(image, weights, opacity=opacity, size=size)


def show_history(catalog, data, user: int) -> None:
    history = data.histories[user]
    st.markdown(f"**History** &nbsp; {len(history)} items, most recent last")
    shown = history[-HISTORY_SHOWN:]
    columns = st.columns(HISTORY_SHOWN)
    for column, idx in zip(columns, shown):
        item = catalog.items.iloc[int(idx)]
        column.image(services.thumbnail(catalog, item["item_id"], 128), caption=item["title"], width="stretch")


def show_true_tastes(catalog, user_id: str) -> None:
    if not catalog.has_truth:
        return
    try:
        tastes = world_truth(str(catalog.root), mtime(catalog.root / "items.parquet")).tastes_of(user_id)
    except (KeyError, CatalogError):
        return
    with st.expander("True tastes (known only in the built-in world)", expanded=False, icon=":material/visibility:"):
        for key, value in tastes.items():
            st.markdown(f"- **{key.replace('_', ' ')}**: {value or '—'}")


def show_grid(catalog, model, artifacts, recommendation, opacity: float, key: str, columns_count: int) -> None:
    if recommendation.note:
        st.info(recommendation.note, icon=":material/trending_up:")
    if len(recommendation.item_idx) == 0:
        st.warning("There is nothing left to recommend: this user already has every candidate item.")
        return
    explainable = recommendation.user_vector is not None and personal.can_explain(model, artifacts)
    if recommendation.user_vector is not None and not explainable:
        st.caption(f"{type(model).__name__} has no image regions to explain its scores, so plain images are shown.")
    cold = data_cold(catalog)
    rows = [recommendation.item_idx[k : k + columns_count] for k in range(0, len(recommendation.item_idx), columns_count)]
    rank = 0
    for row in rows:
        columns = st.columns(columns_count)
        for column, idx in zip(columns, row):
            rank += 1
            item = catalog.items.iloc[int(idx)]
            weights = region_weights(model, artifacts, recommendation.user_vector, idx) if explainable else None
            with column:
                st.image(card_image(catalog, item["item_id"], weights, opacity), width="stretch")
                badge = " · :orange[cold-start]" if cold is not None and cold[int(idx)] else ""
                st.caption(f"{rank}. {item['title']}{badge}")
                if st.button("Explain", key=f"for_you_explain_{key}_{idx}", icon=":material/zoom_in:"):
                    st.session_state["for_you_selected"] = (key, int(idx))


def data_cold(catalog):
    data = interaction_data(str(catalog.root), mtime(catalog.root / "items.parquet"))
    return data.cold_items


def show_explanation(catalog, data, model, artifacts, recommendation, history, opacity: float) -> None:
    _, idx = st.session_state["for_you_selected"]
    item = catalog.items.iloc[idx]
    st.subheader(f"Why {item['title']}?")
    left, right = st.columns([1, 1])
    weights = None
    if recommendation.user_vector is None:
        left.image(viz.square_thumbnail(catalog.load_image(item["item_id"]), 448), width="stretch")
        left.caption("Popular items carry no personal explanation.")
    else:
        try:
            weights = personal.region_map(model, artifacts, recommendation.user_vector, idx)
        except personal.ExplanationUnavailable as exc:
            left.warning(str(exc), icon=":material/info:")
            left.image(viz.square_thumbnail(catalog.load_image(item["item_id"]), 448), width="stretch")
        if weights is not None:
            overlay = viz.mark_peak(card_image(catalog, item["item_id"], weights, opacity, size=448), weights)
            left.image(overlay, caption="Heatmap of the regions behind the score; the outlined cell is the peak.",
                       width="stretch")
            left.image(viz.heatmap_legend(448, 12), caption="low  →  high", width="stretch")
    with right:
        score = model.score_vectors(recommendation.user_vector, [idx])[0] if recommendation.user_vector is not None else None
        if score is not None:
            st.metric("Score", f"{score:.3f}")
        if score is not None and hasattr(model, "score_terms"):
            terms = model.score_terms(recommendation.user_vector, idx)
            st.markdown("**Score terms** &nbsp; " + " · ".join(f"{TERM_LABELS.get(k, k)} {v:+.3f}" for k, v in terms.items()))
            if "description" in terms:
                st.caption("The heatmap splits the image term over the regions; the description term comes from "
                           "the item's text and has no region.")
        if weights is not None:
            meaning = ("attention weights, summing to 1" if isinstance(model, personal.VECF)
                       else "their mean is the image term of the score")
            st.markdown(f"**Region scores** (rows top to bottom, columns left to right; {meaning})")
            st.dataframe(np.round(np.asarray(weights, dtype=float), 4), width="stretch")
        shared = personal.shared_attributes(catalog, history, idx)
        st.markdown("**Shared with the history**")
        if shared:
            for line in shared:
                st.markdown(f"- {line}")
        else:
            st.caption("No attribute of this item occurs in the history.")


# ====================================================================== the page
st.title("For you")
st.caption("Personalized top-N lists from BPR, VBPR (on the image, or on the image and the description), DVBPR "
           "and VECF; the heatmap shows which image regions drove each item's score for this user.")

catalog = services.current_catalog()
if catalog.interactions is None or catalog.interactions.empty:
    st.info("This catalog has no interactions (interactions.parquet), so there is nothing to personalize.",
            icon=":material/info:")
    st.stop()
try:
    artifacts = artifacts_of(str(catalog.root), mtime(catalog.root / "artifacts" / "manifest.json"))
except ArtifactError as exc:
    st.warning(str(exc), icon=":material/warning:")
    st.stop()
data = interaction_data(str(catalog.root), mtime(catalog.root / "items.parquet"))

with st.container(border=True):
    mode_column, model_column, compare_column = st.columns([1.2, 1, 1])
    mode = mode_column.radio("Who", ["Existing user", "New user", "Cold-start items"], horizontal=True,
                             key="for_you_mode")
    available = list(personal.MODEL_NAMES)
    model_name = model_column.selectbox("Model", available, format_func=personal.MODEL_TITLES.get, key="for_you_model")
    compare = compare_column.selectbox("Side by side with", ["none"] + available,
                                       format_func=lambda n: "—" if n == "none" else personal.MODEL_TITLES[n],
                                       key="for_you_compare")
    n_column, opacity_column = st.columns(2)
    top_n = n_column.slider("How many items", 4, 24, 12, step=4, key="for_you_n")
    opacity = opacity_column.slider("Heatmap opacity", 0.0, 1.0, 0.45, step=0.05, key="for_you_opacity")

user_row, liked, history, note_user = None, None, np.zeros(0, dtype=np.int64), None
if mode == "New user":
    st.markdown("Like a handful of items; your taste vector is learned from them with every item factor fixed.")
    options = catalog.items["item_id"].tolist()
    titles = dict(zip(catalog.items["item_id"], catalog.items["title"]))
    chosen = st.multiselect("Items you like", options, format_func=lambda i: f"{titles[i]} ({i})",
                            key="for_you_liked", placeholder="Pick items you like")
    if not chosen:
        st.warning("Pick at least one item you like to get recommendations as a new user.", icon=":material/touch_app:")
        st.stop()
    liked = catalog.indices(chosen)
    history = liked
    columns = st.columns(HISTORY_SHOWN)
    for column, item_id in zip(columns, chosen[-HISTORY_SHOWN:]):
        column.image(services.thumbnail(catalog, item_id, 128), caption=titles[item_id], width="stretch")
else:
    known = set(data.user_ids)
    if catalog.has_truth:
        known |= set(world_truth(str(catalog.root), mtime(catalog.root / "items.parquet")).user_ids)
    user_id = st.text_input("User id", value=data.user_ids[0], key="for_you_user",
                            help=f"{len(data.user_ids):,} users with history, e.g. {', '.join(data.user_ids[:3])}")
    try:
        user_row = personal.resolve_user(data, user_id, known)
    except UnknownUserError as exc:
        st.warning(str(exc), icon=":material/person_off:")
        st.stop()
    if user_row is not None:
        history = data.histories[user_row]
        show_history(catalog, data, user_row)
    show_true_tastes(catalog, user_id.strip())

names = [model_name] + ([compare] if compare not in ("none", model_name) else [])
panels = st.columns(len(names)) if len(names) > 1 else [st.container()]
results = {}
for panel, name in zip(panels, names):
    with panel:
        model = get_model(catalog, name)
        if model is None:
            continue
        st.markdown(f"#### {personal.MODEL_TITLES[name]}")
        try:
            recommendation = personal.recommend(model, data, user_row, n=top_n, liked=liked,
                                                only_cold=(mode == "Cold-start items"))
        except ValueError as exc:
            st.warning(str(exc))
            continue
        if mode == "Cold-start items":
            st.caption(f"Only items nobody has interacted with yet ({int(data.cold_items.sum())} of {len(catalog)}): "
                       "they are scored through their images and visual clusters alone.")
        show_grid(catalog, model, artifacts, recommendation, opacity, key=name,
                  columns_count=GRID_COLUMNS if len(names) == 1 else GRID_COLUMNS // 2)
        results[name] = (model, recommendation)

selected = st.session_state.get("for_you_selected")
if selected and selected[0] in results:
    model, recommendation = results[selected[0]]
    if selected[1] in set(recommendation.item_idx.tolist()):
        st.divider()
        show_explanation(catalog, data, model, artifacts, recommendation, history, opacity)
