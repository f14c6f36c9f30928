"""Opening a page of the studio headlessly (Streamlit's AppTest) in tests: the one helper every page test uses."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from recsys.config import PROJECT_ROOT

#: The router every page runs inside (deep links: pages/ files are opened through it).
APP = str(PROJECT_ROOT / "streamlit_app.py")


def open_page(monkeypatch, catalog_dir, page: str, timeout: float = 180) -> AppTest:
    """The app on ``catalog_dir`` (``RECSYS_CATALOG``), switched to ``page`` (``"pages/<name>.py"``) and run, with no
    exception raised; ``timeout`` seconds per run."""
    monkeypatch.setenv("RECSYS_CATALOG", str(catalog_dir))
    app = AppTest.from_file(APP, default_timeout=timeout)
    app.run()
    app.switch_page(page)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app
