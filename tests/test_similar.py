"""Similar items: the model, the registry and store, the protocol, the service and the page (AppTest), with the
bad uploads the page must survive."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from _pages import open_page

from recsys.artifacts import load_artifacts
from recsys.catalog import Catalog
from recsys.config import PROJECT_ROOT
from recsys.metrics import PER_QUERY
from recsys.models.base import Provenance
from recsys.models.registry import get_model, list_models, model_title
from recsys.models.similar import SimilarItems
from recsys.store import ModelStore
from recsys.tasks.similar import protocol as similar_protocol
from recsys.tasks.similar import service as similar_service
from recsys.tasks.similar.service import SimilarService

APP = str(PROJECT_ROOT / "streamlit_app.py")


def test_neighbours_exclude_the_query_and_respect_the_category():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(30, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    categories = np.array(["a"] * 10 + ["b"] * 20)
    model = SimilarItems().fit(vectors, categories)
    positions, scores = model.similar_to_item(3, k=5, same_category=True)
    assert 3 not in positions and set(categories[positions]) == {"a"}
    assert np.all(np.diff(scores) <= 1e-6)
    expected = np.argsort(-(vectors[:10] @ vectors[3]))[1:6]
    assert positions.tolist() == expected.tolist()
    positions, _ = model.similar_to_item(3, k=29, same_category=False)
    assert len(positions) == 29 and 3 not in positions
    assert model.neighbours([3, 4], k=5).shape == (2, 5)


def test_the_registry_lists_the_model_and_the_report_rows():
    assert list_models("similar") == ["shopper-similarity", "visual-similarity", "random", "oracle"]
    assert list_models("similar", trainable=True) == ["shopper-similarity", "visual-similarity"]
    assert model_title("similar", "oracle") != "oracle"
    assert get_model("similar", "visual-similarity", index_kind="exact").get_params() == {
        "index_kind": "exact", "colour_weight": 0.0, "pattern_weight": 0.0, "same_category": False, "pool": 200}
    assert get_model("similar", "shopper-similarity").get_params()["same_category"] is True


def test_shopper_similarity_ranks_the_query_colour_first_within_its_category():
    # Four items of one category: by cosine the blue ones are nearest, but the query is red.
    vectors = np.array([[1, 0, 0], [0.99, 0.14, 0], [0.98, 0.2, 0], [0.9, 0.44, 0], [0.95, 0, 0.31]], np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    categories = ["shirt", "shirt", "shirt", "shirt", "skirt"]
    colours = ["red", "blue", "blue", "red", "red"]
    plain = get_model("similar", "visual-similarity", index_kind="exact").fit(vectors, categories, colours=colours)
    shopper = get_model("similar", "shopper-similarity", index_kind="exact").fit(vectors, categories, colours=colours)
    assert list(plain.similar_to_item(0, k=3)[0]) == [1, 2, 4]
    positions, cosines = shopper.similar_to_item(0, k=3)
    assert list(positions) == [3, 1, 2]  # the red shirt first, the skirt never
    np.testing.assert_allclose(cosines, vectors[[3, 1, 2]] @ vectors[0], rtol=1e-6)  # shown: the look's cosine
    assert list(shopper.similar_to_item(0, k=3, colour_weight=0.0)[0]) == [1, 2, 3]
    assert list(shopper.similar_to_vector(vectors[0], k=2, category="shirt", colour="blue")[0]) == [1, 2]
    assert shopper.neighbours([4], k=2).tolist() == [[-1, -1]]  # the skirt is alone in its category


@pytest.fixture
def catalog_copy(tiny_catalog_dir, tiny_artifacts, tmp_path):
    """A copy of the tiny world with its artifacts, so models can be saved without touching the shared one."""
    folder = tmp_path / "world"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("models"))
    catalog = Catalog.load(folder)
    return catalog, load_artifacts(catalog)


def test_the_store_saves_and_loads_the_model_with_the_same_answers(catalog_copy):
    catalog, artifacts = catalog_copy
    fitted = ModelStore(catalog, artifacts).fit("similar", "visual-similarity")
    loaded = ModelStore(catalog, artifacts).get("similar", "visual-similarity")
    assert loaded is not None and loaded is not fitted
    for row in (0, 7, 100):
        np.testing.assert_array_equal(loaded.similar_to_item(row, k=8)[0], fitted.similar_to_item(row, k=8)[0])
        np.testing.assert_allclose(loaded.similar_to_item(row, k=8)[1], fitted.similar_to_item(row, k=8)[1])


def test_a_model_saved_for_another_encoder_is_stale(catalog_copy):
    catalog, artifacts = catalog_copy
    store = ModelStore(catalog, artifacts)
    model = SimilarItems().fit(artifacts.image, catalog.items["category"])
    other = Provenance(**(store.provenance().to_dict() | {"image_encoder": "open_clip:ViT-B-32"}))
    model.save(store.path("similar", "visual-similarity"), provenance=other)
    assert store.get("similar", "visual-similarity") is None
    assert "image encoder" in store.problem("similar", "visual-similarity")
    assert store.status("similar")["visual-similarity"].state == "stale"


def test_the_service_answers_items_and_photos(tiny_catalog, tiny_artifacts):
    service = SimilarService(tiny_catalog, tiny_artifacts, ModelStore(tiny_catalog, tiny_artifacts))
    items = tiny_catalog.items
    result = service.similar(item=items["item_id"].iat[3], k=5)
    assert result.query_index == 3 and 3 not in result.positions and len(result.item_ids) == 5
    assert set(items["category"].iloc[result.positions]) == {items["category"].iat[3]}
    guess = service.read_photo(tiny_artifacts.image[3]).category
    assert guess.category == items["category"].iat[3] and sum(guess.shares.values()) == pytest.approx(1.0)
    photo = service.similar(photo=tiny_artifacts.image[3], k=5, same_category=False)
    assert photo.query_index is None and photo.positions[0] == 3 and photo.query_xy.shape == (2,)
    assert service.embedding_map(photo, query_label="your photo").data
    with pytest.raises(ValueError):
        service.similar(k=5)
    with pytest.raises(KeyError):
        service.similar(item="no such item")


def test_the_service_says_why_there_are_no_embeddings(tiny_catalog_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_catalog_dir, copy, ignore=shutil.ignore_patterns("artifacts"))
    catalog = Catalog.load(copy)
    service = SimilarService(catalog, None, ModelStore(catalog))
    with pytest.raises(similar_service.ArtifactError, match="precompute.py"):
        service.similar(item=catalog.items["item_id"].iat[0])


def test_protocol_beats_random_on_the_tiny_world(tiny_catalog, tiny_artifacts):
    report = similar_protocol.evaluate(tiny_catalog, quick=True)
    assert set(report) == {"shopper-similarity", "visual-similarity", "random", "oracle"}
    # The oracle fills each top 5 with the query's category as far as the category has other items (a category of
    # four items caps its queries at 3 of 5): its P@5 is that ceiling.
    sizes = tiny_catalog.items["category"].value_counts()
    queries = similar_protocol.data.query_sample(len(tiny_catalog.items), np.random.default_rng(0), quick=True)
    ceiling = np.mean([min(5, sizes[c] - 1) / 5 for c in tiny_catalog.items["category"].to_numpy()[queries]])
    assert report["oracle"]["P@5"] == pytest.approx(ceiling)
    assert report["visual-similarity"]["P@10"] > report["random"]["P@10"] + 0.3
    assert report["visual-similarity"]["color@10"] > report["random"]["color@10"]
    # What a shopper means by similar: the category, then the colour.
    assert report["shopper-similarity"]["P@5"] >= report["visual-similarity"]["P@5"]
    assert report["shopper-similarity"]["color@10"] > report["visual-similarity"]["color@10"]


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def app(monkeypatch, tiny_catalog_dir, tiny_artifacts):
    return open_page(monkeypatch, tiny_catalog_dir, "pages/similar.py")


def test_page_shows_results_for_a_catalog_item(app, tiny_catalog):
    first = tiny_catalog.items.iloc[0]
    assert app.selectbox(key="similar_item_choice").value == first["item_id"]
    # the query's thumbnail plus k results of its category (fewer when the category has fewer other items)
    shown = min(12, int((tiny_catalog.items["category"] == first["category"]).sum()) - 1)
    assert len(app.image) == 1 + shown
    assert any(f"{shown} most similar items" in s.value for s in app.subheader)
    assert app.get("plotly_chart")
    app.slider(key="similar_k").set_value(6).run()
    assert len(app.image) == 1 + 6
    pivot = next(b for b in app.button if (b.key or "").startswith("similar_pivot_"))
    pivot.click().run()
    assert not app.exception
    assert app.selectbox(key="similar_item_choice").value == pivot.key.removeprefix("similar_pivot_")


def test_find_similar_from_home_carries_the_item(monkeypatch, tiny_catalog_dir, tiny_artifacts, tiny_catalog):
    monkeypatch.setenv("RECSYS_CATALOG", str(tiny_catalog_dir))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    target = tiny_catalog.items["item_id"].iat[5]
    at.session_state["similar_query_item"] = target
    at.switch_page("pages/similar.py").run()
    assert not at.exception
    assert at.selectbox(key="similar_item_choice").value == target


def test_search_that_matches_nothing(app):
    app.text_input(key="similar_search").input("zzzz no such title").run()
    assert not app.exception
    assert any("No item title matches" in i.value for i in app.info)
    assert any("most similar items" in s.value for s in app.subheader)  # the current query stays


def test_missing_artifacts_offer_to_compute(monkeypatch, tiny_catalog_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_catalog_dir, copy, ignore=shutil.ignore_patterns("artifacts"))
    monkeypatch.setenv("RECSYS_CATALOG", str(copy))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/similar.py").run()
    assert not at.exception
    assert at.warning and "precompute.py" in at.warning[0].value
    assert at.button(key="similar_compute")


# ---------------------------------------------------------------------- uploads through the page
def _encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 64), c) for c in ((200, 30, 40), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def _exif_rotated(tiny_image: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(tiny_image.rotate(90, expand=True), "JPEG", quality=95, exif=exif)


def _bad_uploads(sample: Image.Image) -> dict:
    from test_imageio import huge_png_header

    jpeg = _encode(sample, "JPEG", quality=90)
    grey16 = Image.fromarray((np.asarray(sample.convert("L"), dtype=np.uint16) * 257))
    rgba = sample.convert("RGBA")
    rgba.putalpha(200)
    return {
        # name: (file name, bytes, refused?)
        "not an image": ("notes.jpg", b"hello, I am text", True),
        "truncated JPEG": ("cut.jpg", jpeg[: len(jpeg) // 2], True),
        "20000x20000 PNG": ("bomb.png", huge_png_header(20000, 20000), True),
        "zero bytes": ("empty.jpg", b"", True),
        "CMYK JPEG": ("cmyk.jpg", _encode(sample.convert("CMYK"), "JPEG"), False),
        "PNG with alpha": ("alpha.png", _encode(rgba, "PNG"), False),
        "16-bit greyscale": ("grey16.png", _encode(grey16, "PNG"), False),
        "animated GIF": ("anim.gif", _animated_gif(), False),
        "EXIF-rotated": ("rotated.jpg", _exif_rotated(sample), False),
    }


@pytest.mark.parametrize("case", ["not an image", "truncated JPEG", "20000x20000 PNG", "zero bytes", "CMYK JPEG",
                                  "PNG with alpha", "16-bit greyscale", "animated GIF", "EXIF-rotated"])
def test_uploads_get_results_or_one_clear_sentence(app, tiny_catalog, case):
    sample = tiny_catalog.load_image(tiny_catalog.items["item_id"].iat[0])
    name, data, refused = _bad_uploads(sample)[case]
    app.segmented_control(key="similar_source").set_value("Upload a photo").run()
    app.file_uploader(key="similar_upload").set_value((name, data, "application/octet-stream")).run()
    assert not app.exception, [e.value for e in app.exception]
    if refused:
        assert len(app.error) == 1
        message = app.error[0].value
        assert "Traceback" not in message and message.rstrip().endswith(".") and "\n" not in message
        assert not app.subheader
    else:
        assert not app.error
        box = _upload_box(app, "Category")
        if box.value is None:  # an unsure reading: no result stands under the question until a category is chosen
            assert app.warning and not app.subheader
            box.set_value(box.options[0]).run()
        assert _upload_box(app, "Category").value in tiny_catalog.categories
        assert any("most similar items" in s.value for s in app.subheader)


def test_upload_of_a_catalog_image_predicts_its_category(app, tiny_catalog):
    item = tiny_catalog.items.iloc[3]
    data = tiny_catalog.image_path(item["item_id"]).read_bytes()
    app.segmented_control(key="similar_source").set_value("Upload a photo").run()
    app.file_uploader(key="similar_upload").set_value(("mine.png", data, "image/png")).run()
    assert not app.exception
    assert _upload_box(app, "Category").value == item["category"]
    verdict = (app.success or app.warning)[0].value
    assert item["category"] in verdict


def _upload_box(app, label):
    return next(box for box in app.selectbox if box.label == label)


def test_a_new_photo_shows_its_own_reading_not_the_corrections_of_the_last(app, tiny_catalog):
    # The trial of a new user: a photo dropped over another kept the last photo's category and colour in the boxes
    # (the boxes' state outlived the photo), and the next rerun searched with them.
    items = tiny_catalog.items
    first = items.iloc[3]
    second = items[(items["category"] != first["category"]) & (items["color"] != first["color"])].iloc[0]
    app.segmented_control(key="similar_source").set_value("Upload a photo").run()
    app.file_uploader(key="similar_upload").set_value(
        ("first.png", tiny_catalog.image_path(first["item_id"]).read_bytes(), "image/png")).run()
    wrong = next(c for c in _upload_box(app, "Category").options if c not in (first["category"], second["category"]))
    _upload_box(app, "Category").set_value(wrong).run()  # the user corrects the first photo's category
    assert _upload_box(app, "Category").value == wrong
    app.file_uploader(key="similar_upload").set_value(
        ("second.png", tiny_catalog.image_path(second["item_id"]).read_bytes(), "image/png")).run()
    assert not app.exception
    assert _upload_box(app, "Category").value == second["category"]
    assert _upload_box(app, "Colour").value == second["color"]


def test_encoders_and_precompute_use_the_configured_device(monkeypatch, tiny_catalog):
    import recsys.encoders
    import recsys.precompute
    from recsys import ui
    from recsys.config import get_settings
    from recsys.context import StudioContext

    seen = []
    monkeypatch.setattr(recsys.encoders, "create_encoder", lambda spec, device: seen.append(("encoder", device)))
    monkeypatch.setattr(recsys.precompute, "precompute", lambda catalog, image_encoder, text_encoder, device, **kw:
                        seen.append(("precompute", image_encoder, text_encoder, device)))
    monkeypatch.setenv("RECSYS_DEVICE", "cpu")
    monkeypatch.setenv("RECSYS_IMAGE_ENCODER", "effnet-lite0")  # and the settings' encoders
    from recsys.encoders import pool

    pool.clear()  # an encoder another test loaded would be served without asking the registry
    try:
        StudioContext(get_settings(), tiny_catalog, None, None, None).encoder("minilm")  # what the pages' uploads ask
        ui.compute_artifacts(tiny_catalog)
    finally:
        pool.clear()  # the fake encoder must not stay in the pool for other tests
    assert seen == [("encoder", "cpu"), ("precompute", "effnet-lite0", None, "cpu")]


def test_judge_reports_per_query_standard_errors_by_hand():
    import pandas as pd

    from recsys.tasks.similar.protocol import judge

    items = pd.DataFrame({"category": ["a"] * 6 + ["b"] * 6, "color": ["red"] * 12, "pattern": ["solid"] * 12})
    neighbours = np.array([list(range(1, 6)) + list(range(6, 11)),       # query 0 (a): 5 of a in its top 5
                           list(range(6, 11)) + list(range(0, 5))])       # query 11 (b): 5 of b in its top 5 ...
    neighbours[1, :5] = [0, 1, 2, 3, 4]                                   # ... now none
    result = judge(items, np.array([0, 11]), neighbours)
    # Per-query P@5: [1, 0] -> mean 0.5, SE std([1, 0], ddof=1) / sqrt(2) = 0.5.
    assert result["P@5"] == 0.5 and result["P@5_se"] == pytest.approx(0.5)
    # The per-query figures other rows pair with (recsys.reports.pop_paired_claims): one per query, in order.
    assert result[PER_QUERY]["P@5"][0].tolist() == [1.0, 0.0]
    assert result[PER_QUERY]["color@10"][0].tolist() == [1.0, 1.0]
    assert result["color@10"] == 1.0 and result["color@10_se"] == 0.0


def test_a_thumbnail_sized_upload_is_refused_in_one_sentence(app):
    # A new user's trial: a 16 x 16 upload was read and searched with; the page now says the minimum instead.
    from recsys.imageio import MIN_PHOTO_SIDE

    tiny = Image.new("RGB", (16, 16), (200, 30, 40))
    app.segmented_control(key="similar_source").set_value("Upload a photo").run()
    assert any(f"at least {MIN_PHOTO_SIDE} pixels" in i.value for i in app.info)  # said before the upload
    app.file_uploader(key="similar_upload").set_value(("small.png", _encode(tiny, "PNG"), "image/png")).run()
    assert not app.exception
    assert [e.value for e in app.error] == [f"The file 'small.png' is 16 x 16 pixels, too small to tell a garment; "
                                            f"upload a photo at least {MIN_PHOTO_SIDE} pixels on each side."]
    assert not app.subheader
