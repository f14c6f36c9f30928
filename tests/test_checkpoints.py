"""One checkpoint helper for every encoder: training wrappers removed, strict loading, mismatches named key by key.

Small modules written to tmp_path stand for the checkpoints; the effnet-lite0 encoder is loaded once per wrapper from
its packaged weights re-saved with the wrapper (the open_clip path is in test_encoders.py, next to its tiny model).
"""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file

from recsys.encoders import EncoderError, create_encoder
from recsys.encoders.checkpoints import SHOWN_KEYS, load_weights, read_checkpoint, unwrap_state_dict


class Tiny(torch.nn.Module):
    """Keys: encoder.weight, encoder.bias, norm.weight, norm.bias, norm.running_mean, ... (a buffer included)."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(3, 2)
        self.norm = torch.nn.BatchNorm1d(2)


class Wrapped(torch.nn.Module):
    """A module whose own keys all start with ``module.``: that prefix is its, not a wrapper's."""

    def __init__(self):
        super().__init__()
        self.module = torch.nn.Linear(3, 2)


def reference_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {key: value.clone() for key, value in Tiny().state_dict().items()}


def prefixed(state: dict, prefix: str) -> dict:
    return {prefix + key: value for key, value in state.items()}


WRAPPERS = {
    "bare": lambda s: s,
    "DataParallel": lambda s: prefixed(s, "module."),
    "torch.compile": lambda s: prefixed(s, "_orig_mod."),
    "compiled-then-DataParallel": lambda s: prefixed(s, "module._orig_mod."),
    "DataParallel-then-compiled": lambda s: prefixed(s, "_orig_mod.module."),
    "state_dict-with-epoch": lambda s: {"epoch": 7, "state_dict": s, "optimizer": {"lr": 0.1}},
    "model": lambda s: {"model": prefixed(s, "module."), "args": {"arch": "tiny"}},
    "model_state_dict": lambda s: {"model_state_dict": s},
    "DeepSpeed-module": lambda s: {"module": s},
    "nested-twice": lambda s: {"model": {"state_dict": prefixed(s, "_orig_mod.")}},
}


# safetensors files hold flat tensors only: the prefixes, not the nested dicts
FLAT = ("bare", "DataParallel", "torch.compile", "compiled-then-DataParallel", "DataParallel-then-compiled")
CASES = [pytest.param(wrap, ".pt", id=f"pt-{name}") for name, wrap in WRAPPERS.items()] + [
    pytest.param(WRAPPERS[name], ".safetensors", id=f"safetensors-{name}") for name in FLAT
]


@pytest.mark.parametrize("wrap, suffix", CASES)
def test_every_wrapper_loads_the_same_weights(tmp_path, wrap, suffix):
    state = reference_state()
    checkpoint = wrap(state)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file(checkpoint, str(path))
    else:
        torch.save(checkpoint, path)
    module = load_weights(Tiny(), read_checkpoint(path, "tiny"), path, "tiny")
    loaded = module.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[key], state[key]) for key in state)


def test_a_modules_own_module_prefix_is_kept():
    torch.manual_seed(1)
    state = Wrapped().state_dict()  # module.weight, module.bias
    assert list(unwrap_state_dict(state, expected_keys=state.keys())) == ["module.weight", "module.bias"]
    # wrapped once more by DataParallel: one prefix removed, the module's own kept
    unwrapped = unwrap_state_dict(prefixed(state, "module."), expected_keys=state.keys())
    assert list(unwrapped) == ["module.weight", "module.bias"]
    assert torch.equal(load_weights(Wrapped(), prefixed(state, "module."), "memory", "w").module.weight, state["module.weight"])


def test_a_prefix_on_some_keys_only_is_not_a_wrapper():
    state = collections.OrderedDict([("module.weight", torch.zeros(1)), ("bias", torch.zeros(1))])
    assert list(unwrap_state_dict(state)) == ["module.weight", "bias"]


def test_mismatch_names_the_first_missing_unexpected_and_reshaped_keys():
    state = reference_state()
    del state["encoder.bias"]
    state["encoder.weight"] = torch.zeros(5, 3)
    for index in range(SHOWN_KEYS + 2):
        state[f"head.{index}.weight"] = torch.zeros(1)
    with pytest.raises(EncoderError) as info:
        load_weights(Tiny(), prefixed(state, "module."), "/models/tiny.pt", "tiny-spec")
    message = str(info.value)
    assert message == (
        "The weight file /models/tiny.pt does not fit encoder 'tiny-spec': "
        "1 missing key (encoder.bias); "
        "5 unexpected keys (head.0.weight, head.1.weight, head.2.weight, ...); "
        "1 key of another shape (encoder.weight (5, 3) for (2, 3)) "
        "(is it a checkpoint of another architecture?)."
    )


