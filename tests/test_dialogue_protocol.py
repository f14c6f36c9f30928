"""The dialogue task on the tiny world: its registry rows, protocol, models in the store, and the chat service."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from recsys import metrics
from recsys.catalog import Catalog
from recsys.models.registry import list_models, model_info, model_title
from recsys.store import ModelStore
from recsys.tasks.dialogue import data, protocol
from recsys.tasks.dialogue.service import ModelNotTrained, StylistService

TRAINED = ["dialogue-mse", "text-only", "dialogue-infonce"]


@pytest.fixture(scope="module")
def world(tiny_catalog_dir, tiny_artifacts, tmp_path_factory):
    """A private copy of the tiny world (with its artifacts), so saved models do not leak into other tests."""
    out = tmp_path_factory.mktemp("dialogue") / "tiny"
    shutil.copytree(tiny_catalog_dir, out, ignore=shutil.ignore_patterns("models"))
    return Catalog.load(out)


@pytest.fixture(scope="module")
def report(world):
    return protocol.evaluate(world, seed=0, quick=True)


@pytest.fixture(scope="module")
def store(world):
    """The world's store with the two chat models trained (quick) and saved."""
    from recsys.artifacts import load_artifacts

    store = ModelStore(world, load_artifacts(world), seed=0)
    for name in ("dialogue-infonce", "dialogue-mse"):
        store.fit("dialogue", name, quick=True)
    return store


def test_the_task_is_dispatched_by_name():
    from recsys.evaluate import task_module

    assert task_module("dialogue") is protocol


def test_the_registry_lists_the_trained_models_and_the_computed_rows():
    assert list_models("dialogue", trainable=True) == TRAINED
    assert set(list_models("dialogue", trainable=False)) == {"random", "zero-shot", "dialogue-infonce+compat", "oracle"}
    for name in list_models("dialogue"):
        assert model_title("dialogue", name) != name and model_info("dialogue", name).description
    with pytest.raises(ValueError, match="computed"):
        model_info("dialogue", "oracle").builder()


def test_every_registered_row_is_reported_with_wkt(report, world):
    assert list(report) == list_models("dialogue")
    n_eval = sum(1 for d in world.dialogues if d["split"] == "eval")
    for name, scores in report.items():
        assert -1.0 <= scores["WKT"] <= 1.0, name
        assert 0.0 <= scores["top1_acc"] <= 1.0
        assert scores["dialogues"] == n_eval and scores["skipped"] == 0
    # The true ranks come from the true coordi score, so the oracle ranks every dialogue perfectly.
    assert report["oracle"]["WKT"] == pytest.approx(1.0)
    assert report["oracle"]["top1_acc"] == 1.0


def test_mean_wkt_of_perfect_reversed_and_hand_computed_rankings():
    truth = [np.array([1, 2, 3])]
    assert protocol.mean_wkt([np.array([3.0, 2.0, 1.0])], truth)["WKT"] == pytest.approx(1.0)
    assert protocol.mean_wkt([np.array([1.0, 2.0, 3.0])], truth)["WKT"] == pytest.approx(-1.0)


def test_a_model_that_cannot_tell_the_candidates_apart_scores_as_the_worst_ranking():
    # Field report: three tied candidates used to take file order, which lists the best first: WKT 1.0, top-1 1.0.
    # Ties go against the model, so a constant scorer gets the reversed ranking's figures.
    tied = protocol.mean_wkt([np.array([0.5, 0.5, 0.5])], [np.array([1, 2, 3])])
    assert tied["WKT"] == pytest.approx(-1.0) and tied["top1_acc"] == 0.0
    # A tie between the best two only: the worse of them is predicted first.
    partly = protocol.mean_wkt([np.array([0.9, 0.9, 0.1])], [np.array([1, 2, 3])])
    assert partly["top1_acc"] == 0.0 and partly["WKT"] < 1.0


