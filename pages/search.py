"""Text-guided search: a reference (catalog item or photo) plus stacked modification captions, or free text."""

import streamlit as st

from recsys import ui
from recsys.tasks.composed import service as composed

ui.run_inside_router()  # a deep link on a fresh server: rerun inside streamlit_app.py

GRID_COLUMNS = 6
COMPOSE, FREE_TEXT = "Reference + captions", "Free text"
FROM_CATALOG, FROM_UPLOAD = "From the catalog", "Upload a photo"


def apply_caption() -> None:
    text = st.session_state.get("search_caption", "")
    cleaned, notes = ui.task_service("composed").caption_notes(text)
    st.session_state["search_caption_feedback"] = notes
    if cleaned is not None:
        st.session_state.setdefault("search_captions", []).append(cleaned)
    st.session_state["search_caption"] = ""


def remove_caption(position: int) -> None:
    captions = st.session_state.get("search_captions", [])
    if 0 <= position < len(captions):
        captions.pop(position)


def clear_captions() -> None:
    st.session_state["search_captions"] = []
    st.session_state.pop("search_caption_ignored", None)


def use_as_reference(item_id: str) -> None:
    st.session_state["search_reference_item"] = item_id
    st.session_state["search_source"] = FROM_CATALOG
    st.session_state["search_item_filter"] = ""
    st.session_state["search_captions"] = []


def choose_catalog_reference(catalog) -> str | None:
    chosen = ui.item_picker(catalog, "search_reference_item", "search_item_filter", "search_reference_choice",
                            label="Reference item", placeholder="e.g. blue shirt")
    if chosen is not None:
        st.image(ui.thumbnail(catalog, chosen), width=200, caption=catalog.item(chosen)["title"])
    return chosen


def upload_reference(search):
    """Image features of the uploaded photo (shape ``(1, dim)``) and its category (as read, or as the user
    corrected it), or ``(None, None)``."""
    photo = ui.photo_query(search, catalog, "search_upload", category_label="Category of the reference",
                           category_help="Correct it if it is wrong: with 'Same category' on, results stay inside it.")
    if photo is None:
        return None, None
    return photo.vector[None, :], photo.category


def caption_chips() -> None:
    captions = st.session_state.get("search_captions", [])
    if not captions:
        st.caption("No caption applied yet: results are ranked by image similarity to the reference.")
        return
    st.markdown("**Applied captions** (in order; click one to remove it)")
    with st.container(horizontal=True):
        for position, caption in enumerate(captions):
            st.button(caption, key=f"search_chip_{position}", icon=":material/close:", on_click=remove_caption,
                      args=(position,), help="Remove this caption")
        st.button("Clear all", key="search_clear_captions", icon=":material/clear_all:", type="tertiary",
                  on_click=clear_captions)


def show_notes(notes) -> None:
    for note in dict.fromkeys(notes):
        st.warning(note, icon=":material/info:")


def forget_part(store: str, key: str) -> None:
    st.session_state.setdefault(store, []).append(key)


def understood_chips(result, store: str) -> None:
    """What the search understood, one removable chip per part (removing one searches again without it)."""
    if not result.understood and not st.session_state.get(store):
        return
    if result.understood:
        st.caption(f"Understood: {result.understood}")
    with st.container(horizontal=True):
        for position, (key, label) in enumerate(result.parts):
            st.button(label, key=f"{store}_{position}", icon=":material/close:", type="tertiary",
                      on_click=forget_part, args=(store, key), help="Search without this part")
        if st.session_state.get(store):
            st.button("Restore all", key=f"{store}_restore", icon=":material/undo:", type="tertiary",
                      on_click=st.session_state.pop, args=(store, None))


def result_card(search, catalog, item_id: str, score: float, reference_id: str | None) -> None:
    note = None
    if reference_id is not None and catalog.has_truth:
        moves = search.attribute_moves(reference_id, item_id)
        note = "Moved: " + (", ".join(f"{a} {old} → {new}" for a, (old, new) in moves.items()) or "no attribute changed")
    ui.result_card(catalog, item_id, f"{catalog.item(item_id)['category']} · score {score:.3f}", note=note,
                   action=ui.CardAction("Use as reference", f"search_pivot_{item_id}", on_click=use_as_reference,
                                        args=(item_id,)))


