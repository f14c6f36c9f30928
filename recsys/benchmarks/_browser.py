"""Drive the studio in headless Chromium: start a server, open each page, wait for its main result, time it.

Shared by the first-run browser test (``tests/test_browser_first_run.py``) and the first-run benchmark
(:mod:`recsys.benchmarks.first_run`), so both wait for the same thing on every page. Playwright is imported only
inside the functions that drive the browser, so importing this module (``scripts/bench.py`` imports every module of
the package) needs neither Playwright nor Chromium.

Every page has a main result and, on two pages, an action that produces it:

=================  =========================================================================================
page (address)     main result waited for
=================  =========================================================================================
Browse (/)         the grid: at least 24 card images, decoded
Similar (/similar) the "... most similar items" grid of the first catalog item (query + the 12 results, or as many
                   as its category has, decoded)
Outfit (/outfit)   the outfit board: the "Outfit score" metric and at least 4 decoded images
For you (/for_you) 12 "Explain" buttons (the heatmap cards) and at least 12 decoded images
Stylist (/stylist) action: send a chat message; result: "Proposed coordi-set" with its decoded images
Search (/search)   action: apply the caption "is red"; result: its chip, "Ranked by ... for: is red", images
Report (/report)   the report's table (``stDataFrame``) and a drawn bar chart (``stVegaLiteChart``)
=================  =========================================================================================

Each wait also needs the session's script run to be over (the app root's ``data-test-script-state`` is
``notRunning``), so a result is judged on what the run drew, not on what an earlier run left on screen. Waits poll on
animation frames (``page.wait_for_function``) or on the DOM (``locator.wait_for``), never sleep.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from recsys.config import PROJECT_ROOT

#: The Debian Chromium Playwright drives (it never downloads a browser).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1600, "height": 1200}
SERVER_START_TIMEOUT_S = 120
#: How long a page may take to show its main result (a first visit on a busy 2-core machine loads models).
PAGE_TIMEOUT_MS = 180_000

#: Page address (url_path; "" is the root, the Browse page) -> short name used in figures and screenshots, in the
#: order a new user would visit them (the first is opened as the server's first session).
PAGES = {
    "": "browse",
    "similar": "similar",
    "outfit": "outfit",
    "for_you": "for_you",
    "stylist": "stylist",
    "search": "search",
    "report": "report",
}
#: Text no page may show once every page is ready (case-insensitive substrings).
FORBIDDEN_TEXTS = ("not trained", "scripts/train.py", "Page not found")

STYLIST_MESSAGE = "I need an outfit for a garden party. For the bottom, a skirt please."
SEARCH_CAPTION = "is red"

_MAIN_IMAGES = "[data-testid='stMain'] [data-testid='stImage'] img"
#: True once the session's script run is over and at least ``n`` images under ``selector`` are decoded (and, when
#: ``first`` > 0, the first ``first`` of them); ``text`` (when not empty) must be in the main area's text.
_RESULT_JS = """([selector, n, first, text]) => {
    const app = document.querySelector("[data-testid='stApp']");
    if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
    // stMainBlockContainer, not stMain: a page with a chat input has no stMain.
    const main = document.querySelector("[data-testid='stMainBlockContainer']");
    if (text && !(main && main.innerText.includes(text))) return false;
    const images = [...document.querySelectorAll(selector)];
    const decoded = i => i.complete && i.naturalWidth > 0;
    if (images.length < n) return false;
    return first > 0 ? images.slice(0, first).every(decoded) : images.filter(decoded).length >= n;
}"""
_RUN_OVER_JS = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    return !!app && app.getAttribute("data-test-script-state") === "notRunning";
}"""
#: Installed in every page before the app's scripts: remembers whether a progress bar (a page waiting for a set-up or
#: training job) was ever drawn in the main area.
_PROGRESS_WATCH_JS = """(() => {
    window.__recsysSawProgress = false;
    const look = () => {
        const bar = document.querySelector("[data-testid='stMain'] [data-testid='stProgress']");
        if (bar) window.__recsysSawProgress = true;
    };
    new MutationObserver(look).observe(document, {childList: true, subtree: true});
})();"""


class DriverError(RuntimeError):
    """The server did not start, or a page did not show its main result in time (the message says what it showed)."""


@dataclass
class Visit:
    """One page opened in a fresh browser session.

    Attributes
    ----------
    path : str
        The page's address ("" for the root).
    seconds : float
        From the navigation to the main result (action included), wall-clock seconds.
    action_seconds : float or None
        From the page's action (sending the message, applying the caption) to its result; None for pages without one.
    problems : list of str
        What the page showed that it must not (forbidden text, exception box, a progress bar it waited on).
    """

    path: str
    seconds: float
    action_seconds: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The page's short name (:data:`PAGES`)."""
        return PAGES.get(self.path, self.path)


