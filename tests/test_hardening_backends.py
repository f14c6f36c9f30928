"""Issue 27, backends that are misconfigured and logs that stay clean: a Milvus setting that cannot be used falls
back to the in-process index in one sentence (on Similar items too), open_clip weights of another architecture name
their keys and the architecture they look like, and a run where nothing failed logs no traceback and no bar."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch

from recsys.config import PROJECT_ROOT
from recsys.index import VectorIndex

HAS_MILVUS = all(importlib.util.find_spec(m) is not None for m in ("pymilvus", "milvus_lite"))
needs_milvus = pytest.mark.skipif(not HAS_MILVUS, reason="pymilvus and milvus-lite are the scale extras")
FALLBACK = "; the studio searches with its in-process index instead."


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(60, 8)).astype(np.float32)
    return values / np.linalg.norm(values, axis=1, keepdims=True), np.array(["a", "b", "c"] * 20)


def exact_positions(vectors, query):
    return VectorIndex(kind="exact", backend="faiss").fit(vectors[0], categories=vectors[1]).search(query, k=5)[1]


# ---------------------------------------------------------------------- Milvus settings that cannot be used
@pytest.mark.parametrize("uri,says", [
    ("http://127.0.0.1:9", r"^The Milvus database at RECSYS_MILVUS_URI=http://127\.0\.0\.1:9 could not be used \(.*"
                           r"(server unavailable|scale extras).*\)"),
    ("ftp://milvus.example", r"^The Milvus database at RECSYS_MILVUS_URI=ftp://milvus\.example could not be used"),
])
def test_a_milvus_server_that_is_not_there_falls_back_in_one_sentence(vectors, monkeypatch, uri, says):
    """The issue's instance (an http:// URI with no server there) and a URI of a scheme Milvus does not speak."""
    monkeypatch.setenv("RECSYS_INDEX_BACKEND", "milvus")
    monkeypatch.setenv("RECSYS_MILVUS_URI", uri)
    index = VectorIndex().fit(vectors[0], categories=vectors[1])
    assert index.kind_ == "exact" and index.backend_note_.endswith(FALLBACK)
    assert __import__("re").match(says, index.backend_note_) and "\n" not in index.backend_note_
    np.testing.assert_array_equal(index.search(vectors[0][:3], k=5)[1], exact_positions(vectors, vectors[0][:3]))


@needs_milvus
@pytest.mark.parametrize("damage", ["not a database", "no .db suffix"])
def test_a_local_milvus_file_that_cannot_be_used_falls_back(vectors, monkeypatch, tmp_path, damage):
    target = tmp_path / "index.milvus.db"
    if damage == "not a database":
        target.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:1\nsize 9\n")
    else:
        target = tmp_path / "index.milvus"
    monkeypatch.setenv("RECSYS_INDEX_BACKEND", "milvus")
    monkeypatch.setenv("RECSYS_MILVUS_URI", str(target))
    index = VectorIndex().fit(vectors[0], categories=vectors[1])
    assert index.kind_ == "exact" and index.backend_note_.startswith(
        f"The Milvus database at RECSYS_MILVUS_URI={target} could not be used (")
    assert index.backend_note_.endswith(FALLBACK) and "\n" not in index.backend_note_


def test_the_similar_page_says_it_fell_back_and_shows_results(monkeypatch, tiny_ready_dir):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("RECSYS_CATALOG", str(tiny_ready_dir))
    monkeypatch.setenv("RECSYS_INDEX_BACKEND", "milvus")
    monkeypatch.setenv("RECSYS_MILVUS_URI", "http://127.0.0.1:9")
    app = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=180)
    app.run()
    app.switch_page("pages/similar.py")
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    notes = [i.value for i in app.info if "Milvus" in i.value]
    assert len(notes) == 1 and notes[0].startswith("The Milvus database at RECSYS_MILVUS_URI=http://127.0.0.1:9 "
                                                   "could not be used (") and notes[0].endswith(FALLBACK)
    assert any(s.value.endswith("most similar items") for s in app.subheader)


# ---------------------------------------------------------------------- logs that stay clean
def _run(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter whose stderr is a pipe, as in ``make run > log`` (not a terminal)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT,
                          env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                               "OMP_WAIT_POLICY": "PASSIVE"})


def test_the_text_encoder_loads_without_a_progress_bar_in_a_log():
    """The issue's instance: "Loading weights: 0%| ... 103/103" from transformers while MiniLM loads."""
    run = _run("import logging; logging.basicConfig(level=logging.INFO)\n"
               "from recsys.encoders import create_encoder\n"
               "print(create_encoder('minilm', 'cpu').encode_text(['a red shirt']).shape)\n"
               "from transformers.utils import logging as t; print(t.is_progress_bar_enabled())")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["(1,", "384)", "True"]  # the bars are switched back on afterwards
    assert "Loading weights" not in run.stderr and "%|" not in run.stderr and "\r" not in run.stderr
    assert "Traceback" not in run.stderr


@needs_milvus
def test_milvus_lite_logs_no_traceback_when_nothing_failed(tmp_path):
    """The issue's instance: ``ERROR grpc._server ... Method not implemented!`` while Milvus Lite builds an index."""
    run = _run("import logging, numpy as np\n"
               "logging.basicConfig(level=logging.DEBUG, format='%(levelname)s %(name)s: %(message)s')\n"
               "logging.getLogger('recsys.index.milvus').setLevel(logging.INFO)\n"
               "from recsys.index import VectorIndex\n"
               "v = np.random.default_rng(0).normal(size=(40, 8)).astype('float32')\n"
               f"i = VectorIndex(backend='milvus', milvus_uri={str(tmp_path / 'x.db')!r}).fit(v, categories=['a', 'b'] * 20)\n"
               "print(i.kind_, i.search(v[:2], k=3, categories='a')[1].shape)")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "milvus (2, 3)"
    assert "Traceback" not in run.stderr and "ERROR" not in run.stderr and "Method not implemented" not in run.stderr


