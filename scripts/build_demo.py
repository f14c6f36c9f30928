"""Generate the built-in fashion world as a catalog folder.

    python scripts/build_demo.py --preset tiny|demo|large --seed N --out DIR [--overwrite]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys.catalog import CatalogError  # noqa: E402
from recsys.data.demo_world import PRESETS, build_demo_catalog  # noqa: E402
from recsys.progress import progress_bar  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo", help=f"one of {', '.join(PRESETS)} (default: demo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="catalog folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    parser.add_argument("--workers", type=int, default=None, help="rendering processes")
    parser.add_argument("--contact-sheet", type=Path, help="also write a PNG of 48 random items with their titles")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.preset not in PRESETS:
        print(f"error: unknown preset '{args.preset}'; choose one of {', '.join(PRESETS)}.", file=sys.stderr)
        return 2
    bar = progress_bar(total=100, unit="%", desc=f"building {args.preset}", bar_format="{l_bar}{bar}| {postfix}")

    def progress(fraction: float, message: str) -> None:
        bar.n = int(round(100 * fraction))
        bar.set_postfix_str(message)
        bar.refresh()

    started = time.perf_counter()
    try:
        catalog = build_demo_catalog(args.out, preset=args.preset, seed=args.seed, overwrite=args.overwrite,
                                     progress=progress, workers=args.workers)
    except (CatalogError, ValueError, OSError) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bar.close()
    counts = ", ".join(f"{v} {k}" for k, v in catalog.meta.get("counts", {}).items())
    print(f"Built the {args.preset} world (seed {args.seed}) in {catalog.root}: {counts}.")
    print(f"Build time: {time.perf_counter() - started:.1f} s "
          f"(tables {catalog.meta['timings_s']['tables']} s, rendering after them {catalog.meta['timings_s']['render_after_tables']} s).")
    if args.contact_sheet:
        write_contact_sheet(catalog, args.contact_sheet, seed=args.seed)
        print(f"Contact sheet: {args.contact_sheet}")
    return 0


def write_contact_sheet(catalog, path: Path, count: int = 48, seed: int = 0) -> None:
    """A grid of ``count`` random items with their titles, to check the drawings at a glance."""
    from recsys.viz import image_grid

    sample = catalog.items.sample(min(count, len(catalog)), random_state=seed)
    images = [catalog.load_image(i) for i in sample["item_id"]]
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, columns=8, cell=200, labels=list(sample["title"])).save(path)


if __name__ == "__main__":
    sys.exit(main())
