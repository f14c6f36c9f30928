"""The ray precompute engine writes what the local engine writes, resumes the same way, and says when Ray is missing."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys

import numpy as np
import pytest

from _scripts import load_script
from _synthetic import single_threaded
from recsys.artifacts import FILES, load_artifacts
from recsys.precompute import EngineError, create_engine, precompute

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="Ray Data is an optional extra: pip install -r requirements-scale.txt")

SHARD_SIZE = 64  # the tiny world's 248 items in 4 shards (the session's local artifacts have one)
SETTINGS = {"device": "cpu", "shard_size": SHARD_SIZE, "progress": False}
VECTOR_KEYS = ("image", "text_title", "text_description")


def ray_engine():
    # One encoder worker: on two shared cores a second one mostly waits for its own torch import.
    return create_engine("ray", num_cpus=2, num_encode_workers=1, object_store_mb=128)


@pytest.fixture(scope="module")
def runs(tiny_catalog, tiny_artifacts, tmp_path_factory):
    """The tiny world precomputed by the ray engine, beside the session's artifacts from the local engine."""
    if not HAS_RAY:
        pytest.skip("Ray Data is an optional extra: pip install -r requirements-scale.txt")
    import ray

    root = tmp_path_factory.mktemp("engines")
    local = json.loads((tiny_catalog.root / "artifacts" / "manifest.json").read_text())
    with single_threaded():
        distributed = precompute(tiny_catalog, artifacts_dir=root / "ray", engine=ray_engine(), **SETTINGS)
        yield tiny_catalog, root, local, distributed
    ray.shutdown()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def without_run_details(manifest: dict) -> dict:
    """The manifest less when and how fast it was made, and less the shard size (the local run's is the default)."""
    kept = {key: value for key, value in manifest.items() if key not in ("created_at", "timings", "shards")}
    kept["shard_state"] = {key: value for key, value in kept["shard_state"].items() if key != "shard_size"}
    return kept


@pytest.mark.slow
@needs_ray
def test_ray_engine_writes_the_local_engines_artifacts(runs):
    catalog, root, local, distributed = runs
    assert distributed["timings"]["engine"]["name"] == "ray" and local["timings"]["engine"] == {"name": "local"}
    assert without_run_details(distributed) == without_run_details(local)
    assert distributed["shards"] == {"size": SHARD_SIZE, "count": 4, "computed": {
        "image": [0, 1, 2, 3], "text_title": [0, 1, 2, 3], "text_description": [0, 1, 2, 3]}}
    assert distributed["timings"]["image_items_encoded"] == len(catalog) == 248
    ours = load_artifacts(catalog, artifacts_dir=root / "ray")
    theirs = load_artifacts(catalog)
    for key in (*VECTOR_KEYS, "feature_maps"):
        # Same order: row i of both is item i, so the per-row cosine is ~1 only if no row moved.
        assert cosines(getattr(ours, key), getattr(theirs, key)).min() >= 0.9999, key
    np.testing.assert_allclose(ours.fmap_pca_components, theirs.fmap_pca_components, atol=1e-3)
    assert ours.map2d.shape == theirs.map2d.shape and np.isfinite(ours.map2d).all()


@pytest.mark.slow
@needs_ray
def test_ray_engine_resumes_recomputing_only_the_missing_shard(runs):
    catalog, root, _, _ = runs
    folder = root / "resumed"
    shutil.copytree(root / "ray", folder)
    shard_dir = folder / "shards"
    before = {path.name: path.stat().st_mtime_ns for path in shard_dir.glob("*.npy")}
    original = np.load(folder / FILES["image"])
    # An interrupted run: one image shard never finished and no manifest was written.
    (shard_dir / "image_00002.npy").unlink()
    (folder / "manifest.json").unlink()

    with single_threaded():
        manifest = precompute(catalog, artifacts_dir=folder, engine=ray_engine(), **SETTINGS)

    assert manifest["shards"]["computed"] == {"image": [2], "text_title": [], "text_description": []}
    assert manifest["timings"]["image_items_encoded"] == SHARD_SIZE
    after = {path.name: path.stat().st_mtime_ns for path in shard_dir.glob("*.npy")}
    changed = {name for name in before if name in after and before[name] != after[name]} | (set(after) - set(before))
    assert changed == {"image_00002.npy", "fmap_00002.npy"}
    assert cosines(np.load(folder / FILES["image"]), original).min() >= 0.9999
    assert json.loads((folder / "manifest.json").read_text()) == manifest


def test_missing_ray_is_one_sentence_naming_the_install(tiny_catalog, tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # "import ray" now fails as if it were not installed
    with pytest.raises(EngineError, match=r"^The ray engine needs Ray Data, which is not installed; "
                                          r"run pip install -r requirements-scale.txt\.$"):
        precompute(tiny_catalog, artifacts_dir=tmp_path / "none", engine="ray", progress=False)
    assert not (tmp_path / "none").exists()  # refused before any work

    script = load_script("precompute")
    assert script.main(["--catalog", str(tiny_catalog.root), "--engine", "ray", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == ("error: The ray engine needs Ray Data, which is not installed; "
                                               "run pip install -r requirements-scale.txt.")


def test_ray_options_without_the_ray_engine_are_refused(tiny_catalog, capsys):
    script = load_script("precompute")
    assert script.main(["--catalog", str(tiny_catalog.root), "--ray-address", "auto"]) == 2
    assert capsys.readouterr().err.strip() == "error: --ray-address is only for --engine ray."
    with pytest.raises(ValueError, match="Unknown precompute engine 'spark'; choose one of local, ray."):
        create_engine("spark")
