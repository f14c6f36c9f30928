"""The FashionIQ adapter on the sample in ../shared/realdata/fashioniq, with photos drawn for some of its ASINs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from recsys.catalog import Catalog, CatalogError
from recsys.data import get_adapter
from recsys.data.fashioniq import ingest_fashioniq

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "fashioniq"

pytestmark = pytest.mark.skipif(not (SAMPLE / "captions").is_dir(), reason="the FashionIQ sample is not on this machine")


@pytest.fixture()
def sample_with_photos(tmp_path):
    """A copy of the sample with photos for the ASINs of the first 30 dress triples, one of them damaged."""
    src = tmp_path / "fashioniq"
    shutil.copytree(SAMPLE, src)
    triples = json.loads((src / "captions" / "cap.dress.val.json").read_text())[:30]
    asins = sorted({t["candidate"] for t in triples} | {t["target"] for t in triples})
    images = src / "images"
    images.mkdir()
    for k, asin in enumerate(asins):
        Image.new("RGB", (60, 90), (10 * (k % 25), 80, 200 - 5 * (k % 40))).save(images / f"{asin}.jpg")
    (images / f"{asins[0]}.jpg").write_bytes(b"not a jpeg at all")
    return src, asins, triples


def test_sample_without_photos_says_where_they_belong(tmp_path):
    with pytest.raises(CatalogError, match="None of the .* FashionIQ images was found"):
        ingest_fashioniq(SAMPLE, tmp_path / "out")


def test_ingest_keeps_items_with_photos_and_reports_the_rest(sample_with_photos, tmp_path):
    src, asins, triples = sample_with_photos
    catalog, report = get_adapter("fashioniq")(src, tmp_path / "out")
    assert isinstance(catalog, Catalog)
    kept = set(catalog.items["item_id"])
    assert kept == set(asins) - {asins[0]}  # the damaged photo is skipped
    assert report.items == len(kept)
    reasons = dict(report.skipped)
    assert asins[0] in reasons
    missing = [a for a, r in report.skipped if r.startswith("no image file")]
    assert missing and all(a not in kept for a in missing)
    assert set(catalog.items["category"]) == {"dress"}
    assert set(catalog.items["split"]) == {"val"}
    # every triple whose two photos exist is kept, with both captions; the others are reported
    expected = [t for t in triples if t["candidate"] in kept and t["target"] in kept]
    got = [(c["reference_id"], c["target_id"]) for c in catalog.captions if c["category"] == "dress"]
    assert [(t["candidate"], t["target"]) for t in expected] == got[: len(expected)]
    assert all(len(c["captions"]) == 2 and c["split"] == "val" for c in catalog.captions)
    assert any(r == "a triple whose image is missing" for _, r in report.skipped)
    # the stored catalog reads back with its images
    reloaded = Catalog.load(tmp_path / "out")
    assert reloaded.load_image(asins[1]).size == (60, 90)


def test_no_test_split_in_the_sample_is_not_an_error(sample_with_photos, tmp_path):
    src, _, _ = sample_with_photos
    catalog, _ = ingest_fashioniq(src, tmp_path / "out")
    assert {c["split"] for c in catalog.captions} == {"val"}


def test_a_folder_without_fashioniq_files_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match="has no captions"):
        ingest_fashioniq(tmp_path / "empty", tmp_path / "out")
