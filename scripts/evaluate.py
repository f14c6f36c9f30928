"""Run each paper's protocol on a catalog; write and print the report.

    python scripts/evaluate.py --catalog DIR --task similar|compat|personal|dialogue|composed|all --json OUT
    python scripts/evaluate.py --catalog DIR --task upload --photos SRC [--label-map MAP.json] --json OUT
    python scripts/evaluate.py --catalog DIR --task requests --requests FILE.json --json OUT

``upload`` reads your own labelled photos (a folder of class sub-folders, or a CSV with a ``path`` column and
optional ``category`` and ``colour`` columns) as the Similar items page reads an upload, and writes its figures under
``"upload"`` (recsys.tasks.similar.upload); they are also added to the catalog's report, which the Model report page
shows.

``requests`` runs people's own words -- free-text searches, captions on a reference, chat messages -- through the
pages (recsys.request_protocol) and writes, under ``"requests"``, each kind's and model's score with its standard
error and chance level; they are also added to the catalog's report.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recsys.catalog import Catalog, CatalogError  # noqa: E402
from recsys.evaluate import evaluate  # noqa: E402
from recsys.reports import (PAIRED, add_upload_figures, claim_sentence, claims, display_table,  # noqa: E402
                            write_report)
from recsys.tasks import TASKS  # noqa: E402


def format_report(report: dict) -> str:
    """The report as aligned text tables, one per task."""
    lines = []
    for task, models in report.items():
        if task == "_skipped":
            for name, reason in models.items():
                lines.append(f"[{name}] skipped: {reason}")
            continue
        if task.startswith("_"):
            continue
        if task == "requests":
            lines += format_requests(models)
            continue
        if not all(isinstance(values, dict) for values in models.values()):  # flat figures (the upload protocol)
            lines.append(f"== {task} ==")
            lines += [f"{name:<28} {value:.4f}" if isinstance(value, float) else f"{name:<28} {value}"
                      for name, value in models.items()]
            lines.append("")
            continue
        lines.append(f"== {task} == (value ± standard error over the test queries, where the protocol gives one)")
        lines.append(display_table(models).to_string())
        # The verdicts as the pages phrase them, each tie with the smallest difference its test could detect.
        lines += [claim_sentence(c).replace("**", "") for c in claims(task, models, report.get(PAIRED, {}).get(task))]
        lines.append("")
    return "\n".join(lines)


def format_requests(figures: dict) -> list[str]:
    """The request protocol's figures as text lines: one per kind and row."""
    lines = ["== requests == (hits in the top 10 / what the catalog allows, ± standard error over requests)"]
    for kind, rows in figures.items():
        if kind == "_skipped":
            lines += [f"[{name}] skipped: {reason}" for name, reason in rows.items()]
            continue
        for row, f in rows.items():
            if row == "_skipped":
                lines += [f"{kind:<9} {name:<34} skipped: {reason}" for name, reason in f.items()]
                continue
            score = "n/a" if f.get("score") is None else f"{f['score']:.3f}"
            se = "" if f.get("score_se") is None else f" ± {f['score_se']:.3f}"
            chance = "n/a" if f.get("chance") is None else f"{f['chance']:.3f}"
            lines.append(f"{kind:<9} {row:<34} n={f['n']:<4} score {score}{se}  (chance {chance})")
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--task", default="all", choices=("all",) + TASKS + ("upload", "requests"))
    parser.add_argument("--requests", type=Path, help="requests task: a JSON file of requests (requests v1 format)")
    parser.add_argument("--photos", type=Path, help="upload task: a folder of class sub-folders or a CSV of photos")
    parser.add_argument("--label-map", type=Path, help="upload task: JSON mapping photo labels to catalog names")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smaller samples, for smoke tests")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.task == "upload" and args.photos is None:
        parser.error("--task upload needs --photos SRC (a folder of class sub-folders or a CSV)")
    if args.task == "requests" and args.requests is None:
        parser.error("--task requests needs --requests FILE.json (see ../shared/requests/dev-requests.json)")
    try:
        catalog = Catalog.load(args.catalog)
        started = time.perf_counter()
        if args.task == "upload":
            from recsys.tasks.similar.upload import evaluate_upload

            report = {"upload": evaluate_upload(catalog, args.photos, args.label_map)}
            add_upload_figures(catalog, report["upload"], source=args.photos, label_map=args.label_map)
        elif args.task == "requests":
            from recsys.request_protocol import add_request_figures, evaluate_requests, load_requests

            report = {"requests": evaluate_requests(catalog, load_requests(args.requests))}
            add_request_figures(catalog, report["requests"], source=args.requests)
        else:
            tasks = TASKS if args.task == "all" else (args.task,)
            report = evaluate(catalog, tasks=tasks, seed=args.seed, quick=args.quick)
    except (CatalogError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_report(report))
    if args.json:
        write_report(report, args.json, kind="quick" if args.quick else "full", catalog=catalog,
                     seconds=time.perf_counter() - started)
        print(f"Report written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
