"""The pages' main actions, driven concurrently in headless Chromium: the async twins of :mod:`._browser`'s waits.

The load benchmark (:mod:`recsys.benchmarks.load`) runs many browser sessions in one event loop (Playwright's async
API: one Chromium, one context per session), so these wait with ``await``. Each session is one tab and one Streamlit
session for the whole run: it moves between pages by the sidebar menu, as a user does, and its session state carries
over from page to page, so every action first brings its page back to a known state (untimed) and then times the
action alone. Every wait also returns at once, raising :class:`PageFailed`, when the run ends with an exception box.
Playwright is imported only inside the functions that drive the browser.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from recsys.benchmarks._browser import (
    _MAIN_IMAGES,
    _RESULT_JS,
    CHROMIUM,
    CHROMIUM_ARGS,
    FORBIDDEN_TEXTS,
    SEARCH_CAPTION,
    STYLIST_MESSAGE,
    DriverError,
    _shorten,
)

#: Action kind -> the address of the page it is done on, in the order one session loops over them.
ACTIONS = {
    "similar_upload": "similar",  # upload a photo, get its most similar items
    "outfit_build": "outfit",  # choose another catalog item, get the outfit built around it
    "stylist_message": "stylist",  # send a chat message in a new conversation, get a proposed coordi-set
    "search_caption": "search",  # apply a caption to the default reference, get the ranked results
    "for_you_heatmap": "for_you",  # open another item's explanation: its large heatmap and region scores
}
#: Polling period (ms) of the waits below: eight tabs evaluating their waits on every animation frame would take
#: the CPU the server is measured on; this is also the resolution of the timings.
LOAD_POLL_MS = 100
#: How long one action (or opening its page) may take under load before it counts as a timeout.
ACTION_TIMEOUT_MS = 60_000

#: The ids of the items the page lists, in order, read from the keys of their buttons (Streamlit gives a keyed
#: element the class ``st-key-<key>``); ``prefix`` is the key without the item id.
_KEYED_IDS_JS = """prefix => [...document.querySelectorAll("[data-testid='stMain'] [class*='st-key-" + prefix + "']")]
    .map(e => [...e.classList].find(c => c.startsWith("st-key-" + prefix)).slice(("st-key-" + prefix).length))"""
#: True once the run is over, a ``.card-title`` reads ``title``, and at least ``n`` main-area images are decoded.
_CARD_TITLE_JS = """([title, n]) => {
    const app = document.querySelector("[data-testid='stApp']");
    if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
    if (![...document.querySelectorAll(".card-title")].some(e => e.innerText.trim() === title)) return false;
    return [...document.querySelectorAll(""" + repr(_MAIN_IMAGES) + """)]
        .filter(i => i.complete && i.naturalWidth > 0).length >= n;
}"""
#: True once the run is over, the text given is in the main area, and every image in view there (at least one) is
#: decoded.
_ALL_DECODED_JS = """text => {
    const app = document.querySelector("[data-testid='stApp']");
    if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
    // stMainBlockContainer: a page with a chat input has no stMain (its main area scrolls to the bottom instead).
    const main = document.querySelector("[data-testid='stMainBlockContainer']");
    if (!main || !main.innerText.includes(text)) return false;
    // Only the images in view: Streamlit's images load lazily, and one out of view (below the fold, or above it once
    // the chat scrolls to its end) never loads in a headless tab.
    const images = [...main.querySelectorAll("[data-testid='stImage'] img")].filter(i => {
        const box = i.getBoundingClientRect();
        return box.top < window.innerHeight && box.bottom > 0;
    });
    return images.length > 0 && images.every(i => i.complete && i.naturalWidth > 0);
}"""
#: ``SCRIPT``'s value, or "exception" once the run is over with an exception box drawn in the main area.
_OR_EXCEPTION_JS = """arg => {
    const app = document.querySelector("[data-testid='stApp']");
    const over = !!app && app.getAttribute("data-test-script-state") === "notRunning";
    const box = "[data-testid='stMainBlockContainer'] [data-testid='stException']";
    if (over && document.querySelector(box)) return "exception";
    return (SCRIPT)(arg);
}"""
#: True once the run is over and an element matches the selector given.
_PRESENT_JS = """selector => {
    const app = document.querySelector("[data-testid='stApp']");
    return !!app && app.getAttribute("data-test-script-state") === "notRunning" && !!document.querySelector(selector);
}"""
#: The caption of each For you card ("3. Title · cold-start"), in the order of the cards' Explain buttons.
_FOR_YOU_CAPTIONS_JS = """() => [...document.querySelectorAll("[data-testid='stMain'] [class*='st-key-for_you_explain_']")]
    .map(b => { const column = b.closest("[data-testid='stColumn']");
                const caption = column && column.querySelector("[data-testid='stCaptionContainer']");
                return caption ? caption.innerText : ""; })"""


@dataclass
class ActionResult:
    """One action done by one browser session.

    Attributes
    ----------
    kind : str
        The action (a key of :data:`ACTIONS`).
    open_seconds : float
        From the menu click to the page ready for the action (its default result drawn; a conversation or captions
        an earlier visit left cleared), wall-clock seconds.
    seconds : float
        From the action (the upload, the option chosen, the message sent, the caption applied, the button clicked)
        to its result drawn and the run over, wall-clock seconds (resolution :data:`LOAD_POLL_MS`).
    observed : dict
        Results of fixed queries seen on the way, for the determinism check: a key naming the query -> the ids of
        the items listed, in order (``similar/default item``, ``similar_upload/<photo file>``,
        ``search/<caption>``).
    problems : list of str
        What the page showed that it must not, once the action's run was over (:func:`problems_on_async`).
    """

    kind: str
    open_seconds: float
    seconds: float
    observed: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def async_chromium():
    """Yield a headless Debian Chromium driven by Playwright's async API (a ``Browser``), closed afterwards.

    Raises
    ------
    DriverError
        When Chromium is not installed at :data:`CHROMIUM`.
    ImportError
        When Playwright is not installed.
    """
    if not CHROMIUM.is_file():
        raise DriverError(f"Debian Chromium is not installed at {CHROMIUM} (`make test` installs it with apt-get).")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def server_pid(url: str) -> int:
    """The process id of the ``streamlit run`` that :func:`serve` started (in this process) for ``url``.

    Raises
    ------
    DriverError
        When no child process of this one runs streamlit on that port.
    """
    port = url.rsplit(":", 1)[-1].strip("/")
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            words = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # the process ended while the table was read
            continue
        parent = stat.rsplit(")", 1)[1].split()[1]  # the command name, in parentheses, may hold spaces
        if parent == me and "streamlit" in " ".join(words) and any(
                a == "--server.port" and b == port for a, b in zip(words, words[1:])):
            return int(entry.name)
    raise DriverError(f"no streamlit server started by this process listens on port {port}.")


class PageFailed(DriverError):
    """The page drew an exception box instead of the result waited for (the message quotes it)."""


async def _wait_js(page, script: str, arg, timeout_ms: float) -> None:
    """Wait for ``script`` (called with ``arg``) to be true -- or for the run to end with an exception box drawn,
    which raises :class:`PageFailed` at once instead of waiting out ``timeout_ms`` for a result that cannot come."""
    handle = await page.wait_for_function(_OR_EXCEPTION_JS.replace("SCRIPT", script), arg=arg, timeout=timeout_ms,
                                          polling=LOAD_POLL_MS)
    if await handle.json_value() == "exception":
        raise PageFailed(f"{page.url}: {'; '.join(await problems_on_async(page))}")


async def _result_async(page, timeout_ms: float, n: int, *, first: int = 0, text: str = "",
                        selector: str = _MAIN_IMAGES) -> None:
    await _wait_js(page, _RESULT_JS, [selector, n, first, text], timeout_ms)


async def _ready_async(page, selector: str, timeout_ms: float) -> None:
    """Wait for the run to be over with an element matching ``selector`` drawn (see :func:`_wait_js`)."""
    await _wait_js(page, _PRESENT_JS, selector, timeout_ms)


async def problems_on_async(page) -> list[str]:
    """What ``page`` shows that it must not: :data:`FORBIDDEN_TEXTS`, an exception box, an error alert (the async
    :func:`problems_on`, plus error alerts: none of the load actions can legitimately end in one)."""
    found = []
    for text in FORBIDDEN_TEXTS:
        hits = page.get_by_text(text)
        if await hits.count():
            found.append(f"shows {text!r}: {_shorten(await hits.first.inner_text())}")
    for test_id, what in (("stException", "an exception box"), ("stAlertContentError", "an error alert")):
        boxes = page.get_by_test_id(test_id)
        if await boxes.count():
            found.append(f"shows {what}: {_shorten(await boxes.first.inner_text())}")
    return found


async def open_page_async(page, url: str, path: str, timeout_ms: float = ACTION_TIMEOUT_MS) -> None:
    """Go to the page at ``path`` by its sidebar menu link (the same Streamlit session), or by its address when the
    tab shows no menu yet (a new session); returns once the navigation is sent, not once the page is drawn."""
    if page.url.rstrip("/") == f"{url}/{path}".rstrip("/"):
        return
    link = page.locator(f"[data-testid='stSidebarNavLink'][href='{url}/{path}']")
    if await link.count():
        await link.click(timeout=timeout_ms)
    else:
        await page.goto(f"{url}/{path}", timeout=timeout_ms)


async def similar_upload(page, photo: str | os.PathLike, timeout_ms: float = ACTION_TIMEOUT_MS) -> tuple:
    """On Similar items (opened): wait for the default catalog item's results, switch to "Upload a photo" and time
    uploading ``photo`` until its most similar items are drawn. Returns ``(seconds, observed)``."""
    photo = Path(photo)
    await _similar_results(page, "", timeout_ms)
    observed = {"similar/default item": tuple(await page.evaluate(_KEYED_IDS_JS, "similar_pivot_"))}
    uploader = "[data-testid='stFileUploaderDropzoneInput']"
    if not await page.locator(uploader).count():
        await page.get_by_test_id("stMain").get_by_role("radio", name="Upload a photo", exact=True).click(
            timeout=timeout_ms)
        await _ready_async(page, uploader, timeout_ms)
    started = time.perf_counter()
    await page.locator(uploader).set_input_files(str(photo), timeout=timeout_ms)
    await _similar_results(page, photo.name, timeout_ms)  # the photo's name (its caption): only its run draws it
    seconds = time.perf_counter() - started
    observed[f"similar_upload/{photo.name}"] = tuple(await page.evaluate(_KEYED_IDS_JS, "similar_pivot_"))
    return seconds, observed


async def _similar_results(page, text: str, timeout_ms: float) -> None:
    """Wait for "<N> most similar items" (and ``text``) with the query's image and the N results decoded: N is 12 or
    fewer, when the query's category has fewer other items."""
    await _result_async(page, timeout_ms, 1, text=text)
    await _result_async(page, timeout_ms, 1, text="most similar items")
    heading = await page.get_by_test_id("stMain").get_by_text(re.compile(r"^\d+ most similar items$")).first.inner_text()
    await _result_async(page, timeout_ms, 1 + int(heading.split()[0]), text=text)


