"""``ingest.py --format amazon`` on a hand-written fixture in Amazon's real formats (tests/fixtures/amazon): the 2018
strict-JSON files and the 2014 Python-literal files, gzipped or not; then For you runs on the catalog it writes."""

from __future__ import annotations

import gzip
import shutil
import unicodedata

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recsys.config import PROJECT_ROOT
from recsys.data.amazon import ingest_amazon

FIXTURE = PROJECT_ROOT / "tests" / "fixtures" / "amazon"
NO_PHOTO = "B00G1NOIMG"
SLOTS = {"Totes": "accessory"}  # a slot map spelled as Amazon spells the category


def _photos(folder, asins) -> None:
    """A drawn photo per product (the fixture ships no binary files)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for asin in asins:
        image = Image.new("RGB", (96, 128), "white")
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        ImageDraw.Draw(image).rectangle([20, 16 + len(asin) % 3, 76, 112], fill=colour)
        image.save(folder / f"{asin}.jpg", quality=90)


def _source(tmp_path, release: str, gz: bool = False):
    src = tmp_path / f"src-{release}{'-gz' if gz else ''}"
    src.mkdir()
    for path in (FIXTURE / release).iterdir():
        if gz:
            with path.open("rb") as raw, gzip.open(src / f"{path.name}.gz", "wb") as packed:
                shutil.copyfileobj(raw, packed)
        else:
            shutil.copy(path, src / path.name)
    asins = [line.split("'asin': '")[-1][:10] if release == "2014" else line.split('"asin": "')[-1][:10]
             for line in (FIXTURE / release / "meta_Clothing_Shoes_and_Jewelry.json").read_text().splitlines()]
    _photos(src / "images", [a for a in asins if a.startswith("B00") and a != NO_PHOTO and "BROKEN" not in a])
    return src


@pytest.fixture(scope="module")
def amazon_2018(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("amazon")
    return ingest_amazon(_source(tmp, "2018"), tmp / "catalog", slot_map=SLOTS)


def test_products_with_a_photo_become_items_with_their_most_specific_category(amazon_2018):
    catalog, report = amazon_2018
    items = catalog.items.set_index("item_id")
    assert len(items) == 11 and NO_PHOTO not in items.index
    assert items.loc["B00A1DRESS", "category"] == "dresses" and items.loc["B00A1DRESS", "slot"] == "onepiece"
    assert items.loc["B00E1COAT0", "category"] == "wool coats" and items.loc["B00E1COAT0", "slot"] == "outer"
    assert items.loc["B00D1SNEAK", "slot"] == "shoes" and items.loc["B00C1JEANS", "slot"] == "bottom"
    assert items.loc["B00A2DRESS", "title"] == "Wrap Midi Dress & Belt"  # Amazon's titles come HTML-escaped
    assert items.loc["B00B1SHIRT", "brand"] == "Oxfordia"
    skipped = dict(report.skipped)
    assert "no photo" in skipped[NO_PHOTO]
    assert "1 line(s)" in skipped["meta_Clothing_Shoes_and_Jewelry.json"]  # the truncated last line
    # "totes" names no slot: the map places it (without one, its photos would, as folder ingest's tests check)
    assert items.loc["B00F1BAG00", "category"] == "totes" and items.loc["B00F1BAG00", "slot"] == "accessory"
    assert not any("'totes'" in note for note in report.notes)


def test_reviews_are_deduplicated_filtered_and_kept_in_their_language(amazon_2018):
    catalog, report = amazon_2018
    inter = catalog.interactions
    assert sorted(inter["user_id"].unique()) == ["A1USERDRESS", "A2USERSHIRT", "A3USERDENIM", "A4USERCOATS"]
    assert len(inter) == 6 + 5 + 5 + 5  # one duplicate, the unknown product and the photo-less one gone
    assert not inter.duplicated(["user_id", "item_id", "timestamp"]).any()
    counts = catalog.meta["filtered"]
    assert counts == {"reviews_read": 27, "duplicates": 1, "unknown_products": 2, "users_below_min": 1, "users": 4}
    assert "셔츠가 정말 좋아요" in set(inter["review"])
    assert all(unicodedata.is_normalized("NFC", text) for text in inter["review"])
    assert set(inter.columns) >= {"user_id", "item_id", "timestamp", "rating", "review", "summary"}
    assert any("users with fewer than 5 products" in note for note in report.notes)


def test_the_2014_loose_json_release_gzipped_gives_the_same_catalog(amazon_2018, tmp_path):
    catalog_2018, _ = amazon_2018
    catalog, report = ingest_amazon(_source(tmp_path, "2014", gz=True), tmp_path / "catalog", slot_map=SLOTS)
    columns = ["item_id", "category", "slot", "title"]
    assert catalog.items[columns].equals(catalog_2018.items[columns])
    key = ["user_id", "item_id", "timestamp", "review"]
    assert catalog.interactions[key].reset_index(drop=True).equals(catalog_2018.interactions[key].reset_index(drop=True))


def test_a_full_and_a_five_core_file_read_the_full_one_and_say_so(tmp_path):
    src = _source(tmp_path, "2018")
    shutil.copy(src / "Clothing_Shoes_and_Jewelry.json", src / "Clothing_Shoes_and_Jewelry_5.json")
    _, report = ingest_amazon(src, tmp_path / "catalog", min_interactions=6, slot_map=SLOTS)
    assert any("read Clothing_Shoes_and_Jewelry.json, not Clothing_Shoes_and_Jewelry_5.json" in n for n in report.notes)
    assert report.summary().startswith("11 items written")


def test_a_folder_without_metadata_is_one_sentence(tmp_path):
    from recsys.catalog import CatalogError

    with pytest.raises(CatalogError, match=r"no meta_<Category>\.json"):
        ingest_amazon(tmp_path, tmp_path / "out")


@pytest.mark.slow
def test_for_you_runs_on_the_amazon_catalog(amazon_2018, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from recsys.artifacts import precompute

    catalog, _ = amazon_2018
    precompute(catalog, device="cpu", num_workers=0, progress=False)
    monkeypatch.setenv("RECSYS_CATALOG", str(catalog.root))
    app = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=180)
    app.run()
    app.switch_page("pages/for_you.py")
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.title[0].value == "For you"
    assert app.text_input(key="for_you_user").value in set(catalog.interactions["user_id"])
    assert len(app.image) >= 4  # the user's history strip and the recommended cards
    assert not [e.value for e in app.error]
