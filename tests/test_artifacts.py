"""Artifacts: precompute writes shards + manifest, resumes, and load_artifacts refuses what does not match."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from _synthetic import tiny_open_clip_spec, write_synthetic_catalog
from recsys.artifacts import ArtifactError, load_artifacts
from recsys.catalog import Catalog
from recsys.config import PROJECT_ROOT
from recsys.precompute import precompute
from recsys.projections import catalog_map

N_ITEMS = 24
SHARD_SIZE = 10  # 3 shards: 10 + 10 + 4



pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture(scope="module")
def built(tmp_path_factory, encoders):
    """A synthetic catalog with artifacts computed once for the module."""
    catalog = write_synthetic_catalog(tmp_path_factory.mktemp("artifacts") / "shapes", n_items=N_ITEMS)
    image_encoder, text_encoder = encoders
    # pca_sample >= N_ITEMS: the whole catalog is encoded once and the PCA fitted on all of it.
    manifest = precompute(catalog, image_encoder, text_encoder, shard_size=SHARD_SIZE, num_workers=0, progress=False)
    return catalog, manifest


def fresh_copy(catalog: Catalog, destination) -> Catalog:
    shutil.copytree(catalog.root, destination)
    return Catalog.load(destination)


def test_manifest_records_what_made_the_artifacts(built, encoders):
    catalog, manifest = built
    stored = json.loads((catalog.root / "artifacts" / "manifest.json").read_text())
    assert stored == manifest
    assert manifest["schema_version"] == 1
    assert manifest["item_count"] == N_ITEMS
    assert manifest["catalog_fingerprint"] == catalog.fingerprint()
    image_encoder, text_encoder = encoders
    assert manifest["image_encoder"] == {"spec": "effnet-lite0", "dim": 1280, "modality": "image",
                                         "precision": image_encoder.precision}
    assert manifest["text_encoder"] == {"spec": "minilm", "dim": 384, "modality": "text",
                                        "precision": text_encoder.precision}
    assert manifest["shard_state"]["text_precision"] == text_encoder.precision
    assert manifest["created_at"]
    assert manifest["timings"]["image_items_per_s"] > 0 and manifest["timings"]["total_seconds"] > 0
    assert manifest["shards"]["computed"]["image"] == [0, 1, 2]
    assert manifest["feature_maps"]["channels"] == 256
    assert 0.5 < manifest["feature_maps"]["explained_variance_ratio"] <= 1.0


def test_arrays_are_normalized_float32_and_read_only(built):
    catalog, _ = built
    artifacts = load_artifacts(catalog, image_encoder="effnet-lite0", text_encoder="minilm")
    for vectors, dim in ((artifacts.image, 1280), (artifacts.text_title, 384), (artifacts.text_description, 384)):
        assert vectors.dtype == np.float32 and vectors.shape == (N_ITEMS, dim)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert not vectors.flags.writeable
    assert artifacts.feature_maps.shape == (N_ITEMS, 256, 7, 7) and artifacts.feature_maps.dtype == np.float16
    assert artifacts.map2d.shape == (N_ITEMS, 2) and np.isfinite(artifacts.map2d).all()
    assert artifacts.text("title") is artifacts.text_title
    # Same colour + category -> same title -> the same title vector.
    titles = catalog.items["title"]
    first, second = np.flatnonzero(titles == titles[titles.duplicated()].iloc[0])[:2]  # 24 items, 20 titles
    np.testing.assert_allclose(artifacts.text_title[first], artifacts.text_title[second], atol=1e-5)


def test_stored_vectors_match_a_fresh_encoding(built, encoders):
    catalog, _ = built
    artifacts = load_artifacts(catalog)
    image_encoder, _ = encoders
    item_id = catalog.items["item_id"].iloc[13]  # in the second shard
    pooled, raw_maps = image_encoder.encode_images([catalog.load_image(item_id)], return_feature_maps=True)
    np.testing.assert_allclose(artifacts.image[13], pooled[0], atol=1e-4)
    projected = artifacts.project_feature_maps(raw_maps)
    assert projected.shape == (1, 256, 7, 7)
    np.testing.assert_allclose(artifacts.feature_maps[13].astype(np.float32), projected[0], atol=0.05, rtol=0.01)


def test_rerun_is_resumable_and_recomputes_only_missing_shards(built, encoders, tmp_path):
    catalog = fresh_copy(built[0], tmp_path / "copy")
    shard_dir = catalog.root / "artifacts" / "shards"
    before = {path.name: path.stat().st_mtime_ns for path in shard_dir.glob("*.npy")}
    original = np.load(catalog.root / "artifacts" / "image.npy")
    # An interrupted run: one image shard never finished and no manifest was written.
    (shard_dir / "image_00001.npy").unlink()
    (catalog.root / "artifacts" / "manifest.json").unlink()

    manifest = precompute(catalog, *encoders, shard_size=SHARD_SIZE, num_workers=1, progress=False)

    assert manifest["shards"]["computed"] == {"image": [1], "text_title": [], "text_description": [], }
    assert manifest["timings"]["image_items_encoded"] == SHARD_SIZE
    after = {path.name: path.stat().st_mtime_ns for path in shard_dir.glob("*.npy")}
    changed = {name for name in before if name in after and before[name] != after[name]} | (set(after) - set(before))
    assert changed == {"image_00001.npy", "fmap_00001.npy"}
    np.testing.assert_allclose(np.load(catalog.root / "artifacts" / "image.npy"), original, atol=1e-5)


def test_rerun_when_up_to_date_does_nothing(built, encoders):
    catalog, manifest = built
    again = precompute(catalog, *encoders, shard_size=SHARD_SIZE, num_workers=0, progress=False)
    assert again["created_at"] == manifest["created_at"] and again == manifest


def test_feature_map_pca_fitted_on_a_sample(encoders, tmp_path):
    catalog = write_synthetic_catalog(tmp_path / "sampled", n_items=6)
    manifest = precompute(catalog, *encoders, shard_size=4, num_workers=0, pca_sample=3, fmap_channels=16, progress=False)
    assert manifest["feature_maps"]["pca_sample_items"] == 3 and manifest["feature_maps"]["channels"] == 16
    assert manifest["timings"]["pca_seconds"] > 0
    artifacts = load_artifacts(catalog)
    assert artifacts.feature_maps.shape == (6, 16, 7, 7) and artifacts.fmap_pca_components.shape == (16, 1280)
    # The sample's items are not encoded twice; every row, from the sample or not, is the item's own encoding.
    assert manifest["timings"]["image_items_encoded"] == 3
    image_encoder, _ = encoders
    pooled, raw_maps = image_encoder.encode_images([catalog.load_image(i) for i in catalog.items["item_id"]],
                                                   return_feature_maps=True)
    np.testing.assert_allclose(artifacts.image, pooled, atol=1e-4)
    np.testing.assert_allclose(artifacts.feature_maps.astype(np.float32), artifacts.project_feature_maps(raw_maps),
                               atol=0.05, rtol=0.01)


def test_missing_artifacts_say_how_to_make_them(tmp_path):
    catalog = write_synthetic_catalog(tmp_path / "bare", n_items=6)
    with pytest.raises(ArtifactError) as info:
        load_artifacts(catalog)
    assert isinstance(info.value, ValueError)
    assert "run python scripts/precompute.py --catalog" in str(info.value) and str(catalog.root) in str(info.value)


def test_other_image_encoder_is_refused(built):
    with pytest.raises(ArtifactError, match="image encoder 'effnet-lite0', not 'open_clip:ViT-B-32:openai'") as info:
        load_artifacts(built[0], image_encoder="open_clip:ViT-B-32:openai")
    assert "--image-encoder open_clip:ViT-B-32:openai" in str(info.value)
    with pytest.raises(ArtifactError, match="text encoder 'minilm'"):
        load_artifacts(built[0], text_encoder="open_clip:ViT-B-32:openai")


def test_other_catalog_is_refused(built, tmp_path):
    catalog, _ = built
    same_size = write_synthetic_catalog(tmp_path / "other", n_items=N_ITEMS, seed=1)
    with pytest.raises(ArtifactError, match="different version of the catalog"):
        load_artifacts(same_size, artifacts_dir=catalog.root / "artifacts")
    smaller = write_synthetic_catalog(tmp_path / "smaller", n_items=12)
    with pytest.raises(ArtifactError, match="cover 24 items but the catalog has 12"):
        load_artifacts(smaller, artifacts_dir=catalog.root / "artifacts")


def test_damaged_array_is_refused(built, tmp_path):
    catalog = fresh_copy(built[0], tmp_path / "damaged")
    path = catalog.root / "artifacts" / "image.npy"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match="image.npy"):
        load_artifacts(catalog)


def test_a_nan_row_is_refused_naming_its_item(built, tmp_path):
    # Field report: one NaN row in image.npy showed a similarity of -3.4e38 on Similar items, then a traceback.
    catalog = fresh_copy(built[0], tmp_path / "nan")
    path = catalog.root / "artifacts" / "image.npy"
    image = np.load(path)
    image[7, 3] = np.nan
    np.save(path, image)
    with pytest.raises(ArtifactError, match=rf"NaN or infinite values \(item {catalog.items['item_id'].iat[7]}\)"):
        load_artifacts(catalog)


def test_computing_again_after_a_nan_row_repairs_the_artifacts(built, encoders, tmp_path):
    # What the pages' "Compute the embeddings now" does after the refusal above: the damaged shard is not reused.
    catalog = fresh_copy(built[0], tmp_path / "repair")
    good = load_artifacts(catalog).image.copy()
    shard = sorted((catalog.root / "artifacts" / "shards").glob("image_*.npy"))[0]
    for path in (catalog.root / "artifacts" / "image.npy", shard):
        values = np.load(path)
        values[1, 0] = np.inf
        np.save(path, values)
    image_encoder, text_encoder = encoders
    precompute(catalog, image_encoder, text_encoder, shard_size=SHARD_SIZE, num_workers=0, progress=False)
    np.testing.assert_allclose(load_artifacts(catalog).image, good, atol=1e-5)


def test_an_encoder_that_gives_nan_never_reaches_the_artifacts(encoders, tmp_path):
    image_encoder, text_encoder = encoders

    class Broken:
        def __getattr__(self, name):
            return getattr(image_encoder, name)

        def encode_pixels(self, pixels, return_feature_maps=False):
            out = image_encoder.encode_pixels(pixels, return_feature_maps=return_feature_maps)
            pooled = out[0] if return_feature_maps else out
            pooled[:] = np.nan
            return out

    catalog = write_synthetic_catalog(tmp_path / "broken", n_items=5)
    with pytest.raises(ArtifactError, match="NaN or infinite values"):
        precompute(catalog, Broken(), text_encoder, shard_size=4, num_workers=0, fmap_channels=0, progress=False)
    with pytest.raises(ArtifactError, match="no precomputed artifacts"):
        load_artifacts(catalog)


def test_joint_encoder_gives_text_from_the_same_model(tmp_path):
    pytest.importorskip("open_clip")
    spec = tiny_open_clip_spec(tmp_path, "RecsysArtifactTiny")
    catalog = write_synthetic_catalog(tmp_path / "joint", n_items=10)

    manifest = precompute(catalog, spec, num_workers=0, progress=False)

    assert manifest["image_encoder"]["spec"] == manifest["text_encoder"]["spec"] == spec
    assert manifest["feature_maps"] is None
    artifacts = load_artifacts(catalog, image_encoder=spec, text_encoder=spec)
    assert artifacts.image.shape == (10, 16) and artifacts.text_title.shape == (10, 16)
    assert artifacts.feature_maps is None
    with pytest.raises(ArtifactError, match="no feature maps"):
        artifacts.project_feature_maps(np.zeros((1, 1280, 7, 7), dtype=np.float32))


def test_catalog_map_handles_tiny_inputs():
    rng = np.random.default_rng(0)
    for n in (1, 3, 6):
        coordinates, info = catalog_map(rng.normal(size=(n, 8)).astype(np.float32))
        assert coordinates.shape == (n, 2) and coordinates.dtype == np.float32 and np.isfinite(coordinates).all()
    assert info["perplexity"] < 6


def test_the_reading_side_stays_light_and_the_pipeline_stays_importable_from_it():
    code = ("import sys, recsys.artifacts as a; assert 'torch' not in sys.modules; "
            "from recsys.artifacts import precompute, catalog_map, default_num_workers; "
            "import recsys.precompute as p; assert precompute is p.precompute")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT)
