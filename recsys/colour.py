"""The colour of the garment in a photo, named in a catalog's own colour vocabulary.

Three steps, each a plain function so any page, protocol or ingest can use them:

1. :func:`to_lab`: sRGB pixels to CIELAB (Pillow's ``ImageCms``), where colour difference can be measured as it is
   perceived: CIEDE2000 (scikit-image's ``deltaE_ciede2000``; Sharma et al., Color Res. Appl. 2005), which, unlike
   plain Euclidean Lab distance (CIE76), discounts the chroma and lightness a photo's lighting takes from a garment
   (Myntra product photos into the built-in world: colour accuracy 0.594 / 0.638 on the two halves of the set,
   against 0.523 / 0.597 with CIE76);
2. :func:`garment_weights`: how much each pixel belongs to the garment rather than the background. The background
   is what the image's border shows (a product shot's plain backdrop, a floor, a wall): its colours are clustered
   (scikit-learn's k-means) and a pixel counts as garment in proportion to its distance from all of them. An
   optional ``prior`` map -- the image classifier's activation map of the garment classes
   (:meth:`recsys.photo.PhotoReader.read`) -- takes weight off a face, hands or a second object;
3. :func:`colour_shares`: every weighted pixel votes for its nearest colour prototype; the shares of the votes are
   the colour's confidence. Voting, not averaging: the mean of a striped shirt's pixels is a colour it does not have.

The prototypes come from the catalog (:meth:`ColourNamer.fit`: the median garment colour of a sample of its items
of each colour) so the vocabulary's names mean what its images show, with the CSS colour names Pillow knows
(``ImageColor``) for a colour that has no item to learn from. No table is written for any particular catalog.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
from PIL import Image

from recsys.models.base import Estimator
from recsys.utils import RankedGuess

logger = logging.getLogger(__name__)

#: Side (px) images are reduced to before reading their colour: enough for a garment, cheap for k-means.
WORK_SIDE = 112
#: Lab distance (CIE76) from every background colour below which a pixel is background, and the ramp above it.
BACKGROUND_DISTANCE, BACKGROUND_RAMP = 8.0, 12.0
#: Background colours clustered from the border pixels.
BORDER_CLUSTERS = 3

#: The colour vocabulary of a catalog that names none (a folder of photos): Berlin and Kay's eleven basic colour terms
#: ("Basic Color Terms", 1969), which every language's shoppers share, plus navy and beige, the two neutrals clothing
#: catalogs name most. Their Lab values are Pillow's CSS colours.
BASIC_COLOURS = ("black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown",
                 "navy", "beige")

_TO_LAB = None


class ColourGuess(RankedGuess):
    """The garment's colour: the most voted name (``colour``), its share of the votes (``confidence``) and every
    name's share (``shares``, highest first)."""

    @property
    def colour(self) -> str:
        """The most voted colour name."""
        return self.label


def _lab_transform():
    global _TO_LAB
    if _TO_LAB is None:
        from PIL import ImageCms

        _TO_LAB = ImageCms.buildTransformFromOpenProfiles(ImageCms.createProfile("sRGB"),
                                                          ImageCms.createProfile("LAB"), "RGB", "LAB")
    return _TO_LAB


def to_lab(pixels: np.ndarray) -> np.ndarray:
    """CIELAB ``(..., 3)`` float32 (L in [0, 100], a and b in about [-128, 127]) of sRGB ``(..., 3)`` uint8 pixels.

    Raises
    ------
    ValueError
        When the last axis does not hold 3 channels.
    """
    pixels = np.asarray(pixels)
    if pixels.shape[-1] != 3:
        raise ValueError(f"Expected RGB pixels with 3 channels, got shape {pixels.shape}.")
    flat = np.ascontiguousarray(pixels.reshape(1, -1, 3).astype(np.uint8))
    from PIL import ImageCms

    raw = np.asarray(ImageCms.applyTransform(Image.fromarray(flat, "RGB"), _lab_transform()), dtype=np.uint8)
    # Pillow's LAB mode stores L scaled to 0-255 and a, b as two's-complement bytes.
    ab = raw[..., 1:].view(np.int8).astype(np.float32)
    lab = np.concatenate([raw[..., :1].astype(np.float32) * (100.0 / 255.0), ab], axis=-1)
    return lab.reshape(pixels.shape).astype(np.float32)


