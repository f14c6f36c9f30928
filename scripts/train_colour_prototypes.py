"""Learn colour prototypes from labelled real photos and write them with their card.

    python scripts/train_colour_prototypes.py --photos DIR --out FILE.json [--label-column colour]
        [--group-column title] [--label-map MAP.json] [--per-colour 2] [--min-photos 5] [--folds 5] [--seed 0]

``DIR/labels.csv`` holds ``path`` and a colour column; ``MAP.json`` maps its names to the names the prototypes
should carry (``{"Navy Blue": "navy"}``; names it leaves out are lower-cased). Each photo's garment colour
(:func:`recsys.colour.garment_colour`) is clustered per name (:func:`recsys.colour.learn_photo_prototypes`); the
card gives the accuracy of reading colours with these prototypes alone under grouped cross-validation (one product's
photos on one side), beside the CSS colours alone. The studio ships prototypes learned from Myntra's product photos
in ``assets/models/colour-prototypes.json``; a catalog colour with the same name gets them beside its own (DESIGN
section 13).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from recsys.colour import (ColourNamer, colour_shares, css_lab, garment_colour, garment_weights,  # noqa: E402
                           learn_photo_prototypes, to_lab, work_pixels)
from recsys.imageio import ImageInputError, load_upload  # noqa: E402
from recsys.tables import TableError, read_text_table  # noqa: E402


def read_rows(folder: Path, label_column: str, group_column: str | None, label_map: dict):
    table = read_text_table(folder / "labels.csv")  # what a spreadsheet saves (UTF-16, ; or tab, any header case)
    for row in table.rows:
        raw = row.get(label_column.lower()) or ""
        name = label_map.get(raw, raw.lower())
        if name and row.get("path"):
            group = row.get(group_column.lower()) if group_column else None
            yield folder / row["path"].replace("\\", "/"), name, group or row["path"]


def main(argv: list[str] | None = None) -> int:
    from sklearn.model_selection import GroupKFold

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--label-column", default="colour")
    parser.add_argument("--group-column", default=None)
    parser.add_argument("--label-map", type=Path, default=None)
    parser.add_argument("--per-colour", type=int, default=2)
    parser.add_argument("--min-photos", type=int, default=5)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        label_map = json.loads(args.label_map.read_text(encoding="utf-8")) if args.label_map else {}
        rows = list(read_rows(args.photos, args.label_column, args.group_column, label_map))
    except TableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {args.photos} or the label map cannot be read ({exc}).", file=sys.stderr)
        return 1
    labs, weights, colours, names, groups = [], [], [], [], []
    for path, name, group in rows:
        try:
            image = load_upload(path.read_bytes(), name=path.name)
        except (OSError, ImageInputError) as exc:
            print(f"left out {path}: {exc}", file=sys.stderr)
            continue
        lab = to_lab(work_pixels(image))
        weight = garment_weights(lab, seed=args.seed)
        labs.append(lab)
        weights.append(weight if weight.sum() > 0 else np.ones(lab.shape[:2], np.float32))
        colours.append(garment_colour(image, seed=args.seed))
        names.append(name)
        groups.append(group)
    colours, names, groups = np.asarray(colours), np.asarray(names), np.asarray(groups)
    kwargs = dict(per_colour=args.per_colour, min_photos=args.min_photos, random_state=args.seed)
    prototypes = learn_photo_prototypes(colours, names, **kwargs)
    kept = np.isin(names, list(prototypes))
    css = ColourNamer().fit_names(sorted(prototypes))
    hits = {"photos": [], "css": []}
    for train, test in GroupKFold(args.folds, shuffle=True, random_state=args.seed).split(colours, names, groups):
        fold = learn_photo_prototypes(colours[train], names[train], **kwargs)
        if not fold:  # too few photos of every colour in this fold to learn from
            continue
        rows_names = [n for n, rows in fold.items() for _ in rows]
        table = np.vstack(list(fold.values()))
        for i in test[kept[test]]:
            vocabulary = list(dict.fromkeys(rows_names))
            shares = colour_shares(labs[i], weights[i], rows_names, table)
            hits["photos"].append(vocabulary[int(np.argmax(shares))] == names[i])
            shares = colour_shares(labs[i], weights[i], css.prototype_names_, css.prototypes_)
            hits["css"].append(css.vocabulary_[int(np.argmax(shares))] == names[i])
    if not prototypes or len(hits["photos"]) < 2:
        print(f"error: {args.photos} has too few photos of any colour (at least {args.min_photos} each are needed).",
              file=sys.stderr)
        return 1
    figures = {k: {"accuracy": float(np.mean(v)), "accuracy_se": float(np.std(v, ddof=1) / np.sqrt(len(v))),
                   "photos": len(v)} for k, v in hits.items()}
    card = {"what": "Lab colour prototypes learned from labelled real photos: each photo's garment colour (median of "
                    "its clearly-garment pixels), clustered per colour name with k-means",
            "data": {"source": args.photos.name, "photos": int(kept.sum()), "label_map": label_map,
                     "per_colour": {n: int((names == n).sum()) for n in prototypes},
                     "left_out": {n: int((names == n).sum()) for n in sorted(set(names.tolist()) - set(prototypes))}},
            "cross_validation": {"method": f"GroupKFold({args.folds}, shuffle, random_state={args.seed}) by "
                                           f"{args.group_column or 'photo'}; colour read by the prototypes alone",
                                 "photo_prototypes": figures["photos"], "css_colours": figures["css"]},
            "command": "python scripts/train_colour_prototypes.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))}
    missing = [n for n in prototypes if css_lab(n) is None]
    if missing:
        card["names_without_css"] = missing
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"prototypes": {n: np.round(v, 2).tolist() for n, v in prototypes.items()},
                                    "card": card}, indent=1), encoding="utf-8")
    print(f"{len(prototypes)} colours from {int(kept.sum())} photos; grouped CV accuracy with these prototypes "
          f"{figures['photos']['accuracy']:.3f} +- {figures['photos']['accuracy_se']:.3f} (CSS colours alone "
          f"{figures['css']['accuracy']:.3f}); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
