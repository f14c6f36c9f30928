"""Composed-retrieval models on a small synthetic world of feature vectors (no images, runs in seconds).

Items have a colour and a pattern. Image features mix a random code of each value with noise; a caption
"is <colour>" is the text code of the new colour. A target is the reference with another colour.
"""

from __future__ import annotations

import numpy as np
import pytest

from recsys.metrics import rank_of, recall_at_k
from recsys.models.base import StaleModelError
from recsys.models.combiner import Combiner
from recsys.models.composed import ImageDifference, JointSpace, Triples, compose_turns
from recsys.models.composed_baselines import ImageOnly, TextOnly, ZeroShotSum
from recsys.models.democlip import DemoClip

N_COLOURS, N_PATTERNS = 6, 5


@pytest.fixture(autouse=True, scope="module")
def two_threads():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    colour_img, pattern_img = rng.normal(size=(N_COLOURS, 48)), rng.normal(size=(N_PATTERNS, 48))
    colour_txt, pattern_txt = rng.normal(size=(N_COLOURS, 24)), rng.normal(size=(N_PATTERNS, 24))
    colours = np.repeat(np.arange(N_COLOURS), N_PATTERNS * 8)
    patterns = np.tile(np.repeat(np.arange(N_PATTERNS), 8), N_COLOURS)
    n = len(colours)
    images = colour_img[colours] + pattern_img[patterns] + 0.3 * rng.normal(size=(n, 48))
    titles = colour_txt[colours] + pattern_txt[patterns] + 0.05 * rng.normal(size=(n, 24))
    # a triple: same pattern, another colour; the caption names the new colour
    reference = rng.integers(0, n, size=600)
    target = np.array([rng.choice(np.flatnonzero((patterns == patterns[r]) & (colours != colours[r]))) for r in reference])
    captions = colour_txt[colours[target]] + 0.05 * rng.normal(size=(600, 24))
    return {"images": images.astype(np.float32), "titles": titles.astype(np.float32), "reference": reference,
            "target": target, "captions": captions.astype(np.float32), "colours": colours, "patterns": patterns}


def recall(model, world, rows, k=10) -> float:
    gallery = model.gallery_vectors(world["images"])
    queries = model.compose(gallery[world["reference"][rows]], world["captions"][rows])
    scores = model.score(queries, gallery)
    ranks = []
    for i, row in enumerate(rows):
        scores[i, world["reference"][row]] = -np.inf  # the reference itself is never an answer
        ranks.append(rank_of(scores[i], int(world["target"][row])))
    return recall_at_k(ranks, k)


def split(world):
    train, test = np.arange(0, 450), np.arange(450, 600)
    triples = Triples(world["reference"][train], world["target"][train], world["captions"][train])
    return triples, test


@pytest.fixture(scope="module")
def joint(world):
    clip = DemoClip(embed_dim=32, n_epochs=30, batch_size=64, random_state=0)
    clip.fit(world["images"], world["titles"], world["titles"])
    return clip


def test_demo_clip_aligns_images_with_their_titles(joint, world):
    images, titles = joint.project_images(world["images"]), joint.project_text(world["titles"])
    assert np.allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    # text -> image: the best image for a title has the title's colour and pattern far above chance (1/30)
    best = np.argmax(titles @ images.T, axis=1)
    same = (world["colours"][best] == world["colours"]) & (world["patterns"][best] == world["patterns"])
    assert same.mean() > 0.5
    assert joint.history_[-1] < joint.history_[0]


def test_demo_clip_round_trips_through_safetensors(joint, world, tmp_path):
    from recsys.models.base import Provenance

    provenance = Provenance(catalog_fingerprint="abc", image_encoder="effnet-lite0", text_encoder="minilm")
    joint.save(tmp_path / "demo-clip", provenance=provenance)
    loaded = DemoClip.load(tmp_path / "demo-clip", provenance=provenance)
    assert loaded.provenance_.image_encoder == "effnet-lite0"
    assert loaded.get_params() == joint.get_params() and loaded.digest() == joint.digest()
    np.testing.assert_allclose(loaded.project_images(world["images"][:5]), joint.project_images(world["images"][:5]), atol=1e-6)
    np.testing.assert_allclose(loaded.project_text(world["titles"][:5]), joint.project_text(world["titles"][:5]), atol=1e-6)