# ---------------------------------------------------------------------- server and browser
def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(server: subprocess.Popen, url: str, log_path: Path,
                       timeout_s: float = SERVER_START_TIMEOUT_S) -> None:
    """Return once ``url/_stcore/health`` answers 200.

    Raises
    ------
    DriverError
        When the server exits first or does not answer within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise DriverError(f"streamlit exited with code {server.returncode}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)  # the server is a separate process: nothing in it can be waited on but its port
    raise DriverError(f"streamlit did not answer {url}/_stcore/health within {timeout_s:.0f} s:\n{_tail(log_path)}")


@contextlib.contextmanager
def serve(catalog_dir: str | os.PathLike, log_path: str | os.PathLike,
          env: dict | None = None) -> Iterator[str]:
    """Run ``streamlit run streamlit_app.py`` on ``catalog_dir`` (``RECSYS_CATALOG``, offline Hugging Face hub) and
    yield its URL once it answers; the server is stopped afterwards. Its output goes to ``log_path``.

    Raises
    ------
    DriverError
        When the server does not start (see :func:`wait_until_healthy`).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {**os.environ, "RECSYS_CATALOG": str(Path(catalog_dir).absolute()), "HF_HUB_OFFLINE": "1",
                   "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    environment.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    command = [
        sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "streamlit_app.py"),
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(server, url, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextlib.contextmanager
def chromium():
    """Yield a headless Debian Chromium (a Playwright ``Browser``), closed afterwards.

    Raises
    ------
    DriverError
        When Chromium is not installed at :data:`CHROMIUM`.
    ImportError
        When Playwright is not installed.
    """
    if not CHROMIUM.is_file():
        raise DriverError(f"Debian Chromium is not installed at {CHROMIUM} (`make test` installs it with apt-get).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# ---------------------------------------------------------------------- what each page must show
def _wait_for_result(page, timeout_ms: float, n: int, *, first: int = 0, text: str = "",
                     selector: str = _MAIN_IMAGES) -> None:
    page.wait_for_function(_RESULT_JS, arg=[selector, n, first, text], timeout=timeout_ms)


def _browse(page, timeout_ms: float) -> None:
    _wait_for_result(page, timeout_ms, 24)


def _similar(page, timeout_ms: float) -> None:
    # Up to 12 results: fewer when the item's category has fewer other items, and the page's heading says how many.
    _wait_for_result(page, timeout_ms, 2, text="most similar items")
    heading = page.get_by_test_id("stMainBlockContainer").inner_text()
    shown = int(re.search(r"(\d+) most similar items", heading).group(1))
    _wait_for_result(page, timeout_ms, 1 + shown, text="most similar items")


def _outfit(page, timeout_ms: float) -> None:
    page.get_by_test_id("stMetric").filter(has_text="Outfit score").wait_for(state="visible", timeout=timeout_ms)
    _wait_for_result(page, timeout_ms, 4)


def _for_you(page, timeout_ms: float) -> None:
    explain = page.get_by_test_id("stMain").get_by_role("button", name="Explain", exact=True)
    explain.nth(11).wait_for(state="visible", timeout=timeout_ms)
    _wait_for_result(page, timeout_ms, 12)


def _stylist_ready(page, timeout_ms: float) -> None:
    page.locator("[data-testid='stChatInputTextArea']").wait_for(state="visible", timeout=timeout_ms)
    page.wait_for_function(_RUN_OVER_JS, timeout=timeout_ms)


def _stylist_act(page) -> None:
    chat = page.locator("[data-testid='stChatInputTextArea']")
    chat.fill(STYLIST_MESSAGE)
    chat.press("Enter")


def _stylist(page, timeout_ms: float) -> None:
    page.get_by_text("Proposed coordi-set").first.wait_for(state="visible", timeout=timeout_ms)
    # the proposal's 4 items and 3 ranked candidate sets of 4; the proposal's own (above the fold) decoded
    _wait_for_result(page, timeout_ms, 16, first=4,
                     selector="[data-testid='stMainBlockContainer'] [data-testid='stImage'] img")


def _search_ready(page, timeout_ms: float) -> None:
    page.get_by_label("Modification caption").wait_for(state="visible", timeout=timeout_ms)
    page.wait_for_function(_RUN_OVER_JS, timeout=timeout_ms)


def _search_act(page) -> None:
    page.get_by_label("Modification caption").fill(SEARCH_CAPTION)
    page.get_by_role("button", name="Apply caption").click()


def _search(page, timeout_ms: float) -> None:
    # the chip of the applied caption exists only in the run the click started
    page.get_by_role("button", name=SEARCH_CAPTION).first.wait_for(state="visible", timeout=timeout_ms)
    _wait_for_result(page, timeout_ms, 7, text=f"for: {SEARCH_CAPTION}")  # "Ranked by <model> for: is red"


def _report(page, timeout_ms: float) -> None:
    page.get_by_test_id("stDataFrame").first.wait_for(state="visible", timeout=timeout_ms)
    page.locator("[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg").first.wait_for(
        state="visible", timeout=timeout_ms)
    page.wait_for_function(_RUN_OVER_JS, timeout=timeout_ms)


@dataclass(frozen=True)
class PageScript:
    """How to get one page's main result: wait for ``ready`` (the action's control), do ``act``, wait for
    ``result``; pages without an action have only ``result``."""

    result: Callable
    ready: Callable | None = None
    act: Callable | None = None


SCRIPTS = {
    "": PageScript(_browse),
    "similar": PageScript(_similar),
    "outfit": PageScript(_outfit),
    "for_you": PageScript(_for_you),
    "stylist": PageScript(_stylist, ready=_stylist_ready, act=_stylist_act),
    "search": PageScript(_search, ready=_search_ready, act=_search_act),
    "report": PageScript(_report),
}


# ---------------------------------------------------------------------- a visit
def problems_on(page, saw_progress: bool = False) -> list[str]:
    """What ``page`` shows that a ready page must not: :data:`FORBIDDEN_TEXTS`, an exception box, and (when
    ``saw_progress``) the fact that it drew a job's progress bar; judge it after the script run is over."""
    found = []
    for text in FORBIDDEN_TEXTS:
        hits = page.get_by_text(text)
        if hits.count():
            found.append(f"shows {text!r}: {_shorten(hits.first.inner_text())}")
    exceptions = page.get_by_test_id("stException")
    if exceptions.count():
        found.append(f"shows an exception box: {_shorten(exceptions.first.inner_text())}")
    if saw_progress:
        found.append("drew a progress bar (it waited for a set-up or training job)")
    return found


def new_context(browser):
    """A browser context (its own cookies and HTTP cache) with the studio's viewport, watching for progress bars."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(_PROGRESS_WATCH_JS)
    return context


def visit(target, url: str, path: str, *, screenshot: str | os.PathLike | None = None,
          timeout_ms: float = PAGE_TIMEOUT_MS, check: bool = True) -> Visit:
    """Open ``url/path`` in a new tab -- a new Streamlit session -- do the page's action if it has one, and wait for
    its main result (:data:`SCRIPTS`); returns the :class:`Visit` with its timings.

    ``target`` is a Playwright ``Browser`` (the tab opens in a fresh context of its own: cold HTTP cache, as a new
    user) or a context from :func:`new_context` (the tab shares that context's cache, as a returning user); the tab
    (and a context of its own) is closed afterwards. ``check`` also judges the page once its run is over
    (:func:`problems_on`) and ``screenshot`` saves a PNG of it.

    Raises
    ------
    KeyError
        For a path not in :data:`SCRIPTS`.
    DriverError
        When the main result does not appear within ``timeout_ms`` (the message says what the page showed; a
        screenshot, when asked for, is saved with ``-timeout`` added to its name).
    """
    from playwright.sync_api import Error as PlaywrightError

    script = SCRIPTS[path]
    own_context = new_context(target) if hasattr(target, "new_context") else None
    page = (own_context or target).new_page()
    try:
        action_seconds = None
        started = time.perf_counter()
        try:
            page.goto(f"{url}/{path}", timeout=timeout_ms)
            if script.act is not None:
                script.ready(page, timeout_ms)
                acted = time.perf_counter()
                script.act(page)
                script.result(page, timeout_ms)
                action_seconds = time.perf_counter() - acted
            else:
                script.result(page, timeout_ms)
            seconds = time.perf_counter() - started
        except PlaywrightError as exc:
            shown, alerts = ["(the page could not be read)"], []
            with contextlib.suppress(PlaywrightError):
                shown = problems_on(page, bool(page.evaluate("() => window.__recsysSawProgress")))
                alerts = [_shorten(a) for a in page.get_by_test_id("stAlert").all_inner_texts()]
                if screenshot is not None:
                    Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(Path(screenshot).with_name(Path(screenshot).stem + "-timeout.png")),
                                    full_page=True)
            raise DriverError(f"/{path}: no main result after {time.perf_counter() - started:.0f} s "
                              f"({_shorten(str(exc).splitlines()[0])}); problems: {shown or 'none'}; "
                              f"alerts: {alerts or 'none'}") from exc
        problems = []
        if check:
            page.wait_for_function(_RUN_OVER_JS, timeout=timeout_ms)
            problems = problems_on(page, bool(page.evaluate("() => window.__recsysSawProgress")))
        if screenshot is not None:
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=False)
        return Visit(path, seconds, action_seconds, problems)
    finally:
        page.close()
        if own_context is not None:
            own_context.close()


def _shorten(text: str, limit: int = 240) -> str:
    text = re.sub(r"\s+", " ", str(text)).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return Path(path).read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"