def result_grid(search, catalog, result, reference_id: str | None) -> None:
    if not result.item_ids:
        return
    st.subheader("Results", anchor=False)
    # A caption can be 2,000 characters: each is shortened here (the chips above hold them whole).
    shown = [c if len(c) <= 80 else c[:79] + "…" for c in result.used_captions]
    st.caption(f"Ranked by {result.model}" + (f" for: {' → '.join(shown)}" if shown else ""))
    for column, (item_id, score) in ui.grid(zip(result.item_ids, result.scores), GRID_COLUMNS):
        with column:
            result_card(search, catalog, item_id, score, reference_id)


ctx = ui.context()
catalog = ctx.catalog
st.title("Text-guided search", anchor=False)
if not ui.models_ready("composed", composed.PAGE_MODELS, what="Text-guided search's joint space and combiner"):
    st.stop()

try:
    ctx.require_artifacts()
    search = ui.task_service("composed")
    ui.train_the_rest("composed")
    search.load()
    joint_name = search.joint_name
except composed.ArtifactError as exc:
    st.warning(str(exc), icon=":material/warning:")
    st.stop()
except (composed.EncoderError, composed.SearchUnavailable, FileNotFoundError, ValueError) as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
st.caption(f"Joint image-text space: `{joint_name}`")

if "search_mode" not in st.session_state:
    st.session_state["search_mode"] = COMPOSE
if "search_source" not in st.session_state:
    st.session_state["search_source"] = FROM_CATALOG
mode = st.segmented_control("Mode", [COMPOSE, FREE_TEXT], key="search_mode")
k = st.sidebar.slider("How many results", 6, 48, 12, step=6, key="search_k")

if mode == FREE_TEXT:
    query = st.text_input("Describe what you are looking for", key="search_free_text",
                          placeholder="e.g. red floral midi dress")
    if st.session_state.get("search_free_text_read") != query:  # a new search forgets the parts removed before
        st.session_state["search_free_text_read"] = query
        st.session_state.pop("search_text_ignored", None)
    if query.strip():
        result = search.search_text(query, k=k, ignore=st.session_state.get("search_text_ignored", []))
        understood_chips(result, "search_text_ignored")
        show_notes(result.notes)
        result_grid(search, catalog, result, None)
    else:
        st.info("Type a description to search the catalog.", icon=":material/search:")
    st.stop()

reference_column, caption_column = st.columns([2, 3])
reference_id, reference, upload_category = None, None, None
with reference_column:
    source = st.segmented_control("Reference", [FROM_CATALOG, FROM_UPLOAD], key="search_source")
    if source == FROM_UPLOAD:
        reference, upload_category = upload_reference(search)
    else:
        reference_id = choose_catalog_reference(catalog)
        if reference_id is not None:
            try:
                reference = search.reference_features(reference_id)
            except composed.ItemUnavailableError as exc:  # its image could not be read: nothing to search with
                st.info(str(exc), icon=":material/broken_image:")

with caption_column:
    with st.form("search_caption_form", clear_on_submit=False, border=False):
        st.text_input("Modification caption", key="search_caption", placeholder="e.g. is red and has long sleeves")
        st.form_submit_button("Apply caption", icon=":material/add:", on_click=apply_caption)
    feedback = st.session_state.pop("search_caption_feedback", [])
    show_notes(feedback)
    caption_chips()
    model = st.selectbox("Composition model", search.composition_choices(), format_func=search.title,
                         key="search_model")
    ui.report_claims(catalog, "composed")
    same_category = st.toggle("Same category as the reference", value=True, key="search_same_category",
                              disabled=reference is None)

if reference is None:
    if reference_id is None:  # an unavailable reference has said why above
        st.info("Pick a reference item or upload a photo to start.", icon=":material/image_search:")
    st.stop()

captions = st.session_state.get("search_captions", [])
reference_category = catalog.item(reference_id)["category"] if reference_id is not None else upload_category
category = reference_category if same_category else None
if reference_id is not None:
    known = search.reference_attributes(reference_id)
else:  # an upload: what the photo reader (or the user's correction) says it is
    known = {"category": upload_category} if upload_category else {}
try:
    result = search.search(reference, captions, model=model, k=k, category=category,
                           exclude=[reference_id] if reference_id is not None else [], reference_attributes=known,
                           ignore=st.session_state.get("search_caption_ignored", []))
except composed.SearchUnavailable as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
with caption_column:
    understood_chips(result, "search_caption_ignored")
show_notes([n for n in result.notes if n not in feedback])  # the applied caption's notes are shown above
result_grid(search, catalog, result, reference_id)
