"""Photo understanding shared by every upload: the category, slot and colour of the garment in a photo.

Uploads are photos of people's own clothes; a catalog may be anything (the built-in world is drawn illustrations).
A classifier learned on the catalog's images alone reads a photo through the catalog's style and fails across that
gap (32% of real photos placed right in the built-in world). :class:`PhotoReader` combines experts instead:

* **what the image classifier sees** (zero-shot, domain-robust): the shipped image encoder is the full ImageNet
  model, and its labels already name garments ("jersey, T-shirt, tee shirt: a close-fitting pullover shirt", "jean",
  "running shoe", "miniskirt", ...). The text encoder relates every label's WordNet name and gloss (timm's
  ``ImageNetInfo``) to every catalog category's name, so ``P(category | photo) = sum_l P(l | photo) P(category | l)``
  with ``P(category | l)`` a softmax of those similarities; labels that resemble no category (a dog, a car) carry
  no vote, and the share of belief on garment labels says whether there is a garment at all;
* **the catalog's neighbours** (in-domain): a softmax-weighted vote of the photo's nearest catalog items in the
  catalog's own image-embedding space;
* **the photo against words, in one space** (only for a catalog embedded by a joint image-text encoder, an open_clip
  model): the cosine of the photo to each category's prompts, CLIP's zero-shot classifier.

The experts are multiplied (a product of experts, geometric weights ``zero_shot_weight`` and ``image_text_weight``),
so each vetoes what the others find implausible. The weight (0.6) and the neighbours' settings were chosen on the
shared clothing-small *validation* photos into the built-in world (category accuracy: zero-shot alone 0.551,
neighbours alone 0.469, product 0.622); on the Myntra product photos, held out, the product scores 0.739 and
zero-shot alone 0.752 (within one standard error, 0.02). No weighting of these experts can place 0.85 of those
photos right: the share that at least one of them -- or a linear head trained on domain-randomised catalog images --
places right is 0.78 on clothing-small and 0.91 on Myntra (DESIGN section 13). ``image_text_weight`` (0.5: the
two others agreeing overrule it, neither alone does) is not validated here -- no joint model with photo-domain
weights ships offline. Category texts come from the catalog -- the category name and the ways its titles spell
it -- so any catalog (``ingest.py --format folder``) works without a table written for it.
The garment's colour is named by :class:`recsys.colour.ColourNamer` with the classifier's activation map of the
garment labels as the garment prior. Measured on real photos with ``scripts/evaluate.py --task upload``.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from recsys.colour import ColourGuess, ColourNamer
from recsys.models.base import Estimator
from recsys.utils import RankedGuess


#: Below this probability a page asks the user to choose the category instead of stating it.
UNSURE_BELOW = 0.5
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
    """

    category: CategoryGuess
    slot: str
    colour: ColourGuess | None
    garment: float | None
    seen: tuple = ()
    familiar: bool = False

    @property
    def no_garment(self) -> bool:
        """True when the classifier sees no garment in the photo and it does not look like a catalog item."""
        return self.garment is not None and self.garment < NO_GARMENT_BELOW and not self.familiar

    @property
    def unsure(self) -> bool:
        """True when a page should ask the user for the category rather than state it."""
        return self.no_garment or self.category.confidence < UNSURE_BELOW

    def category_choices(self, categories) -> list[str]:
        """``categories`` ordered for a page's category list: most probable first, then any the reading has no
        probability for (in their given order). The right category is among the first three for 0.82 of real
        photos into the built-in world where the first is right for 0.62."""
        known = set(categories)
        ranked = [c for c in self.category.shares if c in known]
        taken = set(ranked)
        return ranked + [c for c in categories if c not in taken]

    def sentence(self) -> str:
        """One sentence for the page: what the photo shows and how sure the reading is."""
        seen = f" (the image classifier sees {self.seen[0][0]}, {self.seen[0][1]:.0%})" if self.seen else ""
        if self.no_garment:
            return f"This does not look like a garment{seen}; choose the category to search anyway."
        # No article: a catalog's category names are singular or plural ("dress", "sneakers") and unknown here.
        colour = f" in {self.colour.colour}" if self.colour is not None else ""
        guess = self.category
        if self.unsure:
            return (f"Not sure: perhaps {guess.category} ({guess.confidence:.0%}) or {guess.runner_up} "
                    f"({guess.shares.get(guess.runner_up, 0.0):.0%}){colour}{seen}; please choose the category.")
        return f"Reads as {guess.category}{colour} ({guess.confidence:.0%} sure, slot {self.slot}){seen}."


