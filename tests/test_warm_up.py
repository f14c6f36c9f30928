"""The background warm-up: the slowest pages' services load their models and encoders before the first visit."""

from __future__ import annotations

from recsys.artifacts import load_artifacts
from recsys.catalog import Catalog
from recsys.config import get_settings
from recsys.store import ModelStore


def _service(task: str, folder):
    from recsys.tasks import task_part
    from recsys.ui.caches import SERVICE_CLASSES

    catalog = Catalog.load(folder)
    cls = getattr(task_part(task, "service"), SERVICE_CLASSES[task])
    return cls(catalog, load_artifacts(catalog), ModelStore(catalog, load_artifacts(catalog)))


def test_warming_loads_what_the_first_visit_needs(tiny_ready_dir):
    chat = _service("dialogue", tiny_ready_dir)
    assert chat._stylists == {}
    chat.warm()
    assert chat.default_model in chat._stylists  # the model, its text encoder and the compatibility model
    search = _service("composed", tiny_ready_dir)
    search.warm()
    assert search._models  # the joint space and the composers, loaded
    similar = _service("similar", tiny_ready_dir)
    similar.warm()
    # The model, and what a first upload reads a photo with: the photo reader and the classifier, in the store.
    assert similar._model is not None
    memos = [key for kind, key in similar.store._loaded if kind == "_memo"]
    assert "photo-reader" in memos and any(key.startswith("photo-classifier") for key in memos)
    assert "garment-recognizer" in memos


def test_the_warm_up_loads_the_upload_encoder_the_page_then_uses(tiny_ready_dir):
    from recsys.encoders import pool

    pool.clear()
    pool.EncoderWarmUp("effnet-lite0", "cpu").warm()
    loaded = pool.shared_encoder("effnet-lite0", "auto")  # the page's device setting names the same device
    assert pool.shared_encoder("effnet-lite0", None) is loaded and len(pool.POOL) == 1
    pool.EncoderWarmUp("no-such-encoder", "cpu").warm()  # never raises; the page says what is wrong
    assert len(pool.POOL) == 1


def test_warming_a_catalog_without_models_never_raises(tiny_catalog_dir, tiny_artifacts, tmp_path):
    import shutil

    folder = tmp_path / "bare"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("models", "report.json"))
    chat = _service("dialogue", folder)
    chat.warm()  # the model is not trained: the page says so when it asks, the warm-up stays quiet
    assert chat._stylists == {}


def test_the_warm_up_is_a_setting():
    assert get_settings({}).warm_up is True
    assert get_settings({"RECSYS_WARM_UP": "0"}).warm_up is False


def test_the_app_starts_the_warm_up_once_per_catalog_version(monkeypatch, tiny_ready_dir):
    import threading

    from streamlit.testing.v1 import AppTest

    import recsys.tasks.base as base
    from recsys.config import PROJECT_ROOT
    from recsys.ui import caches

    started = []

    def record(tasks):
        started.append([type(service).__name__ for service in tasks])
        specs.extend(getattr(step, "spec", None) for step in tasks)
        return threading.Thread()

    specs = []

    monkeypatch.setattr(base, "warm_in_background", record)
    monkeypatch.setenv("RECSYS_WARM_UP", "1")
    monkeypatch.setenv("RECSYS_CATALOG", str(tiny_ready_dir))
    caches.warm_up_thread.clear()
    app = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=60)
    app.run()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    # once, for the slowest pages, after the image encoder a first upload is embedded with
    assert started == [["EncoderWarmUp", "StylistService", "SearchService", "SimilarService"]]
    assert specs[0] == "effnet-lite0"
    caches.warm_up_thread.clear()
