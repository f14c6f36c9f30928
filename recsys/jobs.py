"""Background jobs of the app: set-up, training a model a page offers, the full evaluation.

A job runs in a daemon thread and reports ``(fraction, message)`` progress that every browser session can read.
:class:`JobRegistry` keeps at most one job per key (catalog folder + what it does), so two sessions opening an
untrained page at the same time start one job, not two. Plain Python: the one registry per server lives in
:mod:`recsys.ui.caches`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from recsys.progress import ProgressCallback
from recsys.reports import report_path
from recsys.store import ModelStore
import recsys.tasks  # noqa: F401,I001  (importing the tasks registers the models the store trains)

logger = logging.getLogger(__name__)



@dataclass
class Job:
    """One background job and what it has reported.

    Attributes
    ----------
    key : tuple
        ``(catalog folder, what)``.
    title : str
        What it does, for the page ("Setting up this catalog").
    fraction : float
        Progress in [0, 1].
    message : str
        The current step.
    error : str or None
        The one-sentence reason it failed (None while running or after success).
    started, finished : float
        ``time.time()`` seconds; ``finished`` is None while it runs.
    """

    key: tuple
    title: str
    fraction: float = 0.0
    message: str = "Starting ..."
    error: str | None = None
    result: object = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    @property
    def running(self) -> bool:
        """True until the job has finished (successfully or not)."""
        return self.finished is None

    def report(self, fraction: float, message: str) -> None:
        """The progress callback handed to the work: clamps ``fraction`` to [0, 1]."""
        self.fraction = min(max(float(fraction), 0.0), 1.0)
        self.message = str(message)


class JobRegistry:
    """At most one job per key, run in daemon threads (see the module docstring)."""

    def __init__(self):
        self._jobs: dict[tuple, Job] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Job | None:
        """The job last started under ``key`` (running or finished), or None."""
        with self._lock:
            return self._jobs.get(key)

    def start(self, key: tuple, title: str, work: Callable[[ProgressCallback], object]) -> Job:
        """Start ``work(progress)`` under ``key`` unless a job with that key is running; returns the job.

        An exception of ``work`` ends the job with ``error`` set to its message (and the traceback in the log), so a
        page shows one sentence; a later :meth:`start` under the same key runs it again.
        """
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.running:
                return job
            job = Job(key=key, title=title)
            self._jobs[key] = job

        def run() -> None:
            try:
                job.result = work(job.report)
                job.report(1.0, "Done")
            except Exception as exc:  # a background thread has nobody to raise to: keep the sentence for the page
                logger.exception("background job %s failed", key)
                job.error = str(exc) or type(exc).__name__
            finally:
                job.finished = time.time()

        threading.Thread(target=run, name=f"job-{key[-1]}", daemon=True).start()
        return job

    def wait(self, key: tuple, timeout: float | None = None) -> Job | None:
        """Block until the job under ``key`` finishes (or ``timeout`` seconds pass); returns it (tests, scripts)."""
        deadline = None if timeout is None else time.time() + timeout
        while True:
            job = self.get(key)
            if job is None or not job.running or (deadline is not None and time.time() > deadline):
                return job
            time.sleep(0.05)


# ---------------------------------------------------------------------- the studio's jobs (keys and work)
def job_key(catalog, purpose: str) -> tuple:
    """The key of a catalog's job for ``purpose`` (``setup``, ``evaluation``, ``train <task>/<models>``)."""
    from pathlib import Path

    return (str(Path(catalog.root).absolute()), purpose)


def setup_work(catalog, device: str | None, all_models: bool = False):
    """The set-up job's work (:func:`recsys.prepare.prepare`), in the caller's process: inside a Streamlit server a
    spawned worker would import the page Streamlit installs as ``__main__``."""
    from recsys.prepare import prepare

    return lambda progress: prepare(catalog.root, builtin=False, all_models=all_models, device=device,
                                    progress=progress, workers=1)


def training_work(catalog, artifacts, task: str, names):
    """A job's work that trains ``names`` of ``task`` through a model store, with progress per model."""
    def work(progress):
        store = ModelStore(catalog, artifacts)
        for k, name in enumerate(names):
            progress(k / len(names), f"Training {name}")
            store.fit(task, name, progress=lambda f, m, k=k: progress((k + f) / len(names), m))

    return work


def evaluation_work(catalog):
    """The full evaluation's work: every task, written over the catalog's report."""
    from recsys.prepare import evaluate_to

    return lambda progress: evaluate_to(catalog, report_path(catalog.root), quick=False, progress=progress)