async def outfit_build(page, choice: int, timeout_ms: float = ACTION_TIMEOUT_MS) -> tuple:
    """On Complete the look (opened): wait for the outfit board, then time choosing another item of the category
    (the ``choice``-th option, cycling, among those not on the board) until the outfit around it is drawn.
    Returns ``(seconds, {})``.

    Raises
    ------
    DriverError
        When every item listed is already on the board; :class:`PageFailed` when the page shows an exception box.
    """
    await _result_async(page, timeout_ms, 4, text="Outfit score")
    on_board = {t.strip() for t in await page.locator(".card-title").all_inner_texts()}
    items = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Item", exact=True))
    await items.click(timeout=timeout_ms)
    options = page.get_by_role("option")
    await options.first.wait_for(state="visible", timeout=timeout_ms)
    titles = [t.strip() for t in await options.all_inner_texts()]
    free = [k for k, title in enumerate(titles) if title not in on_board]
    if not free:
        raise DriverError(f"/outfit: every listed item is already on the board ({len(titles)} options).")
    pick = free[choice % len(free)]
    started = time.perf_counter()
    await options.nth(pick).click(timeout=timeout_ms)
    await _wait_js(page, _CARD_TITLE_JS, [titles[pick], 4], timeout_ms)  # the chosen item's card, on the new board
    await page.get_by_test_id("stMetric").filter(has_text="Outfit score").wait_for(state="visible", timeout=timeout_ms)
    return time.perf_counter() - started, {}


