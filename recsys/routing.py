"""Keeps every page inside the router, ``streamlit_app.py``: its sidebar, logo and layout on every address.

Streamlit still supports the legacy multipage layout, a ``pages/`` folder next to the entry point, and decides
per server, not per app: until some session has called ``st.navigation``, a server that finds ``pages/`` beside
``streamlit_app.py`` runs its sessions the legacy way, where a deep link such as ``/report`` executes
``pages/report.py`` on its own -- no router, so no shared sidebar, logo, wide layout or built-in world. Our pages
live in ``pages/`` (the design says so), so a fresh server's first session opened at a page's address used to draw
that page bare. :func:`run_inside_router`, the first statement of every page, hands such a run back to the router.

Together with ``services.py``, the only module of ``recsys`` that imports Streamlit (and only inside the function).
"""

from __future__ import annotations


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
    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
