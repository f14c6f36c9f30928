"""The Stylist chat page, driven headlessly with Streamlit's AppTest on the tiny world."""

from __future__ import annotations

import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from _pages import open_page


PAGE = "pages/stylist.py"


@pytest.fixture(scope="module")
def chat_world(tiny_ready_dir, tmp_path_factory):
    """A copy of the set-up tiny world (every model trained) with one evaluation record naming an unknown item."""
    out = tmp_path_factory.mktemp("stylist") / "tiny"
    shutil.copytree(tiny_ready_dir, out)
    records = [json.loads(line) for line in (out / "dialogues.jsonl").read_text().splitlines()]
    bad = [r for r in records if r["split"] == "eval"][-1]
    bad["candidates"][0]["coordi"]["shoes"] = "no-such-item"
    (out / "dialogues.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return out



def send(app: AppTest, text: str) -> AppTest:
    app.chat_input(key="stylist_input").set_value(text).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def warnings(app: AppTest) -> str:
    return " ".join(w.value for w in app.warning)


def test_a_message_gets_a_proposed_set_with_images_and_ranked_candidates(monkeypatch, chat_world):
    app = open_page(monkeypatch, chat_world, PAGE)
    assert app.title[0].value == "Stylist chat"
    assert "no-such-item" in warnings(app)  # the broken evaluation record is reported, not fatal
    send(app, "I need an outfit for a garden party. For the bottom, a skirt please.")
    subheaders = [s.value for s in app.subheader]
    assert "Proposed coordi-set" in subheaders and "Ranked candidates" in subheaders
    # 4 slots of the proposal + 3 candidates x 4 slots
    assert len(app.image) >= 16
    assert any("#1" in m.value and "score" in m.value for m in app.markdown)
    assert len(app.chat_message) == 2  # the user's turn and the stylist's answer
    assert "How about this coordi" in app.chat_message[1].markdown[0].value
    send(app, "Maybe white shoes")
    assert len(app.chat_message) == 4


def test_bad_messages_get_a_sentence(monkeypatch, chat_world):
    app = open_page(monkeypatch, chat_world, PAGE)
    send(app, "   ")
    assert "empty" in warnings(app)
    assert len(app.chat_message) == 1  # only the greeting: nothing was sent
    send(app, "가을 축제에 입을 치마를 추천해 주세요")
    assert "English only" in warnings(app)
    assert any(s.value == "Proposed coordi-set" for s in app.subheader)
    send(app, "something nice for an autumn festival")
    assert "names no slot" in warnings(app)
    send(app, "a red top " * 400)
    assert "very long" in warnings(app)


def test_an_evaluation_dialogue_loads_with_its_candidates_and_reset_clears(monkeypatch, chat_world):
    app = open_page(monkeypatch, chat_world, PAGE)
    choice = app.selectbox(key="stylist_eval_choice")
    choice.set_value(choice.options[0]).run()
    app.button(key="stylist_load").click().run()
    assert not app.exception
    assert any("true rank" in m.value for m in app.markdown)
    assert any("Kendall" in c.value for c in app.caption)
    assert len(app.chat_message) >= 3
    app.button(key="stylist_reset").click().run()
    assert len(app.chat_message) == 1
    assert not any(s.value == "Proposed coordi-set" for s in app.subheader)


def test_the_other_model_can_be_chosen(monkeypatch, chat_world):
    app = open_page(monkeypatch, chat_world, PAGE)
    app.selectbox(key="stylist_model").set_value("dialogue-mse").run()
    assert not app.exception
    send(app, "a navy coat for a job interview")
    assert any(s.value == "Proposed coordi-set" for s in app.subheader)


def test_a_catalog_without_embeddings_gets_one_sentence(monkeypatch, tmp_path):
    from recsys.data.fascode import ingest_fascode
    from tests.test_fascode import FIXTURE

    ingest_fascode(FIXTURE, tmp_path / "fascode")
    app = open_page(monkeypatch, tmp_path / "fascode", PAGE)
    assert any("precompute" in i.value for i in app.info)


def test_an_untrained_catalog_of_ones_own_offers_training_not_a_command(monkeypatch, tiny_catalog_dir, tiny_artifacts,
                                                                           tmp_path):
    catalog_dir = tmp_path / "tiny"
    shutil.copytree(tiny_catalog_dir, catalog_dir, ignore=shutil.ignore_patterns("models"))
    app = open_page(monkeypatch, catalog_dir, PAGE)
    assert [b.label for b in app.button if b.key == "setup_dialogue"] == ["Train models for this catalog"]
    shown = " ".join(i.value for i in app.info)
    assert "not trained for this catalog yet" in shown and "scripts/train.py" not in shown
    assert not (catalog_dir / "artifacts" / "models" / "dialogue-dialogue-infonce.json").exists()
