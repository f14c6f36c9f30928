"""The Text-guided search page, driven headlessly with Streamlit's AppTest on the tiny world."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from _pages import open_page

from recsys.catalog import Catalog

PAGE = "pages/search.py"



def apply(app: AppTest, caption: str) -> AppTest:
    app.text_input(key="search_caption").input(caption)
    next(b for b in app.button if b.label == "Apply caption").click()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def chips(app: AppTest) -> list[str]:
    return [b.label for b in app.button if b.key and b.key.startswith("search_chip_")]


def result_titles(app: AppTest) -> list[str]:
    return [m.value for m in app.markdown if 'class="card-title"' in m.value]


def warnings(app: AppTest) -> str:
    return " ".join(w.value for w in app.warning)


def test_reference_and_stacked_captions(monkeypatch, tiny_ready_dir, tiny_artifacts):
    app = open_page(monkeypatch, tiny_ready_dir, PAGE, timeout=240)
    assert "Text-guided search" in [t.value for t in app.title]
    # no caption yet: ranked by image similarity, and the page says so once, as a caption, not also as a warning
    assert any("No caption applied yet" in c.value and "image similarity" in c.value for c in app.caption)
    assert "image similarity" not in warnings(app)
    assert result_titles(app)
    apply(app, "is red")
    assert chips(app) == ["is red"]
    apply(app, "has long sleeves")
    assert chips(app) == ["is red", "has long sleeves"]
    assert any("is red → has long sleeves" in c.value for c in app.caption)
    assert any(c.value.startswith("Moved:") for c in app.caption)  # the built-in world says which attributes moved
    # k results of the reference's category ("Same category" is on), or all the others when it has fewer
    items = Catalog.load(tiny_ready_dir).items
    reference = items.loc[items["item_id"] == app.selectbox(key="search_reference_choice").value, "category"].iat[0]
    assert len(result_titles(app)) == min(app.slider(key="search_k").value, (items["category"] == reference).sum() - 1)
    # removing a chip removes that caption only
    app.button(key="search_chip_0").click().run()
    assert chips(app) == ["has long sleeves"]
    for position, label in enumerate(app.selectbox(key="search_model").options):
        app.selectbox(key="search_model").select_index(position).run()
        assert not app.exception and result_titles(app)
        assert any(c.value.startswith("Ranked by") for c in app.caption), label


@pytest.mark.parametrize(
    ("caption", "says"),
    [
        ("", "The caption is empty"),
        ("?!... ,,", "has no words"),
        ("빨간색이고 소매가 길어요", "Korean"),
        ("🔥🔥", "has no words"),
        ("is red 🔥", "Emoji"),
        ("is red and " * 200, "longer than the text encoder's context"),
    ],
)
def test_bad_captions_get_a_sentence_not_a_traceback(monkeypatch, tiny_ready_dir, tiny_artifacts, caption, says):
    app = open_page(monkeypatch, tiny_ready_dir, PAGE, timeout=240)
    apply(app, caption)
    assert says in warnings(app)
    assert result_titles(app)
    shown = [w.value for w in app.warning]
    assert len(shown) == len(set(shown))  # each note once (the long caption's was shown twice on a new user's trial)


def test_free_text_mode(monkeypatch, tiny_ready_dir, tiny_artifacts):
    app = open_page(monkeypatch, tiny_ready_dir, PAGE, timeout=240)
    app.segmented_control(key="search_mode").set_value("Free text").run()
    assert not app.exception
    assert app.info  # asks for a description
    app.text_input(key="search_free_text").input("red floral dress").run()
    assert not app.exception, [e.value for e in app.exception]
    assert result_titles(app)
    app.text_input(key="search_free_text").input("!!!").run()
    assert "has no words" in warnings(app)


def test_the_page_says_what_the_report_found_about_its_methods(monkeypatch, tiny_ready_dir, tiny_artifacts):
    import json

    path = tiny_ready_dir / "artifacts" / "report.json"
    report = {"composed": {"zero-shot": {"R@10": 0.685, "R@10_se": 0.057},
                           "image-difference": {"R@10": 0.49, "R@10_se": 0.05}}}
    path.write_text(json.dumps(report), encoding="utf-8")
    try:
        app = open_page(monkeypatch, tiny_ready_dir, PAGE, timeout=240)
        lines = [c.value for c in app.caption if "against Zero-shot sum" in c.value]
        assert len(lines) == 1 and "**worse** (a loss is a result" in lines[0]
    finally:
        path.unlink()
