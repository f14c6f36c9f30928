"""The compatibility models of the registry, and the report's untrained rows.

Registered in report order: ``random``, ``visual-similarity`` (baselines), ``triplet`` and ``type-aware`` (trained
on outfits), ``oracle`` (the generated world's truth). The classes live in :mod:`recsys.models.compat` and
:mod:`recsys.models.compat_baselines`.
"""

from __future__ import annotations

from recsys.models.compat import TripletCompatibility, TypeAwareCompatibility
from recsys.models.compat_baselines import OracleCompatibility, RandomCompatibility, VisualSimilarityCompatibility
from recsys.models.registry import register_model
from recsys.tasks.compat.data import fit, inputs

#: Training epochs of the models users see and the report evaluates, per model; ``QUICK_EPOCHS`` for smoke tests.
#: Chosen on validation outfits (15% held out of the seed-0 training outfits of the demo world, 279 FITB questions,
#: standard error about 0.026): FITB of type-aware 0.720 / 0.742 / 0.763 / 0.749 after 3 / 6 / 10 / 15 epochs,
#: of triplet 0.717 / 0.717 / 0.720 / 0.735 (AUC flat at 0.965-0.972 for both).
N_EPOCHS = {"triplet": 15, "type-aware": 10}
QUICK_EPOCHS = 6
QUICK = {"n_epochs": QUICK_EPOCHS}


register_model(task="compat", name="random", title="Random", trainable=False,
               description="Chance: independent uniform scores for every pair and every set.")(RandomCompatibility)
register_model(task="compat", name="visual-similarity", title="Visual similarity (raw image vectors)",
               trainable=False, description="Items go together when their image vectors look alike."
               )(VisualSimilarityCompatibility)
register_model(task="compat", name="triplet", title="Triplet style space (Complete the Look)",
               defaults={"n_epochs": N_EPOCHS["triplet"]}, quick=QUICK, fit=fit, inputs=inputs,
               description="A style space learned with a triplet loss from outfits (Kang et al., CVPR 2019).",
               )(TripletCompatibility)
register_model(task="compat", name="type-aware", title="Type-aware (Vasileva et al. 2018)",
               defaults={"n_epochs": N_EPOCHS["type-aware"]}, quick=QUICK, fit=fit, inputs=inputs,
               description="One learned subspace per pair of slots (Vasileva et al., ECCV 2018).",
               )(TypeAwareCompatibility)
register_model(task="compat", name="oracle", title="Oracle (the world's true compatibility)", trainable=False,
               description="The generated world's own compatibility rules; only on a generated world.",
               )(OracleCompatibility)


#: The models the page's main result needs, in training order (the Complete-the-look page's default, also the Stylist chat's compatibility term); the first-run set-up
#: (:mod:`recsys.prepare`) trains these before the others.
PAGE_MODELS = ("type-aware",)
