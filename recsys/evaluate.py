"""Run each paper's protocol on a catalog and collect one report ``{task: {model: {metric: value}}}``.

Every value comes from running the models; nothing is written by hand.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from recsys.catalog import Catalog
from recsys.protocols import TASKS, TaskUnavailable, task_module

logger = logging.getLogger(__name__)


def evaluate(catalog: Catalog, tasks=TASKS, seed: int = 0, quick: bool = False,
             progress: Callable[[float, str], None] | None = None) -> dict:
    """Evaluate ``tasks`` on ``catalog``; a task that is unavailable or cannot run is reported under ``_skipped``."""
    report: dict = {}
    skipped: dict = {}
    for k, task in enumerate(tasks):
        if progress:
            progress(k / len(tasks), f"Evaluating {task}")
        started = time.perf_counter()
        try:
            report[task] = task_module(task).evaluate(catalog, seed=seed, quick=quick)
        except TaskUnavailable as exc:
            skipped[task] = str(exc)
            continue
        logger.info("evaluated %s in %.1f s", task, time.perf_counter() - started)
    if skipped:
        report["_skipped"] = skipped
    return report


def train(catalog: Catalog, tasks=TASKS, seed: int = 0, quick: bool = False,
          progress: Callable[[float, str], None] | None = None) -> dict:
    """Fit and save the models of ``tasks``; returns each task's fit summary."""
    summary: dict = {}
    for k, task in enumerate(tasks):
        if progress:
            progress(k / len(tasks), f"Training {task}")
        try:
            module = task_module(task)
        except TaskUnavailable as exc:
            summary.setdefault("_skipped", {})[task] = str(exc)
            continue
        if hasattr(module, "train"):
            summary[task] = module.train(catalog, seed=seed, quick=quick)
    return summary
