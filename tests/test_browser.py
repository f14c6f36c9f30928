"""End to end: the real Streamlit server in headless Debian Chromium (no Playwright browser download)."""

from __future__ import annotations

import contextlib

import pytest

from recsys.benchmarks._browser import CHROMIUM, CHROMIUM_ARGS, serve
from recsys.catalog import Catalog
from recsys.config import PROJECT_ROOT

SCREENSHOTS = PROJECT_ROOT / "test-output"
PAGE_TIMEOUT_MS = 90_000
FIRST_PAGE_SIZE = 24

#: Every browser test module's marks (``pytestmark = BROWSER_MARKS``).
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason="Debian Chromium is not installed at /usr/bin/chromium (`make test` installs it with apt-get).",
    ),
]
pytestmark = BROWSER_MARKS


@contextlib.contextmanager
def chromium_page(width: int = 1600, height: int = 1200):
    """A ``width`` x ``height`` page of a fresh headless Debian Chromium, closed afterwards; :data:`SCREENSHOTS`
    exists for the test's screenshots."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def serve_studio(catalog_dir, tmp_path):
    """Run ``streamlit run streamlit_app.py`` on ``catalog_dir`` and yield its URL; the server stops afterwards (the
    benchmarks' server helper, :func:`recsys.benchmarks._browser.serve`, logging to ``tmp_path/streamlit.log``)."""
    return serve(catalog_dir, tmp_path / "streamlit.log")


@pytest.fixture
def studio_url(tiny_catalog_dir, tmp_path):
    """URL of a streamlit server showing the tiny world; the server is stopped after the test."""
    with serve_studio(tiny_catalog_dir, tmp_path) as url:
        yield url


@pytest.fixture
def ready_url(tiny_ready_dir, tmp_path):
    """URL of a streamlit server on the set-up tiny world (every model trained, as after ``make setup``)."""
    with serve_studio(tiny_ready_dir, tmp_path) as url:
        yield url


def test_the_browse_page_renders_its_grid_in_chromium(studio_url, tiny_catalog_dir):
    from playwright.sync_api import expect

    expected = min(FIRST_PAGE_SIZE, len(Catalog.load(tiny_catalog_dir)))
    with chromium_page(1600, 1000) as page:
        page.goto(studio_url)
        grid_images = page.locator("[data-testid='stMain'] [data-testid='stImage'] img")
        expect(grid_images).to_have_count(expected, timeout=PAGE_TIMEOUT_MS)
        # Visible and decoded, not just present in the DOM.
        page.wait_for_function(
            """n => {
                const images = document.querySelectorAll("[data-testid='stMain'] [data-testid='stImage'] img");
                return images.length === n && [...images].every(i => i.complete && i.naturalWidth > 0);
            }""",
            arg=expected,
            timeout=PAGE_TIMEOUT_MS,
        )
        expect(grid_images.first).to_be_visible()
        expect(page.get_by_text("Browse the catalog")).to_be_visible()
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "home.png"), full_page=False)
