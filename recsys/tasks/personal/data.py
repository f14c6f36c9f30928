"""The personal task's data: the leave-one-out split of the interactions, and what each model is fitted and
loaded with (its side inputs); ``fit`` and ``inputs`` are what the models' specs give :class:`recsys.store.ModelStore`.

The split (DVBPR / VECF / MMRec): per user with at least three distinct items, by time, the last is the test item,
the one before it the validation item, the rest are training data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.artifacts import ArtifactError
from recsys.catalog import Catalog, CatalogError
from recsys.models.registry import get_model
from recsys.progress import ProgressCallback
from recsys.store import ModelStore
from recsys.tasks.personal.features import attribute_features, autoencoder_codes, review_embeddings

logger = logging.getLogger(__name__)

TASK = "personal"


@dataclass
class PersonalData:
    """The interactions of a catalog as users x items, with the leave-one-out split.

    Attributes
    ----------
    user_ids : list of str
        Row order of the matrices (sorted).
    histories : list of ndarray
        Every user's items (row positions), oldest first.
    train : csr_matrix ``(n_users, n_items)``
        Training interactions (all but the last two of users with at least three items).
    valid_item, test_item : ndarray ``(n_users,)`` of int64
        Per user, the validation / test item, -1 where the user has none.
    reviews : DataFrame
        ``user``, ``item``, ``review`` of the training interactions that carry a review.
    """

    user_ids: list
    histories: list
    train: sp.csr_matrix
    valid_item: np.ndarray
    test_item: np.ndarray
    reviews: pd.DataFrame
    user_index: dict = field(init=False)

    def __post_init__(self):
        self.user_index = {u: k for k, u in enumerate(self.user_ids)}

    @property
    def n_items(self) -> int:
        """The catalog's number of items (columns of the matrices)."""
        return self.train.shape[1]

    @property
    def cold_items(self) -> np.ndarray:
        """``(n_items,)`` bool: items without any training interaction."""
        return np.asarray(self.train.sum(axis=0)).ravel() == 0

    def all_interactions(self) -> sp.csr_matrix:
        """Every interaction, held-out ones included: ``(n_users, n_items)`` float32 (what served models see)."""
        rows = np.repeat(np.arange(len(self.histories)), [len(h) for h in self.histories])
        cols = np.concatenate(self.histories) if self.histories else np.zeros(0, dtype=np.int64)
        return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=self.train.shape)


def interaction_data(catalog: Catalog) -> PersonalData:
    """The leave-one-out split of ``catalog.interactions`` by time (see the module docstring).

    Raises
    ------
    CatalogError
        When the catalog has no interactions (one sentence).
    """
    if catalog.interactions is None or catalog.interactions.empty:
        raise CatalogError(f"The catalog {catalog.name} has no interactions.parquet, so nothing can be personalized.")
    frame = catalog.interactions[["user_id", "item_id", "timestamp"] + (
        ["review"] if "review" in catalog.interactions.columns else [])].copy()
    frame["item"] = catalog.indices(frame["item_id"])
    frame = frame.sort_values(["user_id", "timestamp"], kind="stable").drop_duplicates(["user_id", "item"])
    user_ids = sorted(frame["user_id"].unique())
    index = {u: k for k, u in enumerate(user_ids)}
    frame["user"] = frame["user_id"].map(index)
    frame["position"] = frame.groupby("user").cumcount()
    frame["length"] = frame.groupby("user")["item"].transform("size")
    held_out = frame["length"] >= 3
    is_test = held_out & (frame["position"] == frame["length"] - 1)
    is_valid = held_out & (frame["position"] == frame["length"] - 2)
    train_rows = frame[~(is_test | is_valid)]
    n_users, n_items = len(user_ids), len(catalog)
    train = sp.csr_matrix((np.ones(len(train_rows), dtype=np.float32), (train_rows["user"], train_rows["item"])),
                          shape=(n_users, n_items))
    valid_item = np.full(n_users, -1, dtype=np.int64)
    test_item = np.full(n_users, -1, dtype=np.int64)
    valid_item[frame.loc[is_valid, "user"].to_numpy()] = frame.loc[is_valid, "item"].to_numpy()
    test_item[frame.loc[is_test, "user"].to_numpy()] = frame.loc[is_test, "item"].to_numpy()
    histories = [g.to_numpy() for _, g in frame.groupby("user")["item"]]
    if "review" in frame.columns:
        reviews = train_rows.loc[train_rows["review"].notna() & (train_rows["review"].astype(str).str.strip() != ""),
                                 ["user", "item", "review"]].reset_index(drop=True)
    else:
        reviews = pd.DataFrame({"user": [], "item": [], "review": []})
    return PersonalData(user_ids, histories, train, valid_item, test_item, reviews)


# ====================================================================== side inputs
def _require(artifacts, name: str):
    if artifacts is None:
        raise ArtifactError(f"{name} reads the precomputed embeddings, and the catalog has none; "
                            "run scripts/precompute.py first.")
    return artifacts


