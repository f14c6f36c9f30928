"""The studio under load: N concurrent browser sessions for D seconds on a real server, each looping over the pages'
main actions; latencies, errors, the server's memory and whether results stay the same.

``run(quick=..., catalog_dir=..., work_dir=..., seed=...)`` is what ``scripts/bench.py`` calls: :data:`SESSIONS`
sessions for :data:`DURATION_S` seconds (``quick``: :data:`QUICK_SESSIONS` for :data:`QUICK_DURATION_S`) on a
set-up copy of ``catalog_dir`` (or on a world it builds), through :func:`measure`, which the load test calls too.

What :func:`measure` does:

1. starts ``streamlit run streamlit_app.py`` on the catalog (:func:`recsys.benchmarks._browser.serve`) and reads the
   RSS of its process tree (``memory/start_mb``);
2. **alone**: one browser session does every action once (:data:`SOLO_ACTIONS`; it uploads the first test photo)
   -- the reference results of the determinism check, and the cold start (every page's models loaded) kept out of
   the load figures (``solo/<kind>_s``, ``memory/after_solo_mb``);
3. **under load**: N sessions -- N contexts of one headless Chromium, each one tab and one Streamlit session, driven
   concurrently by Playwright's async API -- loop over :data:`recsys.benchmarks._actions.ACTIONS` (upload a photo on
   Similar items, build an outfit on Complete the look, send a chat message on Stylist chat, apply a caption on
   Text-guided search, open a heatmap on For you), moving between pages by the sidebar menu; session ``i`` starts at
   the ``i``-th action (mod 5) so the pages are not all hit at once, and uploads photo ``(i + loop) mod``
   :data:`PHOTOS`. A session starts no action after D seconds; the one under way finishes. The warm-up is over when
   every session has done every action once (``memory/after_warmup_mb``, ``warmup_s``); ``memory/end_mb`` is read
   when the last session has finished, before any tab closes; ``memory/peak_mb`` is the highest of the readings taken
   every :data:`MEMORY_PERIOD_S` seconds.

Figures (seconds, wall-clock):

- ``<kind>/done``; ``<kind>/p50_s`` and ``<kind>/p95_s`` of the action alone (from the upload, the option chosen,
  the message sent, the caption applied or the button clicked to its result drawn and the script run over; waits poll
  every :data:`recsys.benchmarks._actions.LOAD_POLL_MS` ms); ``<kind>/open_p50_s`` and ``<kind>/open_p95_s`` of
  opening the page by the menu until it is ready for the action; ``actions_done``, ``actions_per_min``;
- ``errors``: actions that timed out or left an exception box, an error alert or a forbidden text (see
  :func:`recsys.benchmarks._actions.problems_on_async`), with the first few under ``error_messages``;
  ``server_tracebacks``: tracebacks in the server's log;
- ``memory/start_mb``, ``memory/after_solo_mb``, ``memory/after_warmup_mb``, ``memory/end_mb``, ``memory/peak_mb``
  (RSS of the server and its child processes, MiB; through psutil when it is installed, else ``/proc``) and
  ``memory/growth_after_warmup_pct`` = 100 (end - after warm-up) / after warm-up, with ``memory/growth_ok`` against
  :data:`MAX_GROWTH_PCT`; when the warm-up did not end within the run, both are None and ``memory/note`` says why;
- ``determinism/identical``: every result of a fixed query seen under load -- the default catalog item on Similar
  items, each test photo uploaded there, the caption "is red" on the default reference -- lists the same item ids in
  the same order as alone (or, for photos not uploaded alone, as every other session); ``determinism/compared`` how
  many results were compared, ``determinism/mismatches`` the first few that differ.

Nothing is printed: ``scripts/bench.py`` prints the figures.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from recsys.benchmarks.first_run import run_setup, warm_figures

logger = logging.getLogger(__name__)

#: ``make bench``: concurrent browser sessions and seconds of load.
SESSIONS, DURATION_S = 8, 60.0
#: ``bench.py --quick``: the same on the tiny world, shorter.
QUICK_SESSIONS, QUICK_DURATION_S = 4, 20.0
#: How many of the catalog's own photos the sessions upload (fewer than the page's cache of 16 uploads, so that every
#: photo is read during the warm-up and the cache does not churn).
PHOTOS = 4
#: Memory growth after the warm-up, in percent, the studio must stay under.
MAX_GROWTH_PCT = 10.0
#: Seconds between two readings of the server's memory (for the peak).
MEMORY_PERIOD_S = 1.0
#: How many error messages and determinism mismatches the figures keep.
KEEP_MESSAGES = 10
#: The actions done alone first, each once: they load every page's models (a first visit under load would time
#: out on 2 cores), and their results are the determinism check's reference.
SOLO_ACTIONS = ("similar_upload", "outfit_build", "stylist_message", "search_caption", "for_you_heatmap")
#: How long an action done alone may take: the first photo read after the server starts loads the image classifier
#: and a text encoder and embeds the classifier's 1000 label texts -- about 2 minutes on 2 busy cores.
SOLO_TIMEOUT_MS = 240_000


def run(quick: bool = False, catalog_dir: str | os.PathLike | None = None, work_dir: str | os.PathLike | None = None,
        seed: int = 0) -> dict:
    """Load-test the studio (see the module docstring); returns the figures of :func:`measure` plus the set-up's.

    Parameters
    ----------
    quick : bool
        :data:`QUICK_SESSIONS` sessions for :data:`QUICK_DURATION_S` s (and the ``tiny`` world when none is given)
        instead of :data:`SESSIONS` for :data:`DURATION_S` s on ``demo``.
    catalog_dir : path, optional
        A catalog with precomputed embeddings (``bench.py`` offers the world it built). It is copied into
        ``work_dir`` and set up there (``scripts/setup.py``: the pages' models), so the catalog other benchmarks
        use is left as it was. Default: the built-in world, built and set up in ``work_dir``.
    work_dir : path, optional
        Scratch folder for the catalog, the server's log and the set-up's log (default: a temporary folder, removed
        after).
    seed : int
        Seed of the built-in world, of its set-up, and of the choice of test photos.

    Raises
    ------
    recsys.benchmarks.first_run.SetupFailed
        When the set-up fails.
    recsys.benchmarks._browser.DriverError
        When Chromium is missing or the server does not start.
    """
    if work_dir is None:
        scratch = tempfile.mkdtemp(prefix="recsys-load-")
        try:
            return run(quick=quick, catalog_dir=catalog_dir, work_dir=scratch, seed=seed)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    preset = "tiny" if quick else "demo"
    target = work / (Path(catalog_dir).name if catalog_dir is not None else preset)
    if target.exists():
        shutil.rmtree(target)
    if catalog_dir is not None:
        shutil.copytree(catalog_dir, target)
    setup = run_setup(target, preset=preset, seed=seed, log_path=work / "setup.log")
    figures = {"catalog": target.name, "setup_s": round(setup["wall_s"], 1)}
    if setup.get("skipped"):
        figures["setup_skipped"] = "; ".join(f"{step}: {reason}" for step, reason in setup["skipped"].items())
    sessions, duration = (QUICK_SESSIONS, QUICK_DURATION_S) if quick else (SESSIONS, DURATION_S)
    return figures | measure(target, sessions=sessions, duration_s=duration, work_dir=work, seed=seed)


def measure(catalog_dir: str | os.PathLike, *, sessions: int = SESSIONS, duration_s: float = DURATION_S,
            work_dir: str | os.PathLike, seed: int = 0) -> dict:
    """Serve ``catalog_dir`` (set up: every page's model trained) and load it with ``sessions`` concurrent browser
    sessions for ``duration_s`` seconds; returns the figures listed in the module docstring.

    The server's log is ``work_dir/streamlit-load.log``.

    Raises
    ------
    ValueError
        When ``sessions`` < 1 or ``duration_s`` <= 0.
    recsys.benchmarks._browser.DriverError
        When Chromium is missing, the server does not start, or an action done alone (the reference of the
        determinism check) fails.
    """
    from recsys.benchmarks import _actions as actions
    from recsys.benchmarks import _browser as driver

    if sessions < 1 or duration_s <= 0:
        raise ValueError(f"A load needs at least one session and a positive duration, not {sessions} sessions for "
                         f"{duration_s} s.")
    photos = upload_photos(catalog_dir, PHOTOS, seed=seed)
    log_path = Path(work_dir) / "streamlit-load.log"
    with driver.serve(catalog_dir, log_path) as url:
        pid = actions.server_pid(url)
        start_mb = server_memory_mb(pid)
        raw = asyncio.run(_drive(url, pid, photos, sessions, duration_s))
    figures = {"sessions": sessions, "duration_s": duration_s}
    figures |= _figures(raw, start_mb)
    figures["server_tracebacks"] = log_path.read_text(errors="replace").count("Traceback (most recent call last)")
    return figures


def upload_photos(catalog_dir: str | os.PathLike, n: int, seed: int = 0) -> list[Path]:
    """``n`` image files of the catalog's items, of as many different categories as there are, chosen with ``seed``."""
    import numpy as np

    from recsys.catalog import Catalog

    catalog = Catalog.load(catalog_dir, check_images=False)
    items = catalog.items.sample(frac=1.0, random_state=seed).drop_duplicates("category")
    if len(items) < n:
        items = catalog.items.sample(n=min(n, len(catalog.items)), random_state=seed)
    order = np.sort(items["item_id"].to_numpy()[:n])
    return [Path(catalog.image_path(item_id)) for item_id in order]


def server_memory_mb(pid: int) -> float:
    """Resident memory (RSS) of process ``pid`` and all its descendants, in MiB (psutil when installed, else
    ``/proc``); a process that ends while it is read counts as 0."""
    try:
        import psutil
    except ImportError:
        return _proc_tree_rss(pid) / 2**20
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def _proc_tree_rss(pid: int) -> int:
    children = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[parent].append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024  # kB
                    break
        except OSError:
            pass
    return total


# ---------------------------------------------------------------------- the sessions
async def _drive(url: str, pid: int, photos: list[Path], sessions: int, duration_s: float) -> dict:
    """Run the solo phase and the load; returns the raw records :func:`_figures` turns into figures."""
    from recsys.benchmarks import _actions as actions
    from recsys.benchmarks import _browser as driver

    raw: dict = {"solo": {}, "solo_observed": {}, "records": [], "memory": []}
    async with actions.async_chromium() as browser:
        # Alone: the cold start (models loaded) at the page timeout of a first visit, and the reference results.
        context = await browser.new_context(viewport=driver.VIEWPORT)
        page = await context.new_page()
        await page.goto(url, timeout=SOLO_TIMEOUT_MS)
        for kind in SOLO_ACTIONS:
            done = await actions.do_action(page, url, kind, photo=photos[0], timeout_ms=SOLO_TIMEOUT_MS)
            if done.problems:
                raise driver.DriverError(f"{kind}, done alone, shows: {'; '.join(done.problems)}")
            raw["solo"][kind] = done.seconds
            raw["solo_observed"].update(done.observed)
        await context.close()
        raw["after_solo_mb"] = server_memory_mb(pid)

        contexts = [await browser.new_context(viewport=driver.VIEWPORT) for _ in range(sessions)]
        pages = [await context.new_page() for context in contexts]
        warm = {"left": sessions}
        started = time.perf_counter()
        deadline = started + duration_s

        def first_loop_done() -> None:
            warm["left"] -= 1
            if warm["left"] == 0:
                raw["warmup_s"] = time.perf_counter() - started
                raw["after_warmup_mb"] = server_memory_mb(pid)

        sampler = asyncio.create_task(_sample_memory(pid, raw["memory"]))
        try:
            await asyncio.gather(*(_session(i, page, url, photos, deadline, raw["records"], first_loop_done)
                                   for i, page in enumerate(pages)))
            raw["end_mb"] = server_memory_mb(pid)
            raw["load_wall_s"] = time.perf_counter() - started
        finally:
            sampler.cancel()
            for context in contexts:
                await context.close()
    return raw


async def _session(index: int, page, url: str, photos: list[Path], deadline: float, records: list,
                   first_loop_done) -> None:
    """One browser session: loop over the actions (starting at the ``index``-th) until ``deadline``."""
    from recsys.benchmarks import _actions as actions
    from recsys.benchmarks import _browser as driver

    kinds = list(actions.ACTIONS)
    kinds = kinds[index % len(kinds):] + kinds[: index % len(kinds)]
    await page.goto(url, timeout=actions.ACTION_TIMEOUT_MS)
    loop = 0
    while time.perf_counter() < deadline:
        for kind in kinds:
            if time.perf_counter() >= deadline:
                break
            record = {"session": index, "loop": loop, "kind": kind}
            try:
                done = await actions.do_action(page, url, kind, photo=photos[(index + loop) % len(photos)],
                                              choice=index + loop)
            except driver.DriverError as exc:
                records.append(record | {"error": str(exc)})
                logger.warning("session %d: %s", index, exc)
                await _recover(page, url)
                continue
            records.append(record | {"seconds": done.seconds, "open_seconds": done.open_seconds,
                                     "observed": done.observed, "problems": done.problems})
            if done.problems:
                logger.warning("session %d, %s: %s", index, kind, "; ".join(done.problems))
        else:
            if loop == 0:
                first_loop_done()
        loop += 1


async def _recover(page, url: str) -> None:
    """After a failed action, start over in a new Streamlit session (the old one may be stuck mid-run)."""
    from playwright.async_api import Error as PlaywrightError

    from recsys.benchmarks import _actions as actions

    try:
        await page.goto(url, timeout=actions.ACTION_TIMEOUT_MS)
    except PlaywrightError as exc:  # the next action reports what is wrong
        logger.warning("could not reopen %s: %s", url, exc)


async def _sample_memory(pid: int, readings: list) -> None:
    while True:
        readings.append(server_memory_mb(pid))
        await asyncio.sleep(MEMORY_PERIOD_S)  # a sampling period: nothing to wait for but the clock


# ---------------------------------------------------------------------- figures
def _figures(raw: dict, start_mb: float) -> dict:
    from recsys.benchmarks import _actions as actions

    figures: dict = {}
    records = raw["records"]
    for kind in actions.ACTIONS:
        done = [r for r in records if r["kind"] == kind and "error" not in r]
        figures[f"{kind}/done"] = len(done)
        if done:
            for key, name in (("seconds", ""), ("open_seconds", "open_")):
                median, p95 = warm_figures([r[key] for r in done])
                figures[f"{kind}/{name}p50_s"], figures[f"{kind}/{name}p95_s"] = round(median, 3), round(p95, 3)
    done_total = sum(figures[f"{kind}/done"] for kind in actions.ACTIONS)
    figures["actions_done"] = done_total
    figures["load_wall_s"] = round(raw["load_wall_s"], 1)
    figures["actions_per_min"] = round(60 * done_total / raw["load_wall_s"], 1)
    for kind, seconds in raw["solo"].items():
        figures[f"solo/{kind}_s"] = round(seconds, 3)

    messages = [f"session {r['session']}, {r['kind']}: {r['error']}" for r in records if "error" in r]
    messages += [f"session {r['session']}, {r['kind']}: {p}" for r in records for p in r.get("problems", [])]
    figures["errors"] = len(messages)
    if messages:
        figures["error_messages"] = messages[:KEEP_MESSAGES]

    figures["memory/start_mb"] = round(start_mb, 1)
    figures["memory/after_solo_mb"] = round(raw["after_solo_mb"], 1)
    warm_mb = raw.get("after_warmup_mb")
    figures["memory/after_warmup_mb"] = None if warm_mb is None else round(warm_mb, 1)
    figures["memory/end_mb"] = round(raw["end_mb"], 1)
    figures["memory/peak_mb"] = round(max(raw["memory"] + [raw["end_mb"]]), 1)
    if warm_mb is None:
        figures["memory/growth_after_warmup_pct"] = figures["memory/growth_ok"] = None
        figures["memory/note"] = ("n/a: not every session finished its first round of actions within the run, so "
                                  "the warm-up never ended.")
        figures["warmup_s"] = None
    else:
        growth = 100 * (raw["end_mb"] - warm_mb) / warm_mb
        figures["memory/growth_after_warmup_pct"] = round(growth, 2)
        figures["memory/growth_ok"] = growth < MAX_GROWTH_PCT
        figures["warmup_s"] = round(raw["warmup_s"], 1)

    figures |= _determinism(raw["solo_observed"], records)
    return figures


def _determinism(reference: dict, records: list) -> dict:
    """Compare every result of a fixed query seen under load with the one seen alone (or, for a query not done
    alone, with the first one seen under load)."""
    expected = dict(reference)
    compared, mismatches = 0, []
    for record in records:
        for key, ids in record.get("observed", {}).items():
            if key not in expected:
                expected[key] = ids
                continue
            compared += 1
            if tuple(ids) != tuple(expected[key]):
                mismatches.append(f"session {record['session']}, {key}: {list(ids)[:5]}... instead of "
                                  f"{list(expected[key])[:5]}...")
    figures = {"determinism/identical": compared > 0 and not mismatches, "determinism/compared": compared,
               "determinism/queries": sorted(expected)}
    if mismatches:
        figures["determinism/mismatches"] = mismatches[:KEEP_MESSAGES]
    return figures
