"""The Complete-the-look page, driven headlessly with Streamlit's AppTest on the tiny world."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from _pages import open_page

from recsys.catalog import Catalog
from recsys.config import PROJECT_ROOT

PAGE = "pages/outfit.py"



def board_slots(app: AppTest) -> list[str]:
    """The slots on the outfit board, read from its lock toggles (the query's slot has none)."""
    return [t.key.removeprefix("outfit_lock_") for t in app.toggle if t.key.startswith("outfit_lock_")]


def board_titles(app: AppTest) -> list[str]:
    return [m.value for m in app.markdown if 'class="card-title"' in m.value]


@pytest.fixture(scope="module")
def catalog(tiny_ready_dir) -> Catalog:
    return Catalog.load(tiny_ready_dir)


def test_a_catalog_item_gets_a_whole_outfit_with_scores(monkeypatch, tiny_ready_dir, tiny_artifacts, catalog):
    app = open_page(monkeypatch, tiny_ready_dir, PAGE)
    assert "Complete the look" in [t.value for t in app.title]
    query_slot = catalog.item(app.selectbox(key=f"outfit_item_{app.selectbox(key='outfit_category').value}").value)["slot"]
    slots = board_slots(app)
    assert query_slot not in slots
    outfit = set(slots) | {query_slot}
    assert "shoes" in outfit and ({"top", "bottom"} <= outfit or "onepiece" in outfit)
    labels = [m.label for m in app.metric]
    assert "Outfit score" in labels
    score = float(next(m.value for m in app.metric if m.label == "Outfit score"))
    assert 0.0 <= score <= 1.0
    assert any("Fit with the rest" in c.value for c in app.caption)
    # Alternatives per slot and the best matches for the item are shown.
    assert len(app.tabs) == len(slots)
    assert "Best matches for the item, per slot" in [s.value for s in app.subheader]


def test_locked_slots_survive_a_reroll_and_the_rest_changes(monkeypatch, tiny_ready_dir, tiny_artifacts):
    app = open_page(monkeypatch, tiny_ready_dir, PAGE)
    slots = board_slots(app)
    before = board_titles(app)
    locked = slots[-1]
    app.toggle(key=f"outfit_lock_{locked}").set_value(True).run()
    items_before = dict(app.session_state["outfit_items"])
    app.button(key="outfit_reroll").click().run()
    assert not app.exception, [e.value for e in app.exception]
    items_after = dict(app.session_state["outfit_items"])
    assert items_after[locked] == items_before[locked]
    changed = [s for s in slots if s != locked and items_after.get(s) != items_before.get(s)]
    assert changed, (items_before, items_after)
    assert before  # the board had cards before the re-roll


def test_next_best_swaps_only_that_slot(monkeypatch, tiny_ready_dir, tiny_artifacts):
    app = open_page(monkeypatch, tiny_ready_dir, PAGE)
    slot = board_slots(app)[0]
    before = dict(app.session_state["outfit_items"])
    app.button(key=f"outfit_swap_{slot}").click().run()
    after = dict(app.session_state["outfit_items"])
    assert after[slot] != before[slot]
    assert {s: r for s, r in after.items() if s != slot} == {s: r for s, r in before.items() if s != slot}


def test_a_catalog_without_outfits_explains_what_the_model_needs(monkeypatch, tmp_path):
    from tests._synthetic import write_synthetic_catalog

    write_synthetic_catalog(tmp_path / "closet", n_items=12)
    app = open_page(monkeypatch, tmp_path / "closet", PAGE)
    text = " ".join(i.value for i in app.info)
    assert "no outfits to learn from" in text and "--format polyvore" in text
    assert not app.metric


def test_the_model_choice_comes_from_the_registry_and_switching_models_rebuilds_the_outfit(
        monkeypatch, tiny_ready_dir, tiny_artifacts):
    from recsys.models.registry import list_models, model_title

    app = open_page(monkeypatch, tiny_ready_dir, PAGE)
    control = app.segmented_control(key="outfit_model")
    assert control.value == "type-aware"
    titles = [str(o) for o in control.options]
    assert sorted(titles) == sorted(model_title("compat", m) for m in list_models("compat", trainable=True))
    control.set_value("triplet").run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.session_state["outfit_key"].startswith("triplet|")
    assert "Outfit score" in [m.label for m in app.metric]


def test_the_page_holds_no_cache_and_imports_only_the_ui_layer_and_its_service():
    from recsys.config import PROJECT_ROOT

    source = (PROJECT_ROOT / PAGE).read_text(encoding="utf-8")
    assert "st.cache_" not in source
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert {line for line in imports if "recsys" in line} == {"from recsys import ui",
                                                             "from recsys.tasks.compat import service as outfits"}


def test_an_uploaded_photo_gets_an_outfit_around_it(monkeypatch, tiny_ready_dir, tiny_artifacts, catalog):
    # AppTest cannot drive st.file_uploader, so the page is handed a stand-in for Streamlit's UploadedFile.
    import streamlit
    from types import SimpleNamespace

    item_id = catalog.items.loc[catalog.items["category"] == "tshirt", "item_id"].iloc[0]
    photo = SimpleNamespace(name="shirt.png", file_id="upload-1",
                            getvalue=lambda: catalog.image_path(item_id).read_bytes())
    monkeypatch.setattr(streamlit, "file_uploader", lambda *args, **kwargs: photo)
    app = open_page(monkeypatch, tiny_ready_dir, PAGE)
    app.radio(key="outfit_source").set_value("Your photo").run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.session_state["outfit_key"].startswith("type-aware|upload:upload-1:")
    assert "Your photo" in " ".join(board_titles(app))
    assert "Outfit score" in [m.label for m in app.metric]
