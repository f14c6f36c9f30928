"""Train a garment recognizer on a folder of labelled real photos and write it with its card.

    python scripts/train_photo_head.py --photos DIR [--photos DIR ...] --out FILE [--image-encoder SPEC] [--seed 0]
        [--folds 5] [--grid 0.003,0.01,0.03,0.1] [--exclude-split validation] [--no-mirror]
        [--label-column label ...] [--group-column sender_id ...] [--label-map MAP.json] [--min-photos 10]

``DIR`` holds ``labels.csv`` (``path, label[, group]``; ``sender_id`` is read as the group) or one sub-folder of
photos per label. Labels that name no garment ("Not sure", "Skip", "Other") are not classes. The head's inverse L2
strength is chosen by cross-validation grouped by person (one person's photos never on both sides of a fold); the
chosen head is refitted on every photo and written as ``FILE.safetensors`` + ``FILE.json`` (its card: labels, the
encoder it reads, data, licence, photos and people per label, the grouped cross-validation with its confusion, this
command). The studio ships one for effnet-lite0 in ``assets/models/garment-head`` (README, DESIGN section 13).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from recsys.config import DEFAULT_IMAGE_ENCODER  # noqa: E402
from recsys.encoders import EncoderError, create_encoder  # noqa: E402
from recsys.recognizer import RecognizerError  # noqa: E402
from recsys.recognizer_training import DEFAULT_GRID, train_recognizer  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, required=True, action="append",
                        help="folder with labels.csv or class sub-folders (repeat to train on several)")
    parser.add_argument("--label-column", action="append", default=None,
                        help="labels.csv column with the label; repeat: each source uses the first it has "
                             "(default: label)")
    parser.add_argument("--group-column", action="append", default=None,
                        help="labels.csv column with the group (person or product); repeat as --label-column "
                             "(default: group, sender_id; none: each photo its own group)")
    parser.add_argument("--label-map", type=Path, default=None,
                        help='JSON {"source label": "recognizer label"} merging one dataset\'s names into another\'s')
    parser.add_argument("--min-photos", type=int, default=10, help="labels with fewer photos are left out")
    parser.add_argument("--out", type=Path, required=True, help="output path (.safetensors and .json are written)")
    parser.add_argument("--image-encoder", default=DEFAULT_IMAGE_ENCODER, help="image encoder spec (default: %(default)s)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5, help="grouped cross-validation folds (default: %(default)s)")
    parser.add_argument("--grid", default=",".join(str(g["reg"]) for g in DEFAULT_GRID),
                        help="inverse L2 strengths to compare (default: %(default)s)")
    parser.add_argument("--exclude-split", default=None,
                        help="leave out the photos whose labels.csv 'split' is this (kept for validation elsewhere)")
    parser.add_argument("--no-mirror", action="store_true", help="do not add each photo's mirror image to training")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    last = [-1.0]

    def progress(fraction: float, message: str) -> None:
        if fraction - last[0] >= 0.05 or fraction >= 1.0 or "setting" in message:
            last[0] = fraction
            print(f"[train {fraction:4.0%}] {message}", flush=True)

    try:
        grid = [{"reg": float(value)} for value in args.grid.split(",") if value.strip()]
        if not grid:
            raise ValueError("--grid needs at least one value")
        label_map = None
        if args.label_map is not None:
            try:
                label_map = json.loads(args.label_map.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ValueError(f"The label map {args.label_map} is not valid JSON ({exc}).") from None
            if not isinstance(label_map, dict) or not all(isinstance(v, str) for v in label_map.values()):
                raise ValueError(f"The label map {args.label_map} must be an object of label -> label.")
        encoder = create_encoder(args.image_encoder, args.device)
        command = "python scripts/train_photo_head.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        model = train_recognizer(args.photos, encoder, grid=grid, n_splits=args.folds, random_state=args.seed,
                                 exclude_split=args.exclude_split, mirror=not args.no_mirror, command=command,
                                 label_columns=tuple(args.label_column or ("label",)),
                                 group_columns=tuple(args.group_column or ("group", "sender_id")),
                                 label_map=label_map, min_photos=args.min_photos, progress=progress)
        out = args.out.with_suffix("") if args.out.suffix in (".safetensors", ".json") else args.out
        model.save(out)
    except (RecognizerError, EncoderError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    cv = model.card_["cross_validation"]
    print(f"{len(model.classes_)} labels, {model.card_['data']['photos']} photos of {model.card_['data']['groups']} "
          f"people or products; grouped {args.folds}-fold accuracy {cv['accuracy']:.3f} +- {cv['accuracy_se']:.3f} with "
          f"{cv['chosen']}")
    for row in cv["settings"]:
        print(f"  {row['params']}: {row['accuracy']:.3f} +- {row['accuracy_se']:.3f}")
    print(f"wrote {out}.safetensors and {out}.json in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
