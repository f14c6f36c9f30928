"""The For you page, driven headlessly with Streamlit's AppTest on the tiny world."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from _pages import open_page

from recsys.config import PROJECT_ROOT

PAGE = "pages/for_you.py"


@pytest.fixture
def page(monkeypatch, tiny_ready_dir, tiny_artifacts):
    return open_page(monkeypatch, tiny_ready_dir, PAGE)


def texts(app: AppTest) -> str:
    return " ".join(e.value for e in [*app.markdown, *app.caption, *app.warning, *app.info, *app.subheader])


def test_a_user_gets_a_grid_of_heatmaps_and_an_explanation(page):
    assert page.title[0].value == "For you"
    assert "History" in texts(page)
    assert len(page.image) >= 12  # history strip plus the 12 recommended cards
    assert any("True tastes" in e.label for e in page.expander)
    page.selectbox(key="for_you_model").set_value("vecf").run()
    page.button(key=next(b.key for b in page.button if b.key and b.key.startswith("for_you_explain_vecf_"))).click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert any(s.value.startswith("Why ") for s in page.subheader)
    assert "Region scores" in texts(page) and "attention weights, summing to 1" in texts(page)
    assert page.dataframe[0].value.shape == (7, 7)
    assert page.dataframe[0].value.to_numpy().sum() == pytest.approx(1.0, abs=3e-3)  # 49 cells rounded to 4 places


def test_unknown_user_and_zero_liked_items_get_one_sentence(page):
    page.text_input(key="for_you_user").input("nobody").run()
    assert not page.exception
    assert any("no user 'nobody'" in w.value for w in page.warning)
    page.radio(key="for_you_mode").set_value("New user").run()
    assert any("at least one item" in w.value for w in page.warning)


def test_new_user_fold_in_side_by_side_and_cold_start_view(page, tiny_catalog):
    page.radio(key="for_you_mode").set_value("New user").run()
    liked = tiny_catalog.items["item_id"].iloc[[3, 7, 11]].tolist()
    page.multiselect(key="for_you_liked").set_value(liked).run()
    assert not page.exception, [e.value for e in page.exception]
    assert not page.warning
    page.selectbox(key="for_you_compare").set_value("bpr").run()
    assert not page.exception, [e.value for e in page.exception]
    headings = [m.value for m in page.markdown]
    assert "#### VBPR (image + description)" in headings and "#### BPR-MF" in headings
    assert any("no image regions" in c.value for c in page.caption)
    page.radio(key="for_you_mode").set_value("Cold-start items").run()
    assert not page.exception, [e.value for e in page.exception]
    assert any("nobody has interacted with" in c.value for c in page.caption)


def test_multimodal_vbpr_splits_its_score_into_image_and_description_terms(page):
    assert page.selectbox(key="for_you_model").value == "vbpr-mm"  # the default: best on the demo world
    assert "#### VBPR (image + description)" in [m.value for m in page.markdown]
    page.button(key=next(b.key for b in page.button if b.key and b.key.startswith("for_you_explain_vbpr-mm_"))).click().run()
    assert not page.exception, [e.value for e in page.exception]
    terms = next(m.value for m in page.markdown if m.value.startswith("**Score terms**"))
    assert "image" in terms and "description" in terms and "item bias and factors" in terms
    assert "description term comes from the item's text" in texts(page)
    assert "their mean is the image term of the score" in texts(page)
    assert page.dataframe[0].value.shape == (7, 7)


def test_the_page_labels_models_from_the_registry(page):
    from recsys.models.registry import list_models, model_title

    control = page.selectbox(key="for_you_model")
    assert [str(o) for o in control.options] == [model_title("personal", m)
                                                  for m in list_models("personal", trainable=True)]


def test_the_page_holds_no_cache_and_imports_only_the_ui_layer_and_its_service():
    source = (PROJECT_ROOT / PAGE).read_text(encoding="utf-8")
    assert "st.cache_" not in source and "isinstance" not in source
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert {line for line in imports if "recsys" in line} == {"from recsys import ui",
                                                             "from recsys.tasks.personal import service as personal"}
