"""Shared fixtures: a `tiny` built-in world, built once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RECSYS_WARM_UP", "0")  # no background loads racing the tests (tests/test_warm_up.py turns it on)
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import recsys.tasks  # noqa: E402,F401  (registers every task's models, as the studio's entry points do)


@pytest.fixture(scope="session")
def tiny_catalog_dir(tmp_path_factory):
    """Folder of the `tiny` preset of the built-in world (seed 0)."""
    from recsys.data.demo_world import build_demo_catalog

    out = tmp_path_factory.mktemp("world") / "tiny"
    build_demo_catalog(out, preset="tiny", seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_catalog(tiny_catalog_dir):
    from recsys.catalog import Catalog

    return Catalog.load(tiny_catalog_dir)


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_catalog):
    """Artifacts (default encoders, CPU) of the `tiny` world, computed once per session; returns ``Artifacts``."""
    from recsys.artifacts import load_artifacts, precompute

    precompute(tiny_catalog, device="cpu", num_workers=0, progress=False)
    return load_artifacts(tiny_catalog)


@pytest.fixture(scope="session")
def tiny_ready_dir(tiny_catalog_dir, tiny_artifacts, tmp_path_factory):
    """A copy of the `tiny` world set up as ``make run`` sets up a catalog (``recsys.prepare``): every registered
    model trained, no report (the report page's tests make their own)."""
    import shutil

    from recsys.prepare import prepare

    folder = tmp_path_factory.mktemp("ready") / "tiny"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("models", "report.json"))
    prepare(folder, all_models=True, report=False)
    return folder


@pytest.fixture(scope="module")
def one_thread():
    """Torch and BLAS on one thread for a module that asks for it (``pytestmark = pytest.mark.usefixtures(
    "one_thread")``): its encoder and index figures then repeat exactly run to run."""
    from _synthetic import single_threaded

    with single_threaded():
        yield


@pytest.fixture(scope="module")
def encoders():
    """The catalog's default image and text encoders on the CPU, made once per module: ``(effnet-lite0, minilm)``."""
    from recsys.encoders import create_encoder

    return create_encoder("effnet-lite0", "cpu"), create_encoder("minilm", "cpu")

