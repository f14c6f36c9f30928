"""Issue 27, stored files that are damaged: a damaged photo in a catalog (both precompute engines skip it, name it,
and mark its item unavailable, which every service then leaves out), and every stored artifact kind replaced by
each damage -- no traceback, one sentence, nothing else lost."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil

import numpy as np
import pytest

from _scripts import load_script
from _synthetic import write_synthetic_catalog
from recsys.artifacts import ArtifactError, load_artifacts
from recsys.catalog import Catalog
from recsys.precompute import create_engine, precompute

N_ITEMS = 12
SETTINGS = {"shard_size": 5, "num_workers": 0, "progress": False, "fmap_channels": 8, "pca_sample": 6}
BAD = 7  # the row whose PNG is cut short


pytestmark = pytest.mark.usefixtures("one_thread")



def _truncate(catalog: Catalog, row: int) -> str:
    item_id = catalog.items["item_id"].iat[row]
    path = catalog.image_path(item_id)
    path.write_bytes(path.read_bytes()[:120])  # a PNG cut off by a full disk: the signature and header only
    return item_id


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """A catalog of 12 drawn items whose row 7 holds a truncated PNG."""
    catalog = write_synthetic_catalog(tmp_path_factory.mktemp("damaged") / "shapes", n_items=N_ITEMS)
    return catalog, _truncate(catalog, BAD)


def _check_marked(catalog, item_id, manifest, caplog) -> None:
    assert manifest["unavailable_items"] == [
        {"row": BAD, "item_id": item_id, "reason": manifest["unavailable_items"][0]["reason"]}]
    reason = manifest["unavailable_items"][0]["reason"]
    assert reason.startswith(f"its image images/{item_id}.png cannot be read (")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [f"item {item_id}: {reason}; it is marked unavailable"]
    artifacts = load_artifacts(catalog)
    assert artifacts.unavailable == {item_id: reason} and artifacts.unavailable_rows.tolist() == [BAD]
    assert not artifacts.image[BAD].any() and not np.asarray(artifacts.feature_maps[BAD]).any()
    others = np.delete(np.asarray(artifacts.image), BAD, axis=0)
    np.testing.assert_allclose(np.linalg.norm(others, axis=1), 1.0, atol=1e-4)  # every other item is embedded


def test_a_truncated_photo_does_not_stop_the_local_precompute(damaged, encoders, caplog):
    """The issue's instance: one truncated PNG among the items; precompute finishes, names it, marks its row."""
    catalog, item_id = damaged
    with caplog.at_level(logging.WARNING):
        manifest = precompute(catalog, *encoders, **SETTINGS)
    _check_marked(catalog, item_id, manifest, caplog)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="Ray Data is an optional extra: pip install -r requirements-scale.txt")
def test_a_truncated_photo_does_not_stop_the_ray_precompute(damaged, encoders, tmp_path, caplog):
    import ray

    catalog = Catalog.load(shutil.copytree(damaged[0].root, tmp_path / "copy", ignore=shutil.ignore_patterns(
        "artifacts")))
    engine = create_engine("ray", num_cpus=2, num_encode_workers=1, object_store_mb=128)
    try:
        with caplog.at_level(logging.WARNING):
            manifest = precompute(catalog, "effnet-lite0", "minilm", device="cpu", engine=engine,
                                  **{k: v for k, v in SETTINGS.items() if k != "num_workers"})
    finally:
        ray.shutdown()
    _check_marked(catalog, damaged[1], manifest, caplog)
    local = load_artifacts(damaged[0])  # the local engine's vectors, within float rounding
    np.testing.assert_allclose(load_artifacts(catalog).image, local.image, atol=2e-3)


