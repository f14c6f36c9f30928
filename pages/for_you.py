"""For you: a personalized top-N list per user, each item with a heatmap of the image regions behind its score."""

from __future__ import annotations

import numpy as np
import streamlit as st

from recsys import ui
from recsys.tasks.personal import service as personal

ui.run_inside_router()  # a deep link on a fresh server: rerun inside streamlit_app.py

GRID_COLUMNS = 4
HISTORY_SHOWN = 8
CELL = 224
TERM_LABELS = {"latent": "item bias and factors", "image": "image", "description": "description"}


def get_model(service, name: str):
    """The trained model; None while the set-up or a background job trains it (the progress is shown instead)."""
    if not ui.models_ready("personal", [name], what=service.title(name)):
        return None
    try:
        return service.model(name)
    except (personal.ModelNotReady, personal.ArtifactError, personal.CatalogError) as exc:
        st.warning(str(exc), icon=":material/warning:")
    return None


def show_history(catalog, history: np.ndarray) -> None:
    st.markdown(f"**History** &nbsp; {len(history)} items, most recent last")
    columns = st.columns(HISTORY_SHOWN)
    for column, idx in zip(columns, history[-HISTORY_SHOWN:]):
        item = catalog.items.iloc[int(idx)]
        column.image(ui.thumbnail(catalog, item["item_id"], 128), caption=item["title"], width="stretch")


def show_true_tastes(service, user_id: str) -> None:
    tastes = service.true_tastes(user_id)
    if tastes is None:
        return
    with st.expander("True tastes (known only in the built-in world)", expanded=False, icon=":material/visibility:"):
        for key, value in tastes.items():
            st.markdown(f"- **{key.replace('_', ' ')}**: {value or '—'}")


def show_grid(service, recommendation, opacity: float, key: str, columns_count: int) -> None:
    catalog = service.catalog
    if recommendation.note:
        st.info(recommendation.note, icon=":material/trending_up:")
    if len(recommendation.item_idx) == 0:
        st.warning("There is nothing left to recommend: this user already has every candidate item.")
        return
    explainable = service.explains_regions(recommendation)
    if recommendation.user_vector is not None and not explainable:
        st.caption(f"{service.title(recommendation.model)} has no image regions to explain its scores, so plain "
                   "images are shown.")
    cold = service.cold_items()
    rows = [recommendation.item_idx[k : k + columns_count] for k in range(0, len(recommendation.item_idx), columns_count)]
    rank = 0
    for row in rows:
        columns = st.columns(columns_count)
        for column, idx in zip(columns, row):
            rank += 1
            item = catalog.items.iloc[int(idx)]
            weights = service.region_scores(recommendation, idx) if explainable else None
            with column:
                st.image(ui.item_picture(catalog, item["item_id"], weights, opacity, CELL), width="stretch")
                badge = " · :orange[cold-start]" if cold[int(idx)] else ""
                st.caption(f"{rank}. {item['title']}{badge}")
                if st.button("Explain", key=f"for_you_explain_{key}_{idx}", icon=":material/zoom_in:"):
                    st.session_state["for_you_selected"] = (key, int(idx))


def show_explanation(service, recommendation, idx: int, opacity: float) -> None:
    catalog = service.catalog
    item = catalog.items.iloc[idx]
    st.subheader(f"Why {item['title']}?")
    left, right = st.columns([1, 1])
    explanation = service.explain(recommendation, idx)
    weights = explanation.regions
    if weights is None:
        plain = ui.item_picture(catalog, item["item_id"], size=448)
        if recommendation.user_vector is None:
            left.image(plain, width="stretch")
            left.caption(explanation.problem)
        else:
            left.warning(explanation.problem, icon=":material/info:")
            left.image(plain, width="stretch")
    else:
        overlay = ui.peak_picture(catalog, item["item_id"], weights, opacity, size=448)
        left.image(overlay, caption="Heatmap of the regions behind the score; the outlined cell is the peak.",
                   width="stretch")
        left.image(ui.heat_legend(448, 12), caption="low  →  high", width="stretch")
    with right:
        if explanation.score is not None:
            st.metric("Score", f"{explanation.score:.3f}")
        if explanation.terms:
            terms = explanation.terms
            st.markdown("**Score terms** &nbsp; " + " · ".join(f"{TERM_LABELS.get(k, k)} {v:+.3f}" for k, v in terms.items()))
            if "description" in terms:
                st.caption("The heatmap splits the image term over the regions; the description term comes from "
                           "the item's text and has no region.")
        if weights is not None:
            st.markdown(f"**Region scores** (rows top to bottom, columns left to right; {explanation.region_meaning})")
            st.dataframe(np.round(np.asarray(weights, dtype=float), 4), width="stretch")
        st.markdown("**Shared with the history**")
        if explanation.shared:
            for line in explanation.shared:
                st.markdown(f"- {line}")
        else:
            st.caption("No attribute of this item occurs in the history.")


