"""The UI layer (recsys/ui/): one home for Streamlit, its caches and the widgets several pages draw."""

from __future__ import annotations

import re

from recsys.config import PROJECT_ROOT

RECSYS = PROJECT_ROOT / "recsys"


def test_every_streamlit_cache_lives_in_one_module():
    files = list(RECSYS.rglob("*.py")) + list((PROJECT_ROOT / "pages").glob("*.py")) + [PROJECT_ROOT / "streamlit_app.py"]
    holders = {str(p.relative_to(PROJECT_ROOT)) for p in files
               if re.search(r"st\.cache_(data|resource)", p.read_text(encoding="utf-8"))}
    assert holders == {"recsys/ui/caches.py"}


def test_the_uploader_accepts_what_the_image_reader_reads():
    from PIL import Image

    from recsys.imageio import ALLOWED_FORMATS
    from recsys.ui.widgets import UPLOAD_HINT, UPLOAD_TYPES

    endings = {ending for ending, name in Image.registered_extensions().items() if name in ALLOWED_FORMATS}
    assert {f".{t}" for t in UPLOAD_TYPES} <= endings  # no ending the reader would refuse
    assert {Image.registered_extensions()[f".{t}"] for t in UPLOAD_TYPES} == set(ALLOWED_FORMATS)  # every format
    assert all(name.lower() in UPLOAD_HINT.lower() for name in ALLOWED_FORMATS)


def test_the_upload_flow_and_the_item_picker_are_written_once():
    pages = {p.name: p.read_text(encoding="utf-8") for p in (PROJECT_ROOT / "pages").glob("*.py")}
    assert not [name for name, source in pages.items() if re.search(r"st\.file_uploader|embed_upload", source)]
    assert not [name for name, source in pages.items() if "jobs()" in source or "start_training" in source]
    uploads = [name for name, source in pages.items() if "ui.photo_query(" in source]
    assert sorted(uploads) == ["outfit.py", "search.py", "similar.py"]


def _live_encoders() -> dict[int, object]:
    import gc
    import warnings

    from recsys.encoders.base import Encoder

    gc.collect()
    with warnings.catch_warnings():  # isinstance on every live object touches torch's deprecated aliases
        warnings.simplefilter("ignore")
        return {id(o): o for o in gc.get_objects() if isinstance(o, Encoder)}


def test_a_server_holds_one_encoder_per_spec_after_every_page(monkeypatch, tiny_ready_dir, tiny_catalog):
    """Every page visited (uploads, a chat message, a free-text search included): each encoder spec was built once,
    and it is the pool's -- no page, service or photo reader kept one of its own."""
    from collections import Counter

    import streamlit as st
    from _pages import open_page

    from recsys.encoders import pool

    st.cache_resource.clear()
    st.cache_data.clear()
    pool.clear()
    before = set(_live_encoders())  # other tests' encoders, held elsewhere in this process
    photo = tiny_catalog.image_path(tiny_catalog.items["item_id"].iat[3]).read_bytes()
    for page in ("home", "similar", "outfit", "for_you", "stylist", "search", "report"):
        app = open_page(monkeypatch, tiny_ready_dir, f"pages/{page}.py")
        if page in ("similar", "search"):
            app.segmented_control(key=f"{page}_source").set_value("Upload a photo").run()
        if page == "outfit":
            app.radio(key="outfit_source").set_value("Your photo").run()
        if page in ("similar", "outfit", "search"):
            app.file_uploader(key=f"{page}_upload").set_value(("mine.png", photo, "image/png")).run()
        if page == "stylist":
            app.chat_input(key="stylist_input").set_value("a red dress for a party").run()
        if page == "search":
            app.segmented_control(key="search_mode").set_value("Free text").run()
            app.text_input(key="search_free_text").input("red floral dress").run()
        assert not app.exception, (page, [e.value for e in app.exception])
    built = [encoder for key, encoder in _live_encoders().items() if key not in before]
    per_spec = Counter(encoder.spec for encoder in built)
    print("encoder instances per spec after every page:", dict(per_spec))
    assert per_spec and set(per_spec.values()) == {1}, per_spec
    assert per_spec == pool.POOL.specs()  # each of them is the pool's
    assert {"effnet-lite0", "minilm"} <= set(per_spec)  # the uploads' image encoder, the chat's and search's text one
