"""Sweep a model's hyper-parameters on the validation split (test items are never looked at); print the table.

    python scripts/tune.py --catalog DIR --task personal --model vbpr-mm --grid reg=0.01,0.03 n_factors=2,16

Rows are sorted best first by the validation metric the task's protocol selects epochs with.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from recsys.catalog import Catalog, CatalogError  # noqa: E402
from recsys.artifacts import ArtifactError  # noqa: E402
from recsys.tasks.personal.models import ranker_names  # noqa: E402
from recsys.tasks.personal.tune import tune  # noqa: E402


def parse_grid(pairs: list[str]) -> dict[str, list]:
    """``["reg=0.01,0.03", "n_factors=8"]`` -> ``{"reg": [0.01, 0.03], "n_factors": [8]}`` (JSON values, else strings)."""
    grid = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        if not sep or not key or not values:
            raise ValueError(f"'{pair}' is not name=value[,value...].")
        parsed = []
        for value in values.split(","):
            try:
                parsed.append(json.loads(value))
            except json.JSONDecodeError:
                parsed.append(value)
        grid[key] = parsed
    return grid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--task", default="personal", choices=("personal",))
    parser.add_argument("--model", required=True, help=f"one of {', '.join(ranker_names())}")
    parser.add_argument("--grid", nargs="+", default=[], help="name=value[,value...] per hyper-parameter")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer epochs, for smoke tests")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        catalog = Catalog.load(args.catalog)
        rows = tune(catalog, args.model, parse_grid(args.grid), seed=args.seed, quick=args.quick)
    except (CatalogError, ArtifactError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