def work_pixels(image: Image.Image, side: int = WORK_SIDE) -> np.ndarray:
    """``(h, w, 3)`` uint8 RGB pixels of ``image`` reduced so its longer side is ``side`` (aspect kept)."""
    image = image.convert("RGB")
    scale = side / max(image.size)
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def garment_weights(lab: np.ndarray, prior: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """``(h, w)`` weights in [0, 1]: how far each pixel of a ``(h, w, 3)`` Lab image is from the border's colours,
    times ``prior`` (same shape, in [0, 1]) when given. All zero for an image of one flat colour.

    Raises
    ------
    ValueError
        For an image smaller than 3 x 3 pixels.
    """
    from sklearn.cluster import KMeans

    h, w, _ = lab.shape
    if h < 3 or w < 3:
        raise ValueError(f"An image of {w} x {h} pixels is too small to tell a garment from its background.")
    border = np.concatenate([lab[0], lab[-1], lab[1:-1, 0], lab[1:-1, -1]])
    k = min(BORDER_CLUSTERS, len(np.unique(border.round(0), axis=0)))
    centres = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(border).cluster_centers_
    distance = np.min(np.linalg.norm(lab[:, :, None, :] - centres[None, None], axis=-1), axis=-1)
    weights = np.clip((distance - BACKGROUND_DISTANCE) / BACKGROUND_RAMP, 0.0, 1.0)
    if prior is not None:
        weights = weights * np.clip(prior, 0.0, 1.0)
    return weights.astype(np.float32)


def colour_shares(lab: np.ndarray, weights: np.ndarray, names: list[str], prototypes: np.ndarray) -> np.ndarray:
    """Shares of the weighted pixel votes for each distinct name of ``names`` (in order of first appearance): every
    pixel of the ``(h, w, 3)`` Lab image votes with its ``(h, w)`` weight for the name of its nearest row of
    ``prototypes`` ``(len(names), 3)`` (several rows may carry one name), nearest by CIEDE2000. Uniform when no pixel
    has weight."""
    from skimage.color import deltaE_ciede2000

    vocabulary = list(dict.fromkeys(names))
    code_of_row = np.array([vocabulary.index(n) for n in names])
    nearest = deltaE_ciede2000(lab.reshape(-1, 1, 3), np.asarray(prototypes)[None], channel_axis=-1).argmin(axis=1)
    votes = np.bincount(code_of_row[nearest], weights=weights.reshape(-1), minlength=len(vocabulary))
    total = votes.sum()
    return votes / total if total > 0 else np.full(len(vocabulary), 1.0 / len(vocabulary))


def css_lab(name: str) -> np.ndarray | None:
    """Lab of a colour name Pillow's CSS table knows (spaces, hyphens and case ignored: "Navy Blue" -> "navyblue",
    then its last word, "blue"), or None."""
    from PIL import ImageColor

    words = re.findall(r"[a-z]+", str(name).lower())
    for candidate in ("".join(words), words[-1] if words else "", "gray" if words == ["grey"] else ""):
        if candidate and candidate in ImageColor.colormap:
            return to_lab(np.array(ImageColor.getrgb(candidate)[:3], dtype=np.uint8))
    return None


def _name_key(name) -> str:
    return re.sub(r"[\W_]+", "", str(name).lower()).replace("gray", "grey")


def garment_colour(image: Image.Image, seed: int = 0) -> np.ndarray:
    """``(3,)`` Lab median of the pixels of ``image`` that are clearly garment (weight over 0.5; the weighted mean
    when none is), the colour a prototype is made of.

    Raises
    ------
    ValueError
        For an image smaller than 3 x 3 pixels.
    """
    lab = to_lab(work_pixels(image))
    weights = garment_weights(lab, seed=seed)
    if weights.sum() <= 0:
        weights = np.ones(lab.shape[:2], dtype=np.float32)
    clear = lab.reshape(-1, 3)[weights.reshape(-1) > 0.5]
    return np.median(clear, axis=0) if len(clear) else np.average(lab.reshape(-1, 3), axis=0, weights=weights.reshape(-1))


#: The colour prototypes the studio ships, learned from labelled product photos (scripts/train_colour_prototypes.py).
SHIPPED_PROTOTYPES = Path(__file__).resolve().parent.parent / "assets" / "models" / "colour-prototypes.json"
_SAID: set[str] = set()


def load_photo_prototypes(path: str | Path | None = None) -> dict | None:
    """``{name: (k, 3) Lab}`` from a prototypes file (default :data:`SHIPPED_PROTOTYPES`); None, said once in the
    log, when it is missing or damaged (colours are then read with the catalog's own prototypes alone)."""
    import json

    path = Path(path) if path is not None else SHIPPED_PROTOTYPES
    problem = None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))["prototypes"]
        prototypes = {str(name): np.asarray(rows, dtype=np.float32).reshape(-1, 3) for name, rows in raw.items()}
        if all(np.isfinite(rows).all() for rows in prototypes.values()):
            return prototypes
        problem = "values that are not numbers"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        problem = type(exc).__name__
    message = f"The colour prototypes {path} are missing or damaged ({problem}); colours are read with the " \
              f"catalog's own prototypes."
    if message not in _SAID:
        _SAID.add(message)
        logger.warning("%s", message)
    return None


