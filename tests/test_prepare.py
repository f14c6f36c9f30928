"""The first-run set-up: every page's models trained, a quick report written, and nothing redone the second time."""

from __future__ import annotations

import json
import shutil

import pytest

from recsys.catalog import Catalog
from recsys.prepare import page_models, prepare
from recsys.reports import report_path
from recsys.store import ModelStore


@pytest.fixture(scope="module")
def prepared(tiny_catalog_dir, tiny_artifacts, tmp_path_factory):
    folder = tmp_path_factory.mktemp("prepare") / "tiny"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("models", "report.json"))
    seen = []
    result = prepare(folder, report=True, progress=lambda fraction, message: seen.append((fraction, message)))
    return folder, result, seen


def test_every_page_model_is_trained_for_the_catalog(prepared):
    from recsys.artifacts import load_artifacts

    folder, result, _ = prepared
    catalog = Catalog.load(folder)
    store = ModelStore(catalog, load_artifacts(catalog))
    assert page_models(), "the tasks name the models their pages need"
    for task, name in page_models():
        assert store.model_status(task, name).ready, (task, name, result.skipped)
        assert f"train {task}/{name}" in result.stage_steps
    assert not result.skipped
    # One wall-clock figure for the stage that trains the tasks side by side; its parts in stage_steps.
    assert "pages' models and quick report" in result.steps and "quick report compat" in result.stage_steps


def test_the_quick_report_covers_baselines_oracle_and_page_models_only(prepared):
    folder, _, _ = prepared
    report = json.loads(report_path(folder).read_text())
    assert report["_meta"]["kind"] == "quick" and "tiny" in report["_meta"]["catalog"]
    personal = report["personal"]
    assert {"random", "popularity", "oracle", "vbpr-mm"} <= set(personal)
    assert "vecf" not in personal and "bpr" not in personal
    assert {"random", "oracle", "type-aware"} <= set(report["compat"]) and "triplet" not in report["compat"]


def test_progress_ends_at_one_and_never_goes_back(prepared):
    _, _, seen = prepared
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_a_second_run_trains_nothing_and_keeps_the_report(prepared):
    folder, _, _ = prepared
    before = report_path(folder).stat().st_mtime_ns
    again = prepare(folder, report=True)
    assert not [step for step in {**again.steps, **again.stage_steps} if step.startswith("train")]
    assert report_path(folder).stat().st_mtime_ns == before


def test_a_catalog_without_outfits_says_so_and_the_rest_is_ready(tiny_catalog_dir, tiny_artifacts, tmp_path):
    folder = tmp_path / "no-outfits"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("models", "report.json"))
    (folder / "outfits.jsonl").write_text("", encoding="utf-8")
    result = prepare(folder, report=False, workers=1)  # as inside the app: one process
    assert "outfit" in result.skipped["train compat/type-aware"]
    assert "train personal/vbpr-mm" in result.stage_steps and "train personal/vbpr-mm" not in result.skipped


def _store(folder):
    from recsys.artifacts import load_artifacts

    catalog = Catalog.load(folder)
    return catalog, ModelStore(catalog, load_artifacts(catalog))


