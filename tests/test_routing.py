"""Pages run inside the router, streamlit_app.py, even where Streamlit would run a file of pages/ on its own.

Streamlit's AppTest, like a fresh server's first session, starts each run with the legacy ``pages/`` discovery on
(it resets it per run), so a session whose first run is a page's address is exactly the bare case the routing
guard handles.
The deep links themselves are checked in Chromium (tests/test_browser_deep_links.py).
"""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from recsys.catalog import Catalog
from recsys.config import PROJECT_ROOT

APP = str(PROJECT_ROOT / "streamlit_app.py")


@pytest.fixture
def catalog_copy(tiny_catalog_dir, tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("artifacts", "models"))
    return folder


def sidebar_text(app: AppTest) -> str:
    return " ".join(m.value for m in app.sidebar.markdown)


@pytest.mark.parametrize("page, title", [("pages/report.py", "Model report"), ("pages/home.py", "Browse the catalog")])
def test_a_page_opened_on_its_own_is_drawn_inside_the_router(monkeypatch, catalog_copy, page, title):
    monkeypatch.setenv("RECSYS_CATALOG", str(catalog_copy))
    app = AppTest.from_file(APP, default_timeout=60)
    app.switch_page(page)  # the session's first run is the page's own address, as a deep link is
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert [t.value for t in app.title] == [title]
    assert Catalog.load(catalog_copy).name in sidebar_text(app)  # the router's shared sidebar


def test_the_guard_does_nothing_outside_streamlit():
    from streamlit.runtime.pages_manager import PagesManager

    from recsys.ui import run_inside_router

    before = PagesManager.uses_pages_directory
    assert run_inside_router() is None  # no script run: nothing to rerun, nothing raised
    assert PagesManager.uses_pages_directory == before  # and the server-wide page mode is left alone
