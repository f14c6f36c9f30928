"""The Polyvore Outfits adapter, on the real sample files in ../shared/realdata/polyvore-outfits.

The sample carries no images (they are not redistributed), so the tests give a part of its items a small
image of their own: those are ingested, the rest are reported as missing and skipped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recsys.catalog import Catalog, CatalogError
from recsys.config import PROJECT_ROOT
from recsys.data import get_adapter
from recsys.data.polyvore import BROAD_TO_SLOT, ingest_polyvore, parse_compatibility, read_categories

SAMPLE = PROJECT_ROOT.parent / "shared" / "realdata" / "polyvore-outfits"

pytestmark = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"the Polyvore sample {SAMPLE} is absent (fresh clone)")


def _sample_outfits() -> list[dict]:
    return json.loads((SAMPLE / "valid.json").read_text())


@pytest.fixture
def polyvore_copy(tmp_path) -> Path:
    """The sample copied, with images for the items of the first 40 outfits (where their category is known)."""
    src = tmp_path / "polyvore"
    shutil.copytree(SAMPLE, src)
    (src / "images").mkdir()
    categories = json.loads((SAMPLE / "item_category.json").read_text())
    rng = np.random.default_rng(0)
    for outfit in _sample_outfits()[:40]:
        for item in outfit["items"]:
            colour = tuple(int(v) for v in rng.integers(0, 255, size=3))
            Image.new("RGB", (64, 80), colour).save(src / "images" / f"{item['item_id']}.jpg")
    # A damaged image: reported and skipped like a missing one.
    known = next(i["item_id"] for o in _sample_outfits()[40:] for i in o["items"] if i["item_id"] in categories)
    (src / "images" / f"{known}.jpg").write_bytes(b"not a jpeg")
    return src


def test_categories_csv_maps_every_broad_category_to_a_slot():
    table = read_categories(SAMPLE / "categories.csv")
    assert table["3"] == ("dress", "all-body")
    broad = {b for _, b in table.values() if b}
    assert broad <= set(BROAD_TO_SLOT), broad - set(BROAD_TO_SLOT)


def test_compatibility_lines_are_parsed_into_labels_and_positions():
    questions = parse_compatibility(SAMPLE / "compatibility_valid.txt")
    assert len(questions) == 300
    assert questions[0] == (1, ["224930161_1", "224930161_2", "224930161_3", "224930161_4"])


def test_ingest_keeps_items_with_images_and_reports_the_missing(polyvore_copy, tmp_path):
    catalog, report = get_adapter("polyvore")(polyvore_copy, tmp_path / "catalog")
    categories = json.loads((SAMPLE / "item_category.json").read_text())
    outfits = _sample_outfits()
    with_image = {i["item_id"] for o in outfits[:40] for i in o["items"]}
    expected = {i for i in with_image if i in categories}
    assert set(catalog.items["item_id"]) == expected
    assert report.items == len(expected)
    reasons = dict(report.skipped)
    every = {i["item_id"] for o in outfits for i in o["items"]}
    assert len(report.skipped) == len(every) - len(expected)
    missing_image = [i for i in every - with_image if i in categories]
    assert reasons[missing_image[0]] == "image missing"
    assert reasons[next(i for i in every if i not in categories)].startswith("no category")
    assert any("cannot" in r or "not" in r for r in reasons.values() if r != "image missing")

    # Outfits keep their remaining items in the dataset's order, and the split they came from.
    reloaded = Catalog.load(tmp_path / "catalog")
    assert reloaded.outfits and all(o["split"] == "valid" and len(o["item_ids"]) >= 2 for o in reloaded.outfits)
    first = outfits[0]
    kept_first = [i["item_id"] for i in sorted(first["items"], key=lambda i: i["index"]) if i["item_id"] in expected]
    assert reloaded.outfits[0] == {"outfit_id": first["set_id"], "item_ids": kept_first, "split": "valid"}
    assert set(reloaded.items["slot"]) <= set(BROAD_TO_SLOT.values())

    # Compatibility questions survive only when all their items do, translated to item ids.
    lines = [json.loads(x) for x in (tmp_path / "catalog" / "polyvore" / "compatibility_valid.jsonl").read_text().splitlines()]
    assert lines and all(set(q["item_ids"]) <= expected and q["label"] in (0, 1) for q in lines)
    assert reloaded.meta["questions"]["compatibility_valid"]["read"] == 300
    assert reloaded.meta["skipped_count"] == len(report.skipped)


def test_fill_in_the_blank_questions_in_the_dataset_format_are_parsed(polyvore_copy, tmp_path):
    outfits = _sample_outfits()[:40]
    categories = json.loads((SAMPLE / "item_category.json").read_text())
    complete = [o for o in outfits if all(i["item_id"] in categories for i in o["items"]) and len(o["items"]) >= 3]
    question_outfit, other = complete[0], complete[1:4]
    blank = question_outfit["items"][-1]
    fitb = [{
        "question": [f"{question_outfit['set_id']}_{i['index']}" for i in question_outfit["items"][:-1]],
        # The correct answer is the candidate from the question's own outfit, wherever it sits.
        "answers": [f"{o['set_id']}_{o['items'][0]['index']}" for o in other[:2]]
        + [f"{question_outfit['set_id']}_{blank['index']}", f"{other[2]['set_id']}_{other[2]['items'][0]['index']}"],
        "blank_position": blank["index"],
    }]
    (polyvore_copy / "fill_in_blank_valid.json").write_text(json.dumps(fitb))
    ingest_polyvore(polyvore_copy, tmp_path / "catalog")
    records = [json.loads(x) for x in (tmp_path / "catalog" / "polyvore" / "fitb_valid.jsonl").read_text().splitlines()]
    assert len(records) == 1
    assert records[0]["answer"] == 2
    assert records[0]["candidates"][2] == blank["item_id"]
    assert records[0]["question"] == [i["item_id"] for i in question_outfit["items"][:-1]]


def test_a_sample_without_any_image_is_refused_with_one_sentence(tmp_path):
    with pytest.raises(CatalogError, match="could be ingested.*image missing"):
        ingest_polyvore(SAMPLE, tmp_path / "catalog")


def test_a_folder_without_outfit_files_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match="no Polyvore outfit files"):
        ingest_polyvore(tmp_path / "empty", tmp_path / "catalog")
