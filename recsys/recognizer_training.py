"""Training a :class:`recsys.recognizer.GarmentRecognizer` on labelled real photos (``scripts/train_photo_head.py``).

Photos of one person share a room, a light and a camera, and a split that puts them on both sides flatters the model:
the head's settings are chosen by cross-validation grouped by person (:func:`grouped_cross_validation`,
scikit-learn's ``GroupKFold``), and the chosen head is refitted on every photo with a card saying what it was trained
on and how well it did (:func:`train_recognizer`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from recsys.imageio import ImageInputError, load_upload
from recsys.models.base import _library_version
from recsys.recognizer import GarmentRecognizer, RecognizerError, _key, is_class_label
from recsys.tables import TableError, read_text_table

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}

#: What each label of the shipped training data means, for the text encoder that relates a label to a catalog's
#: category names (keyed by the label with case, spaces and punctuation dropped). These describe the *training
#: data's* vocabulary (the clothing dataset's labels and Myntra's product types), not any catalog's: a label not
#: here is related by its own name.
LABEL_GLOSSES = {
    "tshirt": "T-shirt, tee: a short-sleeved casual top",
    "longsleeve": "long-sleeved top: a long-sleeve t-shirt, sweater or jumper",
    "shirt": "shirt: a button-down shirt with a collar",
    "polo": "polo shirt: a short-sleeved shirt with a collar, a t-shirt",
    "undershirt": "undershirt, tank top, vest: a sleeveless top",
    "top": "top: a woman's top, tank top or blouse",
    "blouse": "blouse: a woman's shirt",
    "body": "bodysuit, body: a close-fitting top",
    "hoodie": "hoodie: a hooded sweatshirt",
    "blazer": "blazer: a tailored jacket",
    "outwear": "outerwear: a jacket, coat or parka",
    "pants": "trousers, pants, jeans",
    "shorts": "shorts: short trousers",
    "skirt": "skirt",
    "dress": "dress: a one-piece garment for women",
    "shoes": "shoes: footwear, sneakers, boots or heels",
    "hat": "hat, cap: headwear",
    "casualshoes": "casual shoes, sneakers",
    "sportsshoes": "sports shoes, sneakers, trainers, running shoes",
    "heels": "heels, high heels, pumps: women's heeled shoes",
    "flipflops": "flip-flops, slippers: sandals",
    "flats": "flats: women's flat shoes, ballet flats",
    "sandals": "sandals: open shoes with straps",
    "formalshoes": "formal shoes: leather oxford shoes, brogues",
    "booties": "booties: ankle boots",
}


def label_text(label: str) -> str:
    """The sentence a label is related to a catalog's categories by: its :data:`LABEL_GLOSSES` entry, else itself."""
    return LABEL_GLOSSES.get(_key(label), str(label))


@dataclass(frozen=True)
class TrainingPhoto:
    """One labelled photo of a training source: its path, label, group (the sender; the path when not given) and
    split (the ``split`` column of ``labels.csv``; "" when not given)."""

    path: Path
    label: str
    group: str = ""
    split: str = ""


