"""The structural move changed no figure: ``evaluate --task all`` on the tiny world (seed 0) gives the figures the
code before the move gave (recorded from ``scripts/evaluate.py --catalog <tiny> --task all`` at commit 29ffea9).

Rows computed without training (baselines, oracle, raw similarity) must match to float precision; trained rows
to a small tolerance, because a different CPU's BLAS may round a training step differently.
"""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.slow

EXACT = {
    ("similar", "visual-similarity", "P@5"): 0.6725806451612903,
    ("similar", "visual-similarity", "P@10"): 0.5798387096774194,
    ("similar", "random", "P@5"): 0.05967741935483871,
    ("similar", "oracle", "P@10"): 0.9717741935483871,
    ("compat", "random", "FITB"): 0.16666666666666666,
    ("compat", "visual-similarity", "AUC"): 0.6319444444444444,
    ("compat", "oracle", "FITB"): 0.5833333333333334,
    ("personal", "random", "AUC"): 0.49119999999999997,
    ("personal", "popularity", "AUC"): 0.7094,
    ("personal", "popularity", "NDCG@10"): 0.03799312823132173,
    ("personal", "oracle", "NDCG@10"): 0.21727124928906152,
    ("dialogue", "random", "WKT"): -0.23484848484848472,
    ("dialogue", "zero-shot", "WKT"): 0.8181818181818182,
    ("dialogue", "oracle", "WKT"): 1.0,
    ("composed", "random", "R@10"): 0.7,
    ("composed", "image-only", "R@10"): 0.9,
    ("composed", "text-only", "R@10"): 0.85,
    ("composed", "zero-shot", "R@10"): 1.0,
}
TRAINED = {
    ("compat", "triplet", "triplet_acc"): 0.7719298245614035,
    ("compat", "type-aware", "AUC"): 0.7986111111111112,
    ("personal", "vbpr-mm", "AUC"): 0.7336,
    ("personal", "bpr", "NDCG@10"): 0.06083085520221049,
    ("personal", "vecf", "AUC"): 0.6315999999999999,
    ("dialogue", "dialogue-infonce", "WKT"): 0.31060606060606055,
    ("composed", "combiner", "R@10"): 1.0,
}


@pytest.fixture(scope="module")
def report(tiny_catalog_dir, tiny_artifacts, tmp_path_factory):
    from recsys.catalog import Catalog
    from recsys.evaluate import evaluate

    # A private copy: saved models other tests leave in the shared tiny world must not reach the evaluation.
    folder = tmp_path_factory.mktemp("figures") / "tiny"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("models"))
    return evaluate(Catalog.load(folder), seed=0)


@pytest.mark.parametrize("key", sorted(EXACT), ids=lambda k: "/".join(k))
def test_untrained_rows_are_unchanged(report, key):
    task, model, metric = key
    assert report[task][model][metric] == pytest.approx(EXACT[key], abs=1e-9)


@pytest.mark.parametrize("key", sorted(TRAINED), ids=lambda k: "/".join(k))
def test_trained_rows_are_unchanged(report, key):
    task, model, metric = key
    assert report[task][model][metric] == pytest.approx(TRAINED[key], abs=0.02)