async def stylist_message(page, timeout_ms: float = ACTION_TIMEOUT_MS) -> tuple:
    """On Stylist chat (opened): start a new conversation (Reset, when one is shown) and time sending
    :data:`STYLIST_MESSAGE` until the proposed coordi-set is drawn. Returns ``(seconds, {})``."""
    chat = "[data-testid='stChatInputTextArea']"
    await _ready_async(page, chat, timeout_ms)
    if await page.get_by_text("Proposed coordi-set").count():
        await page.get_by_role("button", name="Reset").click(timeout=timeout_ms)
        await _wait_js(page, _RESULT_JS, [_MAIN_IMAGES, 0, 0, "Hello!"], timeout_ms)  # the greeting of a new chat
    started = time.perf_counter()
    await page.locator(chat).fill(STYLIST_MESSAGE, timeout=timeout_ms)
    await page.locator(chat).press("Enter", timeout=timeout_ms)
    # the proposal and its ranked candidate sets, every image decoded (a slot the catalog cannot fill has none)
    await _wait_js(page, _ALL_DECODED_JS, "Ranked candidates", timeout_ms)
    await page.get_by_text("Proposed coordi-set").first.wait_for(state="visible", timeout=timeout_ms)
    return time.perf_counter() - started, {}


async def search_caption(page, timeout_ms: float = ACTION_TIMEOUT_MS) -> tuple:
    """On Text-guided search (opened): clear the captions an earlier visit left, then time applying
    :data:`SEARCH_CAPTION` to the default reference until its ranked results are drawn. Returns
    ``(seconds, observed)``."""
    await _result_async(page, timeout_ms, 7, text="Ranked by")  # the reference's results
    if await page.get_by_role("button", name="Clear all").count():
        await page.get_by_role("button", name="Clear all").click(timeout=timeout_ms)
        await _wait_js(page, _RESULT_JS, [_MAIN_IMAGES, 0, 0, "No caption applied yet"], timeout_ms)
    started = time.perf_counter()
    await page.get_by_label("Modification caption").fill(SEARCH_CAPTION, timeout=timeout_ms)
    await page.get_by_role("button", name="Apply caption").click(timeout=timeout_ms)
    # "Ranked by <model> for: is red": only a run with the caption applied draws it
    await _result_async(page, timeout_ms, 7, text=f"for: {SEARCH_CAPTION}")
    seconds = time.perf_counter() - started
    return seconds, {f"search/{SEARCH_CAPTION}": tuple(await page.evaluate(_KEYED_IDS_JS, "search_pivot_"))}


