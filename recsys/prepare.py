"""First-run set-up: make every page of a catalog show its main result (DESIGN section 12).

One path for the built-in world and for any catalog a user brings (``scripts/setup.py``, ``make run``, and the app's
"Train models for this catalog" button all call :func:`prepare`):

1. build the built-in world when it is missing (built-in catalog only);
2. precompute the embeddings when the manifest is missing;
3. train the models each page's main result needs (``PAGE_MODELS`` of every task's ``models`` module), skipping
   those the store already has for this catalog and these artifacts;
4. write a quick evaluation report when there is none (baselines, oracle and the page models, quick schedules;
   where a protocol trains on the split the page model was trained on, it measures that saved model instead of
   training it again), marked as quick with when and on what it was computed;

   steps 3 and 4 run as jobs (one task's training, one task's quick evaluation) in :data:`SETUP_WORKERS`
   processes: every model trains on one thread (see ``TRAIN_THREADS`` in :mod:`recsys.models.compat`), so on two
   cores two jobs at once take about half the time. A task's evaluation starts once its models and those of the
   tasks it reads (``READS_TASKS``: the Stylist's set score adds the compatibility model's) are saved, so the
   figures are those of a run one step after the other;
5. optionally train every other registered model (what a page offers beyond its default).

A step that cannot run on this catalog (no outfits, no dialogues, no captions) is recorded with its one-sentence
reason and the rest go on. Every model is written to a temporary file and renamed (``save_model``), so a set-up
killed mid-training leaves no half-written model: the next run trains it again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from recsys.artifacts import embedding_step, load_artifacts
from recsys.catalog import Catalog
from recsys.config import DEFAULT_IMAGE_ENCODER, get_settings
from recsys.models.registry import list_models
from recsys.progress import ProgressCallback
from recsys.reports import PAIRED, report_path, report_unreadable, write_report
from recsys.store import ModelStore
# Importing the tasks registers their models: set-up workers in other processes train through the store too.
from recsys.tasks import TASKS, task_part

logger = logging.getLogger(__name__)

#: Environment variable setting the processes of the training-and-quick-report stage (default: two, or one on a
#: single core); ``1`` runs it in this process.
SETUP_WORKERS = "RECSYS_SETUP_WORKERS"


@dataclass
class SetupResult:
    """What :func:`prepare` did: ``steps`` maps a step name (``build``, ``precompute``, ``pages' models and quick
    report``, ``train personal/vecf``, ...) to its wall-clock seconds, one after the other; ``stage_steps`` breaks
    the pages' models and quick report stage down (``train compat/type-aware``, ``quick report compat``, ...: seconds
    in the process that ran it, several at once); ``skipped`` maps a step to the sentence saying why it could not
    run on this catalog."""

    steps: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    stage_steps: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Total wall-clock seconds of the steps that ran."""
        return float(sum(self.steps.values()))


def page_models(tasks=None) -> list[tuple[str, str]]:
    """``(task, model)`` pairs the pages' main results need, in training order (tasks in :data:`TASKS` order)."""
    return [(task, name) for task in (tasks or TASKS) for name in getattr(task_part(task, "models"), "PAGE_MODELS", ())]


def other_models(tasks=None) -> list[tuple[str, str]]:
    """Every other trainable registered model, after :func:`page_models`."""
    first = set(page_models(tasks))
    return [(t, n) for t in (tasks or TASKS) for n in list_models(t, trainable=True) if (t, n) not in first]


def task_chains(tasks=None) -> list[list[str]]:
    """``tasks`` (default :data:`TASKS`) grouped so that a task comes after the tasks it reads (``READS_TASKS`` of
    its ``models`` module) in the same group; groups and their tasks in :data:`TASKS` order."""
    tasks = list(tasks or TASKS)
    group_of = {task: {task} for task in tasks}
    for task in tasks:
        for read in getattr(task_part(task, "models"), "READS_TASKS", ()):
            if read in group_of and group_of[read] is not group_of[task]:
                merged = group_of[read] | group_of[task]
                for member in merged:
                    group_of[member] = merged
    chains, seen = [], set()
    for task in tasks:
        if task not in seen:
            chains.append([t for t in tasks if t in group_of[task]])
            seen |= group_of[task]
    return chains


