"""What the compatibility models learn from and are evaluated on: the outfit split, item features, questions.

* The split: outfits marked ``split`` (a real dataset such as Polyvore) keep theirs; others are split 80/20 by
  ``seed`` (:func:`split_outfits`). The models users see are trained on the training outfits of the seed-0
  split, exactly as the evaluation trains them, so the page shows the model the report measured.
* The features: image, title and description vectors of the precomputed artifacts, concatenated
  (:func:`compatibility_features`); an uploaded photo borrows the words of its nearest items
  (:func:`features_for_image`).
* The questions of the protocols: FITB (:func:`fitb_questions`) and outfit compatibility
  (:func:`compatibility_questions`), from the catalog's own Polyvore files when it ships them.

:func:`fit` and :func:`inputs` are what :class:`recsys.store.ModelStore` calls; :func:`prepare` is what other
tasks use to score outfits (the dialogue task's set score).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from recsys.artifacts import load_artifacts
from recsys.catalog import Catalog
from recsys.models.registry import get_model, model_info
from recsys.progress import ProgressCallback
from recsys.utils import top_n


TEST_SHARE = 0.2
#: The mark of evaluation-only records (the built-in world's, :data:`recsys.data.demo_world.EXTENDED`).
EXTENDED = "extended"
#: Fewest outfits of two or more items a catalog needs for a compatibility model.
MIN_OUTFITS = 10
N_CANDIDATES = 4
FEATURE_FIELDS = ("image", "title", "description")


class NoOutfitsError(ValueError):
    """A catalog has too few outfits to learn or evaluate compatibility; the message says what is needed."""


@dataclass
class CompatData:
    """What the compatibility models learn from and are evaluated on, for one catalog.

    Attributes
    ----------
    features : ndarray (n_items, d) float32
        :func:`compatibility_features` of the artifacts.
    image : ndarray (n_items, d_image) float32
        The raw image vectors (the visual-similarity baseline).
    categories, slots : ndarray (n_items,) of str
    train_outfits, test_outfits : list of int64 arrays
        Item rows of each outfit (the test ones with the evaluation-only outfits last, when read).
    """

    features: np.ndarray
    image: np.ndarray
    categories: np.ndarray
    slots: np.ndarray
    train_outfits: list
    test_outfits: list


# ---------------------------------------------------------------------- split
def outfit_rows(catalog: Catalog) -> tuple[list[np.ndarray], list[str]]:
    """Each outfit as item rows, with its split name (``""`` when the catalog does not say; ``"extended"`` for the
    built-in world's evaluation-only outfits, :data:`recsys.data.demo_world.EXTENDED`).

    Raises
    ------
    KeyError
        When an outfit names an item the catalog lacks.
    """
    rows, splits = [], []
    for outfit in catalog.outfits:
        rows.append(catalog.indices(outfit["item_ids"]))
        splits.append(EXTENDED if outfit.get(EXTENDED) else str(outfit.get("split", "")))
    return rows, splits


def count_outfits(catalog: Catalog) -> int:
    """How many of the catalog's outfits have two or more items (cheap: no item lookups)."""
    return sum(len(o.get("item_ids", [])) >= 2 for o in catalog.outfits)


def split_outfits(catalog: Catalog, seed: int = 0, extended: bool = True) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Train and test outfits (lists of item-row arrays): the catalog's own ``split`` marks when present, else
    80/20 by ``seed``; evaluation-only outfits (``extended``) are never split: they follow the test outfits when
    ``extended``, else are left out (the quick report).

    Raises
    ------
    NoOutfitsError
        When fewer than :data:`MIN_OUTFITS` outfits have two items (the message says how to get some).
    """
    rows, splits = outfit_rows(catalog)
    extra = [r for r, s in zip(rows, splits) if len(r) >= 2 and s == EXTENDED]
    rows_splits = [(r, s) for r, s in zip(rows, splits) if len(r) >= 2 and s != EXTENDED]
    if len(rows_splits) < MIN_OUTFITS:
        raise NoOutfitsError(
            f"The catalog {catalog.name} has {len(rows_splits)} outfit(s) of two or more items; a compatibility model "
            f"needs at least {MIN_OUTFITS} in outfits.jsonl (the built-in world has them; for your own data, ingest "
            "a dataset with outfits such as Polyvore: scripts/ingest.py --format polyvore)."
        )
    marked = {s for _, s in rows_splits}
    if "train" in marked and len(marked) > 1:
        train = [r for r, s in rows_splits if s == "train"]
        test = [r for r, s in rows_splits if s != "train"]
    else:
        order = np.random.default_rng(seed).permutation(len(rows_splits))
        n_test = max(1, int(round(TEST_SHARE * len(rows_splits))))
        test = [rows_splits[k][0] for k in order[:n_test]]
        train = [rows_splits[k][0] for k in order[n_test:]]
    return train, test + (extra if extended else [])


def prepare(catalog: Catalog, seed: int = 0, artifacts=None, extended: bool = True) -> CompatData:
    """Features (image + title + description vectors), categories, slots and the outfit split of a catalog.

    Parameters
    ----------
    catalog : Catalog
    seed : int
        Seed of the 80/20 split (ignored when the catalog marks its own split).
    artifacts : recsys.artifacts.Artifacts, optional
        Loaded from the catalog when not given.
    extended : bool
        Whether the test outfits include the evaluation-only ones (:func:`split_outfits`).

    Raises
    ------
    NoOutfitsError
        When the catalog has too few outfits.
    recsys.artifacts.ArtifactError
        When ``artifacts`` is not given and the catalog has none usable.
    """
    if artifacts is None:
        artifacts = load_artifacts(catalog)
    train, test = split_outfits(catalog, seed, extended=extended)
    return CompatData(
        features=compatibility_features(artifacts),
        image=np.asarray(artifacts.image, dtype=np.float32),
        categories=catalog.items["category"].to_numpy().astype(str),
        slots=catalog.items["slot"].to_numpy().astype(str),
        train_outfits=train,
        test_outfits=test,
    )


# ---------------------------------------------------------------------- features
def field_vectors(artifacts, name: str) -> np.ndarray:
    """The artifacts' ``(n_items, d)`` vectors of one feature field (``image``, ``title`` or ``description``).

    Raises
    ------
    KeyError
        For another field name.
    """
    if name == "image":
        return artifacts.image
    if name in ("title", "description"):
        return artifacts.text(name)
    raise KeyError(f"Unknown feature field {name!r}; choose from {', '.join(FEATURE_FIELDS)}.")


def compatibility_features(artifacts, fields: Sequence[str] = FEATURE_FIELDS) -> np.ndarray:
    """Concatenate the artifacts' L2-normalised vectors of ``fields`` into one ``(n_items, d)`` float32 matrix.

    Each block is scaled by ``1/sqrt(len(fields))`` so the row stays unit-length and no block dominates
    the first layer only because it is longer (the text + image input of Vasileva et al., ECCV 2018).

    Raises
    ------
    KeyError
        For an unknown field.
    """
    blocks = [np.asarray(field_vectors(artifacts, name), dtype=np.float32) for name in fields]
    return np.concatenate(blocks, axis=1) / np.float32(np.sqrt(len(blocks)))


def features_for_image(image_vector: np.ndarray, artifacts, fields: Sequence[str] = FEATURE_FIELDS,
                       neighbours: int = 10) -> np.ndarray:
    """Features ``(1, d)`` of a photo that has no title or description (an upload), like a catalog row of
    :func:`compatibility_features`.

    Its text blocks are the normalised mean text vectors of its ``neighbours`` visually nearest catalog
    items: a photo of a striped shirt borrows the words of the striped shirts it looks like.

    Raises
    ------
    ValueError
        When ``image_vector`` does not have the artifacts' image width.
    """
    image_vector = np.asarray(image_vector, dtype=np.float32).ravel()
    similarity = np.asarray(artifacts.image, dtype=np.float32) @ image_vector
    nearest = top_n(similarity, neighbours)
    blocks = []
    for name in fields:
        if name == "image":
            blocks.append(image_vector / max(float(np.linalg.norm(image_vector)), 1e-12))
        else:
            mean = np.asarray(field_vectors(artifacts, name)[nearest], dtype=np.float32).mean(axis=0)
            blocks.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    return (np.concatenate(blocks) / np.float32(np.sqrt(len(blocks))))[None, :].astype(np.float32)


# ---------------------------------------------------------------------- fitting (the model store calls these)
def fit_on_split(name: str, data: CompatData, *, seed: int = 0, quick: bool = False,
                 progress: ProgressCallback | None = None):
    """The trainable model ``name`` of the registry fitted on ``data``'s training outfits.

    Raises
    ------
    KeyError
        For a model the registry does not know.
    ValueError
        For an untrained row (``random``, ``oracle``, ...), or outfits that give no triplets.
    """
    if not model_info("compat", name).trainable:
        raise ValueError(f"The compat model {name!r} is computed, not trained.")
    model = get_model("compat", name, quick=quick, random_state=seed)
    return model.fit(data.features, data.train_outfits, data.categories, types=data.slots, progress=progress)


def fit(store, name: str, *, quick: bool = False, progress: ProgressCallback | None = None):
    """The model users see: ``name`` fitted on the training outfits of the store's ``seed`` split (see module
    docstring), what the model store calls.

    Raises
    ------
    NoOutfitsError
        When the catalog has too few outfits.
    KeyError, ValueError
        As :func:`fit_on_split`.
    """
    data = prepare(store.catalog, store.seed, artifacts=store.artifacts)
    return fit_on_split(name, data, seed=store.seed, quick=quick, progress=progress)


def inputs(store, name: str) -> dict:
    """Side inputs a saved model is loaded with: none (a compat model stores its item embeddings)."""
    return {}


# ---------------------------------------------------------------------- questions
#: The two forms of FITB the field uses: ``"type"`` -- the wrong candidates share the answer's category (so its
#: type), as Polyvore Outfits' resampled questions (Vasileva et al., ECCV 2018), where a model must tell apart
#: items of the same kind; ``"any"`` -- they are items of any category, as the original Polyvore questions (Han et
#: al., ACM MM 2017), where a candidate of the wrong kind is easy to rule out.
FITB_FORMS = ("type", "any")


def fitb_questions(data: CompatData, rng: np.random.Generator, catalog: Catalog | None = None,
                   limit: int | None = None, form: str = "type") -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """FITB questions ``(rest_of_outfit, candidates (m, 4), answer_index (m,))`` (Han et al., "Learning Fashion
    Compatibility with Bidirectional LSTMs", ACM MM 2017; Polyvore Outfits of Vasileva et al. 2018).

    ``form`` "type" (:data:`FITB_FORMS`): from the catalog's own Polyvore questions when it has them, else one per
    held-out outfit of three or more items: a random position is blanked, and three other items of the blank's
    category (outside the outfit) join the true one, in random order. Form "any": always generated from the held-out
    outfits the same way, the three other items drawn from every item outside the outfit (any category). Questions
    naming unknown items are skipped.

    Raises
    ------
    ValueError
        For a form not in :data:`FITB_FORMS`.
    """
    if form not in FITB_FORMS:
        raise ValueError(f"Unknown FITB form {form!r}; choose from {', '.join(FITB_FORMS)}.")
    shipped = _shipped_questions(catalog, "fitb") if catalog is not None and form == "type" else []
    rests, candidates, answers = [], [], []
    if shipped:
        for record in shipped:
            try:
                rest = catalog.indices(record["question"])
                options = catalog.indices(record["candidates"])
            except KeyError:
                continue
            if len(options) != N_CANDIDATES or len(rest) < 1:
                continue
            rests.append(rest)
            candidates.append(options)
            answers.append(int(record["answer"]))
    else:
        by_category = {c: np.flatnonzero(data.categories == c) for c in np.unique(data.categories)}
        everything = np.arange(len(data.categories))
        for outfit in data.test_outfits:
            if len(outfit) < 3:
                continue
            blank = int(rng.integers(len(outfit)))
            truth_item = int(outfit[blank])
            pool = np.setdiff1d(by_category[data.categories[truth_item]] if form == "type" else everything, outfit)
            if len(pool) < N_CANDIDATES - 1:
                continue
            options = np.r_[truth_item, rng.choice(pool, size=N_CANDIDATES - 1, replace=False)]
            order = rng.permutation(N_CANDIDATES)
            rests.append(np.delete(outfit, blank))
            candidates.append(options[order])
            answers.append(int(np.flatnonzero(order == 0)[0]))
    if limit is not None:
        rests, candidates, answers = rests[:limit], candidates[:limit], answers[:limit]
    return rests, np.array(candidates, dtype=np.int64).reshape(-1, N_CANDIDATES), np.array(answers, dtype=np.int64)


def compatibility_questions(data: CompatData, rng: np.random.Generator, catalog: Catalog | None = None,
                            ) -> tuple[list[np.ndarray], np.ndarray]:
    """Outfits and labels ``(sets, (m,) int)`` for the outfit-compatibility AUC: 1 = a real held-out outfit,
    0 = random items with the same categories (or the catalog's own Polyvore compatibility questions)."""
    shipped = _shipped_questions(catalog, "compatibility") if catalog is not None else []
    sets, labels = [], []
    if shipped:
        for record in shipped:
            try:
                rows = catalog.indices(record["item_ids"])
            except KeyError:
                continue
            if len(rows) >= 2:
                sets.append(rows)
                labels.append(int(record["label"]))
        if len(set(labels)) == 2:
            return sets, np.array(labels)
        sets, labels = [], []
    by_category = {c: np.flatnonzero(data.categories == c) for c in np.unique(data.categories)}
    for outfit in data.test_outfits:
        sets.append(outfit)
        labels.append(1)
        sets.append(np.array([int(rng.choice(by_category[data.categories[i]])) for i in outfit]))
        labels.append(0)
    return sets, np.array(labels)


def _shipped_questions(catalog: Catalog, kind: str) -> list[dict]:
    records = []
    for path in sorted((catalog.root / "polyvore").glob(f"{kind}_*.jsonl")) if (catalog.root / "polyvore").is_dir() else []:
        if path.stem.endswith("_train"):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records
