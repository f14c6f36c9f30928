"""The structural move changed no figure: ``evaluate --task all`` on the tiny world (seed 0) gives the figures the
code before the move gave (recorded from ``scripts/evaluate.py --catalog <tiny> --task all`` at commit 29ffea9).

Rows computed without training (baselines, oracle, raw similarity) must match to float precision; trained rows
to a small tolerance, because a different CPU's BLAS may round a training step differently.
"""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.slow

EXACT, TRAINED = 1e-9, 0.02
#: (task, model, metric) -> (figure before the move, tolerance)
# World version 3 (issue 15: relative captions and mined training triples) draws the captions from the stream the
# items after them are drawn from, so the tiny world itself changed and every figure that depends on its items,
# users, outfits or dialogues was recorded again from this code (the ones left are unchanged). Earlier moves: see
# this file's history.
FIGURES = {
    ("similar", "visual-similarity", "P@5"): (0.660483870967742, EXACT),
    ("similar", "visual-similarity", "P@10"): (0.5798387096774194, EXACT),
    ("similar", "random", "P@5"): (0.05967741935483871, EXACT),
    ("similar", "oracle", "P@10"): (0.9717741935483871, EXACT),
    ("compat", "random", "FITB"): (0.16666666666666666, EXACT),
    # Outfits and dialogues are drawn from the slot-pair compatibility truth since issue 15 (tau 5): the tiny world's
    # random negative sets and dialogue candidates changed (visual-similarity AUC was 0.6319; dialogue random WKT
    # -0.2348, zero-shot 0.8182 on its 12 evaluation dialogues).
    ("compat", "visual-similarity", "AUC"): (0.6458333333333334, EXACT),
    # The oracle's scores tie often (it compares attributes); FITB counts a tie for the top as a miss since issue 14
    # (it used to take the first candidate, which could be the answer): 0.5833 -> 0.5 on the tiny world.
    ("compat", "oracle", "FITB"): (0.5833333333333334, EXACT),
    ("personal", "random", "AUC"): (0.6079310344827585, EXACT),
    ("personal", "popularity", "AUC"): (0.6860344827586206, EXACT),
    ("personal", "popularity", "NDCG@10"): (0.04441954952908486, EXACT),
    ("personal", "oracle", "NDCG@10"): (0.23135910381111, EXACT),
    ("dialogue", "random", "WKT"): (-0.23484848484848472, EXACT),
    ("dialogue", "zero-shot", "WKT"): (0.6136363636363636, EXACT),
    ("dialogue", "oracle", "WKT"): (1.0, EXACT),
    ("composed", "random", "R@10"): (0.7, EXACT),
    ("composed", "image-only", "R@10"): (0.9, EXACT),
    # Ranks in the trained demo-clip space, so a trained row: 20 epochs of the heads instead of 40 (issue 12; on the
    # demo world text-only R@10 0.388 -> 0.393, R@50 0.857 -> 0.862, text/R@10 0.971 -> 0.989) move one of the tiny
    # world's 12 test triples (was 0.85).
    ("composed", "text-only", "R@10"): (0.95, TRAINED),
    ("composed", "zero-shot", "R@10"): (1.0, EXACT),
    # 10 epochs instead of 40 since issue 12 (chosen on validation outfits; on the demo world every compat figure of
    # both models held or rose): the tiny world's 12 test outfits moved these from 0.7719 and 0.7986.
    # Since issue 15: the new world truth, and 15 / 10 epochs for triplet / type-aware (chosen on validation outfits
    # of the demo world) moved them again from 0.7982 and 0.7708.
    ("compat", "triplet", "triplet_acc"): (0.6578947368421053, TRAINED),
    ("compat", "type-aware", "AUC"): (0.7708333333333334, TRAINED),
    ("personal", "vbpr-mm", "AUC"): (0.5934482758620688, TRAINED),
    ("personal", "bpr", "NDCG@10"): (0.08790468686363134, TRAINED),
    ("personal", "vecf", "AUC"): (0.6315999999999999, TRAINED),
    # The image encoder folds its batch norms since issue 12 (embeddings within 3e-5 of before): on the tiny world's
    # 12 evaluation dialogues that flips one ranked pair (was 0.3106; one standard error there is about 0.15).
    # Since issue 15 the dialogues are drawn from the new compatibility truth (was 0.25; a standard error about 0.2).
    ("dialogue", "dialogue-infonce", "WKT"): (0.2196969696969697, TRAINED),
    ("composed", "combiner", "R@10"): (1.0, TRAINED),
}


@pytest.fixture(scope="module")
def report(tiny_catalog_dir, tiny_artifacts, tmp_path_factory):
    from recsys.catalog import Catalog
    from recsys.evaluate import evaluate

    # A private copy: saved models other tests leave in the shared tiny world must not reach the evaluation.
    folder = tmp_path_factory.mktemp("figures") / "tiny"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("models"))
    return evaluate(Catalog.load(folder), seed=0)


@pytest.mark.parametrize("key", sorted(FIGURES), ids=lambda k: "/".join(k))
def test_figures_are_unchanged(report, key):
    task, model, metric = key
    figure, tolerance = FIGURES[key]
    assert report[task][model][metric] == pytest.approx(figure, abs=tolerance)