def test_the_precompute_command_finishes_and_names_the_item(damaged, tmp_path, capsys):
    script = load_script("precompute")
    catalog = Catalog.load(shutil.copytree(damaged[0].root, tmp_path / "copy", ignore=shutil.ignore_patterns(
        "artifacts")))
    assert script.main(["--catalog", str(catalog.root), "--quiet", "--shard-size", "5", "--fmap-channels", "8"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [r["item_id"] for r in summary["unavailable_items"]] == [damaged[1]]


def test_no_readable_image_at_all_is_one_sentence(tmp_path, encoders):
    catalog = write_synthetic_catalog(tmp_path / "all-bad", n_items=3)
    for row in range(3):
        _truncate(catalog, row)
    with pytest.raises(ArtifactError, match=r"^None of the catalog's 3 images can be read \(e\.g\. item item_0000: "
                                            r"its image images/item_0000\.png cannot be read"):
        precompute(catalog, *encoders, **SETTINGS)


# ---------------------------------------------------------------------- every stored artifact kind, every damage
POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 918274\n"
DAMAGES = ("truncated", "empty", "pointer", "stranger")


def damage(path, how: str, stranger: bytes) -> None:
    """Replace ``path`` as a full disk, a failed copy, a clone without ``git lfs pull`` or another tool would."""
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "pointer": POINTER,
                      "stranger": stranger}[how])


def one_sentence(text: str, *names: str) -> str:
    assert "\n" not in text and "Traceback" not in text and text.endswith("."), text
    assert text.count(". ") == 0 or all(part[:1].islower() or part[:1].isdigit() for part in text.split(". ")[1:]), text
    for name in names:
        assert name in text, (name, text)
    return text


def npy_bytes(values) -> bytes:
    import io

    out = io.BytesIO()
    np.save(out, np.asarray(values))
    return out.getvalue()


@pytest.fixture(scope="module")
def clean(tmp_path_factory, encoders):
    """A synthetic catalog with its artifacts (3 image shards): copied, then damaged, by each test."""
    catalog = write_synthetic_catalog(tmp_path_factory.mktemp("clean") / "shapes", n_items=N_ITEMS)
    precompute(catalog, *encoders, **SETTINGS)
    return catalog


def copy_of(catalog: Catalog, tmp_path) -> Catalog:
    return Catalog.load(shutil.copytree(catalog.root, tmp_path / "copy"))


ARRAYS = {"manifest": "manifest.json", "image array": "image.npy", "feature maps": "feature_maps.npy",
          "text array": "text_title.npy"}


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("kind", list(ARRAYS))
def test_damaged_artifacts_are_one_sentence_and_repaired_without_encoding_again(clean, encoders, tmp_path, kind, how):
    from recsys.artifacts import embedding_step

    catalog = copy_of(clean, tmp_path)
    before = load_artifacts(catalog)
    image, maps = np.array(before.image), np.array(before.feature_maps)
    stranger = json.dumps({"name": "another tool's manifest", "files": []}).encode() if kind == "manifest" else \
        npy_bytes(np.zeros((3, 2), np.float64))
    damage(catalog.root / "artifacts" / ARRAYS[kind], how, stranger)
    with pytest.raises(ArtifactError) as caught:
        load_artifacts(catalog)
    one_sentence(str(caught.value), "artifacts", "precompute.py")
    assert embedding_step(catalog, None, None) == ("Repairing the embeddings", "effnet-lite0", "minilm")
    manifest = precompute(catalog, *encoders, **SETTINGS)
    assert manifest["shards"]["computed"] == {"image": [], "text_title": [], "text_description": []}  # nothing lost
    after = load_artifacts(catalog)
    np.testing.assert_array_equal(after.image, image)
    np.testing.assert_array_equal(after.feature_maps, maps)


