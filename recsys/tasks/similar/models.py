"""The similar-items models of the registry, and the report's untrained rows.

Registered in report order: ``shopper-similarity`` (the model the page uses: the query's category, colour and
pattern, then the look), ``visual-similarity`` (plain cosine k-NN in the image-embedding space, the baseline),
``random`` (chance) and ``oracle`` (the true attributes). The classes live in :mod:`recsys.models.similar`.
"""

from __future__ import annotations

from functools import partial

from recsys.models.registry import register_model
from recsys.models.similar import AttributeOracle, RandomNeighbours, SimilarItems
from recsys.tasks.similar.data import TASK, fit, inputs

register = partial(register_model, task=TASK, fit=fit, inputs=inputs)


# The bonuses were chosen on a validation sample of queries (not the report's): on the built-in world colour 0.3 and
# pattern 0.1 bring colour agreement@10 from 0.45 (0.1 / 0.05) to 0.82 while keeping pattern agreement at 0.66; a
# category holds too few items of one colour and one pattern for both to reach 0.8 at once.
register(name="shopper-similarity", title="Shopper similarity (category, colour, pattern, look)",
         description="The query's category only; among the 200 nearest items in the image-embedding space, "
                     "items of the query's colour and pattern first (bonuses of 0.3 and 0.1 in cosine units), "
                     "then by cosine.",
         defaults={"colour_weight": 0.3, "pattern_weight": 0.1, "same_category": True})(SimilarItems)
register(name="visual-similarity", title="Visual similarity (image embeddings)",
         description="Plain cosine nearest neighbours in the precomputed image-embedding space, any "
                     "category (the baseline).")(SimilarItems)
register(name="random", title="Random", trainable=False,
         description="Chance: other items drawn uniformly.")(RandomNeighbours)
register(name="oracle", title="Oracle (the true attributes)", trainable=False,
         description="Ranks by the attributes shared with the query, category first; only on a generated "
                     "world, where the attributes are the truth.")(AttributeOracle)


#: The models the page's main result needs, in training order (the Similar items page's index); the first-run set-up
#: (:mod:`recsys.prepare`) trains these before the others.
PAGE_MODELS = ("shopper-similarity",)