def side_inputs(catalog: Catalog, artifacts, name: str, quick: bool = False, seed: int = 0, store=None) -> dict:
    """The arrays model ``name`` scores items with, besides the interactions (given to ``fit``).

    ``item_features`` ``(n_items, d)`` float32 (image features, or for ``dvbpr-ae`` the codes of the autoencoder
    ``store`` has or trains; default a store of ``catalog``, ``artifacts`` and ``seed``),
    ``text_features`` ``(n_items, d_text)`` for ``vbpr-mm``, ``feature_maps`` ``(n_items, C, 7, 7)`` and the pooled
    image features for VECF.

    Raises
    ------
    ArtifactError
        When the artifacts are missing, or VECF finds no feature maps in them (one sentence).
    """
    if name in ("vbpr", "dvbpr-imagenet"):
        return {"item_features": np.asarray(_require(artifacts, name).image, dtype=np.float32)}
    if name == "vbpr-mm":
        artifacts = _require(artifacts, name)
        return {"item_features": np.asarray(artifacts.image, dtype=np.float32),
                "text_features": np.asarray(artifacts.text_description, dtype=np.float32)}
    if name == "dvbpr-ae":
        store = store if store is not None else ModelStore(catalog, artifacts, seed=seed)
        return {"item_features": autoencoder_codes(store, quick=quick)}
    if name == "vecf":
        artifacts = _require(artifacts, name)
        if artifacts.feature_maps is None:
            raise ArtifactError(
                f"VECF needs feature maps, but the artifacts were computed with {artifacts.image_encoder_spec}; "
                "run scripts/precompute.py with --image-encoder effnet-lite0.")
        return {"feature_maps": np.asarray(artifacts.feature_maps),
                "item_features": np.asarray(artifacts.image, dtype=np.float32)}
    return {}


def fit_inputs(catalog: Catalog, artifacts, data: PersonalData, name: str, X: sp.csr_matrix, quick: bool = False,
               seed: int = 0, store=None) -> dict:
    """:func:`side_inputs` plus what only training reads: for VECF the review supervision of the pairs observed in
    ``X`` ``(n_users, n_items)``; for ``vbpr-attributes`` the one-hot attributes.

    Raises
    ------
    ValueError
        For ``vbpr-attributes`` on a catalog without labelled attributes.
    ArtifactError
        As :func:`side_inputs`.
    """
    if name == "vbpr-attributes":
        attributes = attribute_features(catalog)
        if attributes is None:
            raise ValueError(f"The catalog {catalog.name} has no labelled attributes for vbpr-attributes.")
        return {"item_features": attributes}
    side = side_inputs(catalog, artifacts, name, quick=quick, seed=seed, store=store)
    if name == "vecf":
        observed = X.tocsr()
        reviews = data.reviews
        if len(reviews):
            keep = np.asarray(observed[reviews["user"].to_numpy(), reviews["item"].to_numpy()]).ravel() > 0
            reviews = reviews[keep]
        if len(reviews):
            side["review_users"] = reviews["user"].to_numpy()
            side["review_items"] = reviews["item"].to_numpy()
            side["review_targets"] = review_embeddings(catalog, reviews["review"].astype(str).tolist())
    return side


# ====================================================================== what the model store calls
def fit(store, name: str, *, quick: bool = False, progress: ProgressCallback | None = None):
    """Fit model ``name`` on every interaction of the store's catalog (no held-out items: the model users see).

    ``progress(fraction, message)`` is called once per epoch. Not saved here: :meth:`ModelStore.fit` saves it.

    Raises
    ------
    CatalogError
        When the catalog has no interactions.
    ArtifactError
        When the artifacts lack what the model reads.
    KeyError
        For a name that is not a trained personal model.
    """
    report = progress or (lambda fraction, message: None)
    report(0.0, f"Preparing the inputs of {name}")
    catalog, artifacts, seed = store.catalog, store.artifacts, store.seed
    data = interaction_data(catalog)
    X = data.all_interactions()
    model = get_model(TASK, name, quick=quick)
    model.set_params(random_state=seed)
    side = fit_inputs(catalog, artifacts, data, name, X, quick, seed, store=store)

    def on_epoch(epoch: int, fitted) -> None:
        report(epoch / fitted.n_epochs, f"Training {name}: epoch {epoch} of {fitted.n_epochs}")

    return model.fit(X, on_epoch=on_epoch, **side)


def inputs(store, name: str) -> dict:
    """What a saved model ``name`` is loaded with: its side inputs (``dvbpr-ae`` keeps its own codes) and the
    catalog's ``n_users`` / ``n_items``, which the saved model must have been fitted on.

    Raises
    ------
    CatalogError
        When the catalog has no interactions.
    ArtifactError
        When the artifacts lack what the model reads.
    """
    catalog = store.catalog
    if catalog.interactions is None or catalog.interactions.empty:
        raise CatalogError(f"The catalog {catalog.name} has no interactions.parquet, so nothing can be personalized.")
    side = {} if name == "dvbpr-ae" else side_inputs(catalog, store.artifacts, name, store=store)
    return side | {"n_users": int(catalog.interactions["user_id"].nunique()), "n_items": len(catalog)}
