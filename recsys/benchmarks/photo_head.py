"""Reproducing the garment recognizer from the data: the time it takes on this machine and what it reaches.

``run(quick=..., work_dir=...)`` is what ``scripts/bench.py`` calls. It trains a recognizer as
``scripts/train_photo_head.py`` does (:func:`recsys.recognizer_training.train_recognizer`) on the real photos of
``../shared/realdata/clothing-photos`` less the clothing-small validation people -- all of them, or in quick mode
every eighth photo and one setting -- and reports the seconds spent encoding and cross-validating, the photos per
second, and the grouped cross-validated accuracy with its standard error. Skipped, with the reason, where
``../shared`` is absent.
"""

from __future__ import annotations

import time
from pathlib import Path

from recsys.config import PROJECT_ROOT

PHOTOS = PROJECT_ROOT.parent / "shared" / "realdata" / "clothing-photos"


def run(quick: bool = False, work_dir: str | Path | None = None) -> dict:
    """The figures of the module docstring."""
    import shutil
    import tempfile

    from recsys.encoders import create_encoder
    from recsys.recognizer_training import DEFAULT_GRID, train_recognizer

    if not (PHOTOS / "labels.csv").is_file():
        return {"skipped": f"{PHOTOS} is absent (a user's clone has no ../shared)"}
    source = PHOTOS
    scratch = None
    if quick:  # every eighth photo, through a labels.csv of its own next to the same images
        scratch = Path(tempfile.mkdtemp(dir=work_dir))
        lines = (PHOTOS / "labels.csv").read_text(encoding="utf-8").splitlines()
        (scratch / "labels.csv").write_text("\n".join([lines[0]] + lines[1::8]), encoding="utf-8")
        (scratch / "images").symlink_to(PHOTOS / "images")
        source = scratch
    encoder = create_encoder("effnet-lite0", "cpu")
    stages: dict[str, float] = {}
    started = time.perf_counter()

    def progress(fraction: float, message: str) -> None:
        if fraction >= 0.6 and "encode_s" not in stages:
            stages["encode_s"] = time.perf_counter() - started

    try:
        model = train_recognizer(source, encoder, grid=DEFAULT_GRID[1:2] if quick else DEFAULT_GRID,
                                 exclude_split="validation", progress=progress)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    total = time.perf_counter() - started
    cv, data = model.card_["cross_validation"], model.card_["data"]
    encode = stages.get("encode_s", total)
    return {"photos": data["photos"], "labels": len(model.classes_), "encode_s": round(encode, 1),
            "photos_per_s": round(2 * data["photos"] / max(encode, 1e-9), 1),  # each photo and its mirror image
            "cross_validate_and_fit_s": round(total - encode, 1), "total_s": round(total, 1),
            "cv_accuracy": round(cv["accuracy"], 3), "cv_accuracy_se": round(cv["accuracy_se"], 3),
            "chosen": cv["chosen"]}
