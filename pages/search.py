"""Text-guided search: a reference (catalog item or photo) plus stacked modification captions, or free text."""

from html import escape

import streamlit as st

from recsys import services
from recsys.tasks.composed import service as composed

services.run_inside_router()  # a deep link on a fresh server: rerun inside streamlit_app.py

GRID_COLUMNS = 6
COMPOSE, FREE_TEXT = "Reference + captions", "Free text"
FROM_CATALOG, FROM_UPLOAD = "From the catalog", "Upload a photo"
MAX_OPTIONS = 300


def train_the_others(search) -> None:
    """Start training, in the background, the composition models beyond the page's default (they join the model
    list when they are ready)."""
    others = [name for name in search.missing() if name not in composed.PAGE_MODELS]
    if others:
        services.start_training(search.catalog, "composed", others, again=False)
        st.caption(f"Training {', '.join(search.title(n) for n in others)} in the background; "
                   "it joins the model list when it is ready.")


def apply_caption() -> None:
    text = st.session_state.get("search_caption", "")
    cleaned, notes = services.task_service("composed").caption_notes(text)
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
    items = catalog.items
    title_words = st.text_input("Search titles", key="search_item_filter", placeholder="e.g. blue shirt")
    for sentence in services.title_search(title_words).messages:
        st.info(sentence, icon=":material/search:")
    matches = services.filter_items(items, {}, title_words)
    wanted = st.session_state.get("search_reference_item")
    options = list(matches["item_id"].iloc[:MAX_OPTIONS])
    if wanted in catalog.id_to_index and wanted not in options:
        options.insert(0, wanted)
    if not options:
        st.info("No item title matches this search.", icon=":material/search_off:")
        return None
    titles = dict(zip(items["item_id"], items["title"]))
    chosen = st.selectbox("Reference item", options, index=options.index(wanted) if wanted in options else 0,
                          format_func=lambda i: f"{titles[i]}  ({i})", key="search_reference_choice")
    st.session_state["search_reference_item"] = chosen
    st.image(services.thumbnail(catalog, chosen), width=200, caption=titles[chosen])
    return chosen


def upload_reference(arts, search):
    """Image features of the uploaded photo and its category (as read, or as the user corrected it), or
    ``(None, None)``."""
    upload = st.file_uploader("Photo of a garment", type=["jpg", "jpeg", "png", "webp"], key="search_upload")
    if upload is None:
        st.caption("JPEG, PNG or WebP; the photo stays in this session only.")
        return None, None
    try:
        image, vector = services.embed_upload(upload.getvalue(), arts.image_encoder_spec, upload.name)
    except (composed.ImageInputError, composed.EncoderError) as exc:
        st.error(str(exc), icon=":material/broken_image:")
        return None, None
    # A letterboxed square: Streamlit scales to the width, and a 2048 x 1 photo would scale to no height.
    st.image(services.viz.square_thumbnail(image, 2 * services.THUMBNAIL_SIZE), width=200, caption=upload.name)
    try:
        with st.spinner("Reading the photo (the first one after the studio starts takes longer) ..."):
            reading = search.read_photo(vector, image)
    except ValueError as exc:  # a photo the reader cannot read (e.g. too small to tell a garment): its sentence
        st.error(str(exc), icon=":material/broken_image:")
        return None, None
    (st.warning if reading.unsure else st.success)(reading.sentence(), icon=":material/help:" if reading.unsure
                                                   else ":material/check_circle:")
    category = st.selectbox("Category of the reference", reading.category_choices(catalog.categories), index=0,
                            key=f"search_upload_category_{upload.file_id}",
                            help="Correct it if it is wrong: with 'Same category' on, results stay inside it.")
    return vector[None, :], category


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
    item = catalog.item(item_id)
    with st.container(border=True):
        st.image(services.thumbnail(catalog, item_id), width="stretch")
        st.markdown(f'<div class="card-title" title="{escape(item.title)}">{escape(item.title)}</div>'
                    f'<div class="card-details">{escape(item.category)} · score {score:.3f}</div>',
                    unsafe_allow_html=True)
        if reference_id is not None and catalog.has_truth:
            moves = search.attribute_moves(reference_id, item_id)
            moved = ", ".join(f"{a} {old} → {new}" for a, (old, new) in moves.items()) or "no attribute changed"
            st.caption(f"Moved: {moved}")
        st.button("Use as reference", key=f"search_pivot_{item_id}", icon=":material/image_search:", width="stretch",
                  on_click=use_as_reference, args=(item_id,))


def result_grid(search, catalog, result, reference_id: str | None) -> None:
    if not result.item_ids:
        return
    st.subheader("Results", anchor=False)
    # A caption can be 2,000 characters: each is shortened here (the chips above hold them whole).
    shown = [c if len(c) <= 80 else c[:79] + "…" for c in result.used_captions]
    st.caption(f"Ranked by {result.model}" + (f" for: {' → '.join(shown)}" if shown else ""))
    for start in range(0, len(result.item_ids), GRID_COLUMNS):
        row = list(zip(result.item_ids, result.scores))[start : start + GRID_COLUMNS]
        for column, (item_id, score) in zip(st.columns(GRID_COLUMNS), row):
            with column:
                result_card(search, catalog, item_id, score, reference_id)


ctx = services.context()
catalog = ctx.catalog
st.title("Text-guided search", anchor=False)
if not services.models_ready("composed", composed.PAGE_MODELS, what="Text-guided search's joint space and combiner"):
    st.stop()

try:
    arts = ctx.require_artifacts()
    search = services.task_service("composed")
    train_the_others(search)
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
        reference, upload_category = upload_reference(arts, search)
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
    for line in services.reports.catalog_claims(catalog.root, "composed"):  # what the report found, a loss included
        st.caption(line)
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
