"""Similar items, as a user feels it: the time from a click to the rendered results (Streamlit AppTest)."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from recsys.config import PROJECT_ROOT


def run(catalog_dir: Path | None = None, quick: bool = False) -> dict:
    """Median and worst time from clicking "Find similar" on a result to the re-rendered page."""
    if catalog_dir is None or not (Path(catalog_dir) / "artifacts" / "manifest.json").is_file():
        return {"skipped": "needs a catalog with precomputed artifacts"}
    from streamlit.testing.v1 import AppTest

    from recsys.catalog import Catalog

    previous = os.environ.get("RECSYS_CATALOG")
    os.environ["RECSYS_CATALOG"] = str(catalog_dir)
    try:
        app = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=300)
        started = time.perf_counter()
        app.run()
        app.switch_page("pages/similar.py").run()
        first = time.perf_counter() - started
        if app.exception:
            return {"error": app.exception[0].value}
        items = Catalog.load(catalog_dir, check_images=False).items["item_id"]
        timings = []
        for _ in range(3 if quick else 10):
            pivots = [b for b in app.button if b.key and b.key.startswith("similar_pivot_")]
            started = time.perf_counter()
            pivots[0].click().run()
            timings.append(time.perf_counter() - started)
        return {
            "items": int(len(items)),
            "first_render_s (loads artifacts and index)": round(first, 2),
            "click_to_results_ms_median": round(1000 * statistics.median(timings), 1),
            "click_to_results_ms_max": round(1000 * max(timings), 1),
            "clicks": len(timings),
        }
    finally:
        if previous is None:
            os.environ.pop("RECSYS_CATALOG", None)
        else:
            os.environ["RECSYS_CATALOG"] = previous
