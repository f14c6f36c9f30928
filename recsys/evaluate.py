"""Run each paper's protocol on a catalog and collect one report ``{task: {model: {metric: value}}}``.

Every value comes from running the models; nothing is written by hand.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from recsys import reports
from recsys.artifacts import load_artifacts
from recsys.catalog import Catalog
from recsys.models.registry import list_models
from recsys.store import ModelStore
from recsys.tasks import TASKS, TaskUnavailable, task_part

logger = logging.getLogger(__name__)


def task_module(task: str):
    """The task's protocol module, ``recsys.tasks.<task>.protocol``.

    Raises
    ------
    ValueError
        For an unknown task.
    TaskUnavailable
        When the task has no protocol in this version.
    """
    return task_part(task, "protocol")


def evaluate(catalog: Catalog, tasks=TASKS, seed: int = 0, quick: bool = False,
             progress: Callable[[float, str], None] | None = None, models: dict | None = None, store=None) -> dict:
    """Evaluate ``tasks`` on ``catalog``; a task that is unavailable or cannot run is reported under ``_skipped``.

    ``models`` (``{task: [model, ...]}``), when given, limits each task's trained models to those listed (its
    baselines and oracle are always computed): the quick report of the first-run set-up. ``store`` (a
    :class:`recsys.store.ModelStore` of split ``seed``) lets the protocols take saved full-schedule models that are
    the same fits as theirs instead of training them again (see each protocol).
    """
    report: dict = {}
    skipped: dict = {}
    for k, task in enumerate(tasks):
        if progress:
            progress(k / len(tasks), f"Evaluating {task}")
        started = time.perf_counter()
        try:
            limit = {} if models is None else {"models": models.get(task, [])}
            report[task] = task_module(task).evaluate(catalog, seed=seed, quick=quick, store=store, **limit)
            paired = reports.pop_paired_claims(task, report[task])
            if paired:
                report.setdefault(reports.PAIRED, {})[task] = paired
        except (TaskUnavailable, ValueError) as exc:  # e.g. a catalog without outfits: one sentence, the rest go on
            logger.warning("task %s not evaluated: %s", task, exc, exc_info=not isinstance(exc, TaskUnavailable))
            skipped[task] = str(exc)
            continue
        logger.info("evaluated %s in %.1f s", task, time.perf_counter() - started)
    if skipped:
        report["_skipped"] = skipped
    return report


def train(catalog: Catalog, tasks=TASKS, seed: int = 0, quick: bool = False,
          progress: Callable[[float, str], None] | None = None) -> dict:
    """Fit and save every trainable registered model of ``tasks`` through :class:`recsys.store.ModelStore`.

    Returns ``{task: {model: {"fit_seconds", "path"}}}``; a task that cannot be trained on this catalog is
    reported under ``_skipped`` with its one-sentence reason.

    Raises
    ------
    recsys.artifacts.ArtifactError
        When the catalog has no usable precomputed embeddings.
    """
    store = ModelStore(catalog, load_artifacts(catalog), seed=seed)
    summary: dict = {}
    for k, task in enumerate(tasks):
        if progress:
            progress(k / len(tasks), f"Training {task}")
        try:
            names = list_models(task, trainable=True)
        except (TaskUnavailable, ModuleNotFoundError) as exc:
            summary.setdefault("_skipped", {})[task] = str(exc)
            continue
        for name in names:
            started = time.perf_counter()
            try:
                store.fit(task, name, quick=quick)
            except ValueError as exc:
                summary.setdefault("_skipped", {})[f"{task}/{name}"] = str(exc)
                continue
            summary.setdefault(task, {})[name] = {"fit_seconds": round(time.perf_counter() - started, 1),
                                                  "path": str(store.path(task, name))}
    return summary
