"""The composed task's models in the registry (:mod:`recsys.models.registry`), in the order reports list them.

``demo-clip`` comes first: it is the joint image-text space the other models read (trained per catalog, unless the
artifacts come from open_clip, whose own space is used), so training in registration order trains it first.
Then the report rows: ``random``, ``image-only``, ``text-only``, ``zero-shot`` (not trained), ``image-difference``
(the FashionIQ paper's model) and ``combiner`` (CLIP4Cir-style), trained on the catalog's caption triples, and
``oracle`` (the generated world's attributes). The classes live in :mod:`recsys.models.democlip`,
:mod:`recsys.models.composed`, :mod:`recsys.models.combiner` and :mod:`recsys.tasks.composed.rankers`.
"""

from __future__ import annotations

from recsys.models.combiner import Combiner
from recsys.models.composed import ImageDifference
from recsys.models.composed_baselines import ImageOnly, TextOnly, ZeroShotSum
from recsys.models.democlip import MODEL_NAME as JOINT_SPACE, DemoClip
from recsys.models.registry import register_model
from recsys.tasks.composed.data import TASK, fit, inputs
from recsys.tasks.composed.rankers import AttributeOracle, RandomRanking

#: Training epochs of quick runs (smoke tests): the composition models, and the demo-clip heads.
QUICK_EPOCHS = 6
QUICK_JOINT_EPOCHS = 8

__all__ = ["JOINT_SPACE", "QUICK_EPOCHS", "QUICK_JOINT_EPOCHS", "TASK"]

SPEC = {"fit": fit, "inputs": inputs, "quick": {"n_epochs": QUICK_EPOCHS}}

register_model(task=TASK, name=JOINT_SPACE, title="demo-clip joint image-text space",
               fit=fit, inputs=inputs, quick={"n_epochs": QUICK_JOINT_EPOCHS},
               description="Projection heads over the frozen image and text encoders, trained CLIP-style on the "
                           "catalog's titles and descriptions (Radford et al., 2021).")(DemoClip)
register_model(task=TASK, name="random", title="Random", trainable=False,
               description="Chance: the gallery in a random order.")(RandomRanking)
register_model(task=TASK, name="image-only", title="Image only (caption ignored)", trainable=False,
               description="Items ranked by image similarity to the reference; the captions are ignored.")(ImageOnly)
register_model(task=TASK, name="text-only", title="Text only (reference ignored)", trainable=False,
               description="Items ranked by the captions alone in the joint space; answers free text.")(TextOnly)
register_model(task=TASK, name="zero-shot", title="Zero-shot sum of image and caption", trainable=False,
               description="The normalised sum of the reference's and the caption's joint-space vectors "
                           "(Baldrati et al., CVPR 2022).")(ZeroShotSum)
register_model(task=TASK, name="image-difference", title="Image-difference model (the paper's)", **SPEC,
               description="Projections trained so that target minus reference points along the caption "
                           "(Wu et al., Fashion IQ, CVPR 2021).")(ImageDifference)
register_model(task=TASK, name="combiner", title="Learned combiner (CLIP4Cir-style)", **SPEC,
               description="A learned mix of the joint-space reference and caption features (Baldrati et al., "
                           "CVPR 2022).")(Combiner)
register_model(task=TASK, name="oracle", title="Oracle (knows the attributes)", trainable=False,
               description="On the built-in world: the gallery ranked by how many attributes match the reference "
                           "with the captioned changes applied.")(AttributeOracle)


#: The models the page's main result needs, in training order (the joint space first, then the Text-guided search page's default); the first-run set-up
#: (:mod:`recsys.prepare`) trains these before the others.
PAGE_MODELS = (JOINT_SPACE, "combiner")
