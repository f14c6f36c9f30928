"""Make every page of a catalog ready: build the built-in world if asked and missing, precompute the embeddings,
train the models each page's main result needs, and write a quick evaluation report (``recsys.prepare``).

    python scripts/setup.py --catalog DIR [--builtin] [--preset demo] [--seed 0] [--all-models] [--no-report]

Steps already done (a model the store has for this catalog and these artifacts, an existing report) are skipped, so
running it again is cheap; a step the catalog cannot support (no outfits, no dialogues, ...) is reported in one
sentence and the rest go on. Prints one line per step and the seconds each took.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys.catalog import CatalogError  # noqa: E402
from recsys.prepare import prepare  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--builtin", action="store_true", help="build the built-in world there when it is missing")
    parser.add_argument("--preset", default="demo", help="built-in world preset (tiny, demo, large)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all-models", action="store_true",
                        help="also train the models pages offer beyond their default")
    parser.add_argument("--no-report", action="store_true", help="do not write the quick evaluation report")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda (default: RECSYS_DEVICE)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    last = [-1.0]

    def progress(fraction: float, message: str) -> None:
        if fraction - last[0] >= 0.01 or fraction >= 1.0:
            last[0] = fraction
            print(f"[setup {fraction:4.0%}] {message}", flush=True)

    try:
        result = prepare(args.catalog, builtin=args.builtin, preset=args.preset, seed=args.seed,
                         all_models=args.all_models, report=not args.no_report, device=args.device,
                         progress=progress)
    except (CatalogError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"seconds": round(result.seconds, 1), "steps": result.steps, "stage_steps": result.stage_steps,
                      "skipped": result.skipped}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