def test_the_grpc_filter_keeps_every_other_error():
    from recsys.index.milvus import _PROBE_FILTER

    def record(error: BaseException) -> logging.LogRecord:
        return logging.LogRecord("grpc._server", logging.ERROR, __file__, 1, "Exception calling application: %s",
                                 (error,), (type(error), error, None))

    assert not _PROBE_FILTER.filter(record(NotImplementedError("Method not implemented!")))
    assert _PROBE_FILTER.filter(record(NotImplementedError("something else")))
    assert _PROBE_FILTER.filter(record(RuntimeError("Method not implemented!")))


# ---------------------------------------------------------------------- open_clip weights of another architecture
def _tiny_config(layers: int, embed: int) -> dict:
    return {"embed_dim": embed,
            "vision_cfg": {"image_size": 32, "layers": layers, "width": 32, "patch_size": 16, "head_width": 16},
            "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def hub_folder(tmp_path_factory):
    """A hub-style folder (``open_clip_config.json`` + ``open_clip_pytorch_model.bin``) whose config describes one
    vision layer and a 16-d space, and whose weights are a two-layer, 24-d model's."""
    open_clip = pytest.importorskip("open_clip")
    folder = tmp_path_factory.mktemp("hub") / "fashion-clip"
    folder.mkdir()
    (folder.parent / "RecsysOther.json").write_text(json.dumps(_tiny_config(2, 24)))
    open_clip.add_model_config(folder.parent / "RecsysOther.json")
    torch.manual_seed(0)
    torch.save(open_clip.create_model("RecsysOther").state_dict(), folder / "open_clip_pytorch_model.bin")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": _tiny_config(1, 16),
                                                              "preprocess_cfg": {}}))
    return folder


def test_hub_folder_weights_of_another_architecture_name_keys_and_architecture(hub_folder):
    """The issue's instance: "cannot be loaded (Error(s) in loading state_dict for CLIP:)", no key named."""
    from recsys.encoders import EncoderError, create_encoder

    spec = f"open_clip:local-dir:{hub_folder}"
    with pytest.raises(EncoderError) as caught:
        create_encoder(spec, "cpu")
    text = str(caught.value)
    assert text.startswith(f"The weight file {hub_folder / 'open_clip_pytorch_model.bin'} does not fit encoder "
                           f"'{spec}': 12 unexpected keys (visual.transformer.resblocks.1.ln_1.weight, ")
    assert "2 keys of another shape (text_projection (32, 24) for (32, 16), visual.proj (32, 24) for (32, 16))" in text
    assert "the weights look like open_clip's RecsysOther: a ViT, 2 layers of width 32, patch 16, 32 px" in text
    assert "\n" not in text and "Error(s) in loading" not in text


def test_a_matching_hub_folder_loads_and_an_empty_one_is_one_sentence(hub_folder, tmp_path):
    from recsys.encoders import EncoderError, create_encoder

    good = tmp_path / "good"
    good.mkdir()
    (good / "open_clip_config.json").write_text(json.dumps({"model_cfg": _tiny_config(2, 24), "preprocess_cfg": {}}))
    (good / "open_clip_pytorch_model.bin").write_bytes((hub_folder / "open_clip_pytorch_model.bin").read_bytes())
    assert create_encoder(f"open_clip:local-dir:{good}", "cpu").dim == 24
    (good / "open_clip_pytorch_model.bin").unlink()
    with pytest.raises(EncoderError, match=r"^The folder .*good of encoder .* holds no weights file "
                                           r"\(open_clip_model\.safetensors, open_clip_pytorch_model\.bin, \.\.\.\)\.$"):
        create_encoder(f"open_clip:local-dir:{good}", "cpu")


def test_known_architectures_are_named_from_the_shapes_alone():
    open_clip = pytest.importorskip("open_clip")
    from recsys.encoders.openclip import describe_weights

    for name in ("ViT-B-32", "RN50"):
        with torch.device("meta"):  # shapes without memory
            model = open_clip.create_model(name, device="meta")
        assert describe_weights(model.state_dict()).startswith(f"the weights look like open_clip's {name} (or ")


def test_the_precompute_command_says_so_in_one_sentence(hub_folder, tmp_path, capsys):
    from _scripts import load_script
    from _synthetic import write_synthetic_catalog

    catalog = write_synthetic_catalog(tmp_path / "shapes", n_items=4)
    script = load_script("precompute")
    assert script.main(["--catalog", str(catalog.root), "--image-encoder", f"open_clip:local-dir:{hub_folder}",
                        "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: The weight file ") and "look like open_clip's RecsysOther" in error
    assert "\n" not in error


def test_a_log_where_nothing_failed_holds_no_failure_lines():
    """A sibling of the bars: faiss's loader logged each CPU build it probed and could not load as a
    ModuleNotFoundError line at INFO, in every ``make run`` log."""
    run = _run("import logging; logging.basicConfig(level=logging.INFO)\n"
               "import numpy as np\n"
               "from recsys.index import VectorIndex\n"
               "print(VectorIndex(backend='faiss').fit(np.eye(4, dtype='float32')).kind_)")
    assert run.returncode == 0 and run.stdout.strip() == "exact", run.stderr[-2000:]
    assert "Error" not in run.stderr and "Traceback" not in run.stderr, run.stderr
