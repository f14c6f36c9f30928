"""The demo-clip encoder through the registry: lazily imported, missing weights, and a trained catalog's joint
encoder end to end (the heads trained and saved by the model store)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from recsys.encoders import EncoderError, create_encoder, list_encoders


def test_demo_clip_is_registered_and_imported_only_when_created():
    assert "demo-clip" in list_encoders()
    code = ("import sys, recsys.encoders; "
            "assert not {'recsys.encoders.democlip', 'recsys.models.democlip'} & set(sys.modules), sys.modules.keys()")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_weights_give_one_sentence_with_the_command(tmp_path):
    with pytest.raises(EncoderError, match="no trained weights .* scripts/train.py"):
        create_encoder(f"demo-clip:{tmp_path}")


def test_the_trained_encoder_embeds_images_and_text_in_one_space(tiny_catalog, tiny_artifacts):
    from recsys.store import ModelStore

    ModelStore(tiny_catalog, tiny_artifacts).get_or_fit("composed", "demo-clip", quick=True)
    encoder = create_encoder(f"demo-clip:{tiny_catalog.root}")
    assert encoder.modality == "joint" and encoder.encodes_images and encoder.encodes_text
    assert encoder.image_encoder.spec == tiny_artifacts.image_encoder_spec
    item_ids = tiny_catalog.items["item_id"].iloc[:4].tolist()
    images = encoder.encode_images([tiny_catalog.load_image(i) for i in item_ids])
    texts = encoder.encode_text(tiny_catalog.items["title"].iloc[:4].tolist())
    assert images.shape == texts.shape == (4, encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    # the encoder's image path equals the heads applied to the precomputed vectors
    np.testing.assert_allclose(images, encoder.clip.project_images(tiny_artifacts.image[:4]), atol=2e-3)
    assert encoder.truncates("word " * 1000) and not encoder.truncates("is red")
