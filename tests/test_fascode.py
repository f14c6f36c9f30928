"""The FASCODE adapter on a hand-written fixture in the dataset's own layout (EUC-KR and UTF-8, Korean text)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recsys.catalog import Catalog, CatalogError
from recsys.data import get_adapter
from recsys.data.fascode import ingest_fascode, read_text

FIXTURE = Path(__file__).parent / "fixtures" / "fascode"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    out = tmp_path_factory.mktemp("fascode") / "catalog"
    return ingest_fascode(FIXTURE, out)


def test_the_fixture_files_are_in_euc_kr_and_utf8():
    assert read_text(FIXTURE / "mdata.wst.txt.2023.08.23")[1] == "euc-kr"
    assert read_text(FIXTURE / "task1.ddata.wst.txt")[1] == "euc-kr"
    assert read_text(FIXTURE / "ac_eval_t1.wst.dev")[1] == "utf-8"
    with pytest.raises(UnicodeDecodeError):
        (FIXTURE / "mdata.wst.txt.2023.08.23").read_text(encoding="utf-8")


def test_items_are_decoded_with_korean_text_slots_and_attributes(ingested):
    catalog, report = ingested
    items = catalog.items.set_index("item_id")
    assert report.items == len(items) == 11
    assert items.loc["BL-001", "slot"] == "top" and items.loc["BL-001", "category"] == "blouse"
    assert items.loc["OP-001", "slot"] == "onepiece"
    assert items.loc["SE-002", "slot"] == "shoes"
    assert items.loc["JK-001", "slot"] == "outer"
    # Two shape phrases of one item are joined; every attribute type lands in its column.
    assert "단추 여밈 의 앞트임 퍼프 소매 블라우스" in items.loc["BL-001", "description"]
    assert items.loc["BL-001", "material"] == "실크 소재"
    assert items.loc["BL-001", "color"] == "흰색"
    assert items.loc["BL-001", "style"] == "로맨틱 페미닌"
    assert items.loc["BL-001", "title"] == "블라우스 BL-001"
    assert catalog.meta["encodings"]["mdata.wst.txt.2023.08.23"] == "euc-kr"


def test_items_without_photos_get_a_placeholder_that_is_flagged(ingested):
    catalog, _ = ingested
    assert catalog.items["image_is_placeholder"].all()
    image = catalog.load_image("SK-001")
    assert image.size == (224, 224)


def test_training_dialogues_keep_turns_tags_and_the_final_coordi(ingested):
    catalog, report = ingested
    train = [d for d in catalog.dialogues if d["split"] == "train"]
    assert len(train) == 3
    first = train[0]
    assert [t["speaker"] for t in first["turns"]][:4] == ["CO", "US", "CO", "AC"]
    assert first["turns"][1]["text"] == "가을 축제에 입을 옷을 추천해 주세요."
    assert first["turns"][1]["tags"] == ["USER_REQ", "TPO"]
    # The one-piece fills the bottom position and empties the top.
    assert first["coordi"] == {"outer": "CT-001", "bottom": "OP-001", "shoes": "SE-001"}
    second = train[1]
    assert second["coordi"] == {"outer": "JK-001", "top": "BL-001", "bottom": "PT-001", "shoes": "SE-001"}
    assert any("ZZ-404" in reason for _, reason in report.skipped)


def test_evaluation_records_carry_ranked_candidates_and_unknown_items_are_skipped(ingested):
    catalog, report = ingested
    evaluation = [d for d in catalog.dialogues if d["split"] == "eval"]
    assert len(evaluation) == 2  # the third names BL-999
    record = evaluation[0]
    assert [t["speaker"] for t in record["turns"]] == ["US", "CO", "US"]
    assert [c["rank"] for c in record["candidates"]] == [1, 2, 3]
    assert record["candidates"][0]["coordi"] == {"outer": "CT-001", "bottom": "OP-001", "shoes": "SE-001"}
    assert any("BL-999" in reason and "skipped" in reason for _, reason in report.skipped)
    assert "skipped" in report.summary()


def test_a_utf8_copy_reads_the_same(tmp_path, ingested):
    src = tmp_path / "utf8"
    src.mkdir()
    for path in FIXTURE.iterdir():
        text, _ = read_text(path)
        (src / path.name).write_text(text, encoding="utf-8")
    catalog, _ = ingest_fascode(src, tmp_path / "out")
    assert catalog.meta["encodings"]["task1.ddata.wst.txt"] == "utf-8"
    assert catalog.items.equals(ingested[0].items)
    assert catalog.dialogues == ingested[0].dialogues


def test_a_photo_in_images_is_used(tmp_path):
    from PIL import Image

    src = tmp_path / "src"
    shutil.copytree(FIXTURE, src)
    (src / "images").mkdir()
    Image.new("RGB", (300, 400), (200, 20, 20)).save(src / "images" / "BL-001.jpg")
    catalog, _ = ingest_fascode(src, tmp_path / "out")
    flags = catalog.items.set_index("item_id")["image_is_placeholder"]
    assert not flags["BL-001"] and flags["SK-001"]
    assert catalog.load_image("BL-001").getpixel((150, 200))[0] > 150


def test_the_registry_finds_the_adapter_and_bad_folders_get_a_sentence(tmp_path):
    assert get_adapter("fascode") is ingest_fascode
    with pytest.raises(CatalogError, match="does not exist"):
        ingest_fascode(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match="mdata"):
        ingest_fascode(tmp_path / "empty", tmp_path / "out")


def test_the_catalog_reloads_from_disk(ingested):
    catalog, _ = ingested
    again = Catalog.load(catalog.root)
    assert len(again.dialogues) == len(catalog.dialogues) == 5


def test_an_evaluation_record_with_a_repeated_rank_is_reported_and_skipped(tmp_path):
    # Field report: record "; 1" with both of its first candidates ranked 1 was kept, and every mean WKT became NaN.
    src = tmp_path / "repeated"
    shutil.copytree(FIXTURE, src)
    text, encoding = read_text(src / "ac_eval_t1.wst.dev")
    text = text.replace("R2 CD-001 KN-001 PT-001 SE-002", "R1 CD-001 KN-001 PT-001 SE-002")
    (src / "ac_eval_t1.wst.dev").write_text(text, encoding=encoding)
    catalog, report = ingest_fascode(src, tmp_path / "out")
    evaluation = [d for d in catalog.dialogues if d["split"] == "eval"]
    assert len(evaluation) == 1  # "; 2" names BL-999, "; 1" repeats rank 1
    assert any("1 to 3" in reason for _, reason in report.skipped)
