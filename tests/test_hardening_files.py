"""Issue 27, files written by other tools: every catalog column read with every Arrow encoding pandas, polars and
pyarrow write (plain, dictionary, large, view, UTF-8 binary), the photo lists and label maps a spreadsheet or an
editor saves, and the refusals that stay one sentence naming the file (and the row)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from recsys.catalog import ATTRIBUTE_COLUMNS, Catalog, CatalogError, validate_items
from recsys.tasks.similar.upload import UploadSourceError, evaluate_upload, read_label_map, read_photos

ITEM_TEXT = ("item_id", "category", "slot", "title", "description", "image_path") + ATTRIBUTE_COLUMNS + ("split",)


def _items() -> pd.DataFrame:
    rows = []
    for k in range(6):
        category, slot = (("shirt", "top"), ("skirt", "bottom"), ("hat", "accessory"))[k % 3]
        rows.append({"item_id": f"i{k}", "category": category, "slot": slot, "title": f"Thing {k}",
                     "description": None if k == 4 else f"A thing number {k}", "image_path": f"images/i{k}.png",
                     "color": ("red", "blue")[k % 2], "pattern": "plain", "sleeve": None if k == 2 else "long", "length": "short",
                     "detail": "none", "style": "casual", "material": "cotton", "split": ("train", "test")[k % 2]})
    return pd.DataFrame(rows)


def _interactions() -> pd.DataFrame:
    return pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3"], "item_id": ["i0", "i1", "i2", "i0"],
                         "timestamp": [1, 2, 3, 4], "review": ["nice", None, "good", "ok"]})


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("encodings")
    (root / "images").mkdir()
    for k in range(6):
        Image.new("RGB", (8, 8), (40 * k, 20, 200)).save(root / "images" / f"i{k}.png")
    return root


def _arrow_text(values: pd.Series, encoding: str) -> pa.Array:
    values = [None if pd.isna(v) else v for v in values]
    plain = pa.array(values, type=pa.string())
    if encoding == "plain":
        return plain
    if encoding == "dictionary":
        return plain.dictionary_encode()
    if encoding == "large":
        return plain.cast(pa.large_string())
    if encoding == "view":
        return plain.cast(pa.string_view())
    if encoding == "binary":  # Impala and old Hive: text as BYTE_ARRAY without the UTF-8 annotation
        return pa.array([None if v is None else v.encode() for v in values], type=pa.binary())
    raise AssertionError(encoding)


def _write(frame: pd.DataFrame, path, writer: str, encoding: str, text_columns) -> None:
    if writer == "pyarrow":
        columns = {c: _arrow_text(frame[c], encoding) if c in text_columns else pa.array(frame[c])
                   for c in frame.columns}
        pq.write_table(pa.table(columns), path)
    elif writer == "pandas":
        dtype = {"category": "category", "string": "string", "pyarrow": "string[pyarrow]",
                 "arrow-large": pd.ArrowDtype(pa.large_string())}[encoding]
        frame.astype({c: dtype for c in text_columns}).to_parquet(path, index=encoding != "string")
    else:
        pl = pytest.importorskip("polars", reason="polars is not installed")
        table = pl.from_pandas(frame)
        if encoding == "categorical":
            table = table.with_columns([pl.col(c).cast(pl.Categorical) for c in text_columns])
        table.write_parquet(path)


ENCODINGS = ([("pyarrow", e) for e in ("plain", "dictionary", "large", "view", "binary")]
             + [("pandas", e) for e in ("category", "string", "pyarrow", "arrow-large")]
             + [("polars", e) for e in ("plain", "categorical")])


@pytest.mark.parametrize("writer,encoding", ENCODINGS, ids=[f"{w}-{e}" for w, e in ENCODINGS])
def test_every_column_in_every_encoding_reads_as_text(folder, writer, encoding):
    items, interactions = _items(), _interactions()
    _write(items, folder / "items.parquet", writer, encoding, ITEM_TEXT)
    _write(interactions, folder / "interactions.parquet", writer, encoding, ("user_id", "item_id", "review"))
    catalog = Catalog.load(folder)
    for column in ITEM_TEXT:
        assert catalog.items[column].dtype == "str", (column, catalog.items[column].dtype)
        assert catalog.items[column].tolist() == pd.Series(items[column], dtype="str").tolist(), column
    for column in ("user_id", "item_id", "review"):
        assert catalog.interactions[column].dtype == "str"
        assert catalog.interactions[column].tolist() == pd.Series(interactions[column], dtype="str").tolist()
    assert catalog.categories == ["hat", "shirt", "skirt"]


def test_the_reported_instance_a_categorical_category_column(folder):
    """The issue's instance: pandas' ``category`` dtype (a dictionary column) in items and interactions."""
    items = _items().astype({"category": "category"})
    items.to_parquet(folder / "items.parquet")
    _interactions().astype({"user_id": "category", "item_id": "category"}).to_parquet(folder / "interactions.parquet")
    catalog = Catalog.load(folder)
    assert list(catalog.items["category"]) == list(_items()["category"])
    assert set(catalog.interactions["user_id"]) == {"u1", "u2", "u3"}


def test_dates_from_spark_are_timestamps(folder):
    _items().to_parquet(folder / "items.parquet")
    frame = _interactions()
    table = pa.table({"user_id": frame["user_id"], "item_id": frame["item_id"],
                      "timestamp": pa.array([pd.Timestamp("2020-01-0%d" % d).date() for d in (1, 2, 3, 4)],
                                            type=pa.date32())})
    pq.write_table(table, folder / "interactions.parquet")
    catalog = Catalog.load(folder)
    assert pd.api.types.is_datetime64_any_dtype(catalog.interactions["timestamp"])


@pytest.mark.parametrize("column,values,says", [
    ("slot", pa.array([1, 2, 1, 2, 1, 2]).dictionary_encode(), "column 'slot' must hold text, but it holds int64"),
    ("category", pa.array([b"\xff\xfe"] * 6, type=pa.binary()), "column 'category' must hold text, but it holds "
                                                                  "bytes that are not UTF-8 text"),
])
def test_what_is_not_text_in_any_encoding_is_refused_in_one_sentence(folder, column, values, says):
    items = _items()
    columns = {c: values if c == column else pa.array([None if pd.isna(v) else v for v in items[c]])
               for c in items.columns}
    pq.write_table(pa.table(columns), folder / "items.parquet")
    (folder / "interactions.parquet").unlink(missing_ok=True)
    with pytest.raises(CatalogError, match=says) as caught:
        Catalog.load(folder)
    assert str(caught.value).count(". ") == 0 and "\n" not in str(caught.value)


def test_a_categorical_that_is_not_text_is_named_so_before_it_is_written():
    items = _items().astype({"slot": "category"})
    items["slot"] = pd.Categorical([1, 2, 1, 2, 1, 2])
    with pytest.raises(CatalogError, match="column 'slot' must hold text, but it holds categories of int64"):
        validate_items(items)
    validate_items(_items().astype({c: "category" for c in ITEM_TEXT}))  # categorical text passes


# ---------------------------------------------------------------------- spreadsheet CSVs for --task upload --photos
@pytest.fixture()
def photos(tmp_path):
    """``tops/a.jpg``, ``tops/é.jpg`` and ``shoes/b.png`` under ``tmp_path/set``: (folder, paths)."""
    folder = tmp_path / "set"
    for name in ("tops/a.jpg", "tops/\u00e9.jpg", "shoes/b.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (200, 10, 10)).save(folder / name)
    return folder


def test_excel_unicode_text_with_windows_paths_is_read(photos):
    """The issue's instance: Excel's "Unicode Text" (UTF-16 with a mark, tab separated, CRLF) whose paths use
    Windows separators: every photo is found and labelled."""
    text = "path\tcategory\tcolour\r\ntops\\a.jpg\tshirt\tred\r\nshoes\\b.png\tsneakers\tRed\r\n"
    (photos / "labels.txt").write_bytes(text.encode("utf-16"))
    read = read_photos(photos / "labels.txt")
    assert [(p.path, p.category, p.colour) for p in read] == [
        (photos / "tops" / "a.jpg", "shirt", "red"), (photos / "shoes" / "b.png", "sneakers", "Red")]


@pytest.mark.parametrize("encoding,delimiter", [("utf-8-sig", ","), ("cp1252", ";"), ("utf-16-be", "\t"),
                                                ("utf-16-le", ","), ("utf-8", "|")])
def test_what_a_spreadsheet_saves_is_read(photos, encoding, delimiter):
    # Column names in another case and with spaces, a decomposed accent (macOS), an absolute Windows path from the
    # machine the sheet was made on, and the blank rows a spreadsheet leaves at the end.
    rows = [" Path ", "Category", "COLOR"], ["tops/e\u0301.jpg", "shirt", "red"], \
        ["C:\\Users\\me\\set\\shoes\\b.png", "sneakers", ""], ["", "", ""]
    text = "\r\n".join(delimiter.join(r) for r in rows) + "\r\n"
    data = text.encode(encoding) if encoding != "cp1252" else text.replace("e\u0301", "\u00e9").encode(encoding)
    (photos / "labels.csv").write_bytes(data)
    read = read_photos(photos / "labels.csv")
    assert [p.path.name for p in read] == ["\u00e9.jpg", "b.png"]
    assert [(p.category, p.colour) for p in read] == [("shirt", "red"), ("sneakers", "")]


@pytest.mark.parametrize("content,says", [
    (b"path,category\r\ntops/a.jpg,shirt\r\nshoes/c.png,sneakers\r\nshoes/d.png,x\r\n",
     r"labels.csv row 3 names the photo 'shoes/c.png', which is not in .*set \(and 1 other row\)"),
    (b"path,category\r\ntops/a.jpg,shirt\r\n,sneakers\r\n", r"labels.csv row 3 has no path\."),
    (b"file;category\r\na.jpg;x\r\n", r"no 'path' column \(its columns, read as semicolon-separated: 'file', 'category'\)"),
    (b"PK\x03\x04\x14\x00\x06\x00" + bytes(64), r"labels.csv is a spreadsheet workbook \(.xlsx or .ods\), not a text "
                                                 r"table; save it as CSV"),
    (b"\xff\xfepath,\x00\xd8", r"labels.csv starts as utf-16-le text but byte \d+ is not utf-16-le"),
    (b"", r"labels.csv is empty"),
])
def test_a_sheet_that_cannot_be_used_says_which_file_row_and_what(photos, content, says):
    (photos / "labels.csv").write_bytes(content)
    with pytest.raises(UploadSourceError, match=says) as caught:
        read_photos(photos / "labels.csv")
    assert "\n" not in str(caught.value)


def test_the_label_map_an_editor_saved_is_read_and_a_wrong_value_is_one_sentence(tmp_path):
    path = tmp_path / "map.json"
    path.write_bytes(json.dumps({"category": {"T\u00e9e": ["shirt"]}, "colour": {}}).encode("utf-16"))
    assert read_label_map(path, ["shirt"], [])["category"] == {"T\u00e9e": {"shirt"}}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"category": {"tee": "shirt"}, "colour": {}}).encode())
    assert read_label_map(path, ["shirt"], [])["category"] == {"tee": {"shirt"}}
    for value in (5, None, {"a": 1}, ["shirt", 3]):
        path.write_text(json.dumps({"category": {"tee": value}, "colour": {}}))
        with pytest.raises(UploadSourceError, match=r"maps 'tee' to .*; give a category name or a list of names"):
            read_label_map(path, ["shirt"], [])


def test_the_upload_protocol_runs_on_a_unicode_text_sheet(tiny_catalog, tiny_artifacts, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    lines = ["path\tcategory"]
    for item_id, category in zip(tiny_catalog.items["item_id"][:4], tiny_catalog.items["category"][:4]):
        (folder / "sub").mkdir(exist_ok=True)
        shutil.copy(tiny_catalog.image_path(item_id), folder / "sub" / f"{item_id}.png")
        lines.append(f"sub\\{item_id}.png\t{category}")
    (folder / "labels.txt").write_bytes("\r\n".join(lines).encode("utf-16"))
    report = evaluate_upload(tiny_catalog, folder / "labels.txt")
    assert report["n"] == 4 and report["unreadable"] == 0 and report["n_category"] == 4


@pytest.mark.parametrize("labelled", [True, False])
def test_when_no_photo_can_be_read_the_sentence_says_so_not_the_labels(tiny_catalog, tiny_artifacts, tmp_path,
                                                                      labelled):
    """Every photo of the list fails to decode (here: files that are no images, one empty): the sentence says none
    of them could be read and why for one of them; it does not send the user to --label-map."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not an image")
    (folder / "b.png").write_bytes(b"")
    category = tiny_catalog.categories[0]
    rows = [f"a.jpg\t{category}", f"b.png\t{category}"] + ([] if labelled else ["a.jpg\tscarves"])
    (folder / "labels.txt").write_text("path\tcategory\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(UploadSourceError) as caught:
        evaluate_upload(tiny_catalog, folder / "labels.txt")
    text = str(caught.value)
    assert text.startswith("None of the 2 photo(s) of ") and "label-map" not in text, text
    assert ("whose labels this catalog can judge" in text) is (not labelled)
    assert "for example, the file 'a.jpg' is not an image in a supported format" in text and text.endswith(".")
    assert "\n" not in text and ". " not in text


def test_the_slot_map_an_editor_saved_is_read(tmp_path):
    from recsys.data.folder import read_slot_map

    path = tmp_path / "slots.json"
    path.write_bytes(json.dumps({"Robe": "onepiece"}).encode("utf-16"))
    assert read_slot_map(path) == {"robe": "onepiece"}


# ---------------------------------------------------------------------- FashionIQ as released
def _fashioniq_release(root, test_records):
    """A FashionIQ folder laid out as the release: val triples with targets, test triples without (withheld)."""
    (root / "captions").mkdir(parents=True)
    (root / "image_splits").mkdir()
    (root / "images").mkdir()
    val = [{"target": f"V{k + 1}", "candidate": f"V{k}", "captions": ["is red", "longer"]} for k in range(0, 6, 2)]
    (root / "captions" / "cap.dress.val.json").write_text(json.dumps(val))
    (root / "captions" / "cap.dress.test.json").write_text(json.dumps(test_records))
    (root / "image_splits" / "split.dress.val.json").write_text(json.dumps([f"V{k}" for k in range(6)]))
    (root / "image_splits" / "split.dress.test.json").write_text(json.dumps(["T0", "T1", "T2"]))
    for asin in [f"V{k}" for k in range(6)] + ["T0", "T1", "T2"]:
        Image.new("RGB", (20, 30), (120, 20, 60)).save(root / "images" / f"{asin}.jpg")
    return root


def test_fashioniq_as_released_ingests_the_splits_with_answers(tmp_path):
    """The issue's instance: cap.<cat>.test.json has no target; the rest is ingested and the file named."""
    from recsys.data.fashioniq import ingest_fashioniq

    withheld = [{"candidate": f"T{k}", "captions": ["is blue", "has no sleeves"]} for k in range(3)]
    catalog, report = ingest_fashioniq(_fashioniq_release(tmp_path / "fiq", withheld), tmp_path / "out")
    assert [(c["reference_id"], c["target_id"], c["split"]) for c in catalog.captions] == [
        ("V0", "V1", "val"), ("V2", "V3", "val"), ("V4", "V5", "val")]
    assert set(catalog.items["split"]) == {"val", "test"}  # the test images stay a gallery
    assert report.notes == ["cap.dress.test.json: left out 3 triple(s) without a target (their answers are withheld, "
                            "as in FashionIQ's public test split); 0 triple(s) of it kept"]
    assert catalog.meta["left_out_triples"] == {"cap.dress.test.json": 3}


def test_fashioniq_entries_that_are_no_triple_are_counted_not_fatal(tmp_path):
    from recsys.data.fashioniq import ingest_fashioniq

    records = [{"target": "T1", "candidate": "T0", "captions": "is blue"}, ["not", "a", "dict"],
               {"target": "T2", "candidate": "T1"}, {"target": "", "candidate": "T2", "captions": ["x"]}]
    catalog, report = ingest_fashioniq(_fashioniq_release(tmp_path / "fiq", records), tmp_path / "out")
    assert ("T0", "T1", ["is blue"]) in [(c["reference_id"], c["target_id"], c["captions"]) for c in catalog.captions]
    assert report.notes == ["cap.dress.test.json: left out 1 triple(s) without a target (their answers are withheld, "
                            "as in FashionIQ's public test split) and 2 entries that are no triple (e.g. entry 1: no "
                            "candidate or captions); 1 triple(s) of it kept"]
