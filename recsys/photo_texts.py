"""The texts :class:`recsys.photo.PhotoReader`'s experts relate: a catalog's category names and spellings, the
image-text expert's prompts and the ImageNet classifier's labels."""

from __future__ import annotations

import collections
import re

import numpy as np


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
