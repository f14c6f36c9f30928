"""Complete the look: pick or upload an item, get an outfit of compatible items from the other slots."""

from html import escape

import numpy as np
import streamlit as st

from recsys import services
from recsys.artifacts import ArtifactError, load_artifacts
from recsys.encoders import EncoderError, create_encoder
from recsys.imageio import ImageInputError, load_upload
from recsys.models.compat import features_for_image
from recsys.outfits import OPTIONAL_SLOTS, QUERY, SLOT_ORDER, OutfitBuilder, Query
from recsys.photo import CategoryPredictor
from recsys.protocols import compat as protocol

MODEL_LABELS = {"type-aware": "Type-aware (Vasileva et al. 2018)", "triplet": "Triplet style space (Complete the Look)"}
CATEGORY_CONFIDENCE = 0.6
ALTERNATIVES = 5
BEST_MATCHES = 6


@st.cache_resource(show_spinner="Loading the precomputed embeddings ...", max_entries=2)
def cached_artifacts(catalog_root: str, fingerprint: str):
    return load_artifacts(services.load_catalog(catalog_root))


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_model(catalog_root: str, fingerprint: str, name: str):
    catalog = services.load_catalog(catalog_root)
    data = protocol.prepare(catalog, artifacts=cached_artifacts(catalog_root, fingerprint))
    with st.spinner(f"Loading the {name} compatibility model (trained on first use for a small catalog) ..."):
        model = protocol.load_or_train_in_place(catalog, name, data)
    return OutfitBuilder(model, data.slots)


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_reference_scores(catalog_root: str, fingerprint: str, name: str) -> np.ndarray:
    return cached_model(catalog_root, fingerprint, name).reference_scores()


@st.cache_resource(show_spinner=False, max_entries=2)
def cached_category_predictor(catalog_root: str, fingerprint: str) -> CategoryPredictor:
    catalog = services.load_catalog(catalog_root)
    return CategoryPredictor().fit(cached_artifacts(catalog_root, fingerprint).image, catalog.items["category"])


@st.cache_resource(show_spinner="Loading the image encoder ...")
def cached_encoder(spec: str):
    return create_encoder(spec)


def item_label(catalog, row: int) -> str:
    item = catalog.items.iloc[row]
    return f"{item['title']} ({item['category']})"


def item_card(catalog, slot: str, row: int, score: float, upload_image=None) -> None:
    with st.container(border=True):
        st.markdown(f"**{slot.capitalize()}**")
        if row == QUERY:
            st.image(upload_image, width="stretch")
            title = "Your photo"
        else:
            st.image(services.thumbnail(catalog, catalog.items["item_id"].iat[row]), width="stretch")
            title = catalog.items["title"].iat[row]
        st.markdown(f'<div class="card-title" title="{escape(title)}">{escape(title)}</div>', unsafe_allow_html=True)
        st.caption(f"Fit with the rest: {score:.3f}")


def choose_catalog_query(catalog):
    categories = catalog.categories
    preset = st.session_state.get("outfit_query_item")
    if preset in catalog.id_to_index and "outfit_category" not in st.session_state:
        st.session_state["outfit_category"] = catalog.item(preset)["category"]
    category = st.selectbox("Category", categories, key="outfit_category")
    rows = np.flatnonzero(catalog.items["category"].to_numpy() == category)
    ids = catalog.items["item_id"].to_numpy()[rows].tolist()
    index = ids.index(preset) if preset in ids else 0
    item_id = st.selectbox("Item", ids, index=index, key=f"outfit_item_{category}",
                           format_func=lambda i: catalog.item(i)["title"])
    st.session_state["outfit_query_item"] = item_id
    row = int(catalog.indices([item_id])[0])
    st.image(services.thumbnail(catalog, item_id), width=180)
    return Query(slot=str(catalog.items["slot"].iat[row]), row=row), f"item:{item_id}", None


def choose_upload_query(catalog, artifacts, builder):
    upload = st.file_uploader("Photo of a clothing item", type=None, key="outfit_upload")
    if upload is None:
        st.info("Upload a photo of one piece of clothing (JPEG, PNG or WebP).", icon=":material/upload:")
        return None, None, None
    try:
        image = load_upload(upload.getvalue(), name=upload.name)
    except ImageInputError as exc:
        st.error(str(exc), icon=":material/broken_image:")
        return None, None, None
    try:
        encoder = cached_encoder(artifacts.image_encoder_spec)
    except EncoderError as exc:
        st.error(str(exc), icon=":material/error:")
        return None, None, None
    vector = encoder.encode_images([image])[0]
    ranking = cached_category_predictor(str(catalog.root), catalog.fingerprint()).rank(vector)
    best, confidence = ranking[0]
    options = [c for c, _ in ranking] + [c for c in catalog.categories if c not in dict(ranking)]
    st.image(image, width=180)
    if confidence < CATEGORY_CONFIDENCE:
        st.warning(f"The photo's category is unclear (best guess {best}, {confidence:.0%} confidence); "
                   "please choose it.", icon=":material/help:")
        category = st.selectbox("Category of your item", options, index=None, key=f"outfit_upload_category_{upload.file_id}",
                                placeholder="Choose a category")
        if category is None:
            return None, None, None
    else:
        category = st.selectbox(f"Category (predicted: {best}, {confidence:.0%})", options, index=0,
                                key=f"outfit_upload_category_{upload.file_id}")
    slot = str(catalog.items.loc[catalog.items["category"] == category, "slot"].iloc[0])
    model = builder.model
    embedding = model.transform(features_for_image(vector, artifacts))[0]
    query = Query(slot=slot, embedding=embedding, type_code=model.type_code(slot))
    return query, f"upload:{upload.file_id}:{category}", image