def test_a_record_naming_an_unknown_item_is_reported_and_skipped(world, tmp_path):
    copy = tmp_path / "broken"
    shutil.copytree(world.root, copy)
    records = [json.loads(line) for line in (copy / "dialogues.jsonl").read_text().splitlines()]
    bad = next(r for r in records if r["split"] == "eval")
    bad["candidates"][1]["coordi"]["top"] = "no-such-item"
    (copy / "dialogues.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    split = data.dialogue_data(Catalog.load(copy))
    assert [d for d, _ in split.skipped] == [bad["dialogue_id"]]
    assert "no-such-item" in split.skipped[0][1]
    assert bad["dialogue_id"] not in [r["dialogue_id"] for r in split.eval_records]


# ---------------------------------------------------------------------- the store
def test_a_saved_model_loads_through_a_new_store_with_the_same_scores(store, world):
    first = store.get("dialogue", "dialogue-mse")
    assert store.path("dialogue", "dialogue-mse").with_suffix(".safetensors").is_file()
    again = ModelStore(world, store.artifacts, seed=0).get("dialogue", "dialogue-mse")
    assert again is not None and again is not first
    assert again.text_encoder == store.artifacts.text_encoder_spec
    vectors = np.random.default_rng(0).normal(size=(3, first.transfer_.blocks[0].in_features)).astype(np.float32)
    assert np.allclose(again.score(vectors), first.score(vectors), atol=1e-6)
    status = ModelStore(world, store.artifacts, seed=0).status("dialogue")
    assert status["dialogue-mse"].ready and status["dialogue-infonce"].ready
    assert status["text-only"].state == "missing"


class _OtherTextEncoder:
    """The same artifacts, as if re-precomputed with another text encoder of the same width."""

    text_encoder_spec = "minilm:/models/multilingual-minilm"

    def __init__(self, artifacts):
        self._artifacts = artifacts

    def __getattr__(self, name):
        return getattr(self._artifacts, name)


def test_a_model_saved_for_another_text_encoder_is_stale(store, world):
    other = ModelStore(world, _OtherTextEncoder(store.artifacts), seed=0)
    assert other.get("dialogue", "dialogue-infonce") is None
    assert "text encoder" in other.problem("dialogue", "dialogue-infonce")
    assert other.status("dialogue")["dialogue-infonce"].state == "stale"
    chat = StylistService(world, _OtherTextEncoder(store.artifacts), other)
    with pytest.raises(ModelNotTrained, match="text encoder"):
        chat.stylist("dialogue-infonce")


def test_a_model_saved_with_another_split_seed_is_stale(store, world):
    other = ModelStore(world, store.artifacts, seed=1)
    assert other.get("dialogue", "dialogue-mse") is None
    assert "split seed" in other.problem("dialogue", "dialogue-mse")


# ---------------------------------------------------------------------- the chat service
def test_the_stylist_answers_a_message_with_a_set_and_ranked_alternatives(store, world):
    chat = StylistService(world, store.artifacts, store)
    assert chat.models()[0] == "dialogue-infonce" and set(chat.models()) == set(TRAINED)
    assert chat.status("dialogue-infonce").ready and chat.status("text-only").state == "missing"
    reply = chat.reply("I need an outfit for a garden party, a skirt please.")
    proposal = reply.proposal
    slots = world.items["slot"].to_numpy()
    assert set(proposal.coordi) == {"outer", "top", "bottom", "shoes"}
    assert slots[proposal.coordi["shoes"]] == "shoes"
    assert slots[proposal.coordi["bottom"]] in ("bottom", "onepiece")
    assert len(proposal.candidates) == 3 and [c["rank"] for c in proposal.candidates] == [1, 2, 3]
    assert [t["speaker"] for t in reply.turns] == ["US", "CO"] and "How about this coordi" in reply.turns[1]["text"]
    summary = chat.summary()
    assert summary.compatibility and summary.title == model_title("dialogue", "dialogue-infonce")


def test_an_unusable_message_is_not_added_and_says_why(store, world):
    chat = StylistService(world, store.artifacts, store)
    reply = chat.reply("   ", [{"speaker": "US", "text": "a coat"}])
    assert reply.proposal is None and len(reply.turns) == 1 and "empty" in reply.notes[0]
    assert any("English only" in n for n in chat.check_message("가을 축제에 입을 치마").notes)


def test_an_evaluation_dialogue_ranks_its_own_candidates_with_their_true_ranks(store, world):
    chat = StylistService(world, store.artifacts, store)
    dialogue_id = chat.evaluation_ids()[0]
    reply = chat.reply(None, chat.evaluation_turns(dialogue_id), model="dialogue-mse", evaluation_id=dialogue_id)
    assert sorted(c["true_rank"] for c in reply.proposal.candidates) == [1, 2, 3]
    with pytest.raises(KeyError, match="no evaluation dialogue"):
        chat.evaluation_turns("no-such-dialogue")


def test_a_missing_model_says_how_to_train_it_and_trains_through_the_store(world, store):
    chat = StylistService(world, store.artifacts, ModelStore(world, store.artifacts, seed=0))
    with pytest.raises(ModelNotTrained, match="scripts/train.py"):
        chat.stylist("text-only")
    assert chat.trains_here()  # the tiny world has 24 training dialogues
    steps = []
    chat.train("text-only", progress=lambda fraction, message: steps.append(fraction))
    assert steps and steps[-1] == pytest.approx(1.0)
    assert chat.status("text-only").ready and chat.stylist("text-only").model.use_image is False


def test_a_catalog_without_artifacts_gets_one_sentence(tmp_path):
    from recsys.data.fascode import ingest_fascode
    from tests.test_fascode import FIXTURE

    catalog, _ = ingest_fascode(FIXTURE, tmp_path / "fascode")
    with pytest.raises(data.DialogueTaskError, match="precompute"):
        protocol.evaluate(catalog, quick=True)
    with pytest.raises(data.DialogueTaskError, match="precompute"):
        StylistService(catalog, None, ModelStore(catalog)).status("dialogue-infonce")
    split = data.dialogue_data(catalog)
    assert len(split.train_turns) == 3 and len(split.eval_records) == 2
    # The one-piece coordi of the fixture leaves the top position empty.
    assert (split.train_coordis[0] == -1).sum() == 1


def test_a_repeated_rank_is_skipped_and_never_poisons_the_mean(world, tmp_path):
    # Field report: an evaluation record whose two candidates are both ranked 1 made every model's mean WKT NaN.
    from recsys.tasks.dialogue.data import dialogue_data, rank_problem

    assert rank_problem([1, 1]) and rank_problem([1, "x"]) and rank_problem([2, 3]) and rank_problem([1, 2]) is None
    copy = tmp_path / "repeated"
    shutil.copytree(world.root, copy)
    records = [json.loads(line) for line in (copy / "dialogues.jsonl").read_text().splitlines()]
    target = next(r for r in records if r.get("split") == "eval")
    for candidate in target["candidates"][:2]:
        candidate["rank"] = 1
    (copy / "dialogues.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    data = dialogue_data(Catalog.load(copy))
    assert [d for d, reason in data.skipped if "1 to 3" in reason] == [target["dialogue_id"]]
    assert target["dialogue_id"] not in [r["dialogue_id"] for r in data.eval_records]
    # And a mean over figures of which one is undefined is the mean of the others, with the count.
    figures = protocol.mean_wkt([np.array([3.0, 2.0, 1.0]), np.array([np.nan, 1.0, 0.0])],
                                [np.array([1, 2, 3]), np.array([1, 2, 3])])
    assert figures["WKT"] == pytest.approx(1.0) and figures["undefined"] == 1 and figures["dialogues"] == 2


def test_mean_wkt_reports_its_standard_errors_by_hand():
    # Two dialogues: one ranked perfectly (tau 1, top-1 hit), one reversed (tau -1, miss): SE of [1, -1] is 2 / 2.
    result = protocol.mean_wkt([np.array([3.0, 2.0, 1.0]), np.array([1.0, 2.0, 3.0])], [np.array([1, 2, 3])] * 2)
    assert result["WKT"] == pytest.approx(0.0) and result["WKT_se"] == pytest.approx(1.0)
    assert result[metrics.PER_QUERY]["WKT"][0] == pytest.approx([1.0, -1.0])  # per dialogue, for paired claims
    assert result["top1_acc"] == 0.5 and result["top1_acc_se"] == pytest.approx(0.5)


def test_the_quick_report_leaves_out_the_evaluation_only_dialogues(tiny_catalog):
    import copy

    from recsys.tasks.dialogue.data import dialogue_data

    catalog = copy.copy(tiny_catalog)
    # The last three evaluation dialogues marked as the built-in world marks its evaluation-only ones.
    evaluation = [k for k, d in enumerate(tiny_catalog.dialogues) if d.get("split") == "eval"]
    catalog.dialogues = [dict(d, extended=True) if k in evaluation[-3:] else d
                         for k, d in enumerate(tiny_catalog.dialogues)]
    full, quick = dialogue_data(catalog), dialogue_data(catalog, extended=False)
    assert len(full.eval_records) == len(evaluation) == len(quick.eval_records) + 3
    assert [r["dialogue_id"] for r in quick.eval_records] == [r["dialogue_id"] for r in full.eval_records[:-3]]
    assert len(quick.train_turns) == len(full.train_turns)  # never a training record
