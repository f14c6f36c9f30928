"""Photo understanding shared by every upload: the category, slot and colour of the garment in a photo.

Uploads are photos of people's own clothes; a catalog may be anything (the built-in world is drawn illustrations).
:class:`PhotoReader` multiplies experts (a product of experts with geometric weights, so each vetoes what the others
find implausible), each giving ``P(category | photo)`` in the catalog's own vocabulary:

* **the garment recognizer** (:mod:`recsys.recognizer`): a head trained on real photos of clothes as people take them
  and on product shots. Its labels ("Longsleeve", "Heels") are related to the catalog's categories by the text
  encoder, through each label's sentence in its card, so any catalog works without a table written for it;
* **what the ImageNet classifier sees**: the shipped image encoder is the full ImageNet model, and the text encoder
  relates every label's WordNet name and gloss (timm's ``ImageNetInfo``) to every category; labels that resemble no
  category carry no vote, and the share of belief on garment labels says whether there is a garment at all;
* **the catalog's neighbours**: a softmax-weighted vote of the photo's nearest catalog items in the catalog's space;
* **the photo against words in one space** (a catalog embedded by a joint image-text encoder, an open_clip model):
  CLIP's zero-shot classifier over each category's prompts.

The weights, temperatures and the confidence below which a page asks were chosen on validation photos only
(DESIGN section 13): people kept out of the recognizer's training, and product shots read by heads that did not
see them. Category texts come from the catalog -- the category name and the ways its titles spell it. The garment's
colour is named by :class:`recsys.colour.ColourNamer` with an activation map (the recognizer's, else the
classifier's garment labels') as the garment prior. Measured on real photos with ``scripts/evaluate.py --task
upload``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from recsys.colour import ColourGuess, ColourNamer
# The texts the experts relate (defined apart; imported here so ``recsys.photo.category_texts`` keeps working).
from recsys.photo_texts import PROMPT_TEMPLATES, category_spellings, category_texts, imagenet_label_texts  # noqa: F401
from recsys.models.base import Estimator
from recsys.utils import RankedGuess, top_n


#: Below this probability a page asks the user to choose the category instead of stating it: the lowest threshold at
#: which the validation photos' wrong statements stay within 2.5% of photos, a margin under the 3% aimed at
#: (scripts/tune_photo_reader.py; DESIGN section 13).
UNSURE_BELOW = 0.65
#: The same threshold for a reading the recognizer took no part in (no recognizer, or the catalog's own image), as
#: chosen for the other experts on the same validation photos.
UNSURE_BELOW_WITHOUT_RECOGNIZER = 0.5
#: Below this share of the classifier's belief on garment labels -- and unless the photo is as close to a catalog
#: item as catalog items are to each other -- a page says it sees no garment. On the shared real photos (all garments)
#: the share's 5th percentile is 0.14, on a landscape, a flower, a plain wall and noise 0.02 to 0.05; drawn catalog
#: items can score as low as a landscape, hence the closeness test.
NO_GARMENT_BELOW = 0.1
#: The classifier labels a reading reports as "what it saw".
SEEN_LABELS = 3


class CategoryGuess(RankedGuess):
    """The predicted category of a photo (``category``), its probability (``confidence``), and every category's
    probability (``shares``, highest first)."""

    @property
    def category(self) -> str:
        """The most probable category."""
        return self.label


@dataclass(frozen=True)
class PhotoReading:
    """What :meth:`PhotoReader.read` found in one photo.

    Attributes
    ----------
    category : CategoryGuess
    slot : str
        The slot of the predicted category (the slot most of its catalog items have).
    colour : recsys.colour.ColourGuess or None
        None when the catalog has no colour vocabulary.
    garment : float or None
        Share of the image classifier's belief on labels that name a garment (None without the classifier).
    seen : tuple of (str, float)
        The classifier's most probable labels and their probabilities (empty without it).
    familiar : bool
        The photo is as close to its nearest catalog item as 95% of catalog items are to theirs (it looks like
        the catalog's own images).
    recognized : tuple of (str, float)
        The garment recognizer's most probable labels and their probabilities (empty without it).
    unsure_below : float
        The reader's confidence below which a page asks for the category.
    """

    category: CategoryGuess
    slot: str
    colour: ColourGuess | None
    garment: float | None
    seen: tuple = ()
    familiar: bool = False
    recognized: tuple = ()
    unsure_below: float = UNSURE_BELOW

    @property
    def no_garment(self) -> bool:
        """True when the classifier sees no garment in the photo and it does not look like a catalog item."""
        return self.garment is not None and self.garment < NO_GARMENT_BELOW and not self.familiar

    @property
    def unsure(self) -> bool:
        """True when a page should ask the user for the category rather than state it."""
        return self.no_garment or self.category.confidence < self.unsure_below

    def category_choices(self, categories) -> list[str]:
        """``categories`` ordered for a page's category list: most probable first, then any the reading has no
        probability for (in their given order). The right category is among the first three for 0.985 of everyday
        photos into the built-in world where the first is right for 0.90."""
        known = set(categories)
        ranked = [c for c in self.category.shares if c in known]
        taken = set(ranked)
        return ranked + [c for c in categories if c not in taken]

    def sentence(self) -> str:
        """One sentence for the page: what the photo shows and how sure the reading is."""
        seen = f" (the image classifier sees {self.seen[0][0]}, {self.seen[0][1]:.0%})" if self.seen else ""
        if self.no_garment:
            return f"This does not look like a garment{seen}; choose the category to search anyway."
        if self.recognized:  # its label, without its own figure: one confidence per sentence (a user's trial read two)
            seen = f" (the garment recognizer sees {self.recognized[0][0]})"
        # No article: a catalog's category names are singular or plural ("dress", "sneakers") and unknown here.
        colour = f" in {self.colour.colour}" if self.colour is not None else ""
        guess = self.category
        if self.unsure:
            return (f"Not sure: perhaps {guess.category} ({guess.confidence:.0%}) or {guess.runner_up} "
                    f"({guess.shares.get(guess.runner_up, 0.0):.0%}){colour}{seen}; please choose the category.")
        # the confidence beside the category it is of (after the colour it read as the colour's, in a user's trial)
        return f"Reads as {guess.category} ({guess.confidence:.0%} sure, slot {self.slot}){colour}{seen}."


class PhotoReader(Estimator):
    """Category, slot and colour of a photo in one catalog's vocabulary (see the module docstring).

    Parameters
    ----------
    zero_shot_weight : float in [0, 1]
        Geometric weight of the classifier expert against the catalog neighbours (1: classifier only).
    label_temperature : float
        Temperature of ``P(category | label)`` over the text similarities.
    garment_threshold : float
        Text similarity at which a label counts half as a garment (a logistic ramp of width 0.05 around it).
    neighbour_temperature : float
        Temperature of the neighbours' softmax weights over cosine similarities.
    neighbours : int or None
        Catalog neighbours that vote (None: every item, each weighted by its softmax weight).
    image_text_weight : float in [0, 1]
        Geometric weight of the image-text expert (fitted only for a catalog embedded by a joint image-text encoder)
        against the product of the other two.
    image_text_temperature : float
        Temperature of the image-text expert's softmax over cosine similarities (CLIP's learned logit scale is
        about 100, so 0.01).
    recognizer_weight : float in [0, 1]
        Geometric weight of the garment recognizer against the product of the neighbours and the classifier.
    recognizer_temperature : float
        Temperature of ``P(category | recognizer label)`` over the text similarities.
    confidence_temperature : float
        Divides the product's log-probabilities (1: as they are).
    unsure_below : float
        Confidence below which a page asks for the category instead of stating it, when the recognizer voted
        (:data:`UNSURE_BELOW_WITHOUT_RECOGNIZER` when it did not).
    random_state : int

    Attributes
    ----------
    classes_ : list of str
        Catalog categories, sorted.
    slots_ : dict
        Category -> slot.
    label_map_ : ndarray of shape (n_labels, n_classes) or None
        ``P(category | label)`` times the label's garment weight (None without a classifier).
    garment_ : ndarray of shape (n_labels,) or None
        How much each label names a garment.
    label_names_ : list of str
        Each label's first synonym.
    recognizer_map_ : ndarray of shape (n_recognizer_labels, n_classes) or None
        ``P(category | recognizer label)`` (None without a recognizer).
    recognizer_labels_ : list of str
    prompt_vectors_ : ndarray of shape (n_classes, d) or None
        Each category's mean prompt embedding in the catalog's joint image-text space (None without a joint encoder).
    colour_namer_ : recsys.colour.ColourNamer or None
    familiar_above_ : float
        5th percentile of the cosine of catalog items to their nearest other item (a sample of 200).
    """

    def __init__(self, *, zero_shot_weight: float = 0.6, label_temperature: float = 0.03,
                 garment_threshold: float = 0.45, neighbour_temperature: float = 0.02, neighbours: int | None = None,
                 image_text_weight: float = 0.5, image_text_temperature: float = 0.01,
                 recognizer_weight: float = 0.8, recognizer_temperature: float = 0.03, confidence_temperature: float = 1.0,
                 unsure_below: float = UNSURE_BELOW, random_state: int = 0):
        self.zero_shot_weight = zero_shot_weight
        self.label_temperature = label_temperature
        self.garment_threshold = garment_threshold
        self.neighbour_temperature = neighbour_temperature
        self.neighbours = neighbours
        self.image_text_weight = image_text_weight
        self.image_text_temperature = image_text_temperature
        self.recognizer_weight = recognizer_weight
        self.recognizer_temperature = recognizer_temperature
        self.confidence_temperature = confidence_temperature
        self.unsure_below = unsure_below
        self.random_state = random_state

    def fit(self, image_vectors: np.ndarray, categories, slots, titles, *, text_encoder=None,
            label_texts: list[str] | None = None, colour_namer: ColourNamer | None = None,
            label_vectors: np.ndarray | None = None, joint_encoder=None, recognizer=None) -> "PhotoReader":
        """Fit on a catalog; returns ``self``.

        Parameters
        ----------
        image_vectors : ndarray of shape (n_items, d)
            The catalog's L2-normalised image embeddings (the neighbours).
        categories, slots, titles : sequences of length n_items
        text_encoder : recsys.encoders.Encoder, optional
            Relates the classifier's labels to the categories; without it (or without ``label_texts``) only the
            neighbours vote.
        label_texts : list of str, optional
            The image classifier's label texts (default :func:`imagenet_label_texts` when a text encoder is given).
        colour_namer : recsys.colour.ColourNamer, optional
            Fitted on the catalog's colours; None when the catalog has none.
        label_vectors : ndarray of shape (n_labels, d_text), optional
            ``text_encoder``'s vectors of the label texts, when already encoded
            (:func:`recsys.encoders.base.cached_text_vectors`).
        joint_encoder : recsys.encoders.Encoder, optional
            The joint image-text encoder ``image_vectors`` come from (an open_clip model): its text side embeds the
            :data:`PROMPT_TEMPLATES` of each category's spellings, and the image-text expert votes.
        recognizer : recsys.recognizer.GarmentRecognizer, optional
            A garment recognizer trained on real photos; with ``text_encoder``, its labels' texts are related to the
            catalog's categories as the classifier's are, and it votes (weight ``recognizer_weight``).

        Raises
        ------
        ValueError
            For mismatched lengths or an empty catalog, or a joint encoder whose dimension is not the vectors'.
        """
        vectors = np.asarray(image_vectors, dtype=np.float32)
        categories = np.asarray(categories, dtype=str)
        if len(vectors) == 0 or len(vectors) != len(categories) or len(categories) != len(slots):
            raise ValueError(f"{len(vectors)} vectors, {len(categories)} categories and {len(slots)} slots: "
                             f"a photo reader needs one of each per catalog item.")
        self.classes_ = sorted(set(categories))
        self.codes_ = np.searchsorted(self.classes_, categories)
        self.vectors_ = vectors
        slot_counts = collections.Counter(zip(categories, np.asarray(slots, dtype=str)))
        self.slots_ = {c: max((n, s) for (cc, s), n in slot_counts.items() if cc == c)[1] for c in self.classes_}
        self.label_map_ = self.garment_ = None
        self.label_names_ = []
        if text_encoder is not None:
            label_texts = label_texts if label_texts is not None else imagenet_label_texts()
            texts = category_texts(categories, titles)
            labels = label_vectors if label_vectors is not None else text_encoder.encode_text(label_texts)
            similarity = labels @ text_encoder.encode_text([texts[c] for c in self.classes_]).T
            self.garment_ = 1.0 / (1.0 + np.exp(-(similarity.max(axis=1) - self.garment_threshold) / 0.05))
            self.label_map_ = softmax(similarity / self.label_temperature, axis=1) * self.garment_[:, None]
            self.label_names_ = [t.split(":")[0].split(",")[0].strip() for t in label_texts]
        self.recognizer_map_ = None
        self.recognizer_labels_ = []
        if recognizer is not None and text_encoder is not None:
            texts = category_texts(categories, titles)
            self.recognizer_labels_ = list(recognizer.classes_)
            recognized = text_encoder.encode_text([recognizer.label_texts_.get(c, c) for c in recognizer.classes_])
            self.recognizer_similarity_ = recognized @ text_encoder.encode_text([texts[c] for c in self.classes_]).T
            self.recognizer_map_ = self._recognizer_map(self.recognizer_temperature)
        self.prompt_vectors_ = None
        if joint_encoder is not None:
            if joint_encoder.dim != vectors.shape[1]:
                raise ValueError(f"The joint encoder {joint_encoder.spec} embeds into {joint_encoder.dim} dimensions; "
                                 f"the catalog's image vectors have {vectors.shape[1]}.")
            spellings = category_spellings(categories, titles)
            rows = []
            for name in self.classes_:
                prompts = [t.format(s) for s in spellings[name] for t in PROMPT_TEMPLATES]
                mean = np.asarray(joint_encoder.encode_text(prompts), dtype=np.float32).mean(axis=0)
                rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
            self.prompt_vectors_ = np.stack(rows)
        self.colour_namer_ = colour_namer
        sample = np.random.default_rng(self.random_state).choice(len(vectors), min(200, len(vectors)), replace=False)
        nearest = vectors[sample] @ vectors.T
        nearest[np.arange(len(sample)), sample] = -np.inf
        self.familiar_above_ = float(np.percentile(nearest.max(axis=1), 5)) if len(vectors) > 1 else 1.0
        return self

    # ------------------------------------------------------------------ the two experts
    def _require_labels(self) -> None:
        if self.label_map_ is None:
            raise ValueError("This photo reader was fitted without the classifier's labels.")

    def zero_shot_proba(self, label_probabilities: np.ndarray) -> np.ndarray:
        """``(n_classes,)`` category probabilities from the classifier's ``(n_labels,)`` label probabilities.

        Raises
        ------
        ValueError
            When the reader was fitted without a text encoder.
        """
        self._require_labels()
        votes = np.asarray(label_probabilities, dtype=np.float64) @ self.label_map_ + 1e-9
        return votes / votes.sum()

    def neighbour_proba(self, image_vector: np.ndarray) -> np.ndarray:
        """``(n_classes,)`` category probabilities from the softmax-weighted vote of the nearest catalog items.

        Raises
        ------
        ValueError
            When ``image_vector`` does not have the catalog vectors' dimension.
        """
        vector = np.asarray(image_vector, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self.vectors_.shape[1]:
            raise ValueError(f"The photo's vector has {vector.shape[0]} dimensions; the catalog's have "
                             f"{self.vectors_.shape[1]}.")
        similarity = self.vectors_ @ vector
        top = top_n(similarity, self.neighbours) if self.neighbours else slice(None)
        weights = softmax(similarity[top] / self.neighbour_temperature)
        votes = np.bincount(self.codes_[top], weights=weights, minlength=len(self.classes_)) + 1e-6
        return votes / votes.sum()

    def image_text_proba(self, image_vector: np.ndarray) -> np.ndarray:
        """``(n_classes,)`` category probabilities from the photo's cosine to each category's prompts in the joint
        image-text space (CLIP's zero-shot classifier).

        Raises
        ------
        ValueError
            When the reader was fitted without a joint encoder.
        """
        if self.prompt_vectors_ is None:
            raise ValueError("This photo reader was fitted without a joint image-text encoder.")
        vector = np.asarray(image_vector, dtype=np.float32).reshape(-1)
        return softmax(self.prompt_vectors_ @ vector / self.image_text_temperature)

    def _recognizer_map(self, temperature: float) -> np.ndarray:
        # a label like no category of this catalog (a hat where there are no hats) spreads its belief evenly
        similarity = self.recognizer_similarity_
        covers = 1.0 / (1.0 + np.exp(-(similarity.max(axis=1) - self.garment_threshold) / 0.05))
        return softmax(similarity / temperature, axis=1) * covers[:, None] + (1.0 - covers[:, None]) / len(self.classes_)

    def recognizer_proba(self, recognizer_probabilities: np.ndarray) -> np.ndarray:
        """``(n_classes,)`` category probabilities from the garment recognizer's ``(n_labels,)`` label probabilities.

        Raises
        ------
        ValueError
            When the reader was fitted without a recognizer (or without a text encoder).
        """
        if self.recognizer_map_ is None:
            raise ValueError("This photo reader was fitted without a garment recognizer.")
        votes = np.asarray(recognizer_probabilities, dtype=np.float64) @ self.recognizer_map_ + 1e-9
        return votes / votes.sum()

    def predict_proba(self, image_vector: np.ndarray, label_probabilities: np.ndarray | None = None,
                      recognizer_probabilities: np.ndarray | None = None) -> np.ndarray:
        """``(n_classes,)`` category probabilities of a photo: the weighted product of the experts there are -- the
        neighbours always; the classifier's labels when ``label_probabilities`` are given and the label map was
        fitted; the garment recognizer when ``recognizer_probabilities`` are given and it was fitted; the image-text
        expert when a joint encoder was -- sharpened or flattened by ``confidence_temperature`` (fitted on validation
        photos so that a stated confidence means what it says)."""
        experts = [(1.0, self.neighbour_proba(image_vector))]
        if label_probabilities is not None and self.label_map_ is not None:
            a = float(self.zero_shot_weight)
            experts = [(1 - a, experts[0][1]), (a, self.zero_shot_proba(label_probabilities))]
        if recognizer_probabilities is not None and self.recognizer_map_ is not None:
            r = float(self.recognizer_weight)
            experts = [(weight * (1 - r), p) for weight, p in experts] \
                + [(r, self.recognizer_proba(recognizer_probabilities))]
        if self.prompt_vectors_ is not None:
            w = float(self.image_text_weight)
            experts = [(weight * (1 - w), p) for weight, p in experts] + [(w, self.image_text_proba(image_vector))]
        logits = sum(weight * np.log(np.maximum(p, 1e-12)) for weight, p in experts)
        return softmax(logits / float(self.confidence_temperature))

    def garment_share(self, label_probabilities: np.ndarray) -> float:
        """Share of the classifier's belief on labels that name a garment, in [0, 1].

        Raises
        ------
        ValueError
            When the reader was fitted without a text encoder.
        """
        self._require_labels()
        return float(np.clip(np.asarray(label_probabilities) @ self.garment_, 0.0, 1.0))

    def garment_map(self, label_probabilities: np.ndarray, feature_maps: np.ndarray,
                    classifier_weight: np.ndarray) -> np.ndarray:
        """``(h, w)`` class activation map (Zhou et al., CVPR 2016) of the garment labels, weighted by their
        probability: where in the image the garment evidence is. ``feature_maps`` ``(C, h, w)`` are the last
        convolution's activations, ``classifier_weight`` ``(n_labels, C)`` the classifier's weights."""
        weights = np.asarray(label_probabilities) * self.garment_
        cam = np.tensordot(weights @ classifier_weight, feature_maps, axes=(0, 0))
        return np.maximum(cam, 0.0).astype(np.float32)

    # ------------------------------------------------------------------ reading
    def read(self, image_vector: np.ndarray, image=None, label_probabilities: np.ndarray | None = None,
             garment_prior: np.ndarray | None = None,
             recognizer_probabilities: np.ndarray | None = None) -> PhotoReading:
        """The :class:`PhotoReading` of one photo.

        Parameters
        ----------
        image_vector : ndarray of shape (d,)
            The photo's embedding by the catalog's image encoder.
        image : PIL.Image, optional
            The decoded photo (its colour is read only when given and at least 3 px on each side).
        label_probabilities : ndarray of shape (n_labels,), optional
            The image classifier's probabilities.
        garment_prior : ndarray, optional
            Where the garment is, over the image (:meth:`garment_map` placed on it); weights the colour votes.
        recognizer_probabilities : ndarray of shape (n_recognizer_labels,), optional
            The garment recognizer's label probabilities.

        Raises
        ------
        ValueError
            When ``image_vector`` does not have the catalog's dimension.
        """
        vector = np.asarray(image_vector, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self.vectors_.shape[1]:
            raise ValueError(f"The photo's vector has {vector.shape[0]} dimensions; the catalog's have "
                             f"{self.vectors_.shape[1]}.")
        familiar = float(np.max(self.vectors_ @ vector)) >= self.familiar_above_
        # The recognizer knows real photos; an image that looks like the catalog's own (a drawing of the built-in
        # world, saved from Browse) is read by the experts that know the catalog.
        votes = None if familiar else recognizer_probabilities
        guess = CategoryGuess.from_probabilities(self.classes_,
                                                 self.predict_proba(image_vector, label_probabilities, votes))
        best = guess.category
        garment, seen = None, ()
        if label_probabilities is not None and self.garment_ is not None:
            garment = self.garment_share(label_probabilities)
            top = top_n(label_probabilities, SEEN_LABELS)
            seen = tuple((self.label_names_[i], float(label_probabilities[i])) for i in top)
        colour = None
        if image is not None and self.colour_namer_ is not None and min(image.size) >= 3:
            # A photo under 3 px a side has no border to tell a garment from: its category is still read.
            colour = self.colour_namer_.read(image, prior=garment_prior)
        recognized = ()
        if recognizer_probabilities is not None and self.recognizer_map_ is not None:
            top = top_n(recognizer_probabilities, SEEN_LABELS)
            recognized = tuple((self.recognizer_labels_[i], float(recognizer_probabilities[i])) for i in top)
        ask_below = self.unsure_below if votes is not None and self.recognizer_map_ is not None \
            else min(self.unsure_below, UNSURE_BELOW_WITHOUT_RECOGNIZER)
        return PhotoReading(category=guess, slot=self.slots_[best], colour=colour, garment=garment, seen=seen,
                            familiar=familiar, recognized=recognized, unsure_below=float(ask_below))
