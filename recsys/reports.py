"""Reading evaluation reports: tables per task and the share of the baseline-to-oracle gap a model closes."""

from __future__ import annotations

import numpy as np
import pandas as pd

REPORT_NAME = "report.json"
BENCH_NAME = "bench.json"
BASELINES = ("random", "popularity", "visual-similarity", "image-only", "text-only", "zero-shot")
ORACLE = "oracle"
#: Rows that are neither baselines nor models a page offers, and what they show.
ROW_NOTES = {
    "vbpr-attributes": "vbpr-attributes is VBPR fitted on the catalog's labelled attributes instead of image "
                       "features: on the built-in world the true tastes are linear in them, so it is the ceiling "
                       "an image encoder's features could reach, not a model the For you page offers.",
}


def baseline_names() -> tuple[str, ...]:
    return BASELINES


def report_table(task_report: dict) -> pd.DataFrame:
    """``{model: {metric: value}}`` as a DataFrame (models as rows), the oracle last."""
    table = pd.DataFrame.from_dict(task_report, orient="index").apply(pd.to_numeric, errors="coerce")
    order = [m for m in table.index if m != ORACLE] + ([ORACLE] if ORACLE in table.index else [])
    return table.loc[order]


def gap_closed(task_report: dict, metric: str) -> dict[str, float]:
    """For each non-baseline model: ``(model - best baseline) / (oracle - best baseline)`` on ``metric``.

    Empty when there is no oracle or no baseline with that metric.
    """
    oracle = task_report.get(ORACLE, {}).get(metric)
    baselines = [v[metric] for m, v in task_report.items() if m in BASELINES and metric in v]
    if oracle is None or not baselines:
        return {}
    best = max(baselines)
    if np.isclose(oracle, best):
        return {}
    return {m: (v[metric] - best) / (oracle - best) for m, v in task_report.items()
            if m not in BASELINES and m != ORACLE and metric in v}
