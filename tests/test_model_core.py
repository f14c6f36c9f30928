"""The model lifecycle's core: parameters from the signature, clone, save/load with provenance, the registry."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.models.base import Estimator, Provenance, StaleModelError, clone
from recsys.models.registry import get_model, list_models, model_info, model_title, register_model
from recsys.tasks import TASKS
from recsys.utils import as_csr, l2_normalize, torch_threads


class _Scaler(Estimator):
    def __init__(self, *, factor: float = 2.0, n_epochs: int = 3, random_state: int | None = 0):
        self.factor = factor
        self.n_epochs = n_epochs
        self.random_state = random_state

    def fit(self, X):
        self.weights_ = np.asarray(X, dtype=np.float32) * self.factor
        return self

    def _get_state(self):
        return {"weights_": self.weights_}, {"rows": len(self.weights_)}

    def _set_state(self, tensors, meta, **inputs):
        self.weights_ = tensors["weights_"]
        assert meta["rows"] == len(self.weights_)


class _Child(_Scaler):
    def __init__(self, *, width: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.width = width


def test_parameters_come_from_the_signature_including_the_bases():
    model = _Child(width=7, factor=3.0)
    assert model.get_params() == {"width": 7, "factor": 3.0, "n_epochs": 3, "random_state": 0}
    assert model.set_params(n_epochs=9) is model and model.n_epochs == 9
    with pytest.raises(ValueError, match="no parameter 'epochs'"):
        model.set_params(epochs=1)


def test_clone_is_unfitted_with_the_same_parameters():
    model = _Scaler(factor=5.0).fit([1.0, 2.0])
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "weights_")


def test_save_load_round_trip_keeps_state_and_provenance(tmp_path):
    provenance = Provenance(catalog_fingerprint="abc", image_encoder="effnet-lite0", text_encoder="minilm", split_seed=0)
    model = _Scaler(factor=0.5).fit([2.0, 4.0])
    model.save(tmp_path / "m", provenance=provenance)
    loaded = _Scaler.load(tmp_path / "m", provenance=provenance)
    np.testing.assert_array_equal(loaded.weights_, [1.0, 2.0])
    assert loaded.factor == 0.5 and loaded.provenance_ == provenance


@pytest.mark.parametrize("field, value, words", [
    ("image_encoder", "open_clip:ViT-B-32", "image encoder"),
    ("text_encoder", "demo-clip", "text encoder"),
    ("catalog_fingerprint", "other", "catalog"),
    ("split_seed", 3, "split seed"),
])
def test_a_model_trained_on_other_inputs_is_stale(tmp_path, field, value, words):
    saved = Provenance(catalog_fingerprint="abc", image_encoder="effnet-lite0", text_encoder="minilm", split_seed=0)
    _Scaler().fit([1.0]).save(tmp_path / "m", provenance=saved)
    now = Provenance(**(saved.to_dict() | {field: value}))
    with pytest.raises(StaleModelError, match=words):
        _Scaler.load(tmp_path / "m", provenance=now)


def test_loading_another_class_names_both(tmp_path):
    _Scaler().fit([1.0]).save(tmp_path / "m")
    with pytest.raises(ValueError, match="holds a _Scaler, not a _Child"):
        _Child.load(tmp_path / "m")


def test_missing_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="m.safetensors"):
        _Scaler.load(tmp_path / "m")


def test_registry_lists_labels_and_builds_every_task():
    for task in TASKS:
        names = list_models(task)
        assert names, task
        for name in names:
            info = model_info(task, name)
            assert info.title and info.task == task
            if info.trainable:
                assert isinstance(get_model(task, name), Estimator)
    assert model_title("personal", "not-a-model") == "not-a-model"
    with pytest.raises(KeyError, match="There is no personal model 'nope'"):
        model_info("personal", "nope")


def test_registering_a_name_twice_is_refused(monkeypatch):
    from recsys.models import registry

    monkeypatch.setattr(registry, "_REGISTRY", {})  # leave the real registry as it was
    fit = lambda store, name, **kw: None  # noqa: E731  (a spec's fit; never called here)
    register_model(task="similar", name="_test-only", title="t", fit=fit)(lambda **p: _Scaler(**p))
    with pytest.raises(ValueError, match="already registered"):
        register_model(task="similar", name="_test-only", title="t", fit=fit)(lambda **p: _Scaler(**p))
    # A trainable spec says how it is fitted; the registry knows no task list, so a task nothing registered is unknown.
    with pytest.raises(ValueError, match="needs a fit function"):
        register_model(task="similar", name="_no-fit", title="x")
    with pytest.raises(ValueError, match="Unknown task"):
        registry.list_models("nope")


def test_quick_is_the_specs_overrides_applied_by_get_model():
    from recsys.models.registry import get_model, model_info

    for task, name in [("personal", "bpr"), ("compat", "triplet"), ("dialogue", "dialogue-mse"),
                       ("composed", "demo-clip"), ("personal", "autoencoder")]:
        quick = model_info(task, name).quick
        assert quick, (task, name)
        assert get_model(task, name, quick=True).get_params().items() >= quick.items()
    # the values the five former definitions gave (figures of quick runs must not move)
    assert [get_model(t, n, quick=True).n_epochs for t, n in [("personal", "bpr"), ("personal", "vecf"),
            ("compat", "type-aware"), ("composed", "combiner"), ("composed", "demo-clip"), ("dialogue", "text-only"),
            ("personal", "autoencoder")]] == [8, 8, 6, 6, 8, 15, 3]
    assert get_model("personal", "autoencoder").n_epochs == 12


def test_shared_helpers():
    np.testing.assert_allclose(l2_normalize([[3.0, 4.0], [0.0, 0.0]]), [[0.6, 0.8], [0.0, 0.0]])
    X = as_csr(np.array([[0, 5], [2, 0]]))
    assert X.dtype == np.float32 and X.toarray().tolist() == [[0, 1], [1, 0]]
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
