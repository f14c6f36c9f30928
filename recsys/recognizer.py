"""A garment recognizer trained on real photos: a linear head over an image encoder's pooled vector.

The shipped image encoder knows ImageNet, which has no shirt, blouse or trousers; a photo of someone's own clothes
is read far better by a head trained on real photos of clothes as people take them. :class:`GarmentRecognizer` is a
multinomial logistic regression (scikit-learn's ``LogisticRegression``) on the L2-normalised pooled vector the
catalog's encoder already computes, so reading a photo costs one matrix product; being linear over a global average
pool, its weights over the encoder's last feature map give a class activation map (Zhou et al., "Learning Deep
Features for Discriminative Localization", CVPR 2016): where in the photo the garment is.

Training (reading labelled photos, person-grouped cross-validation, the card) is in
:mod:`recsys.recognizer_training` and ``scripts/train_photo_head.py``; the studio ships one recognizer for
``effnet-lite0`` in ``assets/models/`` (:func:`load_recognizer`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from recsys.config import get_settings
from recsys.models.base import Estimator

logger = logging.getLogger(__name__)

#: Where the shipped recognizer lives (``.safetensors`` + ``.json`` card), and the encoder it reads.
SHIPPED_PATH = Path(__file__).resolve().parent.parent / "assets" / "models" / "garment-head"
#: Labels that name no garment class ("Not sure", "Skip", "Other" in the clothing dataset): never classes.
NON_CLASSES = frozenset({"notsure", "skip", "other", "unknown", "none", "misc", "miscellaneous", "nolabel"})


class RecognizerError(ValueError):
    """A recognizer file or a training source cannot be used; the message is one sentence saying why."""


def _key(text: str) -> str:
    return re.sub(r"[\W_]+", "", str(text).lower())


def is_class_label(label: str) -> bool:
    """False for an empty label and for labels that mean nothing (:data:`NON_CLASSES`: "Not sure", "Skip", ...)."""
    return bool(str(label).strip()) and _key(label) not in NON_CLASSES


class GarmentRecognizer(Estimator):
    """Multinomial logistic regression over an encoder's L2-normalised pooled vector (see the module docstring).

    Parameters
    ----------
    reg : float
        Inverse L2 strength, scikit-learn's ``C`` (chosen by :func:`grouped_cross_validation`).
    class_weight : {None, "balanced"}
        ``"balanced"`` weighs each label by the inverse of its photo count.
    encoder : str
        Spec of the image encoder whose vectors the head reads (``effnet-lite0``).
    max_iter : int
        L-BFGS iterations.
    random_state : int

    Attributes
    ----------
    classes_ : list of str
        The labels, sorted.
    coef_ : ndarray of shape (n_classes, d)
        Weights over the raw L2-normalised vector (the standardisation folded in).
    intercept_ : ndarray of shape (n_classes,)
    label_texts_ : dict
        Label -> the sentence the text encoder relates to a catalog's category names (default: the label itself).
    card_ : dict
        What the recognizer was trained on and how well it did (data, licence, counts, cross-validation, command).
    """

    def __init__(self, *, reg: float = 1.0, class_weight: str | None = None, encoder: str = "effnet-lite0",
                 max_iter: int = 2000, random_state: int = 0):
        self.reg = reg
        self.class_weight = class_weight
        self.encoder = encoder
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, vectors: np.ndarray, labels, sample_weight: np.ndarray | None = None) -> "GarmentRecognizer":
        """Fit on ``(n, d)`` vectors and their ``n`` labels; returns ``self``.

        Raises
        ------
        ValueError
            For mismatched lengths or fewer than two labels.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        vectors = np.asarray(vectors, dtype=np.float64)
        labels = np.asarray(labels, dtype=str)
        if len(vectors) != len(labels):
            raise ValueError(f"{len(vectors)} vectors and {len(labels)} labels: one label per vector is needed.")
        if len(set(labels.tolist())) < 2:
            raise ValueError("A recognizer needs photos of at least two labels.")
        scaler = StandardScaler().fit(vectors)
        head = LogisticRegression(C=self.reg, class_weight=self.class_weight, max_iter=self.max_iter,
                                  random_state=self.random_state)
        head.fit(scaler.transform(vectors), labels, sample_weight=sample_weight)
        coef, intercept = head.coef_, head.intercept_
        if coef.shape[0] == 1:  # two labels: sigmoid(w x + b) is the softmax of the logits (0, w x + b)
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
        # (x - mean) / scale -> fold into the weights, so the head (and its activation map) reads the raw vector
        self.coef_ = (coef / scaler.scale_).astype(np.float32)
        self.intercept_ = (intercept - self.coef_.astype(np.float64) @ scaler.mean_).astype(np.float32)
        self.classes_ = [str(c) for c in head.classes_]
        self.label_texts_ = getattr(self, "label_texts_", None) or {c: c for c in self.classes_}
        self.card_ = getattr(self, "card_", None) or {}
        return self

    def decision_function(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, n_classes)`` logits of ``(n, d)`` vectors (or ``(n_classes,)`` for one ``(d,)`` vector).

        Raises
        ------
        ValueError
            When the vectors do not have the head's dimension.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape[-1] != self.coef_.shape[1]:
            raise ValueError(f"The recognizer reads {self.coef_.shape[1]}-d vectors of {self.encoder}; this one has "
                             f"{vectors.shape[-1]}.")
        return vectors @ self.coef_.T + self.intercept_

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, n_classes)`` label probabilities (rows sum to 1), in :attr:`classes_` order."""
        from scipy.special import softmax

        return softmax(self.decision_function(vectors).astype(np.float64), axis=-1)

    def predict(self, vectors: np.ndarray) -> np.ndarray:
        """The most probable label of each vector."""
        return np.asarray(self.classes_)[np.argmax(self.decision_function(vectors), axis=-1)]

    def activation_map(self, probabilities: np.ndarray, feature_maps: np.ndarray) -> np.ndarray:
        """``(h, w)`` class activation map of the labels weighted by their ``(n_classes,)`` probabilities over the
        encoder's ``(C, h, w)`` last feature map (Zhou et al. 2016), negative evidence cut at 0: where the garment is."""
        weights = np.asarray(probabilities, dtype=np.float32) @ self.coef_
        return np.maximum(np.tensordot(weights, np.asarray(feature_maps, dtype=np.float32), axes=(0, 0)), 0.0)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict]:
        return ({"coef": self.coef_, "intercept": self.intercept_},
                {"classes": self.classes_, "label_texts": self.label_texts_, "card": self.card_})

    def _set_state(self, tensors: dict[str, np.ndarray], meta: dict, **inputs) -> None:
        self.coef_ = np.asarray(tensors["coef"], dtype=np.float32)
        self.intercept_ = np.asarray(tensors["intercept"], dtype=np.float32)
        self.classes_ = [str(c) for c in meta["classes"]]
        self.label_texts_ = {c: str(meta.get("label_texts", {}).get(c, c)) for c in self.classes_}
        self.card_ = dict(meta.get("card", {}))
        if self.coef_.ndim != 2 or self.coef_.shape[0] != len(self.classes_) or self.intercept_.shape != (len(self.classes_),):
            raise ValueError(f"The recognizer's weights {self.coef_.shape} do not match its {len(self.classes_)} labels.")


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        logger.warning("%s", message)


