"""Fuzz every upload and text input of every page through Streamlit's AppTest (issue 14), seeded and bounded.

Each page is opened once on the set-up tiny world and then handed a fixed list of cases in turn: random bytes and
random images of every PIL mode at odd sizes (1 x 1, 1 x 5000, ...) to each photo upload; whitespace-only,
invisible-only, emoji-only, decomposed Hangul, very long and random Unicode text to each text box and the chat.
After every case the page must show no exception element (Streamlit's traceback box) and at least one sentence:
an error, warning, info or success element, or the page's result.

The cases are drawn from one seeded generator, so a failure names a case that reproduces; the number of cases per
input is fixed (:func:`text_cases`, :func:`upload_cases`), which keeps the file to about a minute on two cores.
"""

from __future__ import annotations

import io
import json
import unicodedata
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from _pages import open_page

from recsys.config import PROJECT_ROOT

pytestmark = pytest.mark.slow

APP = str(PROJECT_ROOT / "streamlit_app.py")
SEED = 14
#: Random Unicode strings per text input, on top of the fixed hard cases.
RANDOM_TEXTS = 1

# Code point ranges random text is drawn from: ASCII, Latin-1 and combining accents, Hangul syllables and
# conjoining jamo, CJK, Arabic and Hebrew (right-to-left), zero-width and bidirectional controls, emoji, and the
# many Unicode spaces. Lone surrogates are left out: a browser cannot send them.
_RANGES = [(0x20, 0x7E), (0xA0, 0xFF), (0x300, 0x36F), (0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x4E00, 0x4FFF),
           (0x600, 0x6FF), (0x5D0, 0x5EA), (0x200B, 0x200F), (0x202A, 0x202E), (0x2066, 0x2069), (0xFEFF, 0xFEFF),
           (0x1F300, 0x1F6FF), (0x2000, 0x200A), (0x3000, 0x3000), (0x0, 0x1F)]


def random_text(rng: np.random.Generator, length: int) -> str:
    ranges = [_RANGES[k] for k in rng.integers(0, len(_RANGES), size=length)]
    return "".join(chr(int(rng.integers(low, high + 1))) for low, high in ranges)


def text_cases(rng: np.random.Generator) -> list[str]:
    """The hard cases every text input gets, then :data:`RANDOM_TEXTS` random strings."""
    fixed = [
        "",
        " \t\n\u3000 \u202e\u2067\u200f",
        "\u200b\u200c\u200d\ufeff" * 3,
        "🔥👗✨",
        unicodedata.normalize("NFD", "빨간 치마를 찾아요 e\u0301carlate"),
        "red shirt " * 600,
    ]
    return fixed + [random_text(rng, int(rng.integers(1, 300))) for _ in range(RANDOM_TEXTS)]




# ---------------------------------------------------------------------- images
#: (mode, size, format): every PIL mode a file can carry, at odd sizes, saved in a format that can hold it.
IMAGE_SPECS = [
    ("1", (1, 1), "PNG"),
    ("L", (1, 5000), "PNG"),
    ("L", (5000, 1), "JPEG"),
    ("P", (3, 7), "GIF"),
    ("LA", (17, 5), "PNG"),
    ("RGB", (2, 2), "WEBP"),
    ("RGBA", (64, 3), "PNG"),
    ("I", (9, 9), "TIFF"),
    ("I;16", (40, 40), "PNG"),
    ("F", (31, 13), "TIFF"),
    ("CMYK", (24, 24), "JPEG"),
    ("YCbCr", (10, 30), "JPEG"),
]


def random_image(rng: np.random.Generator, mode: str, size: tuple[int, int], fmt: str) -> bytes:
    width, height = size
    if mode == "F":
        array = rng.normal(0, 1e6, size=(height, width)).astype(np.float32)
        array.flat[0], array.flat[-1] = np.finfo(np.float32).max, -np.inf  # extreme values
        image = Image.fromarray(array, mode="F")
    elif mode in ("I", "I;16"):
        top = 65535 if mode == "I;16" else 2**31 - 1
        image = Image.fromarray(rng.integers(0, top, size=(height, width), dtype=np.int64).astype(
            np.uint16 if mode == "I;16" else np.int32))
    else:
        bands = len(Image.new(mode, (1, 1)).getbands())
        noise = rng.integers(0, 256, size=(height, width, bands), dtype=np.uint8)
        image = Image.frombytes(mode, (width, height), noise.tobytes()) if mode != "1" else \
            Image.fromarray(noise[..., 0] > 127)
        if mode == "P":
            image.putpalette(rng.integers(0, 256, size=768, dtype=np.uint8).tobytes())
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def upload_cases(rng: np.random.Generator) -> list[tuple[str, bytes]]:
    """``(file name, bytes)``: random bytes in three disguises, then one image per :data:`IMAGE_SPECS` line."""
    png_header = b"\x89PNG\r\n\x1a\n"
    cases = [
        ("noise.jpg", rng.bytes(2048)),
        ("noise.png", png_header + rng.bytes(512)),
        ("cut.jpg", random_image(rng, "RGB", (32, 32), "JPEG")[:200]),
    ]
    for mode, size, fmt in IMAGE_SPECS:
        cases.append((f"{mode.replace(';', '_')}-{size[0]}x{size[1]}.{fmt.lower()}", random_image(rng, mode, size, fmt)))
    return cases