async def for_you_heatmap(page, choice: int, timeout_ms: float = ACTION_TIMEOUT_MS) -> tuple:
    """On For you (opened): wait for the 12 heatmap cards, then time clicking the ``choice``-th card's "Explain"
    (cycling, among the cards not explained already) until its large heatmap and region scores are drawn.
    Returns ``(seconds, {})``.

    Raises
    ------
    DriverError
        When every card is explained already; :class:`PageFailed` when the page shows an exception box.
    """
    await _result_async(page, timeout_ms, 12, text="Explain")
    explain = page.get_by_test_id("stMain").get_by_role("button", name="Explain", exact=True)
    shown = await page.get_by_test_id("stMain").get_by_role("heading").all_inner_texts()
    explained = {h.strip() for h in shown if h.strip().startswith("Why ")}
    titles = [re.sub(r"^\d+\.\s*", "", c.split(" · ")[0]).strip()
              for c in await page.evaluate(_FOR_YOU_CAPTIONS_JS)]
    free = [k for k, title in enumerate(titles) if title and f"Why {title}?" not in explained]
    if not free:
        raise DriverError(f"/for_you: no card left to explain among {len(titles)}.")
    pick = free[choice % len(free)]
    started = time.perf_counter()
    await explain.nth(pick).click(timeout=timeout_ms)
    # the cards, the large heatmap and its legend, under the chosen item's title
    await _result_async(page, timeout_ms, 14, text=f"Why {titles[pick]}?")
    await page.get_by_text("Region scores").first.wait_for(state="visible", timeout=timeout_ms)
    return time.perf_counter() - started, {}