def setup_workers() -> int:
    """Processes of the training-and-quick-report stage: :data:`SETUP_WORKERS` when set, else two (one on a single
    core)."""
    configured = os.environ.get(SETUP_WORKERS, "").strip()
    if configured:
        return max(1, int(configured))
    return min(2, os.cpu_count() or 1)


def _open_store(catalog_dir: str, seed: int):
    catalog = Catalog.load(catalog_dir)
    return catalog, ModelStore(catalog, load_artifacts(catalog), seed=seed)


def _train_task(catalog_dir: str, task: str, names: list[str], seed: int) -> dict:
    """Train ``names`` of ``task`` in order; ``{"steps", "skipped"}``. Runs in a worker process (or this one), so it
    loads what it needs itself."""
    _, store = _open_store(catalog_dir, seed)
    out: dict = {"steps": {}, "skipped": {}}
    for name in names:
        step = f"train {task}/{name}"
        started = time.perf_counter()
        try:
            store.fit(task, name)
        except ValueError as exc:  # the catalog lacks what this model needs: say so and go on
            out["skipped"][step] = str(exc)
            logger.info("set-up step %s skipped: %s", step, exc)
        out["steps"][step] = round(time.perf_counter() - started, 1)
        logger.info("set-up step %s: %.1f s", step, out["steps"][step])
    return out


def _evaluate_task(catalog_dir: str, task: str, seed: int) -> dict:
    """The quick protocol of ``task`` (baselines, oracle and its page models, taken from the store where they are the
    same fits); ``{"steps", "report"}``."""
    from recsys.evaluate import evaluate

    catalog, store = _open_store(catalog_dir, seed)
    started = time.perf_counter()
    names = [name for _, name in page_models([task])]
    report = evaluate(catalog, tasks=(task,), seed=seed, quick=True, models={task: names}, store=store)
    return {"steps": {f"quick report {task}": round(time.perf_counter() - started, 1)}, "report": report}


def _train_and_evaluate(catalog_dir: str, task: str, names: list[str], seed: int) -> list[dict]:
    """:func:`_train_task` then :func:`_evaluate_task` in one process, for a task whose evaluation reads no other
    task's models: the evaluation reuses what the training loaded in the process (the text encoder: the composed
    quick report took 8.7 s in a process that had not loaded it, 2.8 s in one that had)."""
    return [_train_task(catalog_dir, task, names, seed), _evaluate_task(catalog_dir, task, seed)]


