"""Bring your own folder: class sub-folders of photos become a catalog; bad files are reported and skipped."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from recsys.catalog import Catalog, CatalogError
from recsys.data.folder import ingest_folder, slot_for

ROOT = Path(__file__).resolve().parent.parent
CLOTHING = ROOT.parent / "shared" / "realdata" / "clothing-small" / "validation"


def _jpeg(color, size=(40, 60)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_slots_from_class_names():
    assert [slot_for(c) for c in ("dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts",
                                  "skirt", "t-shirt")] == ["onepiece", "accessory", "top", "outer", "bottom", "top",
                                                           "shoes", "bottom", "bottom", "top"]


def test_folder_with_a_broken_file(tmp_path):
    src = tmp_path / "photos"
    (src / "skirt").mkdir(parents=True)
    (src / "Sneakers").mkdir()
    (src / "skirt" / "a.jpg").write_bytes(_jpeg("red"))
    (src / "skirt" / "notes.txt").write_text("not a photo, ignored by suffix")
    (src / "Sneakers" / "b.png").write_bytes(_jpeg("blue"))  # a JPEG named .png still decodes
    (src / "Sneakers" / "broken.jpg").write_bytes(b"this is not an image")
    catalog, report = ingest_folder(src, tmp_path / "catalog")
    assert report.items == 2 and len(report.skipped) == 1
    assert report.skipped[0][0] == "Sneakers/broken.jpg" and "not an image" in report.skipped[0][1]
    loaded = Catalog.load(catalog.root)
    assert sorted(loaded.items["category"]) == ["skirt", "sneakers"]
    assert dict(zip(loaded.items["category"], loaded.items["slot"])) == {"skirt": "bottom", "sneakers": "shoes"}
    assert loaded.load_image(loaded.items["item_id"].iat[0]).size == (40, 60)
    assert loaded.meta["skipped"][0]["file"] == "Sneakers/broken.jpg"
    # A folder names no colours: the photo reader fills them, and the catalog says they are predicted.
    assert dict(zip(loaded.items["category"], loaded.items["color"])) == {"skirt": "red", "sneakers": "blue"}
    assert "color" in loaded.meta["predicted_columns"] and "pattern" not in loaded.items.columns


def test_empty_or_missing_source(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        ingest_folder(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty" / "hats").mkdir(parents=True)
    with pytest.raises(CatalogError, match="no class sub-folders with photos"):
        ingest_folder(tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not CLOTHING.is_dir(), reason="../shared/realdata/clothing-small is absent (a user's clone)")
def test_real_clothing_folder_through_the_command_line(tmp_path):
    out = tmp_path / "clothes"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "ingest.py"), "--format", "folder", "--src",
                             str(CLOTHING), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    catalog = Catalog.load(out)
    assert len(catalog) == 341
    assert catalog.items["category"].nunique() == 10
    assert max(catalog.load_image(catalog.items["item_id"].iat[0]).size) <= 512
    from recsys.colour import BASIC_COLOURS

    assert set(catalog.items["color"]) <= set(BASIC_COLOURS) and catalog.items["color"].nunique() >= 6


def test_ordinary_file_names_never_collapse_and_unknown_classes_are_placed_and_said(tmp_path):
    # Field report: two Korean-named photos became one id and the ingest stopped; IMG_0001.jpg beside IMG_0001.png,
    # and "shirt 1.jpg" beside "shirt_1.jpg", did too. Korean class folders all became 'top' without a word.
    src = tmp_path / "photos"
    names = {"tops": ["셔츠.jpg", "블라우스.jpg", "IMG_0001.jpg", "IMG_0001.png", "shirt 1.jpg", "shirt_1.jpg"],
             "하의": ["바지.jpg"], "신발": ["운동화.jpg"]}
    for folder, files in names.items():
        (src / folder).mkdir(parents=True)
        for k, name in enumerate(files):
            (src / folder / name).write_bytes(_jpeg((40 * k, 90, 200)))
    catalog, report = ingest_folder(src, tmp_path / "catalog", slot_map={"하의": "bottom"})
    items = Catalog.load(catalog.root).items
    assert report.items == len(items) == 8 and not report.skipped
    assert items["item_id"].is_unique
    assert set(items["title"]) == {"셔츠", "블라우스", "IMG_0001", "shirt 1", "shirt_1", "바지", "운동화"}
    assert (items["title"] == "IMG_0001").sum() == 2
    slots = dict(zip(items["category"], items["slot"]))
    assert slots["tops"] == "top" and slots["하의"] == "bottom"  # by name, by the map
    assert slots["신발"] in ("top", "bottom", "onepiece", "outer", "shoes", "accessory")
    assert len(report.notes) == 1 and "신발" in report.notes[0] and "--slot-map" in report.notes[0]
    # Ids depend on each photo's own path only: the same folder gives the same ids.
    again, _ = ingest_folder(src, tmp_path / "again", slot_map={"하의": "bottom", "신발": "shoes"})
    assert list(Catalog.load(again.root).items["item_id"]) == list(items["item_id"])
