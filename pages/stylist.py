"""Stylist chat: talk to a coordinator; after each user turn it proposes a coordi-set and ranks candidate sets."""

import streamlit as st

from recsys import services
from recsys.encoders import EncoderError
from recsys.metrics import weighted_kendall_tau
from recsys.models.dialogue import FASCODE_SLOTS, check_message
from recsys.protocols import dialogue as task

MODELS = {
    "dialogue-infonce": "Contrastive + compatibility (improved)",
    "dialogue-mse": "Projection + transfer net (FASCODE paper)",
}
SLOT_ICONS = {"outer": ":material/apparel:", "top": ":material/checkroom:", "bottom": ":material/styler:",
              "shoes": ":material/steps:"}

@st.cache_resource(show_spinner=False, max_entries=4)
def stylist_for(catalog_root: str, fingerprint: str, model_name: str):
    # fingerprint is part of the cache key only: a rebuilt catalog gets a fresh stylist.
    return task.build_stylist(services.load_catalog(catalog_root), model_name)

@st.cache_data(show_spinner=False, max_entries=4)
def evaluation_dialogues(catalog_root: str, fingerprint: str):
    data = task.dialogue_data(services.load_catalog(catalog_root))
    records = {r["dialogue_id"]: (r, rows) for r, rows in zip(data.eval_records, data.eval_candidates)}
    return records, data.skipped

def reset() -> None:
    for key in ("stylist_turns", "stylist_proposal", "stylist_eval_id", "stylist_notes"):
        st.session_state.pop(key, None)

def load_evaluation_dialogue(records) -> None:
    dialogue_id = st.session_state.get("stylist_eval_choice")
    if dialogue_id in records:
        reset()
        st.session_state["stylist_eval_id"] = dialogue_id
        st.session_state["stylist_turns"] = [dict(t) for t in records[dialogue_id][0].get("turns", [])]
        st.session_state["stylist_pending"] = True

def item_tile(catalog, row: int, caption_prefix: str = "") -> None:
    if row < 0:
        st.caption(f"{caption_prefix}(empty)")
        return
    item = catalog.items.iloc[row]
    st.image(services.thumbnail(catalog, item.item_id), width="stretch")
    st.caption(f"{caption_prefix}{item.title}")

def show_turn(catalog, turn: dict) -> None:
    role = "user" if turn.get("speaker") == "US" else "assistant"
    with st.chat_message(role):
        if turn.get("text"):
            st.markdown(turn["text"])
        shown = [i for i in turn.get("item_ids", []) if i in catalog.id_to_index]
        if shown:
            st.caption("Shown items")
            for column, item_id in zip(st.columns(max(len(shown), 4)), shown):
                with column:
                    st.image(services.thumbnail(catalog, item_id, size=96), width=96)

def show_proposal(catalog, proposal, loaded_id) -> None:
    st.subheader("Proposed coordi-set", anchor=False)
    for column, slot in zip(st.columns(len(FASCODE_SLOTS)), FASCODE_SLOTS):
        with column:
            st.markdown(f"{SLOT_ICONS[slot]} **{slot.capitalize()}**")
            item_tile(catalog, proposal.coordi.get(slot, -1))
    st.caption(f"Proposed in {proposal.seconds * 1000:.0f} ms.")
    st.subheader("Ranked candidates", anchor=False)
    if loaded_id:
        predicted = [c["rank"] for c in proposal.candidates]
        truth = [c["true_rank"] for c in proposal.candidates]
        st.caption(f"Candidates of evaluation dialogue {loaded_id}; weighted Kendall's tau against the true ranks: "
                   f"{weighted_kendall_tau(predicted, truth):.2f}.")
    else:
        st.caption("Alternatives built from the nearest items of every slot, ranked by the set score.")
    for candidate in proposal.candidates:
        with st.container(border=True):
            label = f"**#{candidate['rank']}** &nbsp; score {candidate['score']:.3f}"
            if candidate["true_rank"] is not None:
                label += f" &nbsp; (true rank {candidate['true_rank']})"
            st.markdown(label)
            for column, slot in zip(st.columns(len(FASCODE_SLOTS)), FASCODE_SLOTS):
                with column:
                    item_tile(catalog, candidate["coordi"][slot], f"{slot}: ")

