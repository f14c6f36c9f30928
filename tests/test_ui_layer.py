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