@contextlib.contextmanager
def _no_main_for_workers():
    """While the stage's processes start, ``__main__`` is a bare module: a spawned process runs the file of
    ``__main__`` again, and in a process where Streamlit ran a page (a server, or ``AppTest`` in the tests) that file
    is the app itself, which then ran in every worker -- and failed where no catalog was set up. The jobs need
    nothing from ``__main__``: they are functions of this module."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _init_worker(level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


#: The order training jobs are handed to the processes: the longest first (longest-processing-time-first), so the
#: short jobs and the quick reports fill in beside the long ones instead of queueing behind them. Job times of the
#: demo world's first run: composed 25-40 s, compat ~35, dialogue ~30, personal ~17, similar < 1; in task order the
#: composed job started last and the stage took 87 s for 143 s of jobs on two processes.
TRAIN_JOB_ORDER = ("composed", "compat", "dialogue", "personal", "similar")


def _run_stage(folder, train: dict[str, list[str]], evaluate: list[str], seed: int, workers: int,
               progress: Callable[[int, int, str], None]) -> list[dict]:
    """Train ``train`` (``{task: [model, ...]}``) and run the quick protocol of every task in ``evaluate``, in up to
    ``workers`` spawned processes (the caller may have threads): a task's evaluation starts once its models and
    those of the tasks it reads (``READS_TASKS``) are trained, in the job that trained them when it reads no other
    task. ``progress(jobs done, jobs, message)``. An error other than a ``ValueError`` in a job is raised here."""
    reads = {task: [r for r in getattr(task_part(task, "models"), "READS_TASKS", ()) if r in train]
             for task in evaluate}
    n_jobs = len(train) + len(evaluate)
    parts: list[dict] = []
    if min(workers, n_jobs) <= 1:
        for chain in task_chains([t for t in dict.fromkeys([*train, *evaluate])]):
            for task in chain:
                if task in train:
                    progress(len(parts), n_jobs, f"Training {task}: {', '.join(train[task])}")
                    parts.append(_train_task(str(folder), task, train[task], seed))
                if task in evaluate:
                    progress(len(parts), n_jobs, f"Quick evaluation of {task}")
                    parts.append(_evaluate_task(str(folder), task, seed))
        return parts
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    trained = {task for task in evaluate if task not in train}
    waiting = list(evaluate)
    progress(0, n_jobs, f"Training the pages' models and evaluating them ({min(workers, n_jobs)} processes)")
    with _no_main_for_workers(), ProcessPoolExecutor(
            max_workers=min(workers, n_jobs), mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(logging.getLogger().getEffectiveLevel(),)) as pool:
        rank = {task: k for k, task in enumerate(TRAIN_JOB_ORDER)}
        order = sorted(train, key=lambda t: rank.get(t, len(rank)))
        running = {}
        for task in order:
            if task in waiting and not reads[task]:  # its evaluation waits for nobody else: the same job
                waiting.remove(task)
                job = pool.submit(_train_and_evaluate, str(folder), task, train[task], seed)
                running[job] = ("Trained and evaluated", task)
            else:
                running[pool.submit(_train_task, str(folder), task, train[task], seed)] = ("Trained", task)

        def start_ready() -> None:
            for task in list(waiting):
                if task in trained and all(r in trained for r in reads[task]):
                    waiting.remove(task)
                    running[pool.submit(_evaluate_task, str(folder), task, seed)] = ("Evaluated", task)

        start_ready()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                verb, task = running.pop(future)
                result = future.result()
                parts.extend(result if isinstance(result, list) else [result])
                if verb.startswith("Trained"):
                    trained.add(task)
                progress(len(parts), n_jobs, f"{verb} {task}")
            start_ready()
    return parts


def evaluate_to(catalog, path: str | os.PathLike, *, quick: bool, progress: ProgressCallback | None = None,
                seed: int = 0, store=None) -> dict:
    """Run every task's protocol (``quick``: only the baselines, oracle and :func:`page_models`, on quick schedules)
    and write the report to ``path`` (see :func:`write_report`); returns the report. ``store``: the set-up's model
    store, whose full-schedule page models the protocols take where they are the same fits as their own
    (:func:`recsys.evaluate.evaluate`).

    Raises
    ------
    OSError
        When the report cannot be written.
    """
    from recsys.evaluate import evaluate

    started = time.perf_counter()
    models = None
    if quick:
        models = {}
        for task, name in page_models():
            models.setdefault(task, []).append(name)
    report = evaluate(catalog, seed=seed, quick=quick, progress=progress, models=models, store=store)
    write_report(report, path, kind="quick" if quick else "full", catalog=catalog,
                 seconds=time.perf_counter() - started)
    return report


def outdated_world(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a built-in world that another version of the generator drew
    (``catalog.json``'s ``world_version`` differs from :data:`recsys.data.demo_world.WORLD_VERSION`): its truth names
    other tastes, so its oracle rows and pages would fail or mislead. Never true for a catalog of other data."""
    try:
        meta = json.loads((Path(folder) / "catalog.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict) or meta.get("source") != "demo-world":
        return False
    from recsys.data.demo_world import WORLD_VERSION

    return meta.get("world_version") != WORLD_VERSION


def prepare(catalog_dir: str | os.PathLike, *, builtin: bool = False, preset: str = "demo", seed: int = 0,
            all_models: bool = False, report: bool = True, device: str | None = None,
            progress: ProgressCallback | None = None, workers: int | None = None) -> SetupResult:
    """Make every page of the catalog in ``catalog_dir`` ready (see the module docstring); returns what was done.

    Parameters
    ----------
    catalog_dir : path
        The catalog folder.
    builtin : bool
        Build the built-in world (``preset``, ``seed``) there when it is missing, or again when it was drawn by an
        older generator (:func:`outdated_world`).
    all_models : bool
        Also train every registered model the pages do not need for their main result.
    report : bool
        Write the quick evaluation report when the catalog has no report.
    device : str, optional
        Where the embeddings are computed (default: the ``RECSYS_DEVICE`` setting). They are computed with the
        ``RECSYS_IMAGE_ENCODER`` and ``RECSYS_TEXT_ENCODER`` settings, and again when those are set and the
        catalog's were computed with other encoders, or are damaged (computed again).
    progress : callable, optional
        ``progress(fraction in [0, 1], message)``.
    workers : int, optional
        Processes of the pages' models and quick report stage (default :func:`setup_workers`). Inside a Streamlit
        server pass 1: the server installs the running page as ``__main__``, which a spawned worker would import.

    Raises
    ------
    recsys.catalog.CatalogError
        When the catalog is missing (and not built-in) or malformed.
    recsys.artifacts.ArtifactError
        When the embeddings cannot be computed or loaded.
    """
    folder = Path(catalog_dir)
    report_progress = progress or (lambda fraction, message: None)
    result = SetupResult()

    def timed(step: str, run: Callable[[], object]) -> None:
        started = time.perf_counter()
        try:
            run()
        except ValueError as exc:  # the catalog lacks what this step needs: say so and go on
            result.skipped[step] = str(exc)
            logger.info("set-up step %s skipped: %s", step, exc)
        result.steps[step] = round(time.perf_counter() - started, 1)
        logger.info("set-up step %s: %.1f s", step, result.steps[step])

    if builtin and outdated_world(folder):
        # Its truth and images are another generator's: every model, embedding and report made from it is stale.
        logger.warning("the built-in world in %s was drawn by an older generator; building it again", folder)
        shutil.rmtree(folder)
    if builtin and not (folder / "items.parquet").is_file():
        from recsys.data.demo_world import build_demo_catalog

        report_progress(0.0, "Building the built-in world")
        timed("build", lambda: build_demo_catalog(folder, preset=preset, seed=seed))
    catalog = Catalog.load(folder)
    config = get_settings()
    step = embedding_step(catalog, config.image_encoder, config.text_encoder)
    if step:
        from recsys.artifacts import precompute  # the encoders and torch, only when embeddings are computed

        message, image_encoder, text_encoder = step
        report_progress(0.05, message)
        timed("precompute", lambda: precompute(catalog, image_encoder or DEFAULT_IMAGE_ENCODER, text_encoder,
                                               device=device, progress=False,
                                               callback=lambda f, m: report_progress(0.05 + .3 * f, m)))
    store = ModelStore(catalog, load_artifacts(catalog), seed=seed)
    first = [(t, n) for t, n in page_models() if not store.model_status(t, n).ready]
    rest = [(t, n) for t, n in other_models() if not store.model_status(t, n).ready] if all_models else []
    path = report_path(folder)
    quick_report = report and report_unreadable(path)  # none yet, or damaged
    # The pages' models and the quick report (the Model report page is a page to make ready), before the others.
    train: dict[str, list[str]] = {}
    for task, name in first:
        train.setdefault(task, []).append(name)
    evaluate = [task for task in TASKS] if quick_report else []
    n_steps = max(len(train) + len(evaluate) + len(rest), 1)
    started = time.perf_counter()
    stage = _run_stage(folder, train, evaluate, seed, workers or setup_workers(),
                       lambda done, _, message: report_progress(0.35 + 0.65 * done / n_steps, message))
    for part in stage:
        result.stage_steps.update(part["steps"])
        result.skipped.update(part.get("skipped", {}))
    if train or evaluate:
        result.steps["pages' models and quick report"] = round(time.perf_counter() - started, 1)
    if quick_report:

        reports = [part["report"] for part in stage if "report" in part]
        merged = {task: figures for part in reports for task, figures in part.items() if not task.startswith("_")}
        report_doc = {task: merged[task] for task in TASKS if task in merged}
        for key in ("_skipped", PAIRED):  # each job's own, by task
            joined = {task: value for part in reports for task, value in part.get(key, {}).items()}
            if joined:
                report_doc[key] = joined
        write_report(report_doc, path, kind="quick", catalog=catalog,
                     seconds=sum(s for part in stage for k, s in part["steps"].items() if k.startswith("quick report")))
    done = len(train) + len(evaluate)
    store = ModelStore(catalog, load_artifacts(catalog), seed=seed)  # sees what the workers saved
    for task, name in rest:
        report_progress(0.35 + 0.65 * done / n_steps, f"Training {task}/{name}")
        timed(f"train {task}/{name}", lambda t=task, n=name: store.fit(t, n))
        done += 1
    report_progress(1.0, "Every page is ready")
    return result