# ---------------------------------------------------------------------- what every case must leave on the page
def sentences(app: AppTest) -> list[str]:
    return [e.value for e in [*app.error, *app.warning, *app.info, *app.success]]


def problem(app: AppTest, result, case) -> str | None:
    """What is wrong with the page after ``case`` (an exception box, or neither a sentence nor a result), or None."""
    shown = repr(case)[:80]
    if app.exception:
        return f"{shown}: exception {[e.value for e in app.exception]}"
    if not (sentences(app) or result(app)):
        return f"{shown}: neither a sentence nor a result on the page"
    return None


def card_titles(app: AppTest) -> bool:
    return any('class="card-title"' in m.value for m in app.markdown)


def similar_results(app: AppTest) -> bool:
    return any(s.value.endswith("most similar items") for s in app.subheader)


def search_results(app: AppTest) -> bool:
    return any(s.value == "Results" for s in app.subheader)


def for_you_results(app: AppTest) -> bool:
    return any(m.value.startswith("#### ") for m in app.markdown)


def stylist_results(app: AppTest) -> bool:
    return any(s.value == "Proposed coordi-set" for s in app.subheader)


def outfit_results(app: AppTest) -> bool:
    return any(m.label == "Outfit score" for m in app.metric) or any(
        s.value == "Best matches for the item, per slot" for s in app.subheader)


# ---------------------------------------------------------------------- driving the pages
class FakeUpload:
    """What ``st.file_uploader`` returns, for AppTest (which cannot drive the uploader): the current case or None."""

    def __init__(self):
        self.current = None
        self.count = 0

    def set(self, name: str, data: bytes) -> None:
        self.count += 1
        self.current = SimpleNamespace(name=name, file_id=f"fuzz-{self.count}", size=len(data),
                                       getvalue=lambda: data)

    def __call__(self, *args, **kwargs):
        return self.current


@pytest.fixture
def upload(monkeypatch):
    import streamlit

    fake = FakeUpload()
    monkeypatch.setattr(streamlit, "file_uploader", fake)
    return fake



def fuzz_text(app: AppTest, key: str, result, seed: int = SEED) -> tuple[int, list[str]]:
    """Hand every text case to the text box ``key`` (a chat input for ``stylist_input``, a form's caption box for
    ``search_caption``); ``(cases tried, problems found)``."""
    cases, problems = text_cases(np.random.default_rng(seed)), []
    for text in cases:
        if key == "stylist_input":
            app.chat_input(key=key).set_value(text).run()
        elif key == "search_caption":
            app.text_input(key=key).input(text)
            next(b for b in app.button if b.label == "Apply caption").click()
            app.run()
        else:
            app.text_input(key=key).input(text).run()
        problems.append(problem(app, result, (key, text)))
    return len(cases), [p for p in problems if p]


def fuzz_uploads(app: AppTest, upload: FakeUpload, result) -> tuple[int, list[str]]:
    """Hand every upload case to the page's (stand-in) file uploader; ``(cases tried, problems found)``. A broken
    file must be refused in one sentence that names it, with no result drawn from it."""
    problems = [problem(app, result, "no upload yet")]
    for name, data in UPLOADS:
        upload.set(name, data)
        app.run()
        problems.append(problem(app, result, name))
        if name in BROKEN and not any(name in e.value for e in app.error):
            problems.append(f"{name}: no error naming the file ({sentences(app)})")
        if name in BROKEN and result(app):
            problems.append(f"{name}: a result was drawn from a broken file")
    upload.current = None
    return len(UPLOADS), [p for p in problems if p]


UPLOADS = upload_cases(np.random.default_rng(SEED))
#: The cases that are not images at all (random bytes, a bare PNG signature, a JPEG cut after 200 bytes).
BROKEN = ("noise.jpg", "noise.png", "cut.jpg")


TEXT_CASES = len(text_cases(np.random.default_rng(SEED)))


def test_browse_and_for_you(monkeypatch, tiny_ready_dir):
    for page, key, result in (("pages/home.py", "home_search", card_titles),
                              ("pages/for_you.py", "for_you_user", for_you_results)):
        assert fuzz_text(open_page(monkeypatch, tiny_ready_dir, page), key, result) == (TEXT_CASES, [])


def test_similar_items(monkeypatch, tiny_ready_dir, upload):
    app = open_page(monkeypatch, tiny_ready_dir, "pages/similar.py")
    assert fuzz_text(app, "similar_search", similar_results) == (TEXT_CASES, [])
    app.segmented_control(key="similar_source").set_value("Upload a photo").run()
    assert fuzz_uploads(app, upload, similar_results) == (len(UPLOADS), [])


