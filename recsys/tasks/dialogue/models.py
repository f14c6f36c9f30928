"""The dialogue task's models in the registry (:mod:`recsys.models.registry`), in the order reports list them.

Trained: configurations of :class:`recsys.models.dialogue.DialogueCoordiRecommender` (Kim et al., "FASCODE",
2021, and its contrastive variant). Not trained: the rows the protocol computes (random order, the zero-shot text
match, the contrastive model with the compatibility term, and the oracle of the built-in world); their builders
raise, since there is nothing to build.
"""

from __future__ import annotations

from recsys.models.dialogue import DialogueCoordiRecommender
from recsys.models.registry import register_model

TASK = "dialogue"


def _computed(name: str):
    def builder(**params):
        raise ValueError(f"The dialogue row {name!r} is computed by the protocol, not a model to build.")

    return builder


register_model(task=TASK, name="random", title="Random order", trainable=False,
               description="Candidate sets in a random order (weighted Kendall's tau about 0).")(_computed("random"))
register_model(task=TASK, name="zero-shot", title="Zero-shot text match", trainable=False,
               description="No training: the cosine between the user's words and the items' descriptions."
               )(_computed("zero-shot"))


@register_model(task=TASK, name="dialogue-mse", title="Projection + transfer net (FASCODE paper)",
                description="The paper's model: projection net + transfer net, MSE + item-id head, 15% "
                            "missing-modality training.")
def dialogue_mse(**params) -> DialogueCoordiRecommender:
    """FASCODE's model (Kim et al., 2021): MSE regression onto the gold items plus the item-id head."""
    return DialogueCoordiRecommender(**({"objective": "mse"} | params))


@register_model(task=TASK, name="text-only", title="Projection + transfer net, item text only (ablation)",
                description="The paper's model reading item text only (the modality ablation).")
def text_only(**params) -> DialogueCoordiRecommender:
    """The paper's model with ``use_image=False``: the modality ablation."""
    return DialogueCoordiRecommender(**({"objective": "mse", "use_image": False} | params))


@register_model(task=TASK, name="dialogue-infonce", title="Contrastive InfoNCE (improved)",
                description="InfoNCE instead of the regression (the paper's future work); the chat adds the "
                            "outfit-compatibility score to the set score.")
def dialogue_infonce(**params) -> DialogueCoordiRecommender:
    """InfoNCE over the items of each slot, with ``compat_weight=0.5`` for the set score."""
    return DialogueCoordiRecommender(**({"objective": "infonce", "compat_weight": 0.5} | params))


register_model(task=TASK, name="dialogue-infonce+compat", title="Contrastive + compatibility (improved)",
               trainable=False,
               description="The contrastive model's set score plus the type-aware compatibility model's outfit "
                           "score.")(_computed("dialogue-infonce+compat"))
register_model(task=TASK, name="oracle", title="Oracle (true coordi score)", trainable=False,
               description="On the built-in world: candidates ranked by the true coordi score.")(_computed("oracle"))
