"""The upload protocol: reading a photo source and a label map, the figures, the command line, real photos."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

from recsys.tasks.similar.upload import UploadSourceError, evaluate_upload, read_label_map, read_photos
from tests._scripts import load_script

SHARED = Path(__file__).resolve().parents[2] / "shared" / "realdata"
LABEL_MAPS = Path(__file__).resolve().parent / "fixtures" / "label_maps"


def test_a_folder_of_class_folders_and_a_csv(tmp_path):
    for name in ("tops/a.jpg", "tops/b.PNG", "tops/notes.txt", "shoes/c.jpg"):
        (tmp_path / "folder" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "folder" / name).write_bytes(b"x")
    photos = read_photos(tmp_path / "folder")
    assert [(p.path.name, p.category) for p in photos] == [("c.jpg", "shoes"), ("a.jpg", "tops"), ("b.PNG", "tops")]
    (tmp_path / "list.csv").write_text("path,category,colour\nfolder/tops/a.jpg,Tshirts,Navy Blue\nfolder/shoes/c.jpg,,\n")
    listed = read_photos(tmp_path / "list.csv")
    assert listed[0].path == tmp_path / "folder/tops/a.jpg" and listed[0].colour == "Navy Blue"
    assert listed[1].category == "" and listed[1].colour == ""
    (tmp_path / "bad.csv").write_text("file,category\na.jpg,x\n")
    with pytest.raises(UploadSourceError, match="no 'path' column"):
        read_photos(tmp_path / "bad.csv")
    with pytest.raises(UploadSourceError, match="neither a folder nor a CSV"):
        read_photos(tmp_path / "missing")


def test_the_label_map_is_checked_against_the_catalog(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"category": {"shoes": ["sneakers", "boots"]}, "colour": {"Navy Blue": ["navy"]}}))
    mapping = read_label_map(path, ["sneakers", "boots", "shirt"], ["navy", "red"])
    assert mapping["category"] == {"shoes": {"sneakers", "boots"}} and mapping["colour"] == {"Navy Blue": {"navy"}}
    path.write_text(json.dumps({"category": {"shoes": ["sandals"]}, "colour": {}}))
    with pytest.raises(UploadSourceError, match="sandals"):
        read_label_map(path, ["sneakers"], [])
    identity = read_label_map(None, ["tshirt", "tank_top"], ["Navy"])
    assert identity["category"]["tanktop"] == {"tank_top"} and identity["colour"]["navy"] == {"Navy"}


@pytest.fixture(scope="module")
def photo_folder(tiny_catalog, tmp_path_factory):
    """Six catalog images per category of the tiny world, as a user's labelled folder, plus a note and a broken file."""
    folder = tmp_path_factory.mktemp("photos")
    items = tiny_catalog.items
    for category, group in items.groupby("category"):
        (folder / category).mkdir()
        for item_id in group["item_id"].iloc[:6]:
            shutil.copy(tiny_catalog.image_path(item_id), folder / category / f"{item_id}.png")
    (folder / "scarves").mkdir()
    (folder / "scarves" / "s.png").write_bytes((folder / category / f"{item_id}.png").read_bytes())
    (folder / category / "broken.png").write_bytes(b"not an image")
    return folder


def test_catalog_images_are_placed_and_counted(tiny_catalog, tiny_artifacts, photo_folder):
    report = evaluate_upload(tiny_catalog, photo_folder)
    n_categories = len(tiny_catalog.categories)
    assert report["category_not_applicable"] == 1  # the scarf: a label the catalog has no category for
    photos = tiny_catalog.items.groupby("category").size().clip(upper=6).sum()  # 6 a category, or all it has
    assert report["unreadable"] == 1 and report["n"] == report["n_category"] == photos
    assert report["category_accuracy"] >= 0.9 and report["category@5"] >= 0.9
    assert report["category_accuracy_chance"] == pytest.approx(1 / n_categories)
    p, n = report["category_accuracy"], report["n_category"]
    assert report["category_accuracy_se"] == pytest.approx((p * (1 - p) / (n - 1)) ** 0.5)  # of a share, by hand
    assert report["n_colour"] == 0 and report["colour_accuracy"] is None  # a folder carries no colours
    # The page states the category of its own catalog's images without asking, and the first of its choices is the
    # prediction, so the label's category is among the first three at least as often as it is predicted.
    assert report["category_sure"] >= 0.9 and report["category_top3"] >= report["category_accuracy"]
    sure = round(report["category_sure"] * n)
    hits_when_sure = round(report["category_accuracy_sure"] * sure)
    assert hits_when_sure <= round(p * n) <= hits_when_sure + (n - sure)


def test_the_command_line_writes_the_figures_and_adds_them_to_the_report(tiny_catalog_dir, tiny_artifacts,
                                                                          photo_folder, tmp_path, capsys):
    catalog = tmp_path / "tiny"
    shutil.copytree(tiny_catalog_dir, catalog, ignore=shutil.ignore_patterns("models", "report.json"))
    out = tmp_path / "upload.json"
    evaluate = load_script("evaluate")
    assert evaluate.main(["--catalog", str(catalog), "--task", "upload", "--photos", str(photo_folder),
                          "--json", str(out)]) == 0
    figures = json.loads(out.read_text())["upload"]
    assert {"n", "category_accuracy", "colour_accuracy", "category@5", "colour@5", "category_accuracy_chance",
            "colour@5_chance"} <= set(figures)
    assert "category_accuracy" in capsys.readouterr().out
    report = json.loads((catalog / "artifacts" / "report.json").read_text())
    assert report["_uploads"][photo_folder.name]["category_accuracy"] == figures["category_accuracy"]
    with pytest.raises(SystemExit):
        evaluate.main(["--catalog", str(catalog), "--task", "upload"])
    assert "--photos" in capsys.readouterr().err


needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/realdata is absent (a user's clone has none)")


@needs_shared
def test_real_clothing_photos_land_far_above_chance(tiny_catalog, tiny_artifacts, tmp_path):
    # Four photos per class of the real validation photos (everyday photos, 10 classes), into the drawn tiny world.
    source = tmp_path / "clothing"
    for folder in sorted((SHARED / "clothing-small" / "validation").iterdir()):
        (source / folder.name).mkdir(parents=True)
        for photo in sorted(folder.iterdir())[:4]:
            os.symlink(photo, source / folder.name / photo.name)
    report = evaluate_upload(tiny_catalog, source, LABEL_MAPS / "clothing-small-to-builtin.json")
    assert report["n"] == 40 and report["category_not_applicable"] == 0
    assert report["category_accuracy"] > 3 * report["category_accuracy_chance"]


@needs_shared
def test_real_product_photos_get_their_colour_far_above_chance(tiny_catalog, tiny_artifacts, tmp_path):
    rows = list(csv.DictReader((SHARED / "myntra-dev" / "labels.csv").open(encoding="utf-8")))[:60]
    listing = tmp_path / "myntra.csv"
    with listing.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "category", "colour"])
        for row in rows:
            writer.writerow([os.path.relpath(SHARED / "myntra-dev" / row["path"], tmp_path), row["product_type"],
                             row["colour"]])
    report = evaluate_upload(tiny_catalog, listing, LABEL_MAPS / "myntra-to-builtin.json")
    assert report["n_colour"] > 40 and report["category_not_applicable"] > 0  # flip-flops: no such category
    assert report["colour_accuracy"] > 3 * report["colour_accuracy_chance"]
    assert report["category_accuracy"] > 3 * report["category_accuracy_chance"]
