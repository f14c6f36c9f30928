"""Turn a real dataset, or a folder of class sub-folders of photos, into a catalog folder.

    python scripts/ingest.py --format folder --src DIR --out CATALOG [--overwrite] [--slot-map MAP.json]
    python scripts/ingest.py --format amazon --src DIR --out CATALOG [--min-interactions 5] [--slot-map MAP.json]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys.catalog import CatalogError  # noqa: E402
from recsys.data import ADAPTERS, get_adapter  # noqa: E402
from recsys.progress import progress_bar  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", required=True, choices=sorted(ADAPTERS), help="layout of --src")
    parser.add_argument("--src", type=Path, required=True, help="dataset folder or file")
    parser.add_argument("--out", type=Path, required=True, help="catalog folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing catalog folder")
    parser.add_argument("--slot-map", type=Path, help="folder and amazon formats: JSON {category: slot} for "
                                                     "categories whose name does not say their slot (otherwise "
                                                     "predicted from the photos)")
    parser.add_argument("--min-interactions", type=int, default=None,
                        help="amazon format: drop users with fewer reviewed products (default: 5, as the papers)")
    args = parser.parse_args(argv)
    if args.slot_map is not None and args.format not in ("folder", "amazon"):
        parser.error("--slot-map applies to --format folder and amazon only")
    if args.min_interactions is not None and args.format != "amazon":
        parser.error("--min-interactions applies to --format amazon only")
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    bar = progress_bar(total=100, unit="%", desc=f"ingesting {args.format}")

    def progress(fraction: float, message: str) -> None:
        bar.n = int(round(100 * fraction))
        bar.set_postfix_str(message)
        bar.refresh()

    try:
        extra = {"slot_map": args.slot_map} if args.slot_map is not None else {}
        if args.min_interactions is not None:
            extra["min_interactions"] = args.min_interactions
        catalog, report = get_adapter(args.format)(args.src, args.out, overwrite=args.overwrite, progress=progress,
                                                   **extra)
    except (CatalogError, ValueError, OSError) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bar.close()
    print(f"Catalog {catalog.root}: {report.summary()}")
    for file, reason in report.skipped[:20]:
        print(f"  skipped {file}: {reason}")
    for note in report.notes:
        print(f"  note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
