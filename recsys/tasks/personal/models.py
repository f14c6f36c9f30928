"""The personal ("For you") models in the registry, with the settings validation chose for each.

Registration order is the order pages list them in: the best on the demo world first (it also trains in seconds,
where VECF takes minutes on first use). ``vbpr-attributes`` (the ceiling on the built-in world), ``random``,
``popularity`` and ``oracle`` are report rows, not models users pick: they are registered with
``trainable=False`` so that reports label them from here too.
"""

from __future__ import annotations

from functools import partial

from recsys.models.bpr import BPR
from recsys.models.dvbpr import DVBPR, ConvAutoencoder
from recsys.models.popularity import Popularity, RandomScores
from recsys.models.registry import list_models, register_model, register_row
from recsys.models.vbpr import VBPR, MultimodalVBPR
from recsys.models.vecf import VECF
from recsys.tasks.personal.data import TASK, fit, inputs
from recsys.tasks.personal.features import fit_autoencoder

#: Every trained personal model's quick schedule (smoke tests): 8 epochs, a fifth of the 40 most train for.
QUICK = {"n_epochs": 8}


def model_settings(name: str, quick: bool = False) -> dict:
    """Hyper-parameters of each trained model (epochs are an upper bound when validation picks the epoch).

    Chosen by validation sweeps on the demo world (``recsys.tasks.personal.tune``, ``scripts/tune.py``;
    validation items only): with about four training interactions per item, strong L2 on the factors, light L2 on
    the item biases (which carry popularity) and long training matter most -- the earlier settings (one reg of
    1e-3, 40 epochs) left BPR below popularity. ``quick`` applies :data:`QUICK` (the registry's quick schedule).

    Raises
    ------
    KeyError
        For a name that is not a trained personal model.
    """
    epochs = {"bpr": 150, "vbpr": 40, "vbpr-mm": 40, "vbpr-attributes": 40, "dvbpr-imagenet": 60,
              "dvbpr-ae": 60, "vecf": 40}[name]
    common = {"n_epochs": epochs, "random_state": 0, "batch_size": 1024, "learning_rate": 0.01, "reg": 0.03,
              "bias_reg": 1e-3}
    vbpr = {"n_factors": 16, "n_visual_factors": 16}
    return common | {
        "bpr": {"n_factors": 32},
        "vbpr": vbpr,
        "vbpr-mm": vbpr,
        "vbpr-attributes": vbpr,
        "dvbpr-imagenet": {"n_factors": 16},
        # The codes come from an autoencoder trained on the catalog: the model keeps them, so loading it does
        # not depend on that autoencoder being re-made identically.
        "dvbpr-ae": {"n_factors": 16, "save_features": True},
        "vecf": {"n_factors": 16, "n_visual_factors": 16, "attention_dim": 16, "review_weight": 0.5},
    }[name] | (QUICK if quick else {})


register = partial(register_model, task=TASK, quick=QUICK, fit=fit, inputs=inputs)


register(name="vbpr-mm", title="VBPR (image + description)", defaults=model_settings("vbpr-mm"),
         description="VBPR on the image features and the description's text embedding (MMRec).",
         )(MultimodalVBPR)
register(name="vecf", title="VECF (attention over regions)", defaults=model_settings("vecf"),
         description="User-conditioned attention over the image's regions, review supervision, clusters.",
         )(VECF)
register(name="vbpr", title="VBPR", defaults=model_settings("vbpr"),
         description="BPR-MF plus a visual term on the precomputed image features (He & McAuley, 2016).",
         )(VBPR)
register(name="dvbpr-imagenet", title="DVBPR (ImageNet encoder + layer)",
         defaults=model_settings("dvbpr-imagenet"),
         description="A trainable layer on the frozen ImageNet image features (Kang et al., 2017).",
         )(DVBPR)
register(name="dvbpr-ae", title="DVBPR (autoencoder encoder + layer)",
         defaults=model_settings("dvbpr-ae"),
         description="A trainable layer on codes of a conv autoencoder trained on the catalog's images.",
         )(DVBPR)
register(name="bpr", title="BPR-MF", defaults=model_settings("bpr"),
         description="Matrix factorization with item biases, trained with BPR (Rendle et al., 2009).",
         )(BPR)
register(name="vbpr-attributes", title="VBPR (labelled attributes, ceiling)", trainable=False,
         defaults=model_settings("vbpr-attributes"),
         description="VBPR on one-hot labelled attributes, in which the built-in world's tastes are linear: "
                     "the ceiling of the image-feature models (evaluation only).")(VBPR)
register_model(task=TASK, name="random", title="Random", trainable=False,
               description="Uniform random scores: chance.")(RandomScores)
register_model(task=TASK, name="popularity", title="Popularity", trainable=False,
               description="The most-interacted items, the same list for everyone.")(Popularity)
register_row(task=TASK, name="oracle", title="Oracle (true utility)",
             description="The built-in world's true utility of every item for every user: the upper bound.")
# A component, not a report row: DVBPR's autoencoder variant reads its codes (asked from the store by
# :func:`recsys.tasks.personal.features.autoencoder_codes`). 12 epochs, 3 on the quick schedule.
register_model(task=TASK, name="autoencoder", title="Conv autoencoder of the catalog's images", component=True,
               defaults={"n_epochs": 12}, quick={"n_epochs": 3}, fit=fit_autoencoder,
               description="The image codes of DVBPR's autoencoder variant, trained on the catalog's images.",
               )(ConvAutoencoder)


def ranker_names(ceiling: bool = True) -> list[str]:
    """The models trained with BPR in the protocol: the trainable ones, then ``vbpr-attributes`` when ``ceiling``."""
    return list_models(TASK, trainable=True) + (["vbpr-attributes"] if ceiling else [])


#: The models the page's main result needs, in training order (the For you page's default); the first-run set-up
#: (:mod:`recsys.prepare`) trains these before the others.
PAGE_MODELS = ("vbpr-mm",)
