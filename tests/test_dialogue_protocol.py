"""The dialogue task's protocol, training and chat service on the tiny world."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from recsys.catalog import Catalog
from recsys.models.base import model_path
from recsys.protocols import dialogue as task
from recsys.protocols import task_module


@pytest.fixture(scope="module")
def world(tiny_catalog_dir, tiny_artifacts, tmp_path_factory):
    """A private copy of the tiny world (with its artifacts), so saved models do not leak into other tests."""
    out = tmp_path_factory.mktemp("dialogue") / "tiny"
    shutil.copytree(tiny_catalog_dir, out, ignore=shutil.ignore_patterns("models"))
    return Catalog.load(out)


@pytest.fixture(scope="module")
def report(world):
    return task.evaluate(world, seed=0, quick=True)


def test_the_task_is_dispatched_by_name():
    assert task_module("dialogue") is task


def test_every_model_and_baseline_is_reported_with_wkt(report, world):
    expected = {"random", "zero-shot", "text-only", "dialogue-mse", "dialogue-infonce", "dialogue-infonce+compat",
                "oracle"}
    assert expected <= set(report)
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
    assert task.mean_wkt([np.array([3.0, 2.0, 1.0])], truth)["WKT"] == pytest.approx(1.0)
    assert task.mean_wkt([np.array([1.0, 2.0, 3.0])], truth)["WKT"] == pytest.approx(-1.0)
    assert list(task.ranks_from_scores(np.array([0.1, 0.9, 0.5]))) == [3, 1, 2]


def test_a_record_naming_an_unknown_item_is_reported_and_skipped(world, tmp_path):
    copy = tmp_path / "broken"
    shutil.copytree(world.root, copy)
    records = [json.loads(line) for line in (copy / "dialogues.jsonl").read_text().splitlines()]
    bad = next(r for r in records if r["split"] == "eval")
    bad["candidates"][1]["coordi"]["top"] = "no-such-item"
    (copy / "dialogues.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    data = task.dialogue_data(Catalog.load(copy))
    assert [d for d, _ in data.skipped] == [bad["dialogue_id"]]
    assert "no-such-item" in data.skipped[0][1]
    assert bad["dialogue_id"] not in [r["dialogue_id"] for r in data.eval_records]


def test_train_saves_the_page_models_and_the_stylist_answers(world):
    summary = task.train(world, seed=0, quick=True)
    assert set(summary) == set(task.SAVED_MODELS)
    for name in task.SAVED_MODELS:
        assert model_path(world.root, name).with_suffix(".safetensors").is_file()
        assert task.is_trained(world, name)
    stylist, info = task.build_stylist(world, "dialogue-infonce")
    assert info["compatibility"]
    proposal = stylist.respond([{"speaker": "US", "text": "I need an outfit for a garden party, a skirt please."}])
    slots = world.items["slot"].to_numpy()
    assert set(proposal.coordi) == {"outer", "top", "bottom", "shoes"}
    assert slots[proposal.coordi["shoes"]] == "shoes"
    assert slots[proposal.coordi["bottom"]] in ("bottom", "onepiece")
    assert len(proposal.candidates) == 3


def test_a_catalog_without_artifacts_gets_one_sentence(tmp_path):
    from recsys.data.fascode import ingest_fascode
    from tests.test_fascode import FIXTURE

    catalog, _ = ingest_fascode(FIXTURE, tmp_path / "fascode")
    with pytest.raises(task.DialogueTaskError, match="precompute"):
        task.evaluate(catalog, quick=True)
    data = task.dialogue_data(catalog)
    assert len(data.train_turns) == 3 and len(data.eval_records) == 2
    # The one-piece coordi of the fixture leaves the top position empty.
    assert (data.train_coordis[0] == -1).sum() == 1