def category_spellings(categories, titles) -> dict[str, list[str]]:
    """``{category: [spelling, ...]}``: the name (``_`` as a space) first, then the ways the category's own titles spell
    it -- a title word or pair of words that reads as the name once spaces, hyphens and case are dropped (the
    built-in world's ``tshirt`` adds "t-shirt", ``tanktop`` "tank top"), in alphabetical order. Other title words are
    left out: they describe items (a length, a colour), not the category."""
    categories = np.asarray(categories, dtype=str)
    titles = np.asarray(titles, dtype=object)
    spellings_of = {}
    for name in dict.fromkeys(categories):
        target = re.sub(r"[\W_]+", "", name.lower())
        spellings = collections.Counter()
        for title in titles[categories == name]:
            words = re.findall(r"[\w-]+", str(title).lower())
            for size in (1, 2):
                for k in range(len(words) - size + 1):
                    phrase = " ".join(words[k:k + size])
                    if re.sub(r"[\W_]+", "", phrase) == target and phrase != name.lower():
                        spellings[phrase] += 1
        spellings_of[name] = [re.sub(r"_+", " ", name)] + sorted(spellings)
    return spellings_of


def category_texts(categories, titles) -> dict[str, str]:
    """``{category: text}`` for the text encoder: the :func:`category_spellings` of each category joined by spaces
    ("tshirt t-shirt")."""
    return {name: " ".join(spellings) for name, spellings in category_spellings(categories, titles).items()}


#: Prompts of the image-text expert, averaged per category (prompt ensembling, Radford et al., "Learning Transferable
#: Visual Models From Natural Language Supervision", ICML 2021, section 3.1.4): the photo's domain varies (a phone
#: photo, a product shot) and the templates cover both.
PROMPT_TEMPLATES = ("a photo of a {}.", "a photo of the {}, a type of clothing.", "a product photo of a {}.",
                    "a close-up photo of a {}.", "a photo of my {}.")


def imagenet_label_texts() -> list[str]:
    """The 1000 ImageNet-1k labels as "synonyms: gloss" (WordNet, from timm's ``ImageNetInfo``), in class order."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i, detailed=True) for i in range(info.num_classes())]


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
    prompt_vectors_ : ndarray of shape (n_classes, d) or None
        Each category's mean prompt embedding in the catalog's joint image-text space (None without a joint encoder).
    colour_namer_ : recsys.colour.ColourNamer or None
    familiar_above_ : float
        5th percentile of the cosine of catalog items to their nearest other item (a sample of 200).
    """

    def __init__(self, *, zero_shot_weight: float = 0.6, label_temperature: float = 0.03,
                 garment_threshold: float = 0.45, neighbour_temperature: float = 0.02, neighbours: int | None = None,
                 image_text_weight: float = 0.5, image_text_temperature: float = 0.01, random_state: int = 0):
        self.zero_shot_weight = zero_shot_weight
        self.label_temperature = label_temperature
        self.garment_threshold = garment_threshold
        self.neighbour_temperature = neighbour_temperature
        self.neighbours = neighbours
        self.image_text_weight = image_text_weight
        self.image_text_temperature = image_text_temperature
        self.random_state = random_state

    def fit(self, image_vectors: np.ndarray, categories, slots, titles, *, text_encoder=None,
            label_texts: list[str] | None = None, colour_namer: ColourNamer | None = None,
            label_vectors: np.ndarray | None = None, joint_encoder=None) -> "PhotoReader":
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
        top = np.argsort(-similarity, kind="stable")[: self.neighbours] if self.neighbours else slice(None)
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

    def predict_proba(self, image_vector: np.ndarray, label_probabilities: np.ndarray | None = None) -> np.ndarray:
        """``(n_classes,)`` category probabilities of a photo: the weighted product of the experts there are -- the
        neighbours always; the classifier's labels when ``label_probabilities`` are given and the label map was
        fitted; the image-text expert when a joint encoder was."""
        experts = [(1.0, self.neighbour_proba(image_vector))]
        if label_probabilities is not None and self.label_map_ is not None:
            a = float(self.zero_shot_weight)
            experts = [(1 - a, experts[0][1]), (a, self.zero_shot_proba(label_probabilities))]
        if self.prompt_vectors_ is not None:
            w = float(self.image_text_weight)
            experts = [(weight * (1 - w), p) for weight, p in experts] + [(w, self.image_text_proba(image_vector))]
        return softmax(sum(weight * np.log(np.maximum(p, 1e-12)) for weight, p in experts))

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
             garment_prior: np.ndarray | None = None) -> PhotoReading:
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

        Raises
        ------
        ValueError
            When ``image_vector`` does not have the catalog's dimension.
        """
        guess = CategoryGuess.from_probabilities(self.classes_, self.predict_proba(image_vector, label_probabilities))
        best = guess.category
        garment, seen = None, ()
        if label_probabilities is not None and self.garment_ is not None:
            garment = self.garment_share(label_probabilities)
            top = np.argsort(-np.asarray(label_probabilities))[:SEEN_LABELS]
            seen = tuple((self.label_names_[i], float(label_probabilities[i])) for i in top)
        colour = None
        if image is not None and self.colour_namer_ is not None and min(image.size) >= 3:
            # A photo under 3 px a side has no border to tell a garment from: its category is still read.
            colour = self.colour_namer_.read(image, prior=garment_prior)
        familiar = float(np.max(self.vectors_ @ np.asarray(image_vector, dtype=np.float32).reshape(-1))) \
            >= self.familiar_above_
        return PhotoReading(category=guess, slot=self.slots_[best], colour=colour, garment=garment, seen=seen,
                            familiar=familiar)
