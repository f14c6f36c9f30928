"""Catalog loading and validation: every problem is one clear sentence naming the file."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from PIL import Image

from recsys.catalog import Catalog, CatalogError, CatalogWriter


@pytest.fixture
def small_catalog(tmp_path):
    """A valid three-item catalog written through the atomic writer."""
    out = tmp_path / "shop"
    with CatalogWriter(out) as writer:
        for k, color in enumerate(("red", "green", "blue")):
            writer.save_image(f"images/i{k}.png", Image.new("RGB", (32, 32), color))
        items = pd.DataFrame({
            "item_id": ["i0", "i1", "i2"], "category": ["tshirt", "skirt", "boots"],
            "slot": ["top", "bottom", "shoes"], "title": ["Red tee", "Green skirt", "Blue boots"],
            "description": ["", "", ""], "image_path": [f"images/i{k}.png" for k in range(3)],
            "color": ["red", "green", None],
        })
        interactions = pd.DataFrame({"user_id": ["a", "a"], "item_id": ["i0", "i1"], "timestamp": [1, 2]})
        writer.finish(items=items, meta={"name": "Shop"}, interactions=interactions,
                      outfits=[{"outfit_id": "o1", "item_ids": ["i0", "i1", "i2"]}])
    return out


def _rewrite_items(folder, **changes):
    items = pd.read_parquet(folder / "items.parquet")
    for column, values in changes.items():
        items[column] = values
    items.to_parquet(folder / "items.parquet", index=False)


def test_a_valid_catalog_loads(small_catalog):
    catalog = Catalog.load(small_catalog)
    assert catalog.name == "Shop" and len(catalog) == 3
    assert catalog.meta["counts"] == {"items": 3, "interactions": 2, "users": 1, "outfits": 1}
    assert catalog.load_image("i1").getpixel((0, 0)) == (0, 128, 0)
    assert catalog.indices(["i2", "i0"]).tolist() == [2, 0]
    assert catalog.categories == ["boots", "skirt", "tshirt"]
    assert len(catalog.fingerprint()) == 16
    with pytest.raises(KeyError, match="nope"):
        catalog.indices(["nope"])


def test_missing_folder_and_missing_items_table(tmp_path, small_catalog):
    with pytest.raises(CatalogError, match="does not exist"):
        Catalog.load(tmp_path / "absent")
    (small_catalog / "items.parquet").unlink()
    with pytest.raises(CatalogError, match="has no items.parquet"):
        Catalog.load(small_catalog)


def test_missing_image_file(small_catalog):
    (small_catalog / "images" / "i1.png").unlink()
    with pytest.raises(CatalogError, match=r"1 image file\(s\) .* missing .* images/i1.png"):
        Catalog.load(small_catalog)
    assert len(Catalog.load(small_catalog, check_images=False)) == 3


def test_wrong_column_type(small_catalog):
    _rewrite_items(small_catalog, item_id=[1, 2, 3])
    with pytest.raises(CatalogError, match="column 'item_id' must hold text"):
        Catalog.load(small_catalog)


def test_missing_column_unknown_slot_and_duplicates(small_catalog):
    items = pd.read_parquet(small_catalog / "items.parquet")
    items.drop(columns=["slot"]).to_parquet(small_catalog / "items.parquet", index=False)
    with pytest.raises(CatalogError, match="lacks the required column"):
        Catalog.load(small_catalog)
    items.assign(slot=["top", "bottom", "hands"]).to_parquet(small_catalog / "items.parquet", index=False)
    with pytest.raises(CatalogError, match="unknown slot"):
        Catalog.load(small_catalog)
    items.assign(item_id=["i0", "i0", "i2"]).to_parquet(small_catalog / "items.parquet", index=False)
    with pytest.raises(CatalogError, match="repeats item_id 'i0'"):
        Catalog.load(small_catalog)


def test_corrupt_tables_and_records(small_catalog):
    (small_catalog / "outfits.jsonl").write_text('{"outfit_id": "o1", "item_ids": ["zz"]}\n')
    with pytest.raises(CatalogError, match="unknown item 'zz'"):
        Catalog.load(small_catalog)
    (small_catalog / "outfits.jsonl").write_text("{not json\n")
    with pytest.raises(CatalogError, match="outfits.jsonl line 1 is not valid JSON"):
        Catalog.load(small_catalog)
    (small_catalog / "outfits.jsonl").unlink()
    pd.DataFrame({"user_id": ["a"], "item_id": ["ghost"], "timestamp": [1]}).to_parquet(
        small_catalog / "interactions.parquet")
    with pytest.raises(CatalogError, match="not in items.parquet"):
        Catalog.load(small_catalog)
    (small_catalog / "items.parquet").write_bytes(b"garbage")
    with pytest.raises(CatalogError, match="cannot be read as a parquet table"):
        Catalog.load(small_catalog)


def test_image_access_is_confined_to_the_catalog(small_catalog, tmp_path):
    (tmp_path / "secret.png").write_bytes(b"x")
    _rewrite_items(small_catalog, image_path=["images/i0.png", "../secret.png", "images/i2.png"])
    with pytest.raises(CatalogError, match="points outside the catalog folder"):
        Catalog.load(small_catalog)
    catalog = Catalog.load(small_catalog, check_images=False)
    with pytest.raises(CatalogError, match="outside"):
        catalog.load_image("i1")


def test_writer_is_atomic(tmp_path, small_catalog):
    with pytest.raises(CatalogError, match="already exists"):
        with CatalogWriter(small_catalog):
            pass
    target = tmp_path / "new"
    with pytest.raises(RuntimeError):
        with CatalogWriter(target) as writer:
            writer.save_image("images/a.png", Image.new("RGB", (4, 4)))
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".new")]
    # an invalid table is refused before the folder takes its name
    with pytest.raises(CatalogError):
        with CatalogWriter(target) as writer:
            writer.finish(items=pd.DataFrame({"item_id": ["a"]}), meta={})
    assert not target.exists()


def test_overwrite_replaces_a_catalog(small_catalog):
    before = json.loads((small_catalog / "catalog.json").read_text())
    with CatalogWriter(small_catalog, overwrite=True) as writer:
        writer.save_image("images/x.png", Image.new("RGB", (8, 8)))
        writer.finish(items=pd.DataFrame({"item_id": ["x"], "category": ["hat"], "slot": ["accessory"],
                                          "title": ["Hat"], "description": ["A hat"],
                                          "image_path": ["images/x.png"]}), meta={"name": "New"})
    catalog = Catalog.load(small_catalog)
    assert catalog.name == "New" and before["name"] == "Shop" and len(catalog) == 1
    assert not (small_catalog / "interactions.parquet").exists()
    shutil.rmtree(small_catalog)
