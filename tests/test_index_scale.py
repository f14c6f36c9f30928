"""VectorIndex past memory: the compressed ``ivfpq`` kind (re-ranked, filtered, saved, memory-mapped) and the
Milvus backend (embedded Milvus Lite), each held to the exact index's answers."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from recsys.benchmarks.encode_index import clustered_embeddings, recall_at_k
from recsys.index import VectorIndex

CATEGORIES = ("tshirt", "skirt", "sneakers", "hat", "bag")
#: recall@10 of ivfpq against exact with re-ranking on 20k x 64 clustered vectors (measured ~0.99 with
#: nprobe 32; the floor leaves room for FAISS's k-means differing across platforms).
RECALL_FLOOR = 0.95
#: Small codes keep PQ training to a few seconds on two shared cores (8 sub-quantizers of 8 dimensions).
PQ = {"kind": "ivfpq", "pq_m": 8, "nlist": 128}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    vectors = clustered_embeddings(20_000, 64, seed=0)
    rng = np.random.default_rng(1)
    categories = rng.choice(CATEGORIES[:4], size=len(vectors), p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    categories[rng.choice(len(vectors), 12, replace=False)] = "bag"  # rare: answered exactly
    queries = clustered_embeddings(20_100, 64, seed=0)[20_000:]  # fresh points of the same clusters
    return vectors, categories.astype(str), queries


@pytest.fixture(scope="module")
def exact(data):
    vectors, categories, _ = data
    return VectorIndex(kind="exact").fit(vectors, categories=categories)


@pytest.fixture(scope="module")
def compressed(data):
    vectors, categories, _ = data
    return VectorIndex(**PQ).fit(vectors, categories=categories)


def test_ivfpq_recall_with_rerank_and_exact_scores(data, exact, compressed):
    _, _, queries = data
    expected_scores, expected = exact.search(queries, k=10)
    scores, positions = compressed.search(queries, k=10)
    assert compressed.kind_ == "ivfpq" and positions.shape == (100, 10) and positions.dtype == np.int64
    assert scores.dtype == np.float32 and (np.diff(scores, axis=1) <= 0).all()
    assert recall_at_k(positions, expected) >= RECALL_FLOOR
    # Re-ranked scores are exact inner products of the returned rows, not quantized estimates.
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", queries, compressed.vectors_[positions]), atol=1e-5)
    # Without re-ranking the codes alone rank worse: the short list is what buys the recall.
    default, compressed.rerank = compressed.rerank, 0
    try:
        _, unranked = compressed.search(queries, k=10)
    finally:
        compressed.rerank = default
    assert recall_at_k(unranked, expected) < recall_at_k(positions, expected)


def test_ivfpq_category_filter(data, exact, compressed):
    vectors, categories, queries = data
    for category in ("tshirt", "hat", "bag"):
        scores, positions = compressed.search(queries, k=10, categories=category)
        assert positions.shape == (100, 10) and (categories[positions] == category).all()
        expected_scores, expected = exact.search(queries, k=10, categories=category)
        assert recall_at_k(positions, expected) >= RECALL_FLOOR
        if category == "bag":  # few allowed rows are scored exactly
            np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    scores, positions = compressed.search(queries[:2], k=50, categories="bag")
    assert positions.shape == (2, 12) and set(positions[0]) == set(np.flatnonzero(categories == "bag"))
    _, positions = compressed.search(queries[:2], k=5, exclude=[int(p) for p in exact.search(queries[:1], k=1)[1][0]])
    assert exact.search(queries[:1], k=1)[1][0, 0] not in positions[0]


def test_ivfpq_save_load_and_mmap(data, compressed, tmp_path):
    vectors, categories, queries = data
    before = compressed.search(queries, k=10, categories="skirt")
    compressed.save(tmp_path / "index.faiss")
    assert VectorIndex.vectors_path(tmp_path / "index.faiss").is_file()  # in-RAM vectors are written alongside
    for mmap in (False, True):
        loaded = VectorIndex.load(tmp_path / "index.faiss", mmap=mmap)
        assert loaded.kind_ == "ivfpq" and isinstance(loaded.vectors_, np.memmap)
        assert (loaded.categories_ == categories).all()
        after = loaded.search(queries, k=10, categories="skirt")
        np.testing.assert_array_equal(before[1], after[1])
        np.testing.assert_allclose(before[0], after[0], atol=1e-6)
    # Vectors already memory-mapped from a .npy are referred to, not copied.
    np.save(tmp_path / "catalog.npy", vectors)
    mapped = np.load(tmp_path / "catalog.npy", mmap_mode="r")
    index = VectorIndex(**PQ).fit(mapped)
    assert index.vectors_ is mapped
    index.save(tmp_path / "mapped.faiss")
    assert not VectorIndex.vectors_path(tmp_path / "mapped.faiss").exists()
    (tmp_path / "catalog.npy").unlink()
    with pytest.raises(ValueError, match="re-ranking vectors"):
        VectorIndex.load(tmp_path / "mapped.faiss")


def test_ivfpq_with_opq_rotation(data, exact):
    vectors, categories, queries = data
    # Few vectors train few-bit codes (6 bits here), which keeps OPQ's alternating training short.
    index = VectorIndex(kind="ivfpq", pq_m=8, nlist=32, opq=True).fit(vectors[:3000], categories=categories[:3000])
    _, expected = VectorIndex(kind="exact").fit(vectors[:3000]).search(queries, k=10)
    assert isinstance(index.index_, faiss.IndexPreTransform)
    scores, positions = index.search(queries, k=10)
    assert recall_at_k(positions, expected) >= RECALL_FLOOR
    _, positions = index.search(queries, k=10, categories="skirt")
    assert (categories[:3000][positions] == "skirt").all()


def test_auto_picks_ivfpq_past_the_size_threshold(data):
    vectors = data[0][:4000]
    size = 4 * vectors.size
    assert VectorIndex(exact_threshold=1000, compress_threshold_bytes=size + 1).fit(vectors).kind_ == "ivf"
    assert VectorIndex(exact_threshold=1000, compress_threshold_bytes=size, pq_m=8).fit(vectors).kind_ == "ivfpq"


def test_unknown_backend_is_refused(data, monkeypatch):
    with pytest.raises(ValueError, match="Unknown index backend"):
        VectorIndex(backend="pinecone").fit(data[0][:100])
    # A setting that names no backend is a misconfiguration the pages survive: the in-process index, and a sentence.
    monkeypatch.setenv("RECSYS_INDEX_BACKEND", "nosuch")
    index = VectorIndex().fit(data[0][:100])
    assert index.kind_ == "exact" and index.backend_note_ == (
        "RECSYS_INDEX_BACKEND='nosuch' names no index backend (faiss or milvus); the studio searches with its "
        "in-process index instead.")


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory):
    pytest.importorskip("pymilvus", reason="the milvus backend needs the scale extras (requirements-scale.txt)")
    pytest.importorskip("milvus_lite", reason="embedded Milvus Lite is part of the scale extras")
    return str(tmp_path_factory.mktemp("milvus") / "index.milvus.db")


def test_milvus_backend_equals_exact_and_filters(data, milvus_uri, tmp_path, monkeypatch):
    vectors, categories, queries = data[0][:2000], data[1][:2000], data[2][:20]
    exact = VectorIndex(kind="exact").fit(vectors, categories=categories)
    monkeypatch.setenv("RECSYS_INDEX_BACKEND", "milvus")  # chosen by the setting, as the app would
    monkeypatch.setenv("RECSYS_MILVUS_URI", milvus_uri)
    index = VectorIndex().fit(vectors, categories=categories)
    assert index.kind_ == "milvus"
    for filters in ({}, {"categories": "hat"}, {"categories": ["skirt", "bag"]}, {"exclude": [3, 4]},
                    {"allowed": np.arange(100, 140)}, {"categories": "tshirt", "exclude": [0, 1, 2]}):
        scores, positions = index.search(queries, k=10, **filters)
        expected_scores, expected = exact.search(queries, k=10, **filters)
        assert positions.shape == (20, 10) and positions.dtype == np.int64 and scores.dtype == np.float32
        np.testing.assert_array_equal(positions, expected)
        np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    assert (categories[index.search(queries, k=10, categories="hat")[1]] == "hat").all()
    bag = int((categories == "bag").sum())
    assert index.search(queries[:2], k=50, categories="bag")[1].shape == (2, bag)
    # The same catalog maps to the same collection: rebuilding (an app restart) reuses it.
    assert VectorIndex().fit(vectors, categories=categories).index_.name == index.index_.name
    assert VectorIndex().fit(vectors[:500]).index_.name != index.index_.name
    index.save(tmp_path / "index.milvus")
    loaded = VectorIndex.load(tmp_path / "index.milvus")
    assert loaded.kind_ == "milvus" and (loaded.categories_ == categories).all()
    np.testing.assert_array_equal(loaded.search(queries, k=10, categories="tshirt")[1],
                                  exact.search(queries, k=10, categories="tshirt")[1])


def test_scale_benchmark_generates_in_chunks_and_reports_every_kind(tmp_path, monkeypatch):
    from recsys.benchmarks import index_scale

    monkeypatch.setattr(index_scale, "_CHUNK", 700)  # several chunks even at this size
    vectors = index_scale.write_clustered_npy(tmp_path / "v.npy", 3000, 16, seed=2)
    assert isinstance(vectors, np.memmap) and vectors.shape == (3000, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert index_scale.write_clustered_npy(tmp_path / "v.npy", 3000, 16, seed=2).filename == vectors.filename
    queries = np.asarray(vectors[:5])
    scores, positions = index_scale.exact_top_k(vectors, queries, k=10)
    expected = np.argsort(-(queries @ np.asarray(vectors).T), axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(positions, expected)
    monkeypatch.setattr(index_scale, "MILVUS_MAX_ITEMS", 0)
    figures = index_scale.bench_scale(3000, 16, tmp_path, n_queries=30, n_latency=30)
    assert set(figures) >= {"exact", "ivf", "hnsw", "ivfpq", "skipped"} and "milvus" in figures["skipped"]
    assert figures["ivfpq"]["recall_at_10"] >= 0.9 and figures["ivfpq"]["index_bytes"] < figures["ivf"]["index_bytes"]
    assert figures["ivfpq"]["rerank_sweep"]["4096"]["recall_at_10"] >= figures["ivfpq"]["rerank_sweep"]["0"]["recall_at_10"]
