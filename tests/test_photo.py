"""Photo understanding: colour naming, the photo reader's two experts, and readings of real and odd images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from recsys.colour import ColourNamer, colour_shares, garment_weights, to_lab
from recsys.encoders.base import cached_text_vectors
from recsys.photo import PROMPT_TEMPLATES, PhotoReader, category_spellings, category_texts
from recsys.photo_store import place_on_image


def test_lab_of_reference_colours():
    lab = to_lab(np.array([[0, 0, 0], [255, 255, 255], [128, 128, 128], [255, 0, 0]], dtype=np.uint8))
    np.testing.assert_allclose(lab[0], [0, 0, 0], atol=0.5)
    np.testing.assert_allclose(lab[1], [100, 0, 0], atol=0.5)
    assert abs(lab[2, 0] - 53.6) < 1.5 and np.abs(lab[2, 1:]).max() <= 1  # mid grey: no chroma
    # sRGB red is L 53.2, a 80.1, b 67.2 under D65; Pillow's LAB profile uses D50, within a few units.
    np.testing.assert_allclose(lab[3], [53.2, 80.1, 67.2], atol=4)


def _garment_on(background, garment, size=(120, 160), stripes=None):
    image = np.zeros((size[1], size[0], 3), dtype=np.uint8) + np.array(background, dtype=np.uint8)
    image[40:130, 30:90] = garment
    if stripes is not None:
        image[40:130:10, 30:90] = stripes
    return Image.fromarray(image)


def test_the_background_is_what_the_border_shows():
    lab = to_lab(np.asarray(_garment_on((240, 240, 236), (200, 30, 40))))
    weights = garment_weights(lab)
    assert weights[80, 60] == 1.0 and weights[0, 0] == 0.0 and weights[150, 110] == 0.0
    assert garment_weights(to_lab(np.zeros((10, 10, 3), np.uint8))).sum() == 0  # one flat colour: no garment found
    with pytest.raises(ValueError, match="too small"):
        garment_weights(to_lab(np.zeros((2, 8, 3), np.uint8)))


def test_pixels_vote_for_their_nearest_prototype():
    lab = to_lab(np.array([[[255, 0, 0], [250, 10, 10], [0, 0, 255], [255, 255, 255]]], dtype=np.uint8))
    prototypes = to_lab(np.array([[200, 0, 0], [0, 0, 200], [0, 0, 120]], dtype=np.uint8))
    shares = colour_shares(lab, np.array([[1.0, 1.0, 1.0, 0.0]]), ["red", "blue", "blue"], prototypes)
    np.testing.assert_allclose(shares, [2 / 3, 1 / 3])  # two red votes, one blue; the white pixel weighs nothing
    np.testing.assert_allclose(colour_shares(lab, np.zeros((1, 4)), ["red", "blue", "blue"], prototypes), [0.5, 0.5])


def test_colour_names_learned_from_catalog_images_read_a_striped_photo():
    colours = ["red", "navy", "white"] * 4
    rgb = {"red": (190, 35, 45), "navy": (30, 45, 90), "white": (235, 235, 230)}
    images = [_garment_on((250, 250, 250) if c != "white" else (60, 60, 60), rgb[c]) for c in colours]
    namer = ColourNamer(per_colour=3).fit(colours, lambda row: images[row])
    assert namer.vocabulary_ == ["red", "navy", "white"] and set(namer.sources_.values()) == {"catalog"}
    # A photo: a darker red with white stripes on a grey floor. Red wins the vote; white comes second.
    guess = namer.read(_garment_on((150, 150, 150), (160, 30, 40), stripes=(240, 240, 240)))
    assert guess.colour == "red" and guess.runner_up == "white" and guess.confidence > 0.6
    assert sum(guess.shares.values()) == pytest.approx(1.0)
    # A prior that covers only the stripes' rows moves the vote to white.
    prior = np.zeros((160, 120), np.float32)
    prior[40:130:10] = 1.0
    assert namer.read(_garment_on((150, 150, 150), (160, 30, 40), stripes=(240, 240, 240)), prior=prior).colour == "white"


def test_a_damaged_catalog_image_only_loses_its_prototype(tiny_catalog_dir, tmp_path, caplog):
    """Catalog.load_image on a damaged file raises PIL's errors: OSError (cut short; not an image, as
    UnidentifiedImageError) and DecompressionBombError, which is no OSError. Each item is left out of its colour's
    prototype with a log line; the fit goes on."""
    import io
    import logging
    import shutil

    from recsys.catalog import Catalog

    catalog = Catalog.load(shutil.copytree(tiny_catalog_dir, tmp_path / "tiny",
                                           ignore=shutil.ignore_patterns("artifacts", "models")))
    ids, colours = catalog.items["item_id"].to_numpy(), catalog.items["color"].to_numpy()
    colour = colours[0]
    damaged = np.flatnonzero(colours == colour)[:3]
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")  # 4e8 pixels: past twice PIL's limit, a few kB of file
    for row, data in zip(damaged, (catalog.image_path(ids[damaged[0]]).read_bytes()[:300], b"not an image",
                                   bomb.getvalue())):
        catalog.image_path(ids[row]).write_bytes(data)
    with caplog.at_level(logging.INFO, logger="recsys.colour"):
        namer = ColourNamer(per_colour=len(colours)).fit(colours, lambda row: catalog.load_image(ids[row]))
    assert namer.sources_[colour] == "catalog" and set(namer.vocabulary_) == set(colours)
    said = [r.getMessage() for r in caplog.records if "unusable" in r.getMessage()]
    assert sorted(int(m.split(" row ")[1].split()[0].rstrip(",")) for m in said) == sorted(damaged.tolist())
    assert any("DecompressionBombError" in m for m in said)


def test_colour_names_without_images_come_from_css():
    namer = ColourNamer().fit_names(["Navy Blue", "Off White", "Mauve-ish nonsense", "Grey"])
    assert namer.vocabulary_ == ["Navy Blue", "Off White", "Grey"]
    assert namer.read(_garment_on((255, 255, 255), (0, 0, 128))).colour == "Navy Blue"
    with pytest.raises(ValueError, match="Pillow knows"):
        ColourNamer().fit_names(["zzz"])
    with pytest.raises(ValueError, match="no colours"):
        ColourNamer().fit(["", None], lambda row: None)


def test_category_texts_add_the_ways_titles_spell_the_category():
    texts = category_texts(["tshirt", "tshirt", "tanktop", "dress_long", "trousers"],
                           ["Red t-shirt", "Blue cotton T-Shirt", "Black tank top", "Green maxi dress", "Cropped trousers"])
    assert texts == {"tshirt": "tshirt t-shirt", "tanktop": "tanktop tank top", "dress_long": "dress long",
                     "trousers": "trousers"}  # "cropped" describes an item, not the category


class WordEncoder:
    """A text encoder that embeds a text by the words it contains, out of a fixed vocabulary."""

    VOCABULARY = ("shirt", "skirt", "dog")

    def encode_text(self, texts):
        rows = np.array([[float(w in t) for w in self.VOCABULARY] + [0.05] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_two_experts_and_their_product_by_hand():
    vectors = np.array([[1, 0], [0.9, 0.436], [0, 1], [0.1, 0.995]], dtype=np.float32)
    reader = PhotoReader(zero_shot_weight=0.5, label_temperature=0.1, garment_threshold=0.5, neighbours=2, neighbour_temperature=0.1)
    reader.fit(vectors, ["shirt", "shirt", "skirt", "skirt"], ["top", "top", "bottom", "bottom"],
               ["a shirt", "b shirt", "a skirt", "b skirt"], text_encoder=WordEncoder(),
               label_texts=["jersey, shirt: a garment", "miniskirt, skirt: short", "dog: an animal"])
    assert reader.classes_ == ["shirt", "skirt"] and reader.slots_ == {"shirt": "top", "skirt": "bottom"}
    # Label "dog" resembles no category: it carries (almost) no vote, and no garment.
    assert reader.garment_[2] < 0.01 < 0.99 < reader.garment_[0]
    labels = np.array([0.2, 0.1, 0.7])
    # By hand: "shirt" and "skirt" texts match their own label exactly (similarity 1, garment weight ~1, P ~1), so
    # P(shirt) ~ 0.2 and P(skirt) ~ 0.1 before normalisation; the dog's 0.7 votes for nothing.
    np.testing.assert_allclose(reader.zero_shot_proba(labels), [2 / 3, 1 / 3], atol=1e-3)
    assert reader.garment_share(labels) == pytest.approx(0.3, abs=0.01)
    # Neighbours of the first item: itself (cos 1) and the other shirt (cos 0.9): a softmax at temperature 0.1.
    neighbours = reader.neighbour_proba(vectors[0])
    assert neighbours[0] == pytest.approx(1.0, abs=1e-5)
    product = reader.predict_proba(vectors[2], labels)
    zero_shot, near = reader.zero_shot_proba(labels), reader.neighbour_proba(vectors[2])
    by_hand = np.sqrt(zero_shot * near)
    np.testing.assert_allclose(product, by_hand / by_hand.sum(), rtol=1e-6)
    reading = reader.read(vectors[2], label_probabilities=labels)
    assert reading.category.category == "skirt" and reading.slot == "bottom" and reading.familiar
    assert reading.seen[0][0] == "dog" and not reading.no_garment  # it looks like the catalog's own items
    with pytest.raises(ValueError, match="dimensions"):
        reader.read(np.ones(3))
    # A photo under 3 px a side has no border to read a colour against: the category is read, the colour is None.
    from PIL import Image

    reader.colour_namer_ = ColourNamer().fit_names(["red", "blue"])
    tiny = reader.read(vectors[2], image=Image.new("RGB", (1, 5000), "red"), label_probabilities=labels)
    assert tiny.category.category == "skirt" and tiny.colour is None
    assert reader.read(vectors[2], image=Image.new("RGB", (8, 8), "red")).colour.colour == "red"


def test_a_grid_map_is_placed_back_on_the_unpadded_image():
    grid = np.zeros((7, 7), np.float32)
    grid[:, 0] = 1.0  # the left edge of a wide image's padded square... is the image's left edge
    placed = place_on_image(grid, width=200, height=100, side=112)
    assert placed.shape == (56, 112)
    assert placed[:, :4].mean() > 0.5 and placed[:, -10:].max() == 0.0


@pytest.fixture(scope="module")
def tiny_service(tiny_catalog, tiny_artifacts):
    from recsys.store import ModelStore
    from recsys.tasks.similar.service import SimilarService

    return SimilarService(tiny_catalog, tiny_artifacts, ModelStore(tiny_catalog, tiny_artifacts))


def test_a_catalog_image_is_read_as_its_own_category_and_colour(tiny_service, tiny_catalog, tiny_artifacts):
    item = tiny_catalog.items.iloc[3]
    reading = tiny_service.read_photo(tiny_artifacts.image[3], tiny_catalog.load_image(item["item_id"]))
    assert reading.category.category == item["category"] and reading.familiar and not reading.unsure
    assert reading.colour is not None and reading.colour.colour == item["color"]
    assert reading.slot == item["slot"]
    # No article before a name that may be plural ("a sneakers" on the trial of a new user).
    assert reading.sentence().startswith(f"Reads as {item['category']} (")
    assert f"sure, slot {item['slot']}) in {item['color']}" in reading.sentence()  # the confidence is the category's


@pytest.mark.parametrize("scene", ["landscape", "wall", "noise"])
def test_what_is_not_a_garment_is_never_stated_as_one(tiny_service, scene):
    from sklearn.datasets import load_sample_image

    from recsys.encoders import create_encoder

    image = {"landscape": lambda: Image.fromarray(load_sample_image("china.jpg")),
             "wall": lambda: Image.new("RGB", (400, 300), (205, 200, 190)),
             "noise": lambda: Image.fromarray(np.random.default_rng(0).integers(0, 255, (224, 224, 3), np.uint8))}[scene]()
    vector = create_encoder(tiny_service.photo_encoder_spec, "cpu").encode_images([image])[0]
    reading = tiny_service.read_photo(vector, image)
    assert reading.unsure and "choose the category" in reading.sentence()


def test_text_vectors_are_encoded_once_and_read_back_from_the_cache(tmp_path):
    class Counting(WordEncoder):
        calls = 0

        def encode_text(self, texts, **kwargs):
            Counting.calls += 1
            return super().encode_text(texts, **kwargs)

    texts = ["jersey, shirt: a garment", "dog: an animal"]
    first = cached_text_vectors(Counting(), "words", texts, cache_dir=tmp_path)
    again = cached_text_vectors(Counting(), "words", texts, cache_dir=tmp_path)
    np.testing.assert_array_equal(first, again)
    assert Counting.calls == 1 and len(list(tmp_path.glob("label-vectors-*.npy"))) == 1
    cached_text_vectors(Counting(), "other spec", texts, cache_dir=tmp_path)  # another encoder: another entry
    assert Counting.calls == 2


def test_category_spellings_put_the_name_first():
    assert category_spellings(["tshirt", "tshirt", "dress_long"], ["Red t-shirt", "Blue T-Shirt", "Green dress"]) == \
        {"tshirt": ["tshirt", "t-shirt"], "dress_long": ["dress long"]}


class JointWords(WordEncoder):
    """A joint encoder over two axes: a text's vector is where its words point, so a prompt about a shirt lands on
    the first axis and one about a skirt on the second, where the catalog's shirt and skirt images are."""

    spec, modality = "joint-words", "joint"
    VOCABULARY = ("shirt", "skirt")

    def __init__(self, dim=2):
        self.dim = dim
        self.prompts = []

    def encode_text(self, texts):
        self.prompts.extend(texts)
        rows = np.array([[float(w in t) for w in self.VOCABULARY] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_image_text_expert_and_the_three_way_product_by_hand():
    vectors = np.array([[1, 0], [0.9, 0.436], [0, 1], [0.1, 0.995]], dtype=np.float32)
    joint = JointWords()
    reader = PhotoReader(zero_shot_weight=0.5, label_temperature=0.1, garment_threshold=0.5, neighbours=2,
                         neighbour_temperature=0.1, image_text_weight=0.5, image_text_temperature=0.5)
    reader.fit(vectors, ["shirt", "shirt", "skirt", "skirt"], ["top", "top", "bottom", "bottom"],
               ["a shirt", "b shirt", "a skirt", "b skirt"], text_encoder=WordEncoder(),
               label_texts=["jersey, shirt: a garment", "miniskirt, skirt: short", "dog: an animal"], joint_encoder=joint)
    # Every template over every spelling, per category; the prompts' mean is each category's axis.
    assert len(joint.prompts) == 2 * len(PROMPT_TEMPLATES) and "a photo of a skirt." in joint.prompts
    np.testing.assert_allclose(reader.prompt_vectors_, np.eye(2), atol=1e-6)
    photo = np.array([0.6, 0.8], dtype=np.float32)
    # By hand: cosines 0.6 and 0.8 at temperature 0.5 -> softmax of (1.2, 1.6).
    by_hand = np.exp([1.2, 1.6]) / np.exp([1.2, 1.6]).sum()
    np.testing.assert_allclose(reader.image_text_proba(photo), by_hand, rtol=1e-6)
    labels = np.array([0.2, 0.1, 0.7])
    product = (reader.zero_shot_proba(labels) ** 0.25 * reader.neighbour_proba(photo) ** 0.25
               * reader.image_text_proba(photo) ** 0.5)
    np.testing.assert_allclose(reader.predict_proba(photo, labels), product / product.sum(), rtol=1e-6)
    # Without the classifier's labels: the neighbours and the image-text expert, half and half.
    two = np.sqrt(reader.neighbour_proba(photo) * reader.image_text_proba(photo))
    np.testing.assert_allclose(reader.predict_proba(photo), two / two.sum(), rtol=1e-6)
    with pytest.raises(ValueError, match="3 dimensions"):
        PhotoReader().fit(vectors, ["shirt"] * 4, ["top"] * 4, ["a"] * 4, joint_encoder=JointWords(dim=3))
    with pytest.raises(ValueError, match="without a joint"):
        PhotoReader().fit(vectors, ["shirt"] * 4, ["top"] * 4, ["a"] * 4).image_text_proba(photo)


def test_the_page_lists_the_most_probable_categories_first():
    vectors = np.array([[1, 0], [0.9, 0.436], [0, 1]], dtype=np.float32)
    reader = PhotoReader(neighbours=2, neighbour_temperature=0.1).fit(
        vectors, ["shirt", "shirt", "skirt"], ["top", "top", "bottom"], ["a", "b", "c"])
    reading = reader.read(vectors[2])
    assert reading.category.category == "skirt"
    assert reading.category_choices(["dress", "shirt", "skirt"]) == ["skirt", "shirt", "dress"]


def test_a_catalog_embedded_by_a_joint_encoder_reads_photos_with_its_prompts(tmp_path):
    pytest.importorskip("open_clip")
    from _synthetic import tiny_open_clip_spec, write_synthetic_catalog
    from recsys.artifacts import load_artifacts
    from recsys.photo_store import photo_reader
    from recsys.precompute import precompute
    from recsys.store import ModelStore

    spec = tiny_open_clip_spec(tmp_path, "RecsysPhotoTiny")
    catalog = write_synthetic_catalog(tmp_path / "joint", n_items=12)
    precompute(catalog, spec, num_workers=0, progress=False)
    artifacts = load_artifacts(catalog, image_encoder=spec, text_encoder=spec)

    reader = photo_reader(ModelStore(catalog, artifacts), "cpu")
    assert reader.prompt_vectors_.shape == (len(reader.classes_), 16)
    np.testing.assert_allclose(np.linalg.norm(reader.prompt_vectors_, axis=1), 1.0, rtol=1e-5)
    # The tiny model's weights are random: the expert is wired in, not good; its probabilities enter the product.
    proba = reader.predict_proba(artifacts.image[0])
    assert proba.shape == (len(reader.classes_),) and proba.sum() == pytest.approx(1.0)
    neighbours_only = PhotoReader().fit(artifacts.image, catalog.items["category"], catalog.items["slot"],
                                        catalog.items["title"]).predict_proba(artifacts.image[0])
    assert not np.allclose(proba, neighbours_only)
