"""Routing: every page runs inside ``streamlit_app.py``'s ``st.navigation``, so deep links work (DESIGN section 12)."""

from __future__ import annotations

import threading

import streamlit as st

from recsys.config import PROJECT_ROOT

PAGES_DIR = PROJECT_ROOT / "pages"

_router = threading.local()


def route(navigation) -> None:
    """Run the page ``navigation`` (``st.navigation``'s result) selected, marked as drawn inside the router."""
    _router.running = True
    st.session_state["_router_seen"] = True
    try:
        navigation.run()
    finally:
        _router.running = False


def run_inside_router() -> None:
    """Rerun the app through ``streamlit_app.py`` when Streamlit ran this page without it.

    Called first thing by every file in ``pages/``. When Streamlit's legacy ``pages/`` discovery is still on (no
    session of this server has called ``st.navigation`` yet), this turns it off for the whole server, exactly as
    the router's own ``st.navigation`` call would, and reruns the session: the rerun executes
    ``streamlit_app.py``, whose ``st.navigation`` resolves the same page, since Streamlit derives a page's id from
    its URL path alone and each page's ``url_path`` is its file name. Inside the router, and outside Streamlit
    altogether, it does nothing.

    Raises:
        streamlit's ``RerunException`` (through ``st.rerun``) to end the bare run; Streamlit catches it and
        starts the rerun, so a page never sees it.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(_router, "running", False):  # drawn by the router: nothing to do
        return
    if st.session_state.get("_router_seen"):
        # This session has been through the router, so the server switched the legacy mode off already; only a
        # test harness that resets it per run (AppTest) gets here, and a rerun would drop the run's click or message.
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_exists(name: str) -> bool:
    """True when ``pages/<name>.py`` exists, so a page only links to pages that are there."""
    return (PAGES_DIR / f"{name}.py").is_file()