def read_training_photos(source: str | Path, *, label_columns=("label",), group_columns=("group", "sender_id"),
                         label_map: dict | None = None) -> tuple[list[TrainingPhoto], dict]:
    """The labelled photos of ``source``: a folder with ``labels.csv`` (``path`` and a label column; UTF-8 or UTF-16,
    comma, semicolon or tab separated, Windows paths accepted) or a folder of class sub-folders.

    Parameters
    ----------
    label_columns, group_columns : sequences of str
        The label is read from the first of ``label_columns`` the CSV has, the group (the sender, or the product)
        from the first of ``group_columns`` it has; without one, each photo is its own group. Groups are prefixed
        with the source's name, so two sources never share one.
    label_map : dict, optional
        Source label -> recognizer label (to merge one dataset's names into another's: ``{"Tshirts": "T-Shirt"}``);
        labels it leaves out are kept as they are.

    Returns ``(photos, skipped)``: ``skipped`` counts rows left out per reason (``"no class"`` for labels that name no
    garment class, ``"missing file"``).

    Raises
    ------
    RecognizerError
        When the source is not a folder, its CSV cannot be read or has no ``path`` or label column, or no photo is
        left.
    """
    source = Path(source)
    label_map = label_map or {}
    if not source.is_dir():
        raise RecognizerError(f"The photo source {source} is not a folder (a folder with labels.csv, or of class "
                              f"sub-folders).")
    skipped = {"no class": 0, "missing file": 0}
    photos: list[TrainingPhoto] = []
    table = source / "labels.csv"
    if table.is_file():
        try:
            read = read_text_table(table)  # what a spreadsheet saves: UTF-16, BOMs, ; or tab, any header case
        except TableError as exc:
            raise RecognizerError(str(exc)) from None
        label_column = next((c.lower() for c in label_columns if c.lower() in read.columns), None)
        if "path" not in read.columns or label_column is None:
            raise RecognizerError(f"{table} needs a 'path' column and one of {', '.join(label_columns)} (it has: "
                                  f"{', '.join(read.columns)}).")
        group_column = next((c.lower() for c in group_columns if c.lower() in read.columns), None)
        for row in read.rows:
            label = row.get(label_column) or ""
            label = str(label_map.get(label, label)).strip()
            if not is_class_label(label):
                skipped["no class"] += 1
                continue
            path = source / (row.get("path") or "").replace("\\", "/")
            if not path.is_file():
                skipped["missing file"] += 1
                continue
            group = row.get(group_column) or "" if group_column else ""
            photos.append(TrainingPhoto(path, label, f"{source.name}/{group or path.name}", row.get("split") or ""))
    else:
        for folder in sorted(p for p in source.iterdir() if p.is_dir()):
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            label = str(label_map.get(folder.name, folder.name)).strip()
            if not is_class_label(label):
                skipped["no class"] += len(files)
                continue
            photos.extend(TrainingPhoto(path, label, f"{source.name}/{folder.name}/{path.name}") for path in files)
    if not photos:
        raise RecognizerError(f"No labelled photo of a garment class was found in {source}.")
    return photos, skipped


