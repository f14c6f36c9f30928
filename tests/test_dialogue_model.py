"""The FASCODE-style dialogue model on a small synthetic problem: it must learn, rank, save and load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys.models.base import StaleModelError, clone
from recsys.models.dialogue import (
    FASCODE_SLOTS,
    DialogueCoordiRecommender,
    ProjectionNet,
    TransferNet,
    cosine_agreement,
)
from recsys.tasks.dialogue.messages import check_message, dialogue_vectors, named_slots
from recsys.tasks.dialogue.service import Stylist

SLOTS = ["outer", "top", "bottom", "shoes"]


class HashingEncoder:
    """A stand-in text encoder: a bag of hashed words, so tests need no model weights."""

    dim = 64

    def encode_text(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, hash(word) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


@pytest.fixture(scope="module")
def problem():
    """Items with image/text vectors; a dialogue's vector is a noisy mix of its gold items' text vectors."""
    rng = np.random.default_rng(0)
    n_items, n_dialogues = 80, 160
    image = rng.normal(size=(n_items, 32)).astype(np.float32)
    text = rng.normal(size=(n_items, 24)).astype(np.float32)
    slots = np.array([SLOTS[i % 4] for i in range(n_items)])
    by_slot = [np.flatnonzero(slots == s) for s in SLOTS]
    coordis = np.stack([[rng.choice(by_slot[s]) for s in range(4)] for _ in range(n_dialogues)])
    mix = rng.normal(size=(24, 48)).astype(np.float32)
    vectors = np.stack([text[row].sum(axis=0) @ mix for row in coordis]) + 0.1 * rng.normal(size=(n_dialogues, 48))
    return dict(image=image, text=text, slots=list(slots), coordis=coordis, vectors=vectors.astype(np.float32))


def fit(problem, n_train=120, **kwargs):
    params = dict(dim=32, hidden=64, n_epochs=40, batch_size=32, n_negatives=40, random_state=0)
    params.update(kwargs)
    model = DialogueCoordiRecommender(**params)
    return model.fit(problem["vectors"][:n_train], problem["coordis"][:n_train], problem["image"], problem["text"],
                     problem["slots"])


@pytest.fixture(scope="module")
def mse_model(problem):
    return fit(problem, objective="mse")


@pytest.fixture(scope="module")
def infonce_model(problem):
    return fit(problem, objective="infonce")


def held_out_hit_rate(model, problem, k=3):
    """Share of held-out gold items that are among the k nearest items of their slot (chance: k/20)."""
    hits = []
    for vector, row in zip(problem["vectors"][120:], problem["coordis"][120:]):
        proposed = model.propose(vector[None], k=k)
        hits += [row[s] in proposed[slot] for s, slot in enumerate(FASCODE_SLOTS)]
    return float(np.mean(hits))


@pytest.mark.parametrize("name, times_chance", [("mse_model", 2.0), ("infonce_model", 3.0)])
def test_both_objectives_learn_to_find_held_out_gold_items(request, problem, name, times_chance):
    model = request.getfixturevalue(name)
    assert model.history_[-1] < model.history_[0]
    assert held_out_hit_rate(model, problem) > times_chance * (3 / 20)


def test_gold_sets_outrank_random_sets(infonce_model, problem):
    rng = np.random.default_rng(1)
    wins = []
    for vector, row in zip(problem["vectors"][120:], problem["coordis"][120:]):
        other = problem["coordis"][rng.integers(120)]
        scores = infonce_model.set_scores(vector[None], np.stack([row, other]))
        wins.append(scores[0] > scores[1])
    assert np.mean(wins) > 0.7  # chance: 0.5


def test_proposals_stay_in_their_slot_and_scores_mark_other_items(mse_model, problem):
    proposed = mse_model.propose(problem["vectors"][:1], k=2)
    assert set(proposed) == set(FASCODE_SLOTS)
    for slot, rows in proposed.items():
        assert len(rows) == 2 and all(problem["slots"][r] == slot for r in rows)
    scores = mse_model.score(problem["vectors"][:2])
    assert scores.shape == (2, len(problem["slots"])) and np.isfinite(scores).all()


def test_empty_slots_of_a_candidate_are_left_out_of_its_distance(mse_model, problem):
    row = problem["coordis"][0].copy()
    partial = row.copy()
    partial[0] = -1
    distances = mse_model.set_distances(problem["vectors"][:1], np.stack([row, partial]))
    assert np.isfinite(distances).all() and distances[1] != distances[0]


def test_the_compatibility_term_changes_the_score_by_its_weight(problem):
    model = fit(problem, objective="infonce", n_epochs=2, compat_weight=0.5)
    sets = problem["coordis"][:3]
    plain = model.set_scores(problem["vectors"][:1], sets)
    with_compat = model.set_scores(problem["vectors"][:1], sets, compatibility=lambda idx: float(len(idx)))
    assert np.allclose(with_compat - plain, 0.5 * 4)


def test_cosine_agreement_of_a_set():
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert cosine_agreement(vectors, [0, 1]) == pytest.approx(1.0)
    assert cosine_agreement(vectors, [0, 1, 2]) == pytest.approx(1 / 3)
    assert cosine_agreement(vectors, [0, -1]) == 0.0


def test_items_without_an_image_are_embedded_from_text_alone(problem):
    available = np.ones(len(problem["slots"]), dtype=bool)
    available[:10] = False
    model = DialogueCoordiRecommender(dim=16, hidden=32, n_epochs=1, batch_size=32, random_state=0)
    model.fit(problem["vectors"][:64], problem["coordis"][:64], problem["image"], problem["text"], problem["slots"],
              image_available=available)
    net = model.projection_
    image_mask = torch.as_tensor(available, dtype=torch.float32)
    text_mask = torch.ones(len(available))
    scrambled = problem["image"].copy()
    scrambled[:10] = 100.0
    with torch.no_grad():
        before = net(torch.as_tensor(problem["image"]), torch.as_tensor(problem["text"]), image_mask, text_mask)
        after = net(torch.as_tensor(scrambled), torch.as_tensor(problem["text"]), image_mask, text_mask)
    assert torch.allclose(before[:10], after[:10]) and not torch.allclose(before[10:20], after[10:20] * 0 + 1)
    assert np.allclose(model.item_embeddings_[:10], before[:10].numpy(), atol=1e-5)


def test_missing_modality_dropout_drops_about_15_percent_and_never_both():
    model = DialogueCoordiRecommender(modality_dropout=0.15)
    ones = torch.ones(20000)
    image_mask, text_mask = model._modality_dropout(ones, ones, np.random.default_rng(0))
    dropped = (image_mask == 0) | (text_mask == 0)
    assert 0.13 < float(dropped.float().mean()) < 0.17
    assert not bool(((image_mask == 0) & (text_mask == 0)).any())


def test_the_networks_have_the_papers_shape():
    transfer = TransferNet(in_dim=48, dim=300, n_slots=4)
    blocks = [m for m in transfer.blocks if isinstance(m, torch.nn.Linear)]
    norms = [m for m in transfer.blocks if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(blocks) == len(norms) == 4
    transfer.eval()
    out = transfer(torch.randn(3, 48))
    assert out.shape == (3, 4, 300) and torch.allclose(out.norm(dim=-1), torch.ones(3, 4), atol=1e-5)
    projection = ProjectionNet(32, 24, 300)
    fused = projection(torch.randn(5, 32), torch.randn(5, 24), torch.ones(5), torch.zeros(5))
    assert fused.shape == (5, 300)


def test_save_and_load_give_the_same_scores(tmp_path, mse_model, problem):
    mse_model.save(tmp_path / "m")
    again = DialogueCoordiRecommender.load(tmp_path / "m")
    assert again.get_params() == mse_model.get_params()
    assert np.allclose(again.score(problem["vectors"][:3]), mse_model.score(problem["vectors"][:3]), atol=1e-5)
    assert again.history_ == pytest.approx(mse_model.history_)


def test_parameters_come_from_the_constructor_and_clone_is_unfitted(mse_model):
    params = mse_model.get_params()
    assert {"n_epochs", "learning_rate", "batch_size", "reg", "random_state", "text_encoder"} <= set(params)
    assert not {"epochs", "lr", "weight_decay", "seed"} & set(params)
    copy = clone(mse_model)
    assert copy.get_params() == params and not hasattr(copy, "item_embeddings_")
    with pytest.raises(RuntimeError, match="not fitted"):
        copy.save("/nonexistent/never-written")


def test_a_model_trained_with_another_text_encoder_does_not_load(tmp_path, problem):
    model = fit(problem, n_epochs=1, text_encoder="minilm")
    model.save(tmp_path / "m")
    assert DialogueCoordiRecommender.load(tmp_path / "m", text_encoder="minilm").text_encoder == "minilm"
    with pytest.raises(StaleModelError, match="text encoder"):
        DialogueCoordiRecommender.load(tmp_path / "m", text_encoder="minilm:/models/multilingual")


def test_fit_leaves_the_torch_thread_setting_as_it_found_it(problem):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(problem, n_epochs=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_fit_rejects_bad_input(problem):
    with pytest.raises(ValueError, match="objective"):
        DialogueCoordiRecommender(objective="hinge").fit(problem["vectors"], problem["coordis"], problem["image"],
                                                        problem["text"], problem["slots"])
    with pytest.raises(ValueError, match="one coordi row"):
        DialogueCoordiRecommender().fit(problem["vectors"][:5], problem["coordis"][:4], problem["image"],
                                        problem["text"], problem["slots"])


# ---------------------------------------------------------------------- dialogue text and messages
def test_dialogue_vectors_are_the_mean_and_the_last_user_turn():
    encoder = HashingEncoder()
    turns = [{"speaker": "US", "text": "red jacket"}, {"speaker": "CO", "text": "sure"},
             {"speaker": "US", "text": "and boots"}]
    vectors = dialogue_vectors(encoder, [turns, [{"speaker": "CO", "text": "hello"}]])
    first, last = encoder.encode_text(["red jacket", "and boots"])
    assert np.allclose(vectors[0, :64], (first + last) / 2) and np.allclose(vectors[0, 64:], last)
    assert not vectors[1].any()  # no user text: zeros


def test_a_recurring_text_is_encoded_once_and_dialogues_once_per_process():
    from recsys.tasks.dialogue.data import encoded_dialogues

    class CountingEncoder(HashingEncoder):
        texts = 0

        def encode_text(self, texts):
            CountingEncoder.texts += len(texts)
            return super().encode_text(texts)

    dialogues = [[{"speaker": "US", "text": "Hi!"}, {"speaker": "US", "text": f"a {colour} coat"}]
                 for colour in ("red", "blue", "red")]
    encoder = CountingEncoder()
    vectors = dialogue_vectors(encoder, dialogues)
    assert CountingEncoder.texts == 3  # "Hi!", "a red coat", "a blue coat"
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_allclose(vectors[1, 64:], HashingEncoder().encode_text(["a blue coat"])[0])
    spec = "counting-encoder-for-this-test"
    first = encoded_dialogues(spec, dialogues, encoder)
    again = encoded_dialogues(spec, dialogues, encoder)
    assert CountingEncoder.texts == 6 and np.array_equal(first, again) and first is not again
    encoded_dialogues(spec, dialogues[:2], encoder)  # other dialogues: encoded
    assert CountingEncoder.texts == 9


def test_the_stylist_proposes_one_item_per_slot_and_ranks_candidates(mse_model, problem):
    class FixedEncoder(HashingEncoder):
        dim = 24

    stylist = Stylist(mse_model, FixedEncoder())
    # The problem's dialogue vectors are 48-d = 2 x 24, as dialogue_vectors makes for a 24-d encoder.
    proposal = stylist.respond([{"speaker": "US", "text": "a red jacket"}])
    assert set(proposal.coordi) == set(FASCODE_SLOTS)
    assert [c["rank"] for c in proposal.candidates] == [1, 2, 3]
    scores = [c["score"] for c in proposal.candidates]
    assert scores == sorted(scores, reverse=True)
    ranked = stylist.respond([{"speaker": "US", "text": "shoes"}], candidates=problem["coordis"][:3],
                             true_ranks=[2, 1, 3])
    assert sorted(c["true_rank"] for c in ranked.candidates) == [1, 2, 3]


def test_named_slots_in_english_and_korean():
    assert named_slots("For the top, a striped shirt please") == ["top"]
    assert named_slots("I want boots and a coat") == ["outer", "shoes"]
    assert named_slots("치마 말고 원피스가 좋겠어요") == ["bottom"]
    assert named_slots("something for a festival") == []
    assert named_slots("my laptop bag") == []


def test_check_message_handles_empty_long_foreign_and_slotless_messages():
    assert not check_message("   ").usable
    assert "empty" in check_message("").problems[0]
    long = check_message("a red top " * 500)
    assert long.usable and len(long.text) == 1000 and any("very long" in n for n in long.notes)
    korean = check_message("가을 축제에 입을 치마 추천해 주세요")
    assert korean.usable and any("English only" in n for n in korean.notes)
    assert not any("English" in n for n in check_message("가을 축제", english_only_encoder=False).notes)
    slotless = check_message("something for an autumn festival")
    assert any("names no slot" in n for n in slotless.notes)
    assert check_message("a navy coat please").notes == []
