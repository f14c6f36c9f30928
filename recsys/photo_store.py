"""One :class:`recsys.photo.PhotoReader` per catalog: the shipped image classifier, the reader fitted on a store's
artifacts, and the reading of an uploaded photo -- what every page that takes a photo and the upload protocol call.

:mod:`recsys.photo` holds the reader itself (it loads no encoder); this module wires it to a catalog's
:class:`recsys.store.ModelStore` and the registry's encoders.
"""

from __future__ import annotations

import logging

import numpy as np

from recsys.artifacts import ArtifactError
from recsys.colour import ColourNamer, load_photo_prototypes
from recsys.encoders.base import cached_text_vectors
from recsys.photo import PhotoReader, PhotoReading, imagenet_label_texts
from recsys.utils import l2_normalize

logger = logging.getLogger(__name__)

#: The image classifier every reading uses, whatever encoder the catalog's embeddings come from (it ships offline).
CLASSIFIER_SPEC = "effnet-lite0"


def place_on_image(grid_map: np.ndarray, width: int, height: int, side: int = 112) -> np.ndarray:
    """A ``(g, g)`` map over the padded square an encoder saw (:class:`recsys.encoders.transforms.PadToSquare`)
    cut back to the ``width`` x ``height`` image it came from, at most ``side`` px on its longer side."""
    from PIL import Image

    from recsys.encoders.transforms import square_box

    left, top, square = square_box(width, height)
    grid = np.asarray(grid_map, dtype=np.float32)
    up = np.asarray(Image.fromarray(grid).resize((side, side), Image.BILINEAR))
    scale = side / square
    rows = slice(int(round(top * scale)), max(int(round((top + height) * scale)), int(round(top * scale)) + 1))
    cols = slice(int(round(left * scale)), max(int(round((left + width) * scale)), int(round(left * scale)) + 1))
    return up[rows, cols]


def classifier(store, device: str | None = None):
    """The shipped ImageNet classifier (:data:`CLASSIFIER_SPEC`), loaded once per store; None when its weights are
    not installed (readings then rest on the catalog's neighbours alone)."""
    from recsys.encoders import EncoderError
    from recsys.encoders.pool import shared_encoder

    def build():
        try:
            return shared_encoder(CLASSIFIER_SPEC, device)
        except EncoderError as exc:
            logger.warning("photo readings without the image classifier: %s", exc)
            return None

    return store.memo(f"photo-classifier-{device}", build)


def recognizer(store):
    """The garment recognizer (:func:`recsys.recognizer.recognizer_for`) a store's readings use: one that reads the
    vectors of the catalog's image encoder or of the shipped classifier (whose pass every reading runs anyway);
    None otherwise, or when its file is missing or damaged (said once in the log, and the reader goes on without it).
    """
    from recsys.recognizer import recognizer_for

    specs = [CLASSIFIER_SPEC] + ([store.artifacts.image_encoder_spec] if store.artifacts is not None else [])
    return store.memo("garment-recognizer", lambda: recognizer_for(specs))


def recognizer_probabilities(store, image_vector: np.ndarray, feature_maps: np.ndarray | None):
    """``(probabilities, activation map)`` of the store's recognizer for one photo: it reads ``image_vector`` when
    it was trained on the catalog's encoder, else the pooled classifier ``feature_maps`` ``(C, h, w)``; the map is
    over those feature maps (None without them). ``(None, None)`` without a recognizer."""
    model = recognizer(store)
    if model is None:
        return None, None
    if store.artifacts is not None and model.encoder == store.artifacts.image_encoder_spec:
        vector = np.asarray(image_vector, dtype=np.float32).reshape(1, -1)
    elif feature_maps is not None:
        vector = l2_normalize(np.asarray(feature_maps, dtype=np.float32).mean(axis=(1, 2))[None, :])
    else:
        return None, None
    probabilities = model.predict_proba(vector)[0]
    cam = None
    if feature_maps is not None and model.encoder == CLASSIFIER_SPEC:
        cam = model.activation_map(probabilities, feature_maps)
    return probabilities, cam


def photo_reader(store, device: str | None = None) -> PhotoReader:
    """The catalog's :class:`PhotoReader`, fitted once per :class:`recsys.store.ModelStore` and shared by every page
    that takes a photo (and by the upload protocol).

    Raises
    ------
    recsys.artifacts.ArtifactError
        When the store has no artifacts to fit on.
    """
    if store.artifacts is None:
        raise ArtifactError(f"The catalog {store.catalog.name} has no precomputed embeddings to read photos with.")

    def build() -> PhotoReader:
        from recsys.encoders import EncoderError
        from recsys.encoders.pool import shared_encoder  # one instance per spec in a server

        items = store.catalog.items
        text_encoder = None
        if classifier(store, device) is not None:
            try:
                text_encoder = shared_encoder(store.artifacts.text_encoder_spec, device)
            except EncoderError as exc:
                logger.warning("photo readings without the classifier's labels: %s", exc)
        namer = None
        if "color" in items.columns and items["color"].notna().any():
            ids = items["item_id"].to_numpy()
            namer = ColourNamer().fit(items["color"].to_numpy(), lambda row: store.catalog.load_image(ids[row]),
                                      photo_prototypes=load_photo_prototypes())
        labels = vectors = None
        if text_encoder is not None:
            labels = imagenet_label_texts()
            vectors = cached_text_vectors(text_encoder, store.artifacts.text_encoder_spec, labels)
        joint = None
        if store.artifacts.manifest["image_encoder"].get("modality") == "joint":
            spec = store.artifacts.image_encoder_spec
            try:
                joint = text_encoder if text_encoder is not None and text_encoder.spec == spec \
                    else shared_encoder(spec, device)
            except EncoderError as exc:
                logger.warning("photo readings without the image-text expert: %s", exc)
        garment_model = recognizer(store)
        return PhotoReader().fit(store.artifacts.image, items["category"], items["slot"], items["title"],
                                 text_encoder=text_encoder, colour_namer=namer, label_texts=labels,
                                 label_vectors=vectors, joint_encoder=joint, recognizer=garment_model)

    return store.memo("photo-reader", build)


def read_photo(store, image, image_vector: np.ndarray, device: str | None = None) -> PhotoReading:
    """The :class:`PhotoReading` of a decoded ``image`` whose catalog embedding is ``image_vector`` ``(d,)``.

    Raises
    ------
    recsys.artifacts.ArtifactError
        When the catalog has no artifacts.
    ValueError
        When ``image_vector`` does not have the catalog's dimension.
    """
    reader = photo_reader(store, device)
    model = classifier(store, device)
    if model is None or reader.label_map_ is None:
        recognized, _ = recognizer_probabilities(store, image_vector, None)
        return reader.read(image_vector, image, recognizer_probabilities=recognized)
    probabilities, maps = model.classify_images([image])
    recognized, cam = recognizer_probabilities(store, image_vector, maps[0])
    if cam is None:  # without the recognizer, the classifier's garment labels say where the garment is
        cam = reader.garment_map(probabilities[0], maps[0], model.classifier_weight)
    prior = place_on_image(cam, *image.size) if cam.max() > 0 else None
    return reader.read(image_vector, image, probabilities[0], garment_prior=prior, recognizer_probabilities=recognized)