catalog = services.current_catalog()
fingerprint = catalog.fingerprint()
st.title("Stylist chat", anchor=False)
st.caption("Tell the coordinator what you need; after every message it proposes a coordi-set "
           "(outer, top, bottom, shoes) and ranks candidate sets.")

#: Up to this many training dialogues the page trains a missing model itself (about a minute on 2 cores).
IN_PLACE_TRAINING_DIALOGUES = 100

try:
    records, skipped = evaluation_dialogues(str(catalog.root), fingerprint)
except Exception as exc:  # a malformed dialogues file must read as a sentence
    st.error(f"The catalog's dialogues cannot be read ({exc}).", icon=":material/error:")
    st.stop()
if not catalog.dialogues:
    st.info("This catalog has no dialogues, so there is nothing to train the stylist on; "
            "the built-in world and FASCODE catalogs (scripts/ingest.py --format fascode) have them.",
            icon=":material/info:")
    st.stop()
if skipped:
    st.warning(f"{len(skipped)} dialogue record(s) were skipped, e.g. {skipped[0][0]}: {skipped[0][1]}.",
               icon=":material/warning:")

with st.container(horizontal=True, vertical_alignment="bottom"):
    model_name = st.selectbox("Model", list(MODELS), format_func=MODELS.get, key="stylist_model", width=330)
    if records:
        st.selectbox("Evaluation dialogue", list(records), key="stylist_eval_choice", width=220)
        st.button("Load", icon=":material/upload:", key="stylist_load", on_click=load_evaluation_dialogue,
                  args=(records,))
    st.button("Reset", icon=":material/restart_alt:", key="stylist_reset", on_click=reset)

try:
    if task.is_trained(catalog, model_name):
        stylist, info = stylist_for(str(catalog.root), fingerprint, model_name)
    elif sum(d.get("split") != "eval" for d in catalog.dialogues) > IN_PLACE_TRAINING_DIALOGUES:
        # Training on a catalog this size takes minutes on a CPU: too long to hold the page.
        st.info(f"The {MODELS[model_name].lower()} model is not trained for this catalog yet; train it once with "
                f"`python scripts/train.py --catalog {catalog.root} --task dialogue` (a few minutes), then reload.",
                icon=":material/model_training:")
        st.stop()
    else:
        with st.spinner(f"Training the {MODELS[model_name].lower()} model on this catalog's dialogues ..."):
            stylist, info = stylist_for(str(catalog.root), fingerprint, model_name)
except task.DialogueTaskError as exc:
    st.info(str(exc), icon=":material/info:")
    st.stop()
except EncoderError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
st.caption(f"Model trained in {info.get('fit_seconds', 0):.1f} s; set score compatibility: {info['compatibility']}.")

turns = st.session_state.setdefault("stylist_turns", [])
message = st.chat_input("Tell the stylist what you are looking for", key="stylist_input")
if message is not None:
    check = check_message(message, english_only_encoder=task.encoder_reads_only_english(stylist.encoder.spec))
    st.session_state["stylist_notes"] = check.problems + check.notes
    if check.usable:
        turns.append({"speaker": "US", "text": check.text, "tags": []})
        st.session_state["stylist_pending"] = True

if st.session_state.pop("stylist_pending", False) and turns:
    loaded = records.get(st.session_state.get("stylist_eval_id"))
    candidates, true_ranks = (loaded[1], [c["rank"] for c in loaded[0]["candidates"]]) if loaded else (None, None)
    proposal = stylist.respond(turns, candidates=candidates, true_ranks=true_ranks)
    st.session_state["stylist_proposal"] = proposal
    if turns[-1]["speaker"] == "US":
        items = [catalog.items.iloc[r].title for r in proposal.coordi.values() if r >= 0]
        turns.append({"speaker": "CO", "text": "How about this coordi: " + ", ".join(items) + "?", "tags": ["SUGGEST"]})

if not turns:
    with st.chat_message("assistant"):
        st.markdown("Hello! What are you dressing for? Tell me the occasion, colours you like, or a piece you want.")
for turn in turns:
    show_turn(catalog, turn)
for note in st.session_state.get("stylist_notes", []):
    st.warning(note, icon=":material/warning:")

proposal = st.session_state.get("stylist_proposal")
if proposal is not None:
    show_proposal(catalog, proposal, st.session_state.get("stylist_eval_id"))