def test_a_failed_load_leaves_the_module_untouched():
    module = Tiny()
    before = {key: value.clone() for key, value in module.state_dict().items()}
    broken = reference_state()
    del broken["norm.weight"]
    with pytest.raises(EncoderError, match=r"1 missing key \(norm.weight\)"):
        load_weights(module, broken, "memory", "tiny")
    assert all(torch.equal(module.state_dict()[key], before[key]) for key in before)


@pytest.mark.parametrize(
    "content, says",
    [
        (b"not a checkpoint at all", "cannot be read as a state dict"),
        (None, "does not exist"),
    ],
    ids=["garbage", "missing"],
)
def test_unreadable_files_are_one_sentence(tmp_path, content, says):
    path = tmp_path / "weights.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(EncoderError, match=says) as info:
        read_checkpoint(path, "tiny")
    assert "\n" not in str(info.value) and str(info.value).endswith(".")


def test_pickled_code_is_refused_not_run(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(Tiny(), path)  # a whole pickled module: loading it would run its class's code
    with pytest.raises(EncoderError, match="cannot be read as a state dict"):
        read_checkpoint(path, "tiny")


def test_a_checkpoint_without_tensors_names_its_keys(tmp_path):
    path = tmp_path / "args.pt"
    torch.save({"epoch": 3, "args": {"lr": 0.1}, "best": 0.5, "note": "x"}, path)
    with pytest.raises(EncoderError, match=r"holds no tensors \(its top-level keys: epoch, args, best, \.\.\.\)"):
        read_checkpoint(path, "tiny")


# ---------------------------------------------------------------------- one real encoder: effnet-lite0
@pytest.fixture(scope="module")
def effnet_state():
    from recsys.encoders.effnet import packaged_weights_path

    return torch.load(packaged_weights_path(), map_location="cpu", weights_only=True)


@pytest.mark.parametrize(
    "wrapper",
    ["DataParallel-nested-state_dict", "torch.compile-safetensors"],
)
def test_effnet_loads_wrapped_checkpoints(tmp_path, effnet_state, wrapper):
    if wrapper == "torch.compile-safetensors":
        path = tmp_path / "effnet.safetensors"
        save_file({key: value.contiguous() for key, value in prefixed(effnet_state, "_orig_mod.").items()}, str(path))
    else:
        path = tmp_path / "effnet.pth"
        torch.save({"epoch": 30, "state_dict": prefixed(effnet_state, "module.")}, path)
    encoder = create_encoder(f"effnet-lite0:{path}", device="cpu")
    assert torch.equal(encoder.model._fc.weight, effnet_state["_fc.weight"])


def test_effnet_mismatch_names_keys(tmp_path, effnet_state):
    state = dict(effnet_state)
    del state["_fc.weight"]
    state["classifier.weight"] = torch.zeros(2)
    path = tmp_path / "other.pth"
    torch.save({"model": state}, path)
    with pytest.raises(EncoderError) as info:
        create_encoder(f"effnet-lite0:{path}", device="cpu")
    assert str(info.value) == (
        f"The weight file {path} does not fit encoder 'effnet-lite0:{path}': 1 missing key (_fc.weight); "
        "1 unexpected key (classifier.weight) (is it a checkpoint of another architecture?)."
    )


# ---------------------------------------------------------------------- demo-clip: its weights come from the model store
@pytest.mark.parametrize("damage", ["not-safetensors", "keys-of-another-model"])
def test_demo_clip_weights_that_cannot_be_used_are_one_sentence(tmp_path, damage):
    weights = tmp_path / "composed-demo-clip.safetensors"
    weights.with_suffix(".json").write_text(json.dumps(
        {"class": "DemoClip", "params": {}, "state": {"image_dim": 2, "text_dim": 2, "logit_scale": 1.0}}))
    if damage == "not-safetensors":
        weights.write_bytes(b"junk")  # safetensors raises its own exception type for this
    else:
        save_numpy({"module.image.projection.weight": np.zeros((2, 2), np.float32)}, str(weights))
    expected = "cannot be read" if damage == "not-safetensors" else \
        r"does not fit encoder 'demo-clip': 11 missing keys \(image\.projection\.bias, .*image\.projection\.weight \(2, 2\)"
    with pytest.raises(EncoderError, match=expected) as info:
        create_encoder(f"demo-clip:{weights}")
    assert "\n" not in str(info.value) and str(info.value).endswith(").")