SHARDS = {"image shard": "image_00001.npy", "text shard": "text_title_00002.npy",
          "state": "state.json", "unreadable list": "unavailable_00000.json"}


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("kind", list(SHARDS))
def test_a_damaged_shard_is_made_again_alone(clean, encoders, tmp_path, kind, how):
    catalog = copy_of(clean, tmp_path)
    image = np.array(load_artifacts(catalog).image)
    stranger = npy_bytes(np.ones((5, 3), np.float32)) if kind.endswith("shard") else b'["a stranger\'s list"]'
    damage(catalog.root / "artifacts" / "shards" / SHARDS[kind], how, stranger)
    (catalog.root / "artifacts" / "manifest.json").unlink()  # an interrupted run: the shards are all there is
    manifest = precompute(catalog, *encoders, **SETTINGS)
    expected = {"image shard": {"image": [1], "text_title": [], "text_description": []},
                "text shard": {"image": [], "text_title": [2], "text_description": []},
                "state": {"image": [], "text_title": [], "text_description": []},
                "unreadable list": {"image": [0], "text_title": [], "text_description": []}}[kind]
    if kind == "state":  # the manifest that would vouch for the shards is gone too: they are all made again
        expected = {"image": [0, 1, 2], "text_title": [0, 1, 2], "text_description": [0, 1, 2]}
    assert manifest["shards"]["computed"] == expected
    np.testing.assert_allclose(load_artifacts(catalog).image, image, atol=1e-5)
    assert manifest["unavailable_items"] == []


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_shard_state_with_a_readable_manifest_keeps_every_shard(clean, encoders, tmp_path, how):
    catalog = copy_of(clean, tmp_path)
    damage(catalog.root / "artifacts" / "shards" / "state.json", how, b"[1, 2]")
    damage(catalog.root / "artifacts" / "image.npy", "empty", b"")  # so the run does not stop at "up to date"
    manifest = precompute(catalog, *encoders, **SETTINGS)
    assert manifest["shards"]["computed"] == {"image": [], "text_title": [], "text_description": []}


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("part", ["index", "sidecar", "vectors"])
def test_a_damaged_saved_index_is_one_sentence_and_the_rest_untouched(tmp_path, part, how):
    from recsys.index import VectorIndex

    vectors = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    index = VectorIndex(kind="ivfpq", pq_m=4, nlist=4, backend="faiss").fit(vectors, categories=["a", "b", "c"] * 100)
    path = tmp_path / "catalog.index"
    index.save(path)
    files = {"index": path, "sidecar": VectorIndex.sidecar_path(path), "vectors": VectorIndex.vectors_path(path)}
    stranger = {"index": VectorIndex(kind="exact", backend="faiss").fit(vectors[:, :4]), "sidecar": None,
                "vectors": None}[part]
    if part == "index":
        stranger.save(tmp_path / "other.index")
        stranger = (tmp_path / "other.index").read_bytes()
    else:
        stranger = b'["another tool"]' if part == "sidecar" else npy_bytes(np.zeros((2, 2)))
    kept = {name: f.read_bytes() for name, f in files.items() if name != part}
    damage(files[part], how, stranger)
    with pytest.raises(ValueError) as caught:
        VectorIndex.load(path)
    one_sentence(str(caught.value), "catalog.index")
    assert {name: f.read_bytes() for name, f in files.items() if name != part} == kept


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_report_is_a_report_not_computed(clean, tmp_path, how):
    from recsys.reports import add_upload_figures, report_path
    from recsys.reports import read_report, report_unreadable

    catalog = copy_of(clean, tmp_path)
    path = report_path(catalog.root)
    path.write_text(json.dumps({"similar": {"visual-similarity": {"P@5": 0.5}}}))
    damage(path, how, b'["not", "a", "report"]')
    with pytest.raises(ValueError) as caught:
        read_report(path)
    one_sentence(str(caught.value), "report.json")
    assert report_unreadable(path)  # the set-up writes a quick report again
    add_upload_figures(catalog, {"n": 3}, source=tmp_path / "photos")
    assert read_report(path)["_uploads"]["photos"]["n"] == 3


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_label_cache_is_encoded_again(tmp_path, how):
    from recsys.encoders.base import cached_text_vectors

    class Counting:
        dim, calls = 3, 0

        def encode_text(self, texts):
            Counting.calls += 1
            return np.tile(np.arange(3, dtype=np.float32), (len(texts), 1))

    texts = ["a shirt", "a hat"]
    first = cached_text_vectors(Counting(), "fake", texts, cache_dir=tmp_path)
    (cached,) = tmp_path.glob("label-vectors-*.npy")
    damage(cached, how, npy_bytes(np.ones((2, 5), np.float32)))  # a stranger: another encoder's width
    again = cached_text_vectors(Counting(), "fake", texts, cache_dir=tmp_path)
    np.testing.assert_array_equal(again, first)
    assert Counting.calls == 2 and np.load(cached).shape == (2, 3)  # encoded again, and the cache repaired


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_image_cache_is_made_again(clean, tmp_path, how):
    from recsys.tasks.personal.features import small_images

    catalog = copy_of(clean, tmp_path)
    images = small_images(catalog, size=16)
    damage(catalog.root / "artifacts" / "images16.npy", how, npy_bytes(np.zeros((N_ITEMS, 16, 16, 3), np.float64)))
    np.testing.assert_array_equal(small_images(catalog, size=16), images)


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", ["catalog.json", "outfits.jsonl", "items.parquet"])
def test_damaged_catalog_files_are_one_sentence(clean, tmp_path, name, how):
    from recsys.catalog import CatalogError

    catalog = copy_of(clean, tmp_path)
    path = catalog.root / name
    if not path.exists():
        path.write_text(json.dumps({"outfit_id": "o1", "item_ids": ["item_0000", "item_0001"]}) + "\n")
    damage(path, how, b"[1, 2, 3]" if name != "outfits.jsonl" else b"\xff\xfe\x00garbage")
    if name == "outfits.jsonl" and how == "empty":  # an empty outfits.jsonl is a catalog without outfits
        assert Catalog.load(catalog.root).outfits == []
        return
    with pytest.raises(CatalogError) as caught:
        Catalog.load(catalog.root)
    one_sentence(str(caught.value), name)