async def do_action(page, url: str, kind: str, *, photo: str | os.PathLike | None = None, choice: int = 0,
                    timeout_ms: float = ACTION_TIMEOUT_MS) -> ActionResult:
    """Open the page of action ``kind`` (:data:`ACTIONS`) in ``page``'s session, do the action and judge the page.

    ``photo`` is the file :func:`similar_upload` uploads; ``choice`` picks which item :func:`outfit_build` and
    :func:`for_you_heatmap` choose (cycling).

    Raises
    ------
    KeyError
        For a kind not in :data:`ACTIONS`.
    ValueError
        For ``similar_upload`` without a ``photo``.
    DriverError
        When the page, or the action's result, is not drawn within ``timeout_ms`` (the message says what the page
        showed), or the page offers nothing to act on.
    """
    from playwright.async_api import Error as PlaywrightError

    path = ACTIONS[kind]
    if kind == "similar_upload" and photo is None:
        raise ValueError("similar_upload needs a photo to upload.")
    started = time.perf_counter()
    try:
        await open_page_async(page, url, path, timeout_ms)
        opened = time.perf_counter()
        if kind == "similar_upload":
            seconds, observed = await similar_upload(page, photo, timeout_ms)
        elif kind == "outfit_build":
            seconds, observed = await outfit_build(page, choice, timeout_ms)
        elif kind == "stylist_message":
            seconds, observed = await stylist_message(page, timeout_ms)
        elif kind == "search_caption":
            seconds, observed = await search_caption(page, timeout_ms)
        else:
            seconds, observed = await for_you_heatmap(page, choice, timeout_ms)
    except PageFailed as exc:
        raise PageFailed(f"{kind} on /{path}: {exc}") from exc
    except PlaywrightError as exc:
        shown = ["(the page could not be read)"]
        with contextlib.suppress(PlaywrightError):
            shown = await problems_on_async(page)
        raise DriverError(f"{kind} on /{path}: no result after {time.perf_counter() - started:.0f} s "
                          f"({_shorten(str(exc).splitlines()[0])}); problems: {shown or 'none'}") from exc
    # The page's ready wait is part of each action function; what is left of the time before the action is the
    # opening of the page (navigation and its default result).
    open_seconds = max(time.perf_counter() - opened - seconds, 0.0)
    return ActionResult(kind, open_seconds, seconds, observed, await problems_on_async(page))