def load_recognizer(path: str | Path | None = None) -> GarmentRecognizer:
    """The garment recognizer saved at ``path`` (without suffix; default ``RECSYS_PHOTO_HEAD``, else the shipped
    :data:`SHIPPED_PATH`).

    Raises
    ------
    RecognizerError
        One sentence naming the file, when it is missing, damaged (cut off, empty, a git-lfs pointer, another
        program's file) or holds no recognizer.
    """
    from safetensors import SafetensorError

    if path is None:
        path = get_settings().photo_head or SHIPPED_PATH
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    try:
        return GarmentRecognizer.load(path)
    except FileNotFoundError:
        raise RecognizerError(f"The garment recognizer {path}.safetensors/.json is missing; photos are read by the "
                              f"other experts (train one with scripts/train_photo_head.py).") from None
    except (SafetensorError, ValueError, KeyError, TypeError, OSError) as exc:
        raise RecognizerError(f"The garment recognizer {path}.safetensors/.json is damaged or not a recognizer "
                              f"({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}); photos are "
                              f"read by the other experts.") from None


def recognizer_for(encoder_specs, path: str | Path | None = None) -> GarmentRecognizer | None:
    """The recognizer (:func:`load_recognizer`) when it reads the vectors of one of ``encoder_specs`` (the encoders
    a reading runs), else None; why it is not used is logged once per reason."""
    try:
        model = load_recognizer(path)
    except RecognizerError as exc:
        _warn_once(str(exc))
        return None
    if model.encoder not in set(encoder_specs):
        _warn_once(f"The garment recognizer reads {model.encoder} vectors and this catalog's photos are embedded by "
                   f"{', '.join(sorted(set(encoder_specs)))}; photos are read without it (train one for this encoder "
                   f"with scripts/train_photo_head.py --image-encoder SPEC).")
        return None
    return model


