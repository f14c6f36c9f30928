"""The app shell and the Browse page, driven headlessly with Streamlit's AppTest."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from recsys.catalog import Catalog, CatalogWriter
from recsys.config import PROJECT_ROOT

APP = str(PROJECT_ROOT / "streamlit_app.py")
FIRST_PAGE_SIZE = 24


def start_app(monkeypatch, catalog_dir=None, **environment) -> AppTest:
    """Run the app once with ``RECSYS_CATALOG=catalog_dir`` (unset when None) and the given extra variables."""
    if catalog_dir is None:
        monkeypatch.delenv("RECSYS_CATALOG", raising=False)
    else:
        monkeypatch.setenv("RECSYS_CATALOG", str(catalog_dir))
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def shown_images(app: AppTest) -> int:
    return len(app.image)


def match_count_text(app: AppTest) -> str:
    return next(m.value for m in app.markdown if " items" in m.value and " of " in m.value)


@pytest.fixture(scope="module")
def items(tiny_catalog_dir) -> pd.DataFrame:
    return Catalog.load(tiny_catalog_dir).items


@pytest.fixture(scope="module")
def photo_folder_catalog_dir(tmp_path_factory):
    """A catalog like one ingested from a folder of photos: categories only, no attribute columns, odd sizes."""
    out = tmp_path_factory.mktemp("photos") / "closet"
    rows = []
    with CatalogWriter(out) as writer:
        for number in range(7):
            category = ("dress", "sneaker")[number % 2]
            path = f"images/{category}_{number}.jpg"
            writer.save_image(path, Image.new("RGB", (300 + 40 * number, 200), (200, 30 * number, 90)))
            rows.append(
                dict(item_id=f"p{number}", category=category, slot="onepiece" if category == "dress" else "shoes",
                     title=f"My {category} {number}", description="", image_path=path)
            )
        writer.finish(items=pd.DataFrame(rows), meta={"name": "my closet"})
    return out


def test_home_shows_the_first_page_of_the_catalog(monkeypatch, tiny_catalog_dir, items, tmp_path):
    # A private copy without artifacts: the shared tiny world has embeddings or not depending on which tests ran.
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("artifacts"))
    app = start_app(monkeypatch, folder)

    assert shown_images(app) == min(FIRST_PAGE_SIZE, len(items))
    assert match_count_text(app).startswith(f"**{len(items):,}** of {len(items):,}")
    assert app.number_input(key="home_page_number").value == 1
    assert not [i.value for i in app.info if "title search" in i.value]  # the empty search box is no problem
    text = sidebar_text(app)
    assert Catalog.load(folder).name in text
    assert f"{len(items):,} items" in text
    assert "effnet-lite0" in text and "No precomputed embeddings" in text


def test_filters_are_built_from_the_attribute_columns(monkeypatch, tiny_catalog_dir, items):
    app = start_app(monkeypatch, tiny_catalog_dir)

    offered = {w.key for w in app.multiselect}
    assert offered == {f"home_filter_{c}" for c in ("category", "color", "pattern", "style")}
    assert app.multiselect(key="home_filter_category").options == sorted(items["category"].unique())


def test_a_category_and_colour_filter_reduce_the_grid(monkeypatch, tiny_catalog_dir, items):
    app = start_app(monkeypatch, tiny_catalog_dir)
    category = items["category"].value_counts().index[0]
    in_category = items[items["category"] == category]

    app.multiselect(key="home_filter_category").set_value([category]).run()
    assert shown_images(app) == min(FIRST_PAGE_SIZE, len(in_category))
    assert match_count_text(app).startswith(f"**{len(in_category):,}** of")

    colour = in_category["color"].value_counts().index[0]
    app.multiselect(key="home_filter_color").set_value([colour]).run()
    expected = ((items["category"] == category) & (items["color"] == colour)).sum()
    assert shown_images(app) == min(FIRST_PAGE_SIZE, expected)
    assert not app.exception


def test_title_search_ignores_case_and_needs_every_word(monkeypatch, tiny_catalog_dir, items):
    app = start_app(monkeypatch, tiny_catalog_dir)
    words = items["title"].iloc[0].lower().split()[:2]
    titles = items["title"].str.lower()
    expected = sum(all(w in t for w in words) for t in titles)

    app.text_input(key="home_search").input(" ".join(words).upper()).run()
    assert match_count_text(app).startswith(f"**{expected:,}** of")
    assert shown_images(app) == min(FIRST_PAGE_SIZE, expected)

    app.text_input(key="home_search").input("no-such-garment-anywhere").run()
    assert shown_images(app) == 0
    assert any("No item matches" in i.value for i in app.info)


def test_paging_and_page_size(monkeypatch, tiny_catalog_dir, items):
    assert len(items) > FIRST_PAGE_SIZE, "the tiny world must span more than one page for this test"
    app = start_app(monkeypatch, tiny_catalog_dir)
    assert app.button(key="home_previous_page").disabled

    app.button(key="home_next_page").click().run()
    assert app.number_input(key="home_page_number").value == 2
    assert shown_images(app) == min(FIRST_PAGE_SIZE, len(items) - FIRST_PAGE_SIZE)
    assert not app.button(key="home_previous_page").disabled

    app.button(key="home_previous_page").click().run()
    assert app.number_input(key="home_page_number").value == 1

    last_page = -(-len(items) // FIRST_PAGE_SIZE)
    app.number_input(key="home_page_number").set_value(last_page).run()
    assert shown_images(app) == len(items) - (last_page - 1) * FIRST_PAGE_SIZE
    assert app.button(key="home_next_page").disabled

    app.selectbox(key="home_page_size").set_value(48).run()
    assert app.number_input(key="home_page_number").value == 1
    assert shown_images(app) == min(48, len(items))


def test_a_filter_brings_a_later_page_back_to_page_one(monkeypatch, tiny_catalog_dir, items):
    app = start_app(monkeypatch, tiny_catalog_dir)
    app.button(key="home_next_page").click().run()
    category = items["category"].value_counts().index[-1]

    app.multiselect(key="home_filter_category").set_value([category]).run()
    assert app.number_input(key="home_page_number").value == 1
    assert shown_images(app) == min(FIRST_PAGE_SIZE, (items["category"] == category).sum())


def test_find_similar_appears_only_once_the_similar_page_exists(monkeypatch, tiny_catalog_dir):
    app = start_app(monkeypatch, tiny_catalog_dir)
    buttons = [b for b in app.button if str(b.key).startswith("home_similar_")]
    if (PROJECT_ROOT / "pages" / "similar.py").is_file():
        assert len(buttons) == shown_images(app)
    else:
        assert buttons == []


@pytest.mark.skipif(not (PROJECT_ROOT / "pages" / "similar.py").is_file(), reason="no Similar items page yet")
def test_find_similar_opens_the_similar_page_with_the_item(monkeypatch, tiny_catalog_dir, items):
    app = start_app(monkeypatch, tiny_catalog_dir)
    first_shown = items["item_id"].iloc[0]

    app.button(key=f"home_similar_{first_shown}").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.session_state["similar_query_item"] == first_shown
    assert not any(str(b.key).startswith("home_similar_") for b in app.button)  # the Browse grid is gone


def test_a_photo_folder_catalog_offers_only_the_category_filter(monkeypatch, photo_folder_catalog_dir):
    app = start_app(monkeypatch, photo_folder_catalog_dir)

    assert [w.key for w in app.multiselect] == ["home_filter_category"]
    assert shown_images(app) == 7
    app.multiselect(key="home_filter_category").set_value(["dress"]).run()
    assert shown_images(app) == 4


def sidebar_text(app: AppTest) -> str:
    return " ".join([m.value for m in app.sidebar.markdown] + [c.value for c in app.sidebar.caption])


def test_the_sidebar_names_the_encoders_of_precomputed_artifacts(monkeypatch, photo_folder_catalog_dir, tmp_path):
    catalog_dir = shutil.copytree(photo_folder_catalog_dir, tmp_path / "closet")
    (catalog_dir / "artifacts").mkdir()
    manifest = {
        "item_count": 7,
        "created_at": "2026-01-02T03:04:05+00:00",
        "image_encoder": {"spec": "open_clip:ViT-B-32:laion2b_s34b_b79k", "dim": 512},
        "text_encoder": {"spec": "minilm", "dim": 384},
    }
    (catalog_dir / "artifacts" / "manifest.json").write_text(json.dumps(manifest))
    app = start_app(monkeypatch, catalog_dir)

    text = sidebar_text(app)
    assert "open_clip:ViT-B-32:laion2b_s34b_b79k" in text and "2026-01-02" in text
    assert "No precomputed embeddings" not in text

    (catalog_dir / "artifacts" / "manifest.json").write_text("{ damaged")
    app = start_app(monkeypatch, catalog_dir)
    assert any("manifest.json cannot be read" in w.value for w in app.sidebar.warning)
    assert shown_images(app) == 7


def test_an_image_damaged_after_loading_shows_a_placeholder(monkeypatch, photo_folder_catalog_dir, tmp_path):
    catalog_dir = shutil.copytree(photo_folder_catalog_dir, tmp_path / "closet")
    app = start_app(monkeypatch, catalog_dir)
    (catalog_dir / "images" / "dress_0.jpg").write_bytes(b"not a jpeg any more")

    app.text_input(key="home_search").input("dress 0").run()
    assert not app.exception
    assert shown_images(app) == 1


def test_a_missing_catalog_folder_shows_one_sentence(monkeypatch, tmp_path):
    app = start_app(monkeypatch, tmp_path / "nowhere")

    assert len(app.error) == 1
    assert "does not exist" in app.error[0].value
    assert shown_images(app) == 0


def test_a_broken_catalog_shows_one_sentence(monkeypatch, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "items.parquet").write_bytes(b"this is not parquet")
    app = start_app(monkeypatch, broken)

    assert len(app.error) == 1
    assert "items.parquet" in app.error[0].value
    assert shown_images(app) == 0


def test_without_a_catalog_the_builtin_world_is_built_on_first_start(monkeypatch, tmp_path):
    from recsys.ui import building

    monkeypatch.setattr(building, "BUILTIN_PRESET", "tiny")  # the demo preset takes minutes
    app = start_app(monkeypatch, None, RECSYS_DATA_DIR=tmp_path)

    assert (tmp_path / "demo" / "items.parquet").is_file()
    assert not app.error
    assert shown_images(app) == min(FIRST_PAGE_SIZE, len(Catalog.load(tmp_path / "demo").items))


def test_a_failing_builtin_build_shows_one_sentence(monkeypatch, tmp_path):
    from recsys.ui import building

    monkeypatch.setattr(building, "BUILTIN_PRESET", "no-such-preset")
    app = start_app(monkeypatch, None, RECSYS_DATA_DIR=tmp_path)

    assert len(app.error) == 1
    assert "built-in demo world" in app.error[0].value
    assert not (tmp_path / "demo").exists()