def photo_vectors(encoder, paths, *, mirror: bool = False, batch_size: int = 32,
                  progress: Callable[[float, str], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(vectors, readable)``: the encoder's ``(n_readable, d)`` L2-normalised vectors of the photos at ``paths``,
    decoded as uploads are (:func:`recsys.imageio.load_upload`), and the ``(n,)`` boolean mask of the readable ones
    (an unreadable photo is logged and left out). With ``mirror``, each photo's left-right mirror image follows it
    (``2 * n_readable`` rows): training augmentation."""
    from PIL import ImageOps

    paths = list(paths)
    readable = np.zeros(len(paths), dtype=bool)
    parts = []
    for start in range(0, len(paths), batch_size):
        images = []
        for k in range(start, min(start + batch_size, len(paths))):
            try:
                image = load_upload(Path(paths[k]).read_bytes(), name=Path(paths[k]).name)
            except (OSError, ImageInputError) as exc:
                logger.warning("photo %s left out: %s", paths[k], exc)
                continue
            readable[k] = True
            images.append(image)
            if mirror:
                images.append(ImageOps.mirror(image))
        if images:
            parts.append(encoder.encode_images(images))
        if progress:
            progress(min(start + batch_size, len(paths)) / max(len(paths), 1), f"Encoded {min(start + batch_size, len(paths))} of {len(paths)} photos")
    vectors = np.concatenate(parts) if parts else np.zeros((0, encoder.dim), dtype=np.float32)
    return vectors.astype(np.float32), readable


def grouped_cross_validation(vectors: np.ndarray, labels, groups, grid: list[dict], *, mirrored: np.ndarray | None = None,
                             n_splits: int = 5, random_state: int = 0, base: dict | None = None,
                             progress: Callable[[float, str], None] | None = None) -> list[dict]:
    """Out-of-fold accuracy of a :class:`GarmentRecognizer` for each setting of ``grid``, folds grouped by person.

    Parameters
    ----------
    vectors : ndarray of shape (n, d)
        One vector per photo.
    labels, groups : sequences of length n
        The photo's label and its group (the sender: one group's photos are never on both sides of a fold;
        scikit-learn's ``GroupKFold``).
    grid : list of dict
        Recognizer parameters to compare (e.g. ``[{"reg": 0.1}, {"reg": 1.0}]``).
    mirrored : ndarray of shape (n, d), optional
        Each photo's mirror image's vector, added to the training folds only (never scored).
    base : dict, optional
        Parameters every setting shares.

    Returns
    -------
    list of dict
        One per setting, best first: ``params``, ``accuracy`` and ``accuracy_se`` (over photos), ``fold_accuracy``,
        ``oof`` (each photo's out-of-fold label probabilities, ``(n, n_classes)``) and ``classes``.

    Raises
    ------
    ValueError
        When there are fewer groups than folds.
    """
    from sklearn.model_selection import GroupKFold

    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray(labels, dtype=str)
    groups = np.asarray(groups, dtype=str)
    if len(set(groups.tolist())) < n_splits:
        raise ValueError(f"{len(set(groups.tolist()))} groups cannot make {n_splits} grouped folds.")
    classes = sorted(set(labels.tolist()))
    folds = list(GroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state).split(vectors, labels, groups))
    results = []
    for number, params in enumerate(grid):
        oof = np.zeros((len(labels), len(classes)), dtype=np.float64)
        for train, test in folds:
            x, y = vectors[train], labels[train]
            if mirrored is not None:
                x, y = np.concatenate([x, mirrored[train]]), np.concatenate([y, y])
            model = GarmentRecognizer(**{**(base or {}), **params, "random_state": random_state}).fit(x, y)
            columns = [classes.index(c) for c in model.classes_]
            oof[np.ix_(test, columns)] = model.predict_proba(vectors[test])
        hits = (np.asarray(classes)[oof.argmax(axis=1)] == labels).astype(np.float64)
        results.append({"params": dict(params), "accuracy": float(hits.mean()),
                        "accuracy_se": float(hits.std(ddof=1) / np.sqrt(len(hits))),
                        "fold_accuracy": [float(hits[test].mean()) for _, test in folds], "oof": oof,
                        "classes": classes})
        if progress:
            progress((number + 1) / len(grid), f"setting {number + 1} of {len(grid)}: {params} "
                                               f"accuracy {hits.mean():.3f}")
    return sorted(results, key=lambda r: -r["accuracy"])


#: The settings :func:`train_recognizer` compares by grouped cross-validation (``reg`` is the inverse L2 strength).
DEFAULT_GRID = ({"reg": 0.003}, {"reg": 0.01}, {"reg": 0.03}, {"reg": 0.1})


def _licence(source: Path) -> str:
    for name in ("LICENSE", "LICENSE.txt", "LICENCE", "README.md"):
        path = source / name
        if path.is_file():
            lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
            if lines:  # the first two lines name it ("Creative Commons Legal Code" / "CC0 1.0 Universal")
                return f"{name}: {' / '.join(lines[:2])[:160]}"
    return "not stated in the source folder"


def _card(model: GarmentRecognizer, encoder_spec: str, labels: np.ndarray, groups: np.ndarray, results: list[dict],
          *, data: dict, method: str, command: str, random_state: int) -> dict:
    """A trained recognizer's card: what it is and reads, its data (``data`` plus photos, groups and the
    cross-validated recall per label), every setting's grouped cross-validation, the best one's confusion, the command
    and the library version."""
    from sklearn.metrics import confusion_matrix

    best = results[0]
    classes = best["classes"]
    confusion = confusion_matrix(labels, np.asarray(classes)[best["oof"].argmax(axis=1)], labels=classes)
    per_label = {c: {"photos": int((labels == c).sum()), "groups": int(len(set(groups[labels == c].tolist()))),
                     "cv_recall": float(confusion[k, k] / max(confusion[k].sum(), 1))} for k, c in enumerate(classes)}
    return {
        "what": "garment recognizer: multinomial logistic regression over the image encoder's L2-normalised pooled "
                "vector (scikit-learn LogisticRegression, standardisation folded into the weights)",
        "encoder": encoder_spec, "labels": model.classes_, "label_texts": model.label_texts_,
        "data": {**data, "per_label": per_label},
        "cross_validation": {"method": method, "chosen": best["params"], "accuracy": best["accuracy"],
                             "accuracy_se": best["accuracy_se"], "fold_accuracy": best["fold_accuracy"],
                             "settings": [{"params": r["params"], "accuracy": r["accuracy"],
                                           "accuracy_se": r["accuracy_se"]} for r in results],
                             "confusion": {"labels": classes, "counts": confusion.tolist()}},
        "command": command, "library_version": _library_version(), "random_state": random_state,
    }


def train_recognizer(sources, encoder, *, grid=DEFAULT_GRID, n_splits: int = 5, random_state: int = 0,
                     exclude_split: str | None = None, mirror: bool = True, label_columns=("label",),
                     group_columns=("group", "sender_id"), label_map: dict | None = None, min_photos: int = 10,
                     command: str = "", progress: Callable[[float, str], None] | None = None) -> GarmentRecognizer:
    """Train a :class:`GarmentRecognizer` on the labelled photos of ``sources`` (one folder or several, read by
    :func:`read_training_photos` with ``label_columns``, ``group_columns`` and ``label_map``) over ``encoder``'s
    vectors: choose the setting of ``grid`` by person-grouped cross-validation
    (:func:`grouped_cross_validation`), refit it on every photo, and fill its card (``card_``): labels, encoder,
    source and licence, photos and people per label, every setting's cross-validated accuracy with its standard
    error, the best one's confusion between labels, the command and the library version. Deterministic for a
    ``random_state``.

    ``exclude_split`` leaves out the photos whose ``split`` column (``labels.csv``) has that value -- a validation
    set kept apart for choices made downstream (the photo reader's expert weights). Labels with fewer than
    ``min_photos`` photos are left out (counted in the card): a class seen a handful of times is noise.

    Raises
    ------
    RecognizerError
        For an unreadable source, or fewer than two labels or ``n_splits`` groups.
    """
    import collections

    sources = [Path(sources)] if isinstance(sources, (str, Path)) else [Path(s) for s in sources]
    photos, skipped, described = [], collections.Counter(), []
    for source in sources:
        found, left_out = read_training_photos(source, label_columns=label_columns, group_columns=group_columns,
                                               label_map=label_map)
        photos.extend(found)
        skipped.update(left_out)
        described.append({"source": source.name, "licence": _licence(source), "photos": len(found)})
    if exclude_split:
        kept = [p for p in photos if p.split != exclude_split]
        skipped[f"split {exclude_split}"] += len(photos) - len(kept)
        photos = kept
    counts = collections.Counter(p.label for p in photos)
    rare = sorted(label for label, n in counts.items() if n < min_photos)
    if rare:
        skipped[f"labels under {min_photos} photos ({', '.join(rare)})"] += sum(counts[r] for r in rare)
        photos = [p for p in photos if counts[p.label] >= min_photos]
    if len({p.label for p in photos}) < 2:
        raise RecognizerError(f"{', '.join(map(str, sources))} have photos of fewer than two garment labels with "
                              f"{min_photos} photos each; a recognizer needs two.")

    def stage(start: float, end: float):
        return (lambda f, m: progress(start + (end - start) * f, m)) if progress else None

    vectors, readable = photo_vectors(encoder, [p.path for p in photos], mirror=mirror, progress=stage(0.0, 0.6))
    photos = [p for p, ok in zip(photos, readable) if ok]
    skipped["unreadable"] = int((~readable).sum())
    originals, mirrored = (vectors[0::2], vectors[1::2]) if mirror else (vectors, None)
    labels = np.array([p.label for p in photos])
    groups = np.array([p.group for p in photos])
    if len(set(groups.tolist())) < n_splits:
        raise RecognizerError(f"The photos come from {len(set(groups.tolist()))} people (groups); grouped "
                              f"cross-validation needs at least {n_splits}.")
    base = {"encoder": encoder.spec}
    results = grouped_cross_validation(originals, labels, groups, list(grid), mirrored=mirrored, n_splits=n_splits,
                                       random_state=random_state, base=base, progress=stage(0.6, 0.95))
    best = results[0]
    x, y = (np.concatenate([originals, mirrored]), np.concatenate([labels, labels])) if mirror else (originals, labels)
    model = GarmentRecognizer(**{**base, **best["params"], "random_state": random_state}).fit(x, y)
    model.label_texts_ = {c: label_text(c) for c in model.classes_}
    model.card_ = _card(model, encoder.spec, labels, groups, results, data={
        "sources": described, "label_map": dict(label_map or {}), "photos": len(photos),
        "groups": int(len(set(groups.tolist()))), "left_out": dict(skipped),
        "augmentation": "each photo and its mirror image" if mirror else "none"},
        method=f"GroupKFold({n_splits}, shuffle, random_state={random_state}) by person", command=command,
        random_state=random_state)
    if progress:
        progress(1.0, f"cross-validated accuracy {best['accuracy']:.3f} +- {best['accuracy_se']:.3f}")
    return model