def learn_photo_prototypes(garment_colours: np.ndarray, names, per_colour: int = 2, min_photos: int = 5,
                           random_state: int = 0) -> dict:
    """``{name: (k, 3) Lab prototypes}`` from labelled real photos: the :func:`garment_colour` ``(n, 3)`` of each
    photo clustered per colour name into at most ``per_colour`` centres (scikit-learn's k-means): a colour as photos
    show it under different light (a light and a deep blue). Names with fewer than ``min_photos`` photos are left
    out."""
    from sklearn.cluster import KMeans

    garment_colours = np.asarray(garment_colours, dtype=np.float64)
    names = np.asarray(names, dtype=str)
    prototypes = {}
    for name in sorted(set(names.tolist())):
        points = garment_colours[names == name]
        if len(points) < min_photos:
            continue
        k = min(per_colour, len(points))
        centres = KMeans(n_clusters=k, n_init=3, random_state=random_state).fit(points).cluster_centers_ \
            if k > 1 else np.median(points, axis=0, keepdims=True)
        prototypes[name] = centres.astype(np.float32)
    return prototypes


class ColourNamer(Estimator):
    """Names the garment colour of an image in a catalog's colour vocabulary (see the module docstring).

    Parameters
    ----------
    per_colour : int
        Catalog items per colour whose garment colour becomes a prototype.
    random_state : int
        Picks those items and seeds the background clustering.

    Attributes
    ----------
    vocabulary_ : list of str
        The colour names, in the catalog's order of first appearance.
    prototypes_ : ndarray of shape (m, 3)
        Lab prototypes; ``prototype_names_[i]`` is the name of row ``i``.
    prototype_names_ : list of str
    sources_ : dict
        Per name, ``"catalog"`` (learned from its items) or ``"css"`` (Pillow's colour table).
    """

    def __init__(self, *, per_colour: int = 12, random_state: int = 0):
        self.per_colour = per_colour
        self.random_state = random_state

    def fit(self, colours, images, photo_prototypes: dict | None = None) -> "ColourNamer":
        """Learn a prototype per colour name from catalog images; returns ``self``.

        Parameters
        ----------
        colours : sequence of str, shape (n_items,)
            Each item's colour name (empty or missing values are ignored).
        images : callable ``row -> PIL.Image``
            Loads the image of catalog row ``row``; called for at most ``per_colour`` rows per name.
        photo_prototypes : dict, optional
            Colour name -> ``(k, 3)`` Lab prototypes learned from labelled real photos
            (:func:`learn_photo_prototypes`); a vocabulary name equal to one (case and spaces ignored) gets them too,
            so a photo's lighter or darker take on a colour still finds its name.

        Raises
        ------
        ValueError
            When no item has a colour, or a colour has neither a readable image nor a CSS name.
        """
        colours = np.asarray([str(c) if c is not None and str(c) not in ("", "nan", "None") else "" for c in colours])
        self.vocabulary_ = [c for c in dict.fromkeys(colours) if c]
        if not self.vocabulary_:
            raise ValueError("The catalog names no colours to learn from.")
        rng = np.random.default_rng(self.random_state)
        prototypes, names, self.sources_ = [], [], {}
        for name in self.vocabulary_:
            rows = np.flatnonzero(colours == name)
            rows = rng.choice(rows, size=min(self.per_colour, len(rows)), replace=False)
            medians = []
            for row in rows:
                try:
                    lab = to_lab(work_pixels(images(int(row))))
                    weights = garment_weights(lab, seed=self.random_state)
                # A damaged catalog image (cut short, not an image, a decompression bomb, ...) loses only this
                # item's prototype; the same kinds as the precompute's recsys.precompute_engine.IMAGE_ERRORS.
                except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
                    logger.info("colour %s: image of row %d unusable, left out (%s: %s)", name, row,
                                type(exc).__name__, exc)
                    continue
                if weights.sum() > 0:
                    medians.append(np.median(lab.reshape(-1, 3)[weights.reshape(-1) > 0.5], axis=0)
                                   if (weights > 0.5).any() else np.average(lab.reshape(-1, 3), axis=0,
                                                                             weights=weights.reshape(-1)))
            if medians:
                prototypes.append(np.median(np.stack(medians), axis=0))
                self.sources_[name] = "catalog"
            elif (css := css_lab(name)) is not None:
                prototypes.append(css.reshape(3))
                self.sources_[name] = "css"
            else:
                raise ValueError(f"The colour {name!r} has no readable image and is not a colour name Pillow knows.")
            names.append(name)
        self.prototypes_ = np.stack(prototypes).astype(np.float32)
        self.prototype_names_ = names
        return self._add_photo_prototypes(photo_prototypes)

    def _add_photo_prototypes(self, photo_prototypes: dict | None) -> "ColourNamer":
        learned = {_name_key(k): np.asarray(v, dtype=np.float32).reshape(-1, 3) for k, v in (photo_prototypes or {}).items()}
        for name in self.vocabulary_:
            rows = learned.get(_name_key(name))
            if rows is not None and len(rows):
                self.prototypes_ = np.vstack([self.prototypes_, rows])
                self.prototype_names_ = self.prototype_names_ + [name] * len(rows)
                self.sources_[name] += " and photos"
        return self

    def fit_names(self, names, photo_prototypes: dict | None = None) -> "ColourNamer":
        """Prototypes from Pillow's CSS colours, for a vocabulary without images (names it does not know are left
        out), and ``photo_prototypes`` as :meth:`fit` takes them; returns ``self``.

        Raises
        ------
        ValueError
            When Pillow knows none of the names.
        """
        known = [(str(n), css_lab(n)) for n in dict.fromkeys(names)]
        known = [(n, lab) for n, lab in known if lab is not None]
        if not known:
            raise ValueError("None of the colour names is one Pillow knows.")
        self.vocabulary_ = [n for n, _ in known]
        self.prototype_names_ = list(self.vocabulary_)
        self.prototypes_ = np.stack([lab.reshape(3) for _, lab in known]).astype(np.float32)
        self.sources_ = {n: "css" for n in self.vocabulary_}
        return self._add_photo_prototypes(photo_prototypes)

    def read(self, image: Image.Image, prior: np.ndarray | None = None) -> ColourGuess:
        """The :class:`ColourGuess` of ``image``; ``prior`` (any shape, values >= 0) is resized onto it and
        multiplied into the garment weights.

        Raises
        ------
        ValueError
            For an image smaller than 3 x 3 pixels.
        """
        pixels = work_pixels(image)
        lab = to_lab(pixels)
        if prior is not None:
            prior = np.asarray(prior, dtype=np.float32)
            prior = prior / prior.max() if prior.max() > 0 else np.ones_like(prior)
            prior = np.asarray(Image.fromarray(prior).resize((pixels.shape[1], pixels.shape[0]), Image.BILINEAR))
        weights = garment_weights(lab, prior=prior, seed=self.random_state)
        if weights.sum() <= 0:  # one flat colour: the garment fills the frame
            weights = np.ones(lab.shape[:2], dtype=np.float32)
        shares = colour_shares(lab, weights, self.prototype_names_, self.prototypes_)
        return ColourGuess.from_probabilities(list(dict.fromkeys(self.prototype_names_)), shares)