# ---------------------------------------------------------------------- the tiny world: models and unavailable items
def ready_copy(tiny_ready_dir, tmp_path) -> Catalog:
    return Catalog.load(shutil.copytree(tiny_ready_dir, tmp_path / "ready"))


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("half", [".safetensors", ".json"])
def test_a_damaged_model_is_a_model_not_trained(tiny_ready_dir, tmp_path, half, how):
    """The issue's instance (a git-lfs pointer, a cut-off or an empty compat model) and its siblings: the store says
    why in one sentence, counts the model as not trained, keeps every other model, and trains it again."""
    from recsys.store import ModelStore

    catalog = ready_copy(tiny_ready_dir, tmp_path)
    store = ModelStore(catalog, load_artifacts(catalog))
    path = store.path("compat", "type-aware").with_suffix(half)
    other = store.path("compat", "triplet").with_suffix(half)  # a stranger: another model's file of the same name
    damage(path, how, other.read_bytes() if half == ".safetensors" else b'{"class": "BPR", "state": {}}')
    assert store.get("compat", "type-aware") is None
    status = store.model_status("compat", "type-aware")
    assert status.state == "stale" and not status.ready
    one_sentence(status.reason, "compat-type-aware", "counts as not trained")
    assert store.get("compat", "triplet") is not None and store.get("similar", "shopper-similarity") is not None
    store.fit("compat", "type-aware", quick=True)
    assert ModelStore(catalog, load_artifacts(catalog)).get("compat", "type-aware") is not None


