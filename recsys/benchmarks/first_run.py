"""First run: seconds from nothing to every page ready, and each page's response times in headless Chromium.

``run(quick=..., work_dir=...)`` is what ``scripts/bench.py`` calls. On an empty folder in ``work_dir`` it

1. runs ``scripts/setup.py --catalog X --builtin --preset demo`` (``tiny`` when ``quick``) as a subprocess, as
   ``make run`` does: world build, precompute, the pages' models and the quick report; its closing JSON gives the
   seconds of each step;
2. starts ``streamlit run streamlit_app.py`` on that catalog and opens, in one headless Chromium, every page by its
   address, each in a new tab -- a new Streamlit session -- of one browser context (Browse first, as the server's
   first session, with a cold HTTP cache), waiting for each page's main result
   (:mod:`recsys.benchmarks._browser`, the same waits as the first-run browser test);
3. opens every page again ``reps`` times (5; 2 when ``quick``), each in a new tab of that context: a returning user
   on the now warm server (models loaded, HTTP cache full).

Figures (seconds; the clock starts when the set-up starts, Chromium is launched before):

- ``setup/<step>_s`` per set-up step (``setup/build_s``, ``setup/precompute_s``, ``setup/train_compat/type-aware_s``,
  ``setup/quick_report_s``, ...) and ``setup/total_s`` (the subprocess, interpreter start included);
- ``server_start_s``: from ``streamlit run`` to its health check answering;
- ``first_page_s``: from the start to the Browse grid shown; ``every_page_ready_s``: to the last page's main result,
  visiting the pages one after the other;
- ``<page>/first_visit_s``: navigation to main result on the page's first visit; ``<page>/warm_median_s`` and
  ``<page>/warm_p95_s`` over the warm visits. For the pages whose result needs an action (stylist: send a message;
  search: apply a caption) ``<page>/action_first_s``, ``<page>/action_warm_median_s`` and ``<page>/action_warm_p95_s``
  time the action alone.

A page that does not show its main result is reported under ``<page>/error`` (and ``every_page_ready_s`` is None);
what a page shows that it must not (a "not trained" note, an exception box, a training progress bar) under
``<page>/problems``. Nothing is printed: ``scripts/bench.py`` prints the figures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from recsys.config import PROJECT_ROOT

#: Warm visits per page (``quick``: :data:`QUICK_REPS`).
REPS, QUICK_REPS = 5, 2
SETUP_SCRIPT = PROJECT_ROOT / "scripts" / "setup.py"
#: The set-up of the demo world takes minutes on 2 cores; past this it is reported as failed.
SETUP_TIMEOUT_S = 1800


class SetupFailed(RuntimeError):
    """``scripts/setup.py`` exited with an error, or printed no closing JSON (the message ends with its log)."""


def run_setup(catalog_dir: str | os.PathLike, *, preset: str = "demo", seed: int = 0,
              log_path: str | os.PathLike | None = None, timeout_s: float = SETUP_TIMEOUT_S) -> dict:
    """Run ``scripts/setup.py --catalog catalog_dir --builtin --preset preset`` in a subprocess and return its
    closing JSON (``seconds``, ``steps`` {step: seconds}, ``skipped`` {step: reason}) plus ``wall_s``, the
    subprocess's wall-clock seconds. Its output is written to ``log_path`` (default: next to the catalog).

    Raises
    ------
    SetupFailed
        When the set-up exits with an error, runs past ``timeout_s`` or prints no JSON.
    """
    catalog_dir = Path(catalog_dir)
    log_path = Path(log_path) if log_path else catalog_dir.parent / f"{catalog_dir.name}-setup.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(SETUP_SCRIPT), "--catalog", str(catalog_dir), "--builtin", "--preset", preset,
               "--seed", str(seed)]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    environment.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        log_path.write_text(f"{_text(exc.stdout)}\n--- stderr ---\n{_text(exc.stderr)}", encoding="utf-8")
        raise SetupFailed(f"scripts/setup.py ran past {timeout_s:.0f} s; log: {log_path}") from exc
    wall = time.perf_counter() - started
    log_path.write_text(f"{done.stdout}\n--- stderr ---\n{done.stderr}", encoding="utf-8")
    if done.returncode != 0:
        raise SetupFailed(f"scripts/setup.py exited with code {done.returncode} (log: {log_path}):\n"
                          f"{done.stderr[-2000:]}")
    summary = _closing_json(done.stdout)
    if summary is None:
        raise SetupFailed(f"scripts/setup.py printed no closing JSON (log: {log_path}):\n{done.stdout[-2000:]}")
    return summary | {"wall_s": wall}


def warm_figures(seconds: list[float]) -> tuple[float, float]:
    """``(median, 95th percentile)`` of ``seconds``, linearly interpolated (numpy's default)."""
    values = np.asarray(seconds, dtype=float)
    return float(np.median(values)), float(np.percentile(values, 95))


def run(quick: bool = False, work_dir: str | os.PathLike | None = None, seed: int = 0) -> dict:
    """Time a first run of the studio on a fresh built-in world (see the module docstring); returns the figures.

    Parameters
    ----------
    quick : bool
        The ``tiny`` world and :data:`QUICK_REPS` warm visits per page instead of ``demo`` and :data:`REPS`.
    work_dir : path, optional
        Scratch folder for the world, the logs and the screenshots (default: a temporary folder, removed after).
    seed : int
        Seed of the world.

    Raises
    ------
    SetupFailed
        When the set-up fails (see :func:`run_setup`).
    recsys.benchmarks._browser.DriverError
        When Chromium is missing or the server does not start.
    """
    from recsys.benchmarks import _browser as driver

    if work_dir is None:
        scratch = tempfile.mkdtemp(prefix="recsys-first-run-")
        try:
            return run(quick=quick, work_dir=scratch, seed=seed)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    work = Path(work_dir)
    preset = "tiny" if quick else "demo"
    catalog_dir = work / preset
    if catalog_dir.exists():  # a fresh world every time: nothing of an earlier run may be reused
        shutil.rmtree(catalog_dir)
    work.mkdir(parents=True, exist_ok=True)
    reps = QUICK_REPS if quick else REPS
    figures: dict = {"preset": preset, "warm_reps": reps}

    with driver.chromium() as browser:  # launched before the clock starts: a user's browser is already open
        started = time.perf_counter()
        setup = run_setup(catalog_dir, preset=preset, seed=seed, log_path=work / "setup.log")
        for step, seconds in setup.get("steps", {}).items():
            figures[f"setup/{_step_key(step)}_s"] = round(float(seconds), 2)
        for step, seconds in setup.get("stage_steps", {}).items():  # side by side: their sum exceeds the stage
            figures[f"setup/stage/{_step_key(step)}_s"] = round(float(seconds), 2)
        figures["setup/total_s"] = round(setup["wall_s"], 2)
        if setup.get("skipped"):
            figures["setup/skipped"] = "; ".join(f"{step}: {reason}" for step, reason in setup["skipped"].items())

        server_started = time.perf_counter()
        with driver.serve(catalog_dir, work / "streamlit.log") as url:
            figures["server_start_s"] = round(time.perf_counter() - server_started, 2)
            # One browser context throughout, a new tab (a new Streamlit session) per visit: the HTTP cache is cold
            # on the first page only, as for a user who opens one page after the other.
            context = driver.new_context(browser)
            all_ready = True
            for path, name in driver.PAGES.items():
                try:
                    first = driver.visit(context, url, path, screenshot=work / "screenshots" / f"{name}.png")
                except driver.DriverError as exc:
                    figures[f"{name}/error"] = str(exc)
                    all_ready = False
                    continue
                since_start = time.perf_counter() - started
                if path == "":
                    figures["first_page_s"] = round(since_start, 2)
                figures[f"{name}/first_visit_s"] = round(first.seconds, 3)
                if first.action_seconds is not None:
                    figures[f"{name}/action_first_s"] = round(first.action_seconds, 3)
                if first.problems:
                    figures[f"{name}/problems"] = "; ".join(first.problems)
            figures["every_page_ready_s"] = round(time.perf_counter() - started, 2) if all_ready else None

            for path, name in driver.PAGES.items():
                if f"{name}/error" in figures:
                    continue
                visits = []
                try:
                    visits = [driver.visit(context, url, path, check=False) for _ in range(reps)]
                except driver.DriverError as exc:
                    figures[f"{name}/warm_error"] = str(exc)
                if visits:
                    median, p95 = warm_figures([v.seconds for v in visits])
                    figures[f"{name}/warm_median_s"], figures[f"{name}/warm_p95_s"] = round(median, 3), round(p95, 3)
                    if visits[0].action_seconds is not None:
                        median, p95 = warm_figures([v.action_seconds for v in visits])
                        figures[f"{name}/action_warm_median_s"] = round(median, 3)
                        figures[f"{name}/action_warm_p95_s"] = round(p95, 3)
            context.close()
    return figures


def _step_key(step: str) -> str:
    """``train compat/type-aware`` -> ``train_compat/type-aware``; ``quick report`` -> ``quick_report``."""
    return "_".join(str(step).split())


def _closing_json(stdout: str) -> dict | None:
    """The JSON object ``scripts/setup.py`` prints last (indented, starting on a line of its own)."""
    lines = stdout.splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].startswith("{"):
            try:
                found = json.loads("\n".join(lines[start:]))
            except json.JSONDecodeError:
                continue
            return found if isinstance(found, dict) else None
    return None


def _text(output) -> str:
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else str(output)