def test_zero_shot_is_the_normalized_sum_and_multi_turn_applies_captions_in_order(joint, world):
    space = JointSpace.from_democlip(joint)
    model = ZeroShotSum(text_weight=1.0).fit(joint=space)
    ref, cap = world["images"][:3], world["captions"][:3]
    expected = space.image(ref) + space.text(cap)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(model.compose(space.image(ref), cap), expected, atol=1e-6)
    two_turns = compose_turns(model, ref, [cap, world["captions"][3:6]])
    np.testing.assert_allclose(two_turns, model.compose(expected, world["captions"][3:6]), atol=1e-6)


def test_baselines_ignore_what_they_should(joint, world):
    space = JointSpace.from_democlip(joint)
    q = ImageOnly().gallery_vectors(world["images"][:2])
    np.testing.assert_array_equal(ImageOnly().compose(q, world["captions"][:2]), q)
    np.testing.assert_allclose(TextOnly().fit(joint=space).compose(None, world["captions"][:2]),
                               space.text(world["captions"][:2]))
    with pytest.raises(RuntimeError, match="joint"):
        TextOnly().compose(None, world["captions"][:2])


def test_image_difference_learns_the_caption_direction(world):
    triples, test = split(world)
    model = ImageDifference(embed_dim=32, hidden_dim=None, n_epochs=40, batch_size=64, learning_rate=3e-3, random_state=0)
    model.fit(world["images"], triples)
    assert model.alpha_ > 0
    learned, image_only = recall(model, world, test), recall(ImageOnly(), world, test)
    # 40 same-pattern items share the target's colour; a model that follows the caption ranks among them
    assert learned > image_only + 0.1, (learned, image_only)


def test_combiner_beats_the_zero_shot_sum_and_early_stops(joint, world):
    triples, test = split(world)
    space = JointSpace.from_democlip(joint)
    calls = []

    def validation(model):
        calls.append(1)
        return recall(model, world, test[:50])

    model = Combiner(projection_dim=64, hidden_dim=128, n_epochs=30, patience=5, random_state=0)
    model.fit(world["images"], triples, joint=space, validation=validation)
    assert len(calls) == len(model.history_) >= 1
    assert recall(model, world, test) > recall(ZeroShotSum().fit(joint=space), world, test)


def test_combiner_saves_and_loads_only_in_its_joint_space(joint, world, tmp_path):
    triples, _ = split(world)
    space = JointSpace.from_democlip(joint)
    model = Combiner(projection_dim=16, hidden_dim=32, n_epochs=2, random_state=0).fit(world["images"], triples, joint=space)
    model.save(tmp_path / "combiner")
    again = Combiner.load(tmp_path / "combiner", joint=space)
    assert again.get_params() == model.get_params() and again.history_ == model.history_
    np.testing.assert_allclose(again.compose(space.image(world["images"][:4]), world["captions"][:4]),
                               model.compose(space.image(world["images"][:4]), world["captions"][:4]), atol=1e-6)
    # a retrained joint space is another space: the saved combiner refuses it instead of mixing the two
    other = JointSpace.from_democlip(DemoClip(embed_dim=32, n_epochs=1, batch_size=64, random_state=1).fit(
        world["images"], world["titles"], world["titles"]))
    with pytest.raises(StaleModelError, match="joint space"):
        Combiner.load(tmp_path / "combiner", joint=other)
    with pytest.raises(ValueError, match="joint"):
        Combiner.load(tmp_path / "combiner")


def test_image_difference_round_trips_through_estimator_save(world, tmp_path):
    triples, _ = split(world)
    model = ImageDifference(embed_dim=16, hidden_dim=32, n_epochs=2, random_state=0).fit(world["images"], triples)
    model.save(tmp_path / "image-difference")
    again = ImageDifference.load(tmp_path / "image-difference")
    np.testing.assert_allclose(again.gallery_vectors(world["images"][:4]), model.gallery_vectors(world["images"][:4]), atol=1e-6)
    assert again.alpha_ == model.alpha_ and again.get_params() == model.get_params()


def test_one_vocabulary_of_hyper_parameters():
    for model in (DemoClip(), ImageDifference(), Combiner()):
        params = model.get_params()
        assert {"n_epochs", "learning_rate", "reg", "batch_size", "random_state"} <= set(params), type(model)
        assert not {"epochs", "lr", "weight_decay", "seed"} & set(params)


def test_training_restores_the_thread_count(world):
    import torch

    triples, _ = split(world)
    torch.set_num_threads(2)
    try:
        ImageDifference(embed_dim=8, hidden_dim=None, n_epochs=1, random_state=0).fit(world["images"], triples)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
