"""Train the task's models on precomputed artifacts and save them beside them.

    python scripts/train.py --catalog DIR --task compat|personal|dialogue|composed|all
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys.catalog import Catalog, CatalogError  # noqa: E402
from recsys.evaluate import train  # noqa: E402
from recsys.tasks import TASKS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--task", default="all", choices=("all",) + TASKS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer epochs, for smoke tests")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        catalog = Catalog.load(args.catalog)
        summary = train(catalog, tasks=TASKS if args.task == "all" else (args.task,), seed=args.seed,
                        quick=args.quick)
    except (CatalogError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
