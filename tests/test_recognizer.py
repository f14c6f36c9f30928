"""The garment recognizer: the head, its person-grouped training, the shipped file and its card, and the photo
reader's use of it (and its absence)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recsys.photo import PhotoReader
from recsys.recognizer import (SHIPPED_PATH, GarmentRecognizer, RecognizerError, is_class_label, load_recognizer,
                               recognizer_for)
from recsys.recognizer_training import grouped_cross_validation, read_training_photos, train_recognizer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "realdata"
needs_shared = pytest.mark.skipif(not (SHARED / "clothing-small").is_dir(),
                                  reason="../shared/realdata is absent (a user's clone has no ../shared)")


def _blobs(n_per_class: int = 20, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dim)) * 2
    labels = np.repeat(["Dress", "Hat", "Pants"], n_per_class)
    vectors = centres[np.repeat(np.arange(3), n_per_class)] + rng.normal(size=(3 * n_per_class, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), labels


def test_labels_that_mean_nothing_are_not_classes():
    assert not any(is_class_label(label) for label in ("Not sure", "Skip", "Other", "not_sure", " ", ""))
    assert all(is_class_label(label) for label in ("T-Shirt", "Shoes", "Hat"))


def test_the_head_folds_its_standardisation_into_weights_over_the_raw_vector():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    vectors, labels = _blobs()
    model = GarmentRecognizer(reg=0.5).fit(vectors, labels)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000)).fit(vectors, labels)
    np.testing.assert_allclose(model.predict_proba(vectors), reference.predict_proba(vectors), atol=1e-4)
    assert model.classes_ == ["Dress", "Hat", "Pants"] and model.coef_.shape == (3, 16)
    assert (model.predict(vectors) == labels).mean() > 0.9
    # the activation map: the probability-weighted class weights over each cell's channels, negative cut at 0
    maps = np.random.default_rng(1).random((16, 2, 3)).astype(np.float32)
    p = np.array([0.2, 0.5, 0.3])
    expected = np.maximum(np.einsum("c,chw->hw", p @ model.coef_, maps), 0)
    np.testing.assert_allclose(model.activation_map(p, maps), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="reads 16-d vectors"):
        model.predict_proba(np.zeros((1, 8)))


def test_a_recognizer_saves_and_loads_with_its_card(tmp_path):
    vectors, labels = _blobs()
    model = GarmentRecognizer(reg=0.5, encoder="fake").fit(vectors, labels)
    model.label_texts_ = {"Dress": "dress: a one-piece garment", "Hat": "hat", "Pants": "trousers"}
    model.card_ = {"data": {"photos": 60}}
    model.save(tmp_path / "head")
    loaded = load_recognizer(tmp_path / "head.safetensors")
    np.testing.assert_array_equal(loaded.coef_, model.coef_)
    assert loaded.encoder == "fake" and loaded.label_texts_["Pants"] == "trousers" and loaded.card_["data"]["photos"] == 60


@pytest.mark.parametrize("damage", ["zero bytes", "cut off", "git-lfs pointer", "missing"])
def test_a_damaged_recognizer_file_is_one_sentence_and_photos_are_read_without_it(tmp_path, damage, caplog):
    vectors, labels = _blobs()
    GarmentRecognizer(reg=0.5, encoder="fake").fit(vectors, labels).save(tmp_path / "head")
    weights = tmp_path / "head.safetensors"
    if damage == "zero bytes":
        weights.write_bytes(b"")
    elif damage == "cut off":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "git-lfs pointer":
        weights.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 123\n")
    else:
        weights.unlink()
    with pytest.raises(RecognizerError) as error:
        load_recognizer(tmp_path / "head")
    message = str(error.value)
    assert "head.safetensors" in message and "\n" not in message and "other experts" in message
    with caplog.at_level(logging.WARNING, logger="recsys.recognizer"):
        assert recognizer_for(["fake"], tmp_path / "head") is None
        assert recognizer_for(["fake"], tmp_path / "head") is None
    assert sum("garment recognizer" in r.getMessage() for r in caplog.records) <= 1  # said once, not per photo


def test_a_recognizer_of_another_encoder_is_not_used_and_that_is_said_once(tmp_path, caplog):
    vectors, labels = _blobs()
    GarmentRecognizer(reg=0.5, encoder="effnet-lite0:/elsewhere.pth").fit(vectors, labels).save(tmp_path / "other")
    with caplog.at_level(logging.WARNING, logger="recsys.recognizer"):
        assert recognizer_for(["open_clip:ViT-B-32:/tmp/x.pt"], tmp_path / "other") is None
        assert recognizer_for(["open_clip:ViT-B-32:/tmp/x.pt"], tmp_path / "other") is None
    said = [r.getMessage() for r in caplog.records if "reads effnet-lite0:/elsewhere.pth vectors" in r.getMessage()]
    assert len(said) == 1 and "--image-encoder" in said[0]
    assert recognizer_for(["effnet-lite0:/elsewhere.pth"], tmp_path / "other") is not None


def test_grouped_cross_validation_keeps_each_person_on_one_side():
    # Each person photographs one label in one room: the room (a per-person offset) identifies the label for that
    # person's other photos. Folds that split a person would score near 1; grouped folds cannot use the room.
    rng = np.random.default_rng(0)
    people = np.repeat(np.arange(40), 6)
    rooms = rng.normal(size=(40, 64)) * 3
    labels = np.array(["Dress", "Hat"])[rng.integers(0, 2, size=40)][people]
    vectors = (rooms[people] + rng.normal(size=(240, 64)) * 0.1).astype(np.float32)
    grouped = grouped_cross_validation(vectors, labels, people.astype(str), [{"reg": 100.0}], n_splits=5)[0]
    by_photo = grouped_cross_validation(vectors, labels, np.arange(240).astype(str), [{"reg": 100.0}], n_splits=5)[0]
    assert by_photo["accuracy"] > 0.95 and grouped["accuracy"] < 0.75
    assert grouped["oof"].shape == (240, 2) and len(grouped["fold_accuracy"]) == 5
    with pytest.raises(ValueError, match="groups cannot make 5"):
        grouped_cross_validation(vectors[:12], labels[:12], people[:12].astype(str), [{"reg": 1.0}], n_splits=5)


def _photo_folder(root: Path, rows: list[tuple[str, str, str]], encoding: str = "utf-8", windows: bool = False):
    colours = {"Dress": (200, 30, 40), "Hat": (30, 40, 200), "Pants": (30, 160, 60), "Not sure": (128, 128, 128)}
    (root / "images").mkdir(parents=True)
    lines = ["path,label,sender_id,split"]
    for k, (label, sender, split) in enumerate(rows):
        shade = np.random.default_rng(k).integers(-20, 20, size=3)
        Image.new("RGB", (48, 64), tuple(int(v) for v in np.clip(np.array(colours[label]) + shade, 0, 255))).save(
            root / "images" / f"{k}.png")
        separator = "\\" if windows else "/"
        lines.append(f"images{separator}{k}.png,{label},{sender},{split}")
    (root / "labels.csv").write_bytes("\n".join(lines).encode(encoding))
    return root


def test_training_photos_are_read_from_a_spreadsheet_csv_with_groups_and_merged_labels(tmp_path):
    rows = [("Dress", "1", "train"), ("Not sure", "1", "train"), ("Hat", "2", "validation"), ("Pants", "3", "train")]
    folder = _photo_folder(tmp_path / "photos", rows, encoding="utf-16", windows=True)
    photos, skipped = read_training_photos(folder, group_columns=("sender_id",), label_map={"Pants": "Trousers"})
    assert [p.label for p in photos] == ["Dress", "Hat", "Trousers"] and skipped["no class"] == 1
    assert [p.group for p in photos] == ["photos/1", "photos/2", "photos/3"] and photos[1].split == "validation"
    assert all(p.path.is_file() for p in photos)
    with pytest.raises(RecognizerError, match="needs a 'path' column and one of kind"):
        read_training_photos(folder, label_columns=("kind",))
    (tmp_path / "by_folder" / "Hat").mkdir(parents=True)
    (tmp_path / "by_folder" / "Skip").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "by_folder" / "Hat" / "a.jpg")
    Image.new("RGB", (8, 8)).save(tmp_path / "by_folder" / "Skip" / "b.jpg")
    photos, skipped = read_training_photos(tmp_path / "by_folder")
    assert [p.label for p in photos] == ["Hat"] and skipped["no class"] == 1


class _MeanColourEncoder:
    """A stand-in image encoder: the photo's mean colour and its square, L2-normalised (fast, deterministic)."""

    spec, dim = "mean-colour", 6

    def encode_images(self, images):
        rows = []
        for image in images:
            mean = np.asarray(image.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(axis=0) / 255
            rows.append(np.concatenate([mean, mean ** 2]))
        rows = np.asarray(rows, dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_train_recognizer_chooses_by_grouped_cv_and_writes_its_card(tmp_path):
    rows = [(label, str(person), "validation" if person == 0 else "train")
            for person in range(10) for label in ("Dress", "Hat", "Pants", "Not sure")]
    folder = _photo_folder(tmp_path / "photos", rows)
    kwargs = dict(grid=[{"reg": 0.1}, {"reg": 10.0}], n_splits=3, exclude_split="validation", min_photos=2,
                  command="python scripts/train_photo_head.py --photos photos")
    model = train_recognizer(folder, _MeanColourEncoder(), **kwargs)
    again = train_recognizer(folder, _MeanColourEncoder(), **kwargs)
    np.testing.assert_array_equal(model.coef_, again.coef_)  # deterministic for a seed
    card = model.card_
    assert model.classes_ == ["Dress", "Hat", "Pants"] and card["encoder"] == "mean-colour"
    assert card["data"]["photos"] == 27 and card["data"]["groups"] == 9
    assert card["data"]["left_out"]["no class"] == 10 and card["data"]["left_out"]["split validation"] == 3
    assert card["data"]["per_label"]["Hat"] == {"photos": 9, "groups": 9, "cv_recall": pytest.approx(
        card["cross_validation"]["confusion"]["counts"][1][1] / 9)}
    cv = card["cross_validation"]
    assert cv["chosen"] in ({"reg": 0.1}, {"reg": 10.0}) and cv["accuracy"] == max(s["accuracy"] for s in cv["settings"])
    assert cv["accuracy"] > 0.9 and 0 <= cv["accuracy_se"] <= np.sqrt(cv["accuracy"] * (1 - cv["accuracy"]) / 26) + 1e-9
    assert np.asarray(cv["confusion"]["counts"]).sum() == 27
    assert card["command"].startswith("python scripts/train_photo_head.py") and card["library_version"]
    assert model.label_texts_["Pants"] == "trousers, pants, jeans"  # the training data's label, described
    with pytest.raises(RecognizerError, match="fewer than two garment labels"):
        train_recognizer(folder, _MeanColourEncoder(), min_photos=100)


def test_the_shipped_recognizer_and_its_card():
    model = load_recognizer(SHIPPED_PATH)
    for path in (SHIPPED_PATH.with_suffix(".safetensors"), SHIPPED_PATH.with_suffix(".json")):
        assert path.stat().st_size < 1_000_000
    card = json.loads(SHIPPED_PATH.with_suffix(".json").read_text(encoding="utf-8"))["state"]["card"]
    assert model.encoder == "effnet-lite0" == card["encoder"] and model.coef_.shape == (len(model.classes_), 1280)
    assert {"T-Shirt", "Shirt", "Longsleeve", "Pants", "Dress", "Outwear", "Heels"} <= set(model.classes_)
    assert not {"Not sure", "Skip", "Other"} & set(model.classes_)
    assert set(card["data"]["per_label"]) == set(model.classes_)
    assert all(v["photos"] >= 10 for v in card["data"]["per_label"].values())
    assert any("CC0" in s["licence"] for s in card["data"]["sources"])
    cv = card["cross_validation"]
    assert "GroupKFold" in cv["method"] and 0.5 < cv["accuracy"] < 1 and 0 < cv["accuracy_se"] < 0.05
    assert card["command"].startswith("python scripts/train_photo_head.py") and card["library_version"]
    assert card["data"]["left_out"].get("split validation", 0) > 300  # the validation people are kept apart


@needs_shared
def test_the_shipped_recognizer_reads_real_photos():
    from recsys.encoders import create_encoder
    from recsys.imageio import load_upload

    model = load_recognizer()
    encoder = create_encoder("effnet-lite0", "cpu")
    right = 0
    for folder, accepted in (("pants", {"Pants"}), ("shoes", {"Shoes", "Casual Shoes", "Sports Shoes"}),
                             ("dress", {"Dress"}), ("hat", {"Hat"})):
        paths = sorted((SHARED / "clothing-small" / "validation" / folder).iterdir())[:3]
        vectors = encoder.encode_images([load_upload(p.read_bytes(), name=p.name) for p in paths])
        right += int(np.isin(model.predict(vectors), list(accepted)).sum())
    assert right >= 10  # of 12 photos of people the recognizer never saw


def test_the_reader_relates_recognizer_labels_to_any_catalogs_categories():
    from recsys.encoders import create_encoder

    text = create_encoder("minilm", "cpu")
    vectors, labels = _blobs()
    model = GarmentRecognizer(reg=0.5, encoder="fake").fit(vectors, labels)
    model.label_texts_ = {"Dress": "dress: a one-piece garment for women", "Hat": "hat, cap: headwear",
                          "Pants": "trousers, pants, jeans"}
    rng = np.random.default_rng(0)
    # a catalog's items of one category look alike: each close to its category's centre
    catalog = (np.repeat(rng.normal(size=(3, 8)), 3, axis=0) + rng.normal(size=(9, 8)) * 0.02).astype(np.float32)
    catalog /= np.linalg.norm(catalog, axis=1, keepdims=True)
    categories = ["gown"] * 3 + ["cap"] * 3 + ["jeans"] * 3
    reader = PhotoReader().fit(catalog, categories, ["onepiece"] * 3 + ["accessory"] * 3 + ["bottom"] * 3,
                               ["Silk gown", "Long gown", "Gown"] + ["Wool cap"] * 3 + ["Blue jeans"] * 3,
                               text_encoder=text, recognizer=model)
    assert reader.recognizer_labels_ == ["Dress", "Hat", "Pants"]
    best = np.asarray(reader.classes_)[reader.recognizer_map_.argmax(axis=1)]
    assert list(best) == ["gown", "cap", "jeans"]  # no table: the text encoder relates the words
    photo = rng.normal(size=8).astype(np.float32)  # a real photo: not as close to a catalog item as they are
    photo /= np.linalg.norm(photo)
    reading = reader.read(photo, recognizer_probabilities=np.array([0.02, 0.03, 0.95]))
    assert not reading.familiar and reading.category.category == "jeans" and reading.recognized[0][0] == "Pants"
    assert "garment recognizer sees Pants)" in reading.sentence() and "95%" not in reading.sentence()
    # the catalog's own image is read by the experts that know the catalog: its neighbours
    own = reader.read(catalog[0], recognizer_probabilities=np.array([0.02, 0.03, 0.95]))
    assert own.familiar and own.category.category == "gown"
    without = reader.read(photo)
    assert without.recognized == () and "recognizer" not in without.sentence()


def test_uploads_are_read_with_the_shipped_recognizer_and_without_a_damaged_one(tiny_catalog, tiny_artifacts,
                                                                                 tmp_path, monkeypatch):
    from recsys.store import ModelStore
    from recsys.tasks.similar.service import SimilarService

    # A photo-like upload: a catalog drawing pasted on a textured floor, off centre.
    rng = np.random.default_rng(0)
    floor = Image.fromarray(rng.integers(90, 140, (300, 400, 3), np.uint8))
    item = tiny_catalog.items.iloc[5]
    floor.paste(tiny_catalog.load_image(item["item_id"]).convert("RGB").resize((160, 160)), (150, 80))
    from recsys.encoders import create_encoder

    vector = create_encoder(tiny_artifacts.image_encoder_spec, "cpu").encode_images([floor])[0]

    def read():
        return SimilarService(tiny_catalog, tiny_artifacts, ModelStore(tiny_catalog, tiny_artifacts)).read_photo(vector, floor)

    reading = read()
    assert reading.recognized and reading.recognized[0][0] in load_recognizer().classes_
    assert sum(p for _, p in reading.recognized) <= 1.0 + 1e-6 and reading.category.category in tiny_catalog.categories
    (tmp_path / "head.safetensors").write_bytes(b"")
    (tmp_path / "head.json").write_text("{}")
    monkeypatch.setenv("RECSYS_PHOTO_HEAD", str(tmp_path / "head"))
    without = read()  # a damaged file: read by the other experts, nothing else lost
    assert without.recognized == () and without.category.category in tiny_catalog.categories
    assert without.colour is not None and "recognizer" not in without.sentence()


@needs_shared
def test_odd_photos_say_what_was_seen_and_never_a_confident_wrong_answer(tiny_catalog, tiny_artifacts):
    import io

    from recsys.encoders import create_encoder
    from recsys.imageio import load_upload
    from recsys.store import ModelStore
    from recsys.tasks.similar.service import SimilarService

    service = SimilarService(tiny_catalog, tiny_artifacts, ModelStore(tiny_catalog, tiny_artifacts))
    encoder = create_encoder(tiny_artifacts.image_encoder_spec, "cpu")
    path = sorted((SHARED / "clothing-small" / "validation" / "pants").iterdir())[0]
    upright = load_upload(path.read_bytes(), name=path.name)

    def read(image):
        return service.read_photo(encoder.encode_images([image])[0], image)

    # the same photo stored sideways with an EXIF orientation tag: decoded upright, read the same
    sideways = upright.rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the camera held sideways
    buffer = io.BytesIO()
    sideways.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    turned = load_upload(buffer.getvalue(), name="sideways.jpg")
    assert turned.size == upright.size
    assert read(turned).category.category == read(upright).category.category == "trousers"
    # 32 px: still a reading, and a sentence that says how sure it is
    small = read(upright.resize((24, 32)))
    assert small.category.category in tiny_catalog.categories and "%" in small.sentence()
    assert small.unsure or small.category.category == "trousers"


@pytest.mark.parametrize("damage", ["missing", "zero bytes", "not json", "nan", "another file"])
def test_damaged_colour_prototypes_leave_the_catalogs_own(tmp_path, damage, caplog):
    from recsys.colour import ColourNamer, load_photo_prototypes

    path = tmp_path / "colour-prototypes.json"
    content = {"missing": None, "zero bytes": "", "not json": "version https://git-lfs.github.com/spec/v1",
               "nan": '{"prototypes": {"red": [[NaN, 1, 2]]}}', "another file": '{"weights": [1, 2]}'}[damage]
    if content is not None:
        path.write_text(content)
    with caplog.at_level(logging.WARNING, logger="recsys.colour"):
        assert load_photo_prototypes(path) is None
    assert any("colour prototypes" in r.getMessage() for r in caplog.records)
    namer = ColourNamer().fit_names(["red", "blue"], photo_prototypes=load_photo_prototypes(path))
    assert namer.prototype_names_ == ["red", "blue"]


def test_the_shipped_colour_prototypes_join_a_catalog_colour_of_the_same_name():
    from recsys.colour import ColourNamer, load_photo_prototypes

    shipped = load_photo_prototypes()
    assert {"black", "white", "blue", "navy", "grey"} <= set(shipped)
    namer = ColourNamer().fit_names(["Blue", "Gray", "Chartreuse"], photo_prototypes=shipped)
    assert namer.prototype_names_.count("Blue") == 1 + len(shipped["blue"])
    assert namer.prototype_names_.count("Gray") == 1 + len(shipped["grey"])  # grey and gray are one colour
    assert namer.prototype_names_.count("Chartreuse") == 1 and namer.sources_["Blue"] == "css and photos"
    # a light blue shirt as a product photo shows it: the CSS blue alone reads it as grey
    light_blue = Image.new("RGB", (60, 80), (255, 255, 255))
    light_blue.paste((150, 190, 225), (15, 15, 45, 65))
    assert namer.read(light_blue).colour == "Blue"


def test_the_training_commands_write_a_recognizer_and_colour_prototypes_with_their_cards(tmp_path, capsys):
    from _scripts import load_script

    rows = [(label, str(person), "train") for person in range(6) for label in ("Dress", "Hat", "Pants")]
    folder = _photo_folder(tmp_path / "photos", rows)
    train = load_script("train_photo_head")
    assert train.main(["--photos", str(folder), "--out", str(tmp_path / "head"), "--folds", "3", "--grid", "0.1",
                       "--min-photos", "2", "--device", "cpu"]) == 0
    model = load_recognizer(tmp_path / "head")
    assert model.classes_ == ["Dress", "Hat", "Pants"] and model.encoder == "effnet-lite0"
    assert "grouped 3-fold accuracy" in capsys.readouterr().out
    assert train.main(["--photos", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 1
    assert "is not a folder" in capsys.readouterr().err

    table = tmp_path / "photos" / "labels.csv"
    table.write_text(table.read_text().replace("path,label,sender_id,split", "path,colour,sender_id,split")
                     .replace(",Dress,", ",Red,").replace(",Hat,", ",Navy Blue,").replace(",Pants,", ",Green,"))
    (tmp_path / "map.json").write_text('{"Navy Blue": "blue"}')
    colours = load_script("train_colour_prototypes")
    assert colours.main(["--photos", str(folder), "--out", str(tmp_path / "colours.json"), "--group-column",
                         "sender_id", "--label-map", str(tmp_path / "map.json"), "--folds", "3", "--min-photos", "2"]) == 0
    written = json.loads((tmp_path / "colours.json").read_text())
    assert set(written["prototypes"]) == {"red", "blue", "green"}
    assert written["card"]["cross_validation"]["photo_prototypes"]["accuracy"] > 0.9  # flat colours: easy