def test_text_guided_search(monkeypatch, tiny_ready_dir, upload):
    app = open_page(monkeypatch, tiny_ready_dir, "pages/search.py")
    assert fuzz_text(app, "search_item_filter", search_results) == (TEXT_CASES, [])
    assert fuzz_text(app, "search_caption", search_results, seed=SEED + 1) == (TEXT_CASES, [])
    app.segmented_control(key="search_source").set_value("Upload a photo").run()
    assert fuzz_uploads(app, upload, search_results) == (len(UPLOADS), [])
    app.segmented_control(key="search_mode").set_value("Free text").run()
    assert fuzz_text(app, "search_free_text", search_results, seed=SEED + 2) == (TEXT_CASES, [])


def test_stylist_chat(monkeypatch, tiny_ready_dir):
    app = open_page(monkeypatch, tiny_ready_dir, "pages/stylist.py")
    assert fuzz_text(app, "stylist_input", stylist_results) == (TEXT_CASES, [])


def test_complete_the_look(monkeypatch, tiny_ready_dir, upload):
    app = open_page(monkeypatch, tiny_ready_dir, "pages/outfit.py")
    app.radio(key="outfit_source").set_value("Your photo").run()
    assert fuzz_uploads(app, upload, outfit_results) == (len(UPLOADS), [])


# ---------------------------------------------------------------------- damaged stores (issue 27)
PAGES = ("pages/home.py", "pages/similar.py", "pages/outfit.py", "pages/for_you.py", "pages/stylist.py",
         "pages/search.py", "pages/report.py")
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 918274\n"


def _damage(path, how: str, stranger: bytes = b'["a stranger"]') -> None:
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "pointer": LFS_POINTER,
                      "stranger": stranger}[how])


def _store_case(folder, case: str) -> None:
    """Damage a copy of the set-up tiny world as ``case`` says (each case damages several stored kinds at once)."""
    artifacts = folder / "artifacts"
    if case == "models":  # every page's model, each with another damage; a report of another tool's shape
        for (task, name), how in zip([("similar", "shopper-similarity"), ("compat", "type-aware"),
                                      ("personal", "vbpr-mm"), ("dialogue", "dialogue-infonce"),
                                      ("composed", "combiner")], ("pointer", "truncated", "empty", "stranger", "pointer")):
            _damage(artifacts / "models" / f"{task}-{name}.safetensors", how,
                    (artifacts / "models" / "compat-triplet.safetensors").read_bytes())
        (artifacts / "report.json").write_text(json.dumps({"similar": "not a table", "compat": {"x": [1, 2]},
                                                           "_meta": 5, "_uploads": ["?"]}))
    elif case == "model halves":  # the JSON halves, and an empty report
        for name, how in (("compat-type-aware", "stranger"), ("personal-vbpr-mm", "pointer"),
                          ("composed-demo-clip", "truncated"), ("similar-shopper-similarity", "empty")):
            _damage(artifacts / "models" / f"{name}.json", how)
        (artifacts / "report.json").write_bytes(b"")
    elif case == "manifest":
        _damage(artifacts / "manifest.json", "pointer")
    elif case == "arrays":  # the image vectors cut short, the catalog map another tool's
        _damage(artifacts / "image.npy", "truncated")
        _damage(artifacts / "map2d.npy", "stranger")
    elif case == "catalog":
        _damage(folder / "catalog.json", "pointer")
    elif case == "unreadable photo":  # the precompute's mark for an item whose image could not be read
        import pandas as pd

        items = pd.read_parquet(folder / "items.parquet")
        item_id = items["item_id"].iat[0]  # the first item: the default query of several pages
        (folder / items["image_path"].iat[0]).write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
        row = 0
        for name in ("image.npy", "feature_maps.npy"):
            values = np.load(artifacts / name, mmap_mode="r+")
            values[row] = 0
            values.flush()
            del values
        manifest = json.loads((artifacts / "manifest.json").read_text())
        manifest["unavailable_items"] = [{"row": row, "item_id": item_id, "reason": "its image cannot be read"}]
        (artifacts / "manifest.json").write_text(json.dumps(manifest))


STORE_CASES = ("models", "model halves", "manifest", "arrays", "catalog", "unreadable photo")


def page_result(page: str):
    return {"pages/home.py": card_titles, "pages/similar.py": similar_results, "pages/outfit.py": outfit_results,
            "pages/for_you.py": for_you_results, "pages/stylist.py": lambda app: True,
            "pages/search.py": search_results, "pages/report.py": lambda app: bool(app.dataframe)}[page]


@pytest.mark.parametrize("case", STORE_CASES)
def test_every_page_survives_a_damaged_store(monkeypatch, tiny_ready_dir, tmp_path, case):
    """Every page opened on a store damaged as ``case`` says: no traceback box, and a sentence or a result."""
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(tiny_ready_dir, folder)
    _store_case(folder, case)
    monkeypatch.setenv("RECSYS_CATALOG", str(folder))
    problems = []
    for page in PAGES:
        app = AppTest.from_file(APP, default_timeout=180)
        app.run()
        app.switch_page(page)
        app.run()
        problems.append(problem(app, page_result(page), (case, page)))
    assert [p for p in problems if p] == []
