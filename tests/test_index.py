"""VectorIndex: exact vs approximate agreement, category filtering that fills k, save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.index import VectorIndex
from recsys.utils import l2_normalize

CATEGORIES = ("tshirt", "skirt", "sneakers", "hat", "bag")


pytestmark = pytest.mark.usefixtures("one_thread")


def clustered(n: int, dim: int = 32, clusters: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    labels = rng.integers(clusters, size=n)
    return l2_normalize(centres[labels] + 0.4 * rng.normal(size=(n, dim)))


@pytest.fixture(scope="module")
def data():
    vectors = clustered(3000)
    rng = np.random.default_rng(1)
    # Unbalanced categories; "bag" is rare (12 items) to stress filtered approximate search.
    categories = rng.choice(CATEGORIES[:4], size=len(vectors), p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    categories[rng.choice(len(vectors), 12, replace=False)] = "bag"
    queries = clustered(50, seed=7)
    return vectors, categories.astype(str), queries


def brute_force(vectors, queries, k, mask=None):
    scores = queries @ vectors.T
    if mask is not None:
        scores[:, ~mask] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def test_auto_kind_depends_on_size(data):
    vectors, categories, _ = data
    assert VectorIndex().fit(vectors).kind_ == "exact"
    assert VectorIndex(exact_threshold=1000).fit(vectors).kind_ == "ivf"
    with pytest.raises(ValueError, match="Unknown index kind"):
        VectorIndex(kind="lsh").fit(vectors)


def test_exact_matches_brute_force(data):
    vectors, _, queries = data
    scores, positions = VectorIndex(kind="exact").fit(vectors).search(queries, k=10)
    expected_scores, _ = brute_force(vectors, queries, 10)
    assert scores.shape == positions.shape == (50, 10)
    assert positions.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_agrees_with_exact(data, kind):
    vectors, _, queries = data
    _, exact = VectorIndex(kind="exact").fit(vectors).search(queries, k=10)
    _, approximate = VectorIndex(kind=kind).fit(vectors).search(queries, k=10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approximate, exact)])
    assert recall >= 0.95


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_category_filter_returns_k_items_of_that_category(data, kind):
    vectors, categories, queries = data
    index = VectorIndex(kind=kind, exact_threshold=1000).fit(vectors, categories=categories)
    for category in ("tshirt", "hat", "bag"):
        scores, positions = index.search(queries, k=10, categories=category)
        assert positions.shape == (50, 10) and (positions >= 0).all()
        assert (categories[positions] == category).all()
        expected_scores, _ = brute_force(vectors, queries, 10, categories == category)
        if kind == "exact" or category == "bag":  # the rare category is always answered exactly
            np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    # Several categories at once, and fewer items than k: k shrinks to what exists.
    _, positions = index.search(queries[:3], k=5, categories=["hat", "bag"])
    assert np.isin(categories[positions], ["hat", "bag"]).all()
    scores, positions = index.search(queries[:3], k=50, categories="bag")
    assert positions.shape == (3, 12) and set(positions[0]) == set(np.flatnonzero(categories == "bag"))


def test_mask_and_exclude(data):
    vectors, categories, queries = data
    index = VectorIndex(kind="hnsw").fit(vectors, categories=categories)
    _, best = index.search(vectors[:1], k=1)
    assert best[0, 0] == 0  # an item is its own nearest neighbour ...
    _, positions = index.search(vectors[:1], k=5, exclude=[0])
    assert 0 not in positions[0]  # ... unless excluded
    allowed = np.zeros(len(vectors), dtype=bool)
    allowed[100:110] = True
    _, positions = index.search(queries[:2], k=10, allowed=allowed)
    assert sorted(positions[0]) == list(range(100, 110))
    _, positions = index.search(queries[:2], k=3, allowed=[5, 6, 7, 8], exclude=[6])
    assert set(positions[0]) == {5, 7, 8}
    with pytest.raises(KeyError, match="coat"):
        index.search(queries[:1], categories="coat")


def test_single_query_vector_and_bad_shapes(data):
    vectors, _, queries = data
    index = VectorIndex().fit(vectors)
    scores, positions = index.search(queries[0], k=3)
    assert scores.shape == (1, 3)
    with pytest.raises(ValueError, match="dimensions"):
        index.search(np.ones(7, dtype=np.float32))
    with pytest.raises(RuntimeError, match="not built"):
        VectorIndex().search(queries)


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_save_load_roundtrip(data, tmp_path, kind):
    vectors, categories, queries = data
    ids = np.array([f"item_{i}" for i in range(len(vectors))])
    index = VectorIndex(kind=kind).fit(vectors, categories=categories, ids=ids)
    index.save(tmp_path / "index.faiss")
    assert (tmp_path / "index.faiss.json").is_file()
    loaded = VectorIndex.load(tmp_path / "index.faiss")
    assert loaded.kind_ == kind and loaded.n_items_ == len(vectors) and loaded.dim_ == vectors.shape[1]
    assert (loaded.categories_ == categories).all() and (loaded.ids_ == ids).all()
    for filters in ({}, {"categories": "skirt"}):
        before = index.search(queries, k=10, **filters)
        after = loaded.search(queries, k=10, **filters)
        np.testing.assert_array_equal(before[1], after[1])
        np.testing.assert_allclose(before[0], after[0])


def test_load_refuses_missing_or_mismatched_files(data, tmp_path):
    vectors, _, _ = data
    with pytest.raises(ValueError, match="missing"):
        VectorIndex.load(tmp_path / "none.faiss")
    VectorIndex().fit(vectors).save(tmp_path / "a.faiss")
    VectorIndex().fit(vectors[:10]).save(tmp_path / "b.faiss")
    (tmp_path / "a.faiss.json").write_text((tmp_path / "b.faiss.json").read_text())
    with pytest.raises(ValueError, match="does not match"):
        VectorIndex.load(tmp_path / "a.faiss")


def test_benchmark_functions_return_plain_figures():
    from recsys.benchmarks.encode_index import bench_index_size, clustered_embeddings

    vectors = clustered_embeddings(500, 16, seed=3)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    figures = bench_index_size(3000, dim=16, n_queries=20)
    assert set(figures) >= {"exact", "ivf", "hnsw", "n_items", "dim"}
    assert figures["ivf"]["recall_at_k"] >= 0.9 and figures["exact"]["p50_ms"] > 0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_vectors_are_refused_in_one_sentence(data, bad):
    # Field report: a NaN query came back as item id -1; a NaN row ranked anywhere.
    vectors = data[0]
    broken = np.array(vectors, dtype=np.float32, copy=True)
    broken[3, 5] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite values \(row 3\)") as info:
        VectorIndex(kind="exact").fit(broken)
    assert "\n" not in str(info.value)
    index = VectorIndex(kind="exact").fit(vectors)
    query = np.array(vectors[0], dtype=np.float32, copy=True)
    query[0] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.search(query, k=5)