def _plain(value):
    """A protocol's report with its per-query arrays as lists, so that ``==`` compares every value."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value.tolist() if hasattr(value, "tolist") else value


def test_the_quick_report_measures_the_saved_page_models_as_a_fresh_fit_would(prepared, monkeypatch):
    # The set-up's compat and dialogue models are fitted on the protocols' own split, seed and schedule: taking them
    # from the store must give the figures a fresh fit gives, and must not fit anything.
    from recsys.tasks.compat import protocol as compat_protocol
    from recsys.tasks.dialogue import protocol as dialogue_protocol

    folder, _, _ = prepared
    catalog, store = _store(folder)
    fresh_compat = compat_protocol.evaluate(catalog, models=["type-aware"])
    fresh_dialogue = dialogue_protocol.evaluate(catalog, models=["dialogue-infonce"])

    def no_fitting(*args, **kwargs):
        raise AssertionError("a model the store has on the full schedule was fitted again")

    monkeypatch.setattr(compat_protocol, "fit_on_split", no_fitting)
    monkeypatch.setattr(dialogue_protocol, "fit_model", no_fitting)
    monkeypatch.setattr("recsys.tasks.compat.data.fit_on_split", no_fitting)
    # Figures and per-question hits alike (numpy arrays: compared as lists).
    assert _plain(compat_protocol.evaluate(catalog, models=["type-aware"], store=store)) == _plain(fresh_compat)
    reused = dialogue_protocol.evaluate(catalog, models=["dialogue-infonce"], store=store)
    for row in ("dialogue-infonce", "dialogue-infonce+compat"):
        assert reused[row]["WKT"] == pytest.approx(fresh_dialogue[row]["WKT"], abs=1e-9), row


def test_models_of_a_quick_schedule_are_never_reported_as_page_models(tiny_catalog_dir, tiny_artifacts, tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("models", "report.json"))
    catalog, store = _store(folder)
    store.fit("compat", "type-aware", quick=True)
    assert store.get("compat", "type-aware") is not None
    assert store.get("compat", "type-aware", full_only=True) is None
    _, reopened = _store(folder)  # the schedule is read back from the file
    assert reopened.get("compat", "type-aware").provenance_.schedule == "quick"
    assert reopened.get("compat", "type-aware", full_only=True) is None


def test_a_task_is_evaluated_after_the_tasks_it_reads():
    from recsys.prepare import setup_workers, task_chains

    chains = task_chains()
    assert ["compat", "dialogue"] in chains  # the Stylist's set score reads the compatibility model
    assert sorted(t for chain in chains for t in chain) == sorted(["similar", "compat", "personal", "dialogue",
                                                                   "composed"])
    assert task_chains(["personal", "dialogue"]) == [["personal"], ["dialogue"]]  # nothing to wait for
    assert setup_workers() >= 1


def test_the_stage_processes_never_run_the_main_script_again(tiny_catalog_dir, tiny_artifacts, tmp_path, monkeypatch):
    # Where Streamlit ran a page in this process (a server, or AppTest earlier in the tests), ``__main__`` is the app,
    # and a spawned worker would run it again: on a clean clone it found no catalog and broke every worker.
    import sys
    import types

    from recsys.prepare import _run_stage

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("models", "report.json"))
    script = tmp_path / "app.py"
    script.write_text("raise SystemExit('the app ran in a set-up worker')\n", encoding="utf-8")
    app = types.ModuleType("__main__")
    app.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", app)
    parts = _run_stage(folder, {"similar": ["shopper-similarity"]}, ["similar"], 0, 2, lambda *args: None)
    assert {step for part in parts for step in part["steps"]} == {"train similar/shopper-similarity",
                                                                   "quick report similar"}
    assert sys.modules["__main__"] is app  # given back as it was


def test_a_built_in_world_of_an_older_generator_is_outdated(tiny_catalog_dir, tmp_path):
    from recsys.data.demo_world import WORLD_VERSION
    from recsys.prepare import outdated_world

    assert not outdated_world(tiny_catalog_dir)  # drawn by this generator
    folder = tmp_path / "old"
    folder.mkdir()
    meta = json.loads((tiny_catalog_dir / "catalog.json").read_text(encoding="utf-8"))
    (folder / "catalog.json").write_text(json.dumps(meta | {"world_version": WORLD_VERSION - 1}), encoding="utf-8")
    assert outdated_world(folder)  # prepare(builtin=True) builds it again
    (folder / "catalog.json").write_text(json.dumps({"name": "my closet", "source": "folder"}), encoding="utf-8")
    assert not outdated_world(folder)  # never another catalog
    (folder / "catalog.json").write_text("{not json", encoding="utf-8")
    assert not outdated_world(folder) and not outdated_world(tmp_path / "missing")


def test_the_encoder_settings_choose_the_embeddings(tiny_catalog_dir, tiny_artifacts, tmp_path, monkeypatch):
    from recsys.artifacts import needs_embedding, read_manifest
    from recsys.config import get_settings

    manifest = read_manifest(tiny_catalog_dir / "artifacts")  # effnet-lite0 and minilm, the defaults
    assert needs_embedding(None, "effnet-lite0", None)
    assert not needs_embedding(manifest, "effnet-lite0", None) and not needs_embedding(manifest, "effnet-lite0", "minilm")
    assert needs_embedding(manifest, "open_clip:RN50:openai", None) and needs_embedding(manifest, "effnet-lite0", "x")
    # Nothing set: a catalog keeps the embeddings it has, whatever made them (scripts/precompute.py --image-encoder).
    assert not needs_embedding({"image_encoder": {"spec": "open_clip:RN50:openai"},
                                "text_encoder": {"spec": "open_clip:RN50:openai"}}, None, None)
    assert get_settings({}).text_encoder is None and get_settings({}).image_encoder is None
    assert get_settings({"RECSYS_TEXT_ENCODER": "minilm"}).text_encoder == "minilm"

    class Called(Exception):
        pass

    def fake_precompute(catalog, image_encoder, text_encoder, **kwargs):
        raise Called(image_encoder, text_encoder)

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("models", "report.json"))
    monkeypatch.setattr("recsys.precompute.precompute", fake_precompute)
    monkeypatch.setenv("RECSYS_IMAGE_ENCODER", "open_clip:RN50:openai")
    with pytest.raises(Called) as called:  # embedded with effnet-lite0: computed again with the setting's encoder
        prepare(folder, report=False)
    assert called.value.args == ("open_clip:RN50:openai", None)
