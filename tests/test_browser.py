"""End to end: the real Streamlit server in headless Debian Chromium (no Playwright browser download)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from recsys.catalog import Catalog
from recsys.config import PROJECT_ROOT

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
SCREENSHOTS = PROJECT_ROOT / "test-output"
SERVER_START_TIMEOUT_S = 90
PAGE_TIMEOUT_MS = 90_000
FIRST_PAGE_SIZE = 24

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason="Debian Chromium is not installed at /usr/bin/chromium (`make test` installs it with apt-get).",
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(server: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with code {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    pytest.fail(f"streamlit did not answer {url}/_stcore/health within {SERVER_START_TIMEOUT_S} s")


@contextlib.contextmanager
def serve_studio(catalog_dir, tmp_path):
    """Run ``streamlit run streamlit_app.py`` on ``catalog_dir`` and yield its URL; the server stops afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {**os.environ, "RECSYS_CATALOG": str(catalog_dir), "HF_HUB_OFFLINE": "1"}
    log_path = tmp_path / "streamlit.log"
    command = [
        sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "streamlit_app.py"),
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]
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
    from playwright.sync_api import expect, sync_playwright

    expected = min(FIRST_PAGE_SIZE, len(Catalog.load(tiny_catalog_dir)))
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
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
        finally:
            browser.close()