def mark_unavailable(catalog: Catalog, *item_ids: str) -> None:
    """What the precompute writes for items whose image cannot be read, on a copy whose artifacts exist: their image
    and feature-map rows zero, and the manifest's entries."""
    root = catalog.root / "artifacts"
    rows = [int(r) for r in catalog.indices(list(item_ids))]
    for name in ("image.npy", "feature_maps.npy"):
        values = np.load(root / name, mmap_mode="r+")
        values[rows] = 0
        values.flush()
        del values
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["unavailable_items"] = sorted(
        ({"row": row, "item_id": item_id, "reason": f"its image images/{item_id}.png cannot be read (truncated)"}
         for row, item_id in zip(rows, item_ids)), key=lambda record: record["row"])
    (root / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def with_unavailable(tiny_ready_dir, tmp_path_factory):
    """A copy of the set-up tiny world whose most popular item is marked unavailable: ``(catalog, item_id)``."""
    catalog = ready_copy(tiny_ready_dir, tmp_path_factory.mktemp("unavailable"))
    item_id = catalog.interactions["item_id"].value_counts().index[0]
    mark_unavailable(catalog, item_id)
    return catalog, item_id


def services_of(catalog: Catalog):
    from recsys.store import ModelStore
    from recsys.tasks.compat.service import OutfitService
    from recsys.tasks.personal.service import PersonalService
    from recsys.tasks.similar.service import SimilarService

    artifacts = load_artifacts(catalog)
    store = ModelStore(catalog, artifacts)
    return (SimilarService(catalog, artifacts, store), OutfitService(catalog, artifacts, store),
            PersonalService(catalog, artifacts, store))


def test_an_unavailable_item_is_never_a_result_nor_a_query(with_unavailable):
    from recsys.tasks.base import ItemUnavailableError

    catalog, item_id = with_unavailable
    similar, outfit, personal = services_of(catalog)
    row = int(catalog.indices([item_id])[0])
    assert similar.unavailable_rows().tolist() == [row]
    category, slot = catalog.items["category"].iat[row], catalog.items["slot"].iat[row]
    same = [i for i in catalog.items.loc[catalog.items["category"] == category, "item_id"] if i != item_id]
    for query in same:
        assert row not in similar.similar(item=query, k=48).positions
    photo = np.asarray(load_artifacts(catalog).image[catalog.indices([same[0]])[0]])
    assert row not in similar.similar(photo=photo, k=48, category=category).positions
    with pytest.raises(ItemUnavailableError, match=f"^Item {item_id} is unavailable: its image .* cannot be read"):
        similar.similar(item=item_id)
    with pytest.raises(ItemUnavailableError):
        outfit.query("type-aware", item=item_id)
    others = catalog.items.loc[catalog.items["slot"] != slot, "item_id"]
    for query in others.iloc[::4]:
        built = outfit.query("type-aware", item=query)
        assert row not in [r for matches in outfit.best_matches("type-aware", built, k=48).values() for r, _ in matches]
        assert row not in outfit.complete("type-aware", query=built).items.values()
    for user in personal.users()[:40]:
        assert row not in personal.recommend(user, n=30, model="vbpr-mm").item_idx
    assert row not in personal.recommend(liked_items=same[:3], n=30, model="vbpr-mm").item_idx


# ---------------------------------------------------------------------- Text-guided search and the Stylist
@pytest.fixture(scope="module")
def offered_first(tiny_ready_dir, tmp_path_factory):
    """A copy of the set-up tiny world whose items the search and the Stylist offered first are marked unavailable:
    ``(catalog, marked item ids, reference id)``, the reference (available) being the one the search started from."""
    from recsys.store import ModelStore
    from recsys.tasks.composed.service import SearchService
    from recsys.tasks.dialogue.service import StylistService

    catalog = ready_copy(tiny_ready_dir, tmp_path_factory.mktemp("offered"))
    artifacts = load_artifacts(catalog)
    store = ModelStore(catalog, artifacts)
    search, chat = SearchService(catalog, artifacts, store).load(), StylistService(catalog, artifacts, store)
    items = catalog.items
    reference = str(items.loc[items["color"] == "green", "item_id"].iloc[0])
    category = str(items.set_index("item_id").loc[reference, "category"])
    marked = {search.search(search.reference_features(reference), ["in black instead of green"], k=1,
                            category=category, exclude=[reference]).item_ids[0],
              search.search_text("black sneakers", k=1).item_ids[0]}
    for understood in (True, False):
        proposal = chat.reply(STYLIST_REQUEST, [], understood=understood).proposal
        marked |= {str(items["item_id"].iat[r]) for c in proposal.candidates for r in c["coordi"].values() if r >= 0}
    marked.discard(reference)
    mark_unavailable(catalog, *sorted(marked))
    return Catalog.load(catalog.root), sorted(marked), reference


STYLIST_REQUEST = "a grey hoodie and black trousers with white sneakers"


def test_search_never_offers_an_unavailable_item_and_its_reference_is_one_sentence(offered_first):
    from recsys.store import ModelStore
    from recsys.tasks.base import ItemUnavailableError
    from recsys.tasks.composed.service import SearchService

    catalog, marked, reference = offered_first
    artifacts = load_artifacts(catalog)
    search = SearchService(catalog, artifacts, ModelStore(catalog, artifacts)).load()
    everything = len(catalog)  # every other item of the gallery, the unavailable ones included without the fix
    for understood in (True, False):
        results = [search.search_text(text, k=everything, understood=understood).item_ids
                   for text in ("black sneakers", "a red floral dress")]
        results += [search.search(search.reference_features(reference), captions, k=everything, model=model,
                                  exclude=[reference], understood=understood,
                                  reference_attributes=search.reference_attributes(reference)).item_ids
                    for captions in ([], ["in black instead of green"], ["is darker", "has long sleeves"])
                    for model in search.composition_choices()]
        for ids in results:
            assert ids and not set(marked) & set(ids)
    for item_id in marked:
        with pytest.raises(ItemUnavailableError) as caught:
            search.reference_features(item_id)
        one_sentence(str(caught.value), item_id, "is unavailable")


def test_the_stylist_never_proposes_an_unavailable_item(offered_first):
    from recsys.store import ModelStore
    from recsys.tasks.dialogue.service import StylistService

    catalog, marked, _ = offered_first
    artifacts = load_artifacts(catalog)
    chat = StylistService(catalog, artifacts, ModelStore(catalog, artifacts))
    rows = set(catalog.indices(marked).tolist())
    for name in chat.models():
        for understood in (True, False):
            reply = chat.reply(STYLIST_REQUEST, [], model=name, understood=understood)
            reply = chat.reply("actually make the trousers grey", reply.turns, model=name, understood=understood)
            proposal = reply.proposal
            assert len(proposal.coordi) == 4 and not rows & set(proposal.coordi.values())
            assert proposal.candidates and not rows & {r for c in proposal.candidates for r in c["coordi"].values()}


def test_the_request_protocol_leaves_unavailable_items_out(offered_first):
    from recsys.request_protocol import evaluate_requests

    catalog, marked, _ = offered_first
    item = catalog.item(marked[0])
    # Its reference by id is unsatisfiable; by its attributes, the first available item having them is the reference.
    requests = {"captions": [{"reference": marked[0], "captions": ["is black"], "want": {"color": "black"}},
                             {"reference": {"category": item["category"], "color": item["color"]},
                              "captions": ["is black"], "want": {"color": "black"}}],
                "search": [{"text": "black sneakers", "want": {"category": "sneakers", "color": "black"}}]}
    report = evaluate_requests(catalog, requests)
    assert "_skipped" not in report, report.get("_skipped")
    for row in report["captions"].values():
        assert row["unsatisfiable"] >= 1 and row["n"] + row["unsatisfiable"] == 2
    assert all(row["n"] == 1 for row in report["search"].values())


def test_the_search_page_says_an_unavailable_reference_in_one_sentence(offered_first, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from recsys.config import PROJECT_ROOT

    catalog, marked, _ = offered_first
    monkeypatch.setenv("RECSYS_CATALOG", str(catalog.root))
    app = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=240)
    app.run()
    app.switch_page("pages/search.py")
    app.session_state["search_reference_item"] = marked[0]
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    said = [i.value for i in app.info if "is unavailable" in i.value]
    assert len(said) == 1 and marked[0] in said[0]
    assert not [m for m in app.markdown if 'class="card-title"' in m.value]  # no results from a blank reference