# ====================================================================== the page
st.title("For you")
st.caption("Personalized top-N lists from BPR, VBPR (on the image, or on the image and the description), DVBPR "
           "and VECF; the heatmap shows which image regions drove each item's score for this user.")

service = ui.task_service("personal")
catalog = service.catalog
try:
    service.check()
except personal.CatalogError as exc:
    st.info(str(exc), icon=":material/info:")
    st.stop()
except personal.ArtifactError:
    ui.models_ready("personal", [], what="The catalog's embeddings")  # computes them (or offers to)
    st.stop()

with st.container(border=True):
    mode_column, model_column, compare_column = st.columns([1.2, 1, 1])
    mode = mode_column.radio("Who", ["Existing user", "New user", "Cold-start items"], horizontal=True,
                             key="for_you_mode")
    available = service.models()
    model_name = model_column.selectbox("Model", available, format_func=service.title, key="for_you_model")
    compare = compare_column.selectbox("Side by side with", ["none"] + available,
                                       format_func=lambda n: "—" if n == "none" else service.title(n),
                                       key="for_you_compare")
    n_column, opacity_column = st.columns(2)
    top_n = n_column.slider("How many items", 4, 24, 12, step=4, key="for_you_n")
    opacity = opacity_column.slider("Heatmap opacity", 0.0, 1.0, 0.45, step=0.05, key="for_you_opacity")
    ui.report_claims(catalog, "personal")

user_id, liked = None, None
if mode == "New user":
    st.markdown("Like a handful of items; your taste vector is learned from them with every item factor fixed.")
    options = catalog.items["item_id"].tolist()
    titles = dict(zip(catalog.items["item_id"], catalog.items["title"]))
    chosen = st.multiselect("Items you like", options, format_func=lambda i: f"{titles[i]} ({i})",
                            key="for_you_liked", placeholder="Pick items you like")
    if not chosen:
        st.warning("Pick at least one item you like to get recommendations as a new user.", icon=":material/touch_app:")
        st.stop()
    liked = chosen
    columns = st.columns(HISTORY_SHOWN)
    for column, item_id in zip(columns, chosen[-HISTORY_SHOWN:]):
        column.image(ui.thumbnail(catalog, item_id, 128), caption=titles[item_id], width="stretch")
else:
    users = service.users()
    user_id = st.text_input("User id", value=users[0], key="for_you_user",
                            help=f"{len(users):,} users with history, e.g. {', '.join(users[:3])}").strip()
    try:
        history = service.history(user_id)
    except personal.UnknownUserError as exc:
        st.warning(str(exc), icon=":material/person_off:")
        st.stop()
    if len(history):
        show_history(catalog, history)
    show_true_tastes(service, user_id)

names = [model_name] + ([compare] if compare not in ("none", model_name) else [])
panels = st.columns(len(names)) if len(names) > 1 else [st.container()]
results = {}
for panel, name in zip(panels, names):
    with panel:
        if get_model(service, name) is None:
            continue
        st.markdown(f"#### {service.title(name)}")
        try:
            recommendation = service.recommend(user_id, liked_items=liked, n=top_n, model=name,
                                               only_cold=(mode == "Cold-start items"))
        except ValueError as exc:
            st.warning(str(exc))
            continue
        if mode == "Cold-start items":
            st.caption(f"Only items nobody has interacted with yet ({int(service.cold_items().sum())} of "
                       f"{len(catalog)}): they are scored through their images and visual clusters alone.")
        show_grid(service, recommendation, opacity, key=name,
                  columns_count=GRID_COLUMNS if len(names) == 1 else GRID_COLUMNS // 2)
        results[name] = recommendation

selected = st.session_state.get("for_you_selected")
if selected and selected[0] in results:
    recommendation = results[selected[0]]
    if selected[1] in set(recommendation.item_idx.tolist()):
        st.divider()
        show_explanation(service, recommendation, selected[1], opacity)
