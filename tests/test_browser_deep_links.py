"""End to end: every page's own address opens that page inside the router, on a fresh server's first session too.

Two ways this used to fail: ``/home`` (the Browse page's url_path, the default page) showed "Page not found", and
on a server's first session a deep link such as ``/report`` drew the page without the router's sidebar, logo and
wide layout (Streamlit's legacy ``pages/`` discovery runs until some session has called ``st.navigation``).
"""

from __future__ import annotations

import shutil

import pytest

from recsys.catalog import Catalog
from tests.test_browser import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS, PAGE_TIMEOUT_MS, SCREENSHOTS, serve_studio

#: url_path -> (the page's name in the router's menu, the page's title); the first is opened as the first
#: session of a fresh server.
PAGES = {
    "report": ("Model report", "Model report"),
    "home": ("Browse", "Browse the catalog"),
    "similar": ("Similar items", "Similar items"),
    "outfit": ("Complete the look", "Complete the look"),
    "for_you": ("For you", "For you"),
    "stylist": ("Stylist chat", "Stylist chat"),
    "search": ("Text-guided search", "Text-guided search"),
}
#: Where each address ends up: ``/home`` names the default page, which Streamlit serves at the root.
LANDING = {"home": ""}
#: The router asks for the wide layout; Streamlit's centered layout is at most 736 px wide.
CENTERED_MAX_WIDTH_PX = 736

pytestmark = BROWSER_MARKS


@pytest.fixture
def catalog_copy(tiny_catalog_dir, tmp_path):
    """A private copy of the tiny world without artifacts or models, so that no page trains or loads anything big."""
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("artifacts", "models"))
    return folder


def wait_until_the_run_is_over(page) -> None:
    """Wait for the session's script run to end, so that what it drew can be judged (the app root says so)."""
    from playwright.sync_api import expect

    expect(page.locator("[data-testid='stApp'][data-test-script-state='notRunning']")).to_have_count(
        1, timeout=PAGE_TIMEOUT_MS
    )


def open_in_a_new_session(browser, url: str, path: str, catalog_name: str):
    """Open ``url/path`` in a fresh browser context (a new Streamlit session), check the router drew it, and return
    the title the page shows; ``path`` "" is the root, the Browse page."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/{path}")
    main = page.get_by_test_id("stMain")
    sidebar = page.get_by_test_id("stSidebar")
    menu_name, title = PAGES[path or "home"]
    expect(main.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    # The router's own sidebar (catalog name), its logo and its navigation, not Streamlit's file-name one.
    expect(sidebar.get_by_text(catalog_name)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    expect(page.get_by_test_id("stSidebarLogo")).to_be_visible()
    navigation = page.get_by_test_id("stSidebarNav")
    for name, _ in PAGES.values():
        expect(navigation.get_by_text(name, exact=True)).to_be_visible()
    # The menu marks this page as the current one.
    expect(navigation.get_by_role("link", name=menu_name, exact=True)).to_have_attribute("aria-current", "page")
    wait_until_the_run_is_over(page)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    assert page.url.rstrip("/") == f"{url}/{LANDING.get(path, path)}".rstrip("/"), page.url
    width = page.get_by_test_id("stMainBlockContainer").bounding_box()["width"]
    assert width > CENTERED_MAX_WIDTH_PX, f"/{path} is not in the router's wide layout ({width:.0f} px)"
    page.screenshot(path=str(SCREENSHOTS / f"deep_link_{path or 'root'}.png"), full_page=False)
    shown = main.get_by_role("heading", level=1).first.inner_text()
    context.close()
    return shown


def test_every_page_address_opens_that_page_in_the_router_from_a_fresh_server(catalog_copy, tmp_path):
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    catalog_name = Catalog.load(catalog_copy).name
    with serve_studio(catalog_copy, tmp_path) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # /report is this server's first session: no session has called st.navigation yet.
            shown = [open_in_a_new_session(browser, url, path, catalog_name) for path in PAGES]
            assert shown == [title for _, title in PAGES.values()]
        finally:
            browser.close()


@pytest.mark.parametrize("first", ["", "home"], ids=["root-first", "home-first"])
def test_the_default_page_at_the_root_and_at_its_own_address_from_a_fresh_server(catalog_copy, tmp_path, first):
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    catalog_name = Catalog.load(catalog_copy).name
    with serve_studio(catalog_copy, tmp_path) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            paths = (first, "home" if first == "" else "")
            shown = [open_in_a_new_session(browser, url, path, catalog_name) for path in paths]
            assert shown == [PAGES["home"][1]] * 2  # the root and /home both open Browse
        finally:
            browser.close()