def reset_outfit() -> None:
    for key in ("outfit_items", "outfit_shown", "outfit_key"):
        st.session_state.pop(key, None)


# ---------------------------------------------------------------------- page
catalog = services.current_catalog()
st.title("Complete the look", anchor=False)
st.caption("A compatibility space learned from outfits proposes items from the other slots and assembles a whole outfit.")

if sum(len(o.get("item_ids", [])) >= 2 for o in catalog.outfits) < protocol.MIN_OUTFITS:
    st.info(
        f"The catalog {catalog.name} has no outfits to learn from. The compatibility model learns which items go "
        f"together from example outfits (outfits.jsonl, at least {protocol.MIN_OUTFITS}). Use the built-in demo world, "
        "or ingest a dataset with outfits: `python scripts/ingest.py --format polyvore --src PATH --out DIR`.",
        icon=":material/styler:",
    )
    st.stop()

try:
    artifacts = cached_artifacts(str(catalog.root), catalog.fingerprint())
except ArtifactError as exc:
    st.warning(str(exc), icon=":material/warning:")
    st.stop()

model_name = st.segmented_control("Compatibility model", list(MODEL_LABELS), default="type-aware",
                                  format_func=MODEL_LABELS.get, key="outfit_model", on_change=reset_outfit)
model_name = model_name or "type-aware"
try:
    builder = cached_model(str(catalog.root), catalog.fingerprint(), model_name)
except protocol.ModelNotTrained as exc:
    st.info(str(exc), icon=":material/model_training:")
    st.stop()
except ValueError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

query_column, board_column = st.columns([1, 3], gap="large")
with query_column:
    source = st.radio("Start from", ["Catalog item", "Your photo"], horizontal=True, key="outfit_source")
    if source == "Catalog item":
        query, query_key, upload_image = choose_catalog_query(catalog)
    else:
        query, query_key, upload_image = choose_upload_query(catalog, artifacts, builder)
    optional = st.multiselect("Optional slots", list(OPTIONAL_SLOTS), default=list(OPTIONAL_SLOTS),
                              key="outfit_optional", on_change=reset_outfit)

if query is None:
    st.stop()

missing = builder.missing_required_slots(query.slot)
if missing:
    with board_column:
        st.warning(f"The catalog has no {' or '.join(missing)} items, so no outfit can be completed around this "
                   f"{query.slot}; the best matches per slot are below.", icon=":material/block:")

query_key = f"{model_name}|{query_key}|{','.join(optional)}"
if st.session_state.get("outfit_key") != query_key:
    st.session_state["outfit_key"] = query_key
    st.session_state["outfit_shown"] = {}
    try:
        st.session_state["outfit_items"] = builder.assemble(query, optional=optional).items if not missing else None
    except ValueError as exc:
        st.session_state["outfit_items"] = None
        with board_column:
            st.warning(str(exc), icon=":material/block:")

items = st.session_state.get("outfit_items")
with board_column:
    if items:
        outfit = builder.score_outfit(query, items)
        locked = [s for s in outfit.ordered_slots() if s != query.slot and st.session_state.get(f"outfit_lock_{s}")]
        with st.container(horizontal=True, vertical_alignment="bottom"):
            reference = cached_reference_scores(str(catalog.root), catalog.fingerprint(), model_name)
            share = float((reference < outfit.score).mean()) if len(reference) else float("nan")
            st.metric("Outfit score", f"{outfit.score:.3f}",
                      help="The model's mean compatibility over every pair of items in the outfit (0 to 1).")
            if len(reference):
                st.metric("Better than", f"{share:.0%}", help="Share of random outfits that score lower.")
            st.space("stretch")
            if st.button("Re-roll unlocked", icon=":material/casino:", key="outfit_reroll"):
                new, shown = builder.reroll(query, outfit, locked_slots=locked,
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
                    st.session_state["outfit_items"] = builder.swap_next_best(query, outfit, slot).items
                    st.rerun()

        st.subheader("Alternatives per slot", anchor=False)
        tabs = st.tabs([s.capitalize() for s in outfit.ordered_slots() if s != query.slot])
        for tab, slot in zip(tabs, [s for s in outfit.ordered_slots() if s != query.slot]):
            with tab:
                alternatives = builder.alternatives(query, outfit, slot, k=ALTERNATIVES)
                for column, (row, score) in zip(st.columns(ALTERNATIVES), alternatives):
                    with column:
                        st.image(services.thumbnail(catalog, catalog.items["item_id"].iat[row]), width="stretch")
                        st.caption(f"{catalog.items['title'].iat[row]} · outfit score {score:.3f}")

    st.subheader("Best matches for the item, per slot", anchor=False)
    matches = builder.top_k(query, k=BEST_MATCHES)
    for slot in [s for s in SLOT_ORDER if s in matches]:
        st.markdown(f"**{slot.capitalize()}**")
        if not matches[slot]:
            st.caption(f"The catalog has no {slot} items.")
            continue
        for column, (row, score) in zip(st.columns(BEST_MATCHES), matches[slot]):
            with column:
                st.image(services.thumbnail(catalog, catalog.items["item_id"].iat[row]), width="stretch")
                st.caption(f"{catalog.items['title'].iat[row]} · {score:.3f}")
