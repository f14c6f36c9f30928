"""The compatibility models of the registry, and the report's untrained rows.

Registered in report order: ``random``, ``visual-similarity`` (baselines), ``triplet`` and ``type-aware`` (trained
on outfits), ``oracle`` (the generated world's truth). The classes live in :mod:`recsys.models.compat` and
:mod:`recsys.models.compat_baselines`.
"""

from __future__ import annotations

from recsys.models.compat import TripletCompatibility, TypeAwareCompatibility
from recsys.models.compat_baselines import OracleCompatibility, RandomCompatibility, VisualSimilarityCompatibility
from recsys.models.registry import register_model

#: Training epochs of the models users see and the report evaluates; ``QUICK_EPOCHS`` for smoke tests.
N_EPOCHS = 40
QUICK_EPOCHS = 6


@register_model(task="compat", name="random", title="Random", trainable=False,
                description="Chance: independent uniform scores for every pair and every set.")
def random_baseline(**params) -> RandomCompatibility:
    """Chance baseline (``random_state`` seeds it)."""
    return RandomCompatibility(**params)


@register_model(task="compat", name="visual-similarity", title="Visual similarity (raw image vectors)",
                trainable=False, description="Items go together when their image vectors look alike.")
def visual_similarity(**params) -> VisualSimilarityCompatibility:
    """Looks-alike baseline on the precomputed image vectors."""
    return VisualSimilarityCompatibility(**params)


@register_model(task="compat", name="triplet", title="Triplet style space (Complete the Look)",
                description="A style space learned with a triplet loss from outfits (Kang et al., CVPR 2019).")
def triplet(**params) -> TripletCompatibility:
    """:class:`TripletCompatibility` with the studio's schedule (:data:`N_EPOCHS`), overridden by ``params``."""
    return TripletCompatibility(**({"n_epochs": N_EPOCHS} | params))


@register_model(task="compat", name="type-aware", title="Type-aware (Vasileva et al. 2018)",
                description="One learned subspace per pair of slots (Vasileva et al., ECCV 2018).")
def type_aware(**params) -> TypeAwareCompatibility:
    """:class:`TypeAwareCompatibility` with the studio's schedule (:data:`N_EPOCHS`), overridden by ``params``."""
    return TypeAwareCompatibility(**({"n_epochs": N_EPOCHS} | params))


@register_model(task="compat", name="oracle", title="Oracle (the world's true compatibility)", trainable=False,
                description="The generated world's own compatibility rules; only on a generated world.")
def oracle(**params) -> OracleCompatibility:
    """The ceiling row; fit it with the world's ``WorldTruth``."""
    return OracleCompatibility(**params)
