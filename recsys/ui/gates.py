"""Job gates: what a page draws instead of its result while a background job (set-up, training, evaluation) has
yet to produce what it needs, and the buttons that start those jobs (DESIGN section 12).

A gate never asks the user to run a command: it shows the running job's progress (refreshing every second and
rerunning the page when the job is done), the failed job's one-sentence error, or a button that starts the job --
started at once, without a click, where that is safe (the built-in world, a model the user picked).
"""

from __future__ import annotations

from typing import Callable, Sequence

import streamlit as st

from recsys.catalog import Catalog
from recsys.jobs import evaluation_work, job_key, setup_work, training_work
from recsys.ui.caches import artifacts, context, jobs, refresh_after_job, settings, task_service


def setup_key(catalog: Catalog) -> tuple:
    """The key of a catalog's set-up job."""
    return job_key(catalog, "setup")


def evaluation_key(catalog: Catalog) -> tuple:
    """The key of a catalog's full-evaluation job."""
    return job_key(catalog, "evaluation")


def start_setup(catalog: Catalog, all_models: bool = False):
    """Start (or join) the catalog's set-up job: embeddings, the pages' models, the quick report."""
    return jobs().start(setup_key(catalog), "Setting up this catalog", setup_work(catalog, settings().device, all_models))


def start_training(catalog: Catalog, task: str, names: Sequence[str], again: bool = True):
    """Start (or join) a job that trains ``names`` of ``task`` through the model store; with ``again=False`` a job
    that already ran under this key (even one that failed) is returned instead of being started again."""
    key = job_key(catalog, f"train {task}/{'+'.join(names)}")
    if not again and jobs().get(key) is not None:
        return jobs().get(key)
    return jobs().start(key, f"Training {', '.join(names)}", training_work(catalog, artifacts(catalog), task, names))


def start_evaluation(catalog: Catalog):
    """Start (or join) the full evaluation of every task in the background; it replaces the catalog's report."""
    return jobs().start(evaluation_key(catalog), "Running the full evaluation", evaluation_work(catalog))


def show_job(job) -> None:
    """Draw a job's progress, refreshing every second while it runs; rerun the page once it has finished."""

    @st.fragment(run_every=1.0)
    def progress_box():
        current = jobs().get(job.key) or job
        if current.running:
            st.progress(current.fraction, text=f"{current.title}: {current.message}")
            return
        refresh_after_job()
        st.rerun(scope="app")

    progress_box()


def job_gate(key: tuple, start: Callable[[], object], *, button: str, button_key: str, automatic: bool = False,
             waiting: str | None = None, icon: str = ":material/model_training:", failed: str | None = None,
             primary: bool = True, help: str | None = None) -> None:
    """Draw the state of the job under ``key``: its progress while it runs; otherwise its error if it failed
    (``failed``: the sentence's start, default the job's title + "failed"), then the button ``button`` that calls
    ``start()`` and shows the job it returns, and the sentence ``waiting`` (if any). With ``automatic``, a job that
    never ran under ``key`` is started at once instead of waiting for a click."""
    job = jobs().get(key)
    if job is not None and job.running:
        show_job(job)
        return
    if job is not None and job.error:
        st.error(f"{failed or job.title + ' failed'}: {job.error}", icon=":material/error:")
    if (automatic and job is None) or st.button(button, key=button_key, type="primary" if primary else "secondary",
                                                icon=icon, help=help):
        show_job(start())
        return
    if waiting:
        st.info(waiting, icon=icon)


def _ready(ctx, task: str, names: Sequence[str]) -> bool:
    return ctx.artifacts is not None and all(ctx.store.model_status(task, n).ready for n in names)


def models_ready(task: str, names: Sequence[str], *, what: str = "This page's model") -> bool:
    """True when the catalog has embeddings and every model in ``names`` of ``task`` is trained for them.

    Otherwise the page shows what is happening instead of a command to run: the progress of the set-up or training
    job (started here automatically for the built-in world and for a model the user picked; for a catalog of the
    user's own, after a click on "Train models for this catalog"), or the job's one-sentence error, and False is
    returned -- the page stops drawing its result, and reruns by itself when the job is done.
    """
    from recsys.tasks import task_part

    ctx = context()
    if _ready(ctx, task, names):
        return True
    page_models = set(getattr(task_part(task, "models"), "PAGE_MODELS", ()))
    needs_setup = ctx.artifacts is None or any(n in page_models for n in names)
    key = setup_key(ctx.catalog) if needs_setup else job_key(ctx.catalog, f"train {task}/{'+'.join(names)}")
    job = jobs().get(key)
    if job is not None and not job.running and not job.error:
        refresh_after_job()  # it finished in another session: load what it wrote
        ctx = context()
        if _ready(ctx, task, names):
            return True
        skipped = getattr(job.result, "skipped", {}) or {}
        reasons = [reason for step, reason in skipped.items() if any(step.endswith(f"{task}/{n}") for n in names)]
        if reasons:  # the catalog cannot support it: say why once, never start the same job again by itself
            st.info(f"{what} cannot be trained on this catalog: {reasons[0]}", icon=":material/info:")
            return False
    problem = ctx.artifact_problem if ctx.artifacts is None else None
    catalog = ctx.catalog
    job_gate(key, (lambda: start_setup(catalog)) if needs_setup else (lambda: start_training(catalog, task, list(names))),
             button="Train models for this catalog", button_key=f"setup_{task}",
             automatic=ctx.settings.catalog_is_builtin or not needs_setup,
             waiting=f"{what} is not trained for this catalog yet" + (f" ({problem})" if problem else "")
             + "; the button trains it here in the background (a few minutes at most on the built-in world).")
    return False


def train_the_rest(task: str) -> None:
    """Start training, once and in the background, the models of ``task`` beyond its page's own (``PAGE_MODELS``)
    that are missing and can be trained here; they join the page's model list when they are ready. Needs a service
    with ``missing()`` (the models that can be trained and are not) and ``title(name)``."""
    from recsys.tasks import task_part

    service = task_service(task)
    page_models = set(getattr(task_part(task, "models"), "PAGE_MODELS", ()))
    others = [name for name in service.missing() if name not in page_models]
    if others:
        start_training(service.catalog, task, others, again=False)
        st.caption(f"Training {', '.join(service.title(n) for n in others)} in the background; "
                   "it joins the model list when it is ready.")


def report_gate(catalog: Catalog) -> None:
    """The Model report page without a report: the set-up job that writes the quick report (started at once on the
    built-in world), its progress, or the button that starts it."""
    job_gate(setup_key(catalog), lambda: start_setup(catalog), button="Compute the report", button_key="report_setup",
             automatic=settings().catalog_is_builtin, icon=":material/query_stats:",
             waiting="No evaluation report for this catalog yet: the button trains the pages' models where they are "
                     "missing and computes a quick report in the background.")


def evaluation_gate(catalog: Catalog) -> None:
    """The full evaluation's progress, or the button that starts it (it replaces the catalog's report when done)."""
    job_gate(evaluation_key(catalog), lambda: start_evaluation(catalog), button="Run the full evaluation",
             button_key="report_full", icon=":material/play_arrow:", failed="The full evaluation failed",
             primary=False, help="Every model with its full training schedule, in the background; the report is "
                                 "replaced when it is done (several minutes on the built-in world).")
