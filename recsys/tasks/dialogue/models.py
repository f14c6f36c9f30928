"""The dialogue task's models in the registry (:mod:`recsys.models.registry`), in the order reports list them.

Trained: configurations of :class:`recsys.models.dialogue.DialogueCoordiRecommender` (Kim et al., "FASCODE",
2021, and its contrastive variant). Not trained: the rows the protocol computes (random order, the zero-shot text
match, the contrastive model with the compatibility term, and the oracle of the built-in world); their builders
raise, since there is nothing to build.
"""

from __future__ import annotations

from recsys.models.dialogue import DialogueCoordiRecommender
from recsys.models.registry import register_model, register_row
from recsys.tasks.dialogue.data import fit, inputs

TASK = "dialogue"

#: Training schedules of the models users see and the report evaluates, chosen on validation dialogues (15% held
#: out of the demo world's training dialogues; gold-item retrieval and the ranking of gold / near / far sets):
#: InfoNCE peaks at 10-25 epochs and overfits after (the class default of 60 is past it); the regression models
#: reach in 30 epochs at a learning rate of 3e-3 what 60 epochs at 1e-3 reach.
INFONCE_SCHEDULE = {"n_epochs": 15}
MSE_SCHEDULE = {"n_epochs": 30, "learning_rate": 3e-3}
#: Every dialogue model's quick schedule (tests, ``--quick``).
QUICK = {"n_epochs": 15}
SPEC = {"quick": QUICK, "fit": fit, "inputs": inputs}


register_row(task=TASK, name="random", title="Random order",
             description="Candidate sets in a random order (weighted Kendall's tau about 0).")
register_row(task=TASK, name="zero-shot", title="Zero-shot text match",
             description="No training: the cosine between the user's words and the items' descriptions.")
register_model(task=TASK, name="dialogue-mse", title="Projection + transfer net (FASCODE paper)",
               defaults={"objective": "mse", **MSE_SCHEDULE}, **SPEC,
               description="The paper's model (Kim et al., 2021): projection net + transfer net, MSE + item-id "
                           "head, 15% missing-modality training.")(DialogueCoordiRecommender)
register_model(task=TASK, name="text-only", title="Projection + transfer net, item text only (ablation)",
               defaults={"objective": "mse", "use_image": False, **MSE_SCHEDULE}, **SPEC,
               description="The paper's model reading item text only (the modality ablation).",
               )(DialogueCoordiRecommender)
register_model(task=TASK, name="dialogue-infonce", title="Contrastive InfoNCE (improved)",
               defaults={"objective": "infonce", "compat_weight": 0.5, **INFONCE_SCHEDULE}, **SPEC,
               description="InfoNCE over the items of each slot instead of the regression (the paper's future "
                           "work); the chat adds the outfit-compatibility score to the set score.",
               )(DialogueCoordiRecommender)
register_row(task=TASK, name="dialogue-infonce+compat", title="Contrastive + compatibility (improved)",
             description="The contrastive model's set score plus the type-aware compatibility model's outfit score.")
register_row(task=TASK, name="oracle", title="Oracle (true coordi score)",
             description="On the built-in world: candidates ranked by the true coordi score.")


#: The models the page's main result needs, in training order (the Stylist chat's default); the first-run set-up
#: (:mod:`recsys.prepare`) trains these before the others.
PAGE_MODELS = ("dialogue-infonce",)
#: Tasks whose page models this task's protocol and chat read (the set score adds the type-aware compatibility
#: model's outfit score): the set-up evaluates this task only once they are trained.
READS_TASKS = ("compat",)
