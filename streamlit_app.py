"""The fashion recommendation studio: page router and the sidebar every page shares.

Run with ``streamlit run streamlit_app.py`` (or ``make run``); ``RECSYS_CATALOG=DIR`` shows another catalog.
"""

import os

# Nothing is ever downloaded at run time; set before anything can import transformers or huggingface_hub.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import streamlit as st  # noqa: E402

from recsys import ui  # noqa: E402
from recsys.catalog import Catalog, CatalogError  # noqa: E402
from recsys.config import Settings  # noqa: E402

APP_TITLE = "Fashion recommendation studio"
ASSETS = Path(__file__).parent / "assets"


def open_browse() -> None:
    """``/home``, the Browse page's file name: Streamlit serves the default page at the root only, so go there."""
    st.switch_page(PAGES[0])


# One line per page; the first is the default, which Streamlit serves at the root ("/") only.
PAGES = [
    st.Page("pages/home.py", title="Browse", icon=":material/checkroom:", url_path="", default=True),
    st.Page("pages/similar.py", title="Similar items", icon=":material/image_search:", url_path="similar"),
    st.Page("pages/outfit.py", title="Complete the look", icon=":material/styler:", url_path="outfit"),
    st.Page("pages/for_you.py", title="For you", icon=":material/recommend:", url_path="for_you"),
    st.Page("pages/stylist.py", title="Stylist chat", icon=":material/forum:", url_path="stylist"),
    st.Page("pages/search.py", title="Text-guided search", icon=":material/manage_search:", url_path="search"),
    st.Page("pages/report.py", title="Model report", icon=":material/query_stats:", url_path="report"),
    # "/home" opens Browse too (at "/", so that the menu marks it); hidden, so the menu lists Browse once.
    st.Page(open_browse, title="Browse", icon=":material/checkroom:", url_path="home", visibility="hidden"),
]


def show_catalog_or_stop(config: Settings) -> Catalog:
    """The catalog to show; builds the built-in world on first start, and stops with one sentence if it is unusable."""
    try:
        if config.catalog_is_builtin and not ui.catalog_is_built(config.catalog_dir):
            build_builtin_world_with_progress(config)
        return ui.load_catalog(config.catalog_dir)
    except CatalogError as exc:
        st.error(str(exc), icon=":material/error:")
        if not config.catalog_is_builtin:
            st.caption("RECSYS_CATALOG names the catalog folder to show; unset it to use the built-in demo world.")
        st.stop()


def build_builtin_world_with_progress(config: Settings) -> None:
    st.info(
        "No catalog yet: generating the built-in demo world (first start only, a couple of minutes).",
        icon=":material/construction:",
    )
    bar = st.progress(0.0, text="Starting ...")

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

    ui.build_builtin_catalog(config, progress=progress)
    # A rerun clears the build messages and draws the app as it is on every later start.
    st.rerun()


def shared_sidebar(catalog: Catalog, config: Settings) -> None:
    with st.sidebar:
        st.markdown(f"**Catalog** &nbsp; {catalog.name}")
        st.caption(f"{len(catalog):,} items in {catalog.items['category'].nunique()} categories")
        artifacts = ui.artifact_summary(catalog.root)
        if artifacts.problem:
            st.warning(f"Precomputed artifacts: {artifacts.problem}", icon=":material/warning:")
        elif artifacts.present:
            st.markdown("**Precomputed embeddings**")
            for role, spec in artifacts.encoders.items():
                st.caption(f"{role.capitalize()}: `{spec}`")
            if artifacts.created:
                st.caption(f"Computed {artifacts.created}")
        st.markdown("**Encoders for new embeddings**")
        image = f"`{config.image_encoder}`" if config.image_encoder else "the catalog's, else `effnet-lite0`"
        st.caption(f"Image encoder: {image}")
        text = f"`{config.text_encoder}`" if config.text_encoder else "the image encoder's when joint, else `minilm`"
        st.caption(f"Text encoder: {text}")
        if not artifacts.present:
            st.caption("No precomputed embeddings yet (`scripts/precompute.py`).")


st.set_page_config(page_title=APP_TITLE, page_icon=":material/checkroom:", layout="wide")
st.logo(str(ASSETS / "logo.svg"), size="large")
st.html(ASSETS / "style.css")

# Declared before anything can stop the script: otherwise Streamlit would list pages/ on its own. (Until a session
# of the server gets here, Streamlit may run a file of pages/ without this router; ui.run_inside_router(), the
# first statement of every page, then reruns it through here.)
navigation = st.navigation(PAGES)
config = ui.settings()
catalog = show_catalog_or_stop(config)
shared_sidebar(catalog, config)
ui.warm_up()
ui.route(navigation)
