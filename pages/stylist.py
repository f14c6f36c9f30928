"""Stylist chat: talk to a coordinator; after each user turn it proposes a coordi-set and ranks candidate sets."""

import streamlit as st

from recsys import ui
from recsys.tasks.dialogue import service as dialogue

ui.run_inside_router()  # a deep link on a fresh server: rerun inside streamlit_app.py

SLOT_ICONS = {"outer": ":material/apparel:", "top": ":material/checkroom:", "bottom": ":material/styler:",
              "shoes": ":material/steps:"}


def reset() -> None:
    for key in ("stylist_turns", "stylist_proposal", "stylist_eval_id", "stylist_notes", "stylist_ignored",
                "stylist_understood", "stylist_parts"):
        st.session_state.pop(key, None)


def load_evaluation_dialogue(chat) -> None:
    dialogue_id = st.session_state.get("stylist_eval_choice")
    if dialogue_id in chat.evaluation_ids():
        reset()
        st.session_state["stylist_eval_id"] = dialogue_id
        st.session_state["stylist_turns"] = chat.evaluation_turns(dialogue_id)
        st.session_state["stylist_pending"] = True


def forget_part(key: str) -> None:
    """Drop an understood part of the conversation and answer again without it."""
    st.session_state.setdefault("stylist_ignored", []).append(key)
    st.session_state["stylist_pending"] = True


def understood_chips() -> None:
    understood = st.session_state.get("stylist_understood")
    if not understood:
        return
    st.caption(f"Understood so far: {understood}")
    with st.container(horizontal=True):
        for position, (key, label) in enumerate(st.session_state.get("stylist_parts", [])):
            st.button(label, key=f"stylist_part_{position}", icon=":material/close:", type="tertiary",
                      on_click=forget_part, args=(key,), help="Leave this out of the proposal")


def item_tile(catalog, row: int, caption_prefix: str = "") -> None:
    if row < 0:
        st.caption(f"{caption_prefix}(empty)")
        return
    item = catalog.items.iloc[row]
    st.image(ui.thumbnail(catalog, item.item_id), width="stretch")
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
                    st.image(ui.thumbnail(catalog, item_id, size=96), width=96)


def show_proposal(catalog, proposal, loaded_id) -> None:
    st.subheader("Proposed coordi-set", anchor=False)
    for column, slot in zip(st.columns(len(dialogue.FASCODE_SLOTS)), dialogue.FASCODE_SLOTS):
        with column:
            st.markdown(f"{SLOT_ICONS[slot]} **{slot.capitalize()}**")
            item_tile(catalog, proposal.coordi.get(slot, -1))
    st.caption(f"Proposed in {proposal.seconds * 1000:.0f} ms.")
    st.subheader("Ranked candidates", anchor=False)
    if loaded_id:
        predicted = [c["rank"] for c in proposal.candidates]
        truth = [c["true_rank"] for c in proposal.candidates]
        st.caption(f"Candidates of evaluation dialogue {loaded_id}; weighted Kendall's tau against the true ranks: "
                   f"{dialogue.weighted_kendall_tau(predicted, truth):.2f}.")
    else:
        st.caption("Alternatives built from the nearest items of every slot, ranked by the set score.")
    for candidate in proposal.candidates:
        with st.container(border=True):
            label = f"**#{candidate['rank']}** &nbsp; score {candidate['score']:.3f}"
            if candidate["true_rank"] is not None:
                label += f" &nbsp; (true rank {candidate['true_rank']})"
            st.markdown(label)
            for column, slot in zip(st.columns(len(dialogue.FASCODE_SLOTS)), dialogue.FASCODE_SLOTS):
                with column:
                    item_tile(catalog, candidate["coordi"][slot], f"{slot}: ")


catalog = ui.context().catalog
chat = ui.task_service("dialogue")
st.title("Stylist chat", anchor=False)
st.caption("Tell the coordinator what you need; after every message it proposes a coordi-set "
           "(outer, top, bottom, shoes) and ranks candidate sets.")

try:
    evaluation_ids, skipped = chat.evaluation_ids(), chat.skipped()
except Exception as exc:  # a malformed dialogues file must read as a sentence
    st.error(f"The catalog's dialogues cannot be read ({exc}).", icon=":material/error:")
    st.stop()
if not chat.has_dialogues():
    st.info("This catalog has no dialogues, so there is nothing to train the stylist on; "
            "the built-in world and FASCODE catalogs (scripts/ingest.py --format fascode) have them.",
            icon=":material/info:")
    st.stop()
if skipped:
    st.warning(f"{len(skipped)} dialogue record(s) were skipped, e.g. {skipped[0][0]}: {skipped[0][1]}.",
               icon=":material/warning:")

with st.container(horizontal=True, vertical_alignment="bottom"):
    model_name = st.selectbox("Model", chat.models(), format_func=chat.title, key="stylist_model", width=330)
    if evaluation_ids:
        st.selectbox("Evaluation dialogue", evaluation_ids, key="stylist_eval_choice", width=220)
        st.button("Load", icon=":material/upload:", key="stylist_load", on_click=load_evaluation_dialogue,
                  args=(chat,))
    st.button("Reset", icon=":material/restart_alt:", key="stylist_reset", on_click=reset)
ui.report_claims(catalog, "dialogue")

title = chat.title(model_name)
if not ui.models_ready("dialogue", [model_name], what=f"The {title.lower()} model"):
    st.stop()
try:
    summary = chat.summary(model_name)
except dialogue.DialogueTaskError as exc:
    st.info(str(exc), icon=":material/info:")
    st.stop()
except dialogue.EncoderError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
st.caption(f"Model trained in {summary.fit_seconds:.1f} s; set score compatibility: {summary.compatibility}.")

turns = st.session_state.setdefault("stylist_turns", [])
message = st.chat_input("Tell the stylist what you are looking for", key="stylist_input")
pending = st.session_state.pop("stylist_pending", False)
if message is not None or (pending and turns):
    try:
        reply = chat.reply(message, turns, model=model_name, evaluation_id=st.session_state.get("stylist_eval_id"),
                           ignore=st.session_state.get("stylist_ignored", []))
    except dialogue.EncoderError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()
    if message is not None:
        st.session_state["stylist_notes"] = reply.notes
    if reply.proposal is not None:
        st.session_state["stylist_turns"] = turns = reply.turns
        st.session_state["stylist_proposal"] = reply.proposal
        st.session_state["stylist_understood"] = reply.understood
        st.session_state["stylist_parts"] = reply.parts

if not turns:
    with st.chat_message("assistant"):
        st.markdown("Hello! What are you dressing for? Tell me the occasion, colours you like, or a piece you want.")
for turn in turns:
    show_turn(catalog, turn)
for note in st.session_state.get("stylist_notes", []):
    st.warning(note, icon=":material/warning:")

understood_chips()
proposal = st.session_state.get("stylist_proposal")
if proposal is not None:
    show_proposal(catalog, proposal, st.session_state.get("stylist_eval_id"))
