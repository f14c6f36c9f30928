"""End to end: the Model report page in headless Debian Chromium -- every task's table and bar chart are drawn,
a figure that could not be computed reads "n/a" (never NaN), and no exception box appears."""

from __future__ import annotations

import json
import shutil

import pytest

from recsys.reports import REPORT_NAME
from tests.test_browser import BROWSER_MARKS, PAGE_TIMEOUT_MS, SCREENSHOTS, chromium_page, serve_studio

pytestmark = BROWSER_MARKS

RUN_OVER = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    return !!app && app.getAttribute("data-test-script-state") === "notRunning";
}"""
#: A report as the protocols write it, with one null figure (a mean over no defined query) in each task.
REPORT = {
    "personal": {"random": {"AUC": 0.5, "NDCG@10": 0.002}, "popularity": {"AUC": 0.65, "NDCG@10": None},
                 "vbpr-mm": {"AUC": 0.72, "NDCG@10": 0.010}, "oracle": {"AUC": 0.86, "NDCG@10": 0.069}},
    "dialogue": {"random": {"WKT": None, "top1_acc": 0.3, "undefined": 2},
                 "dialogue-infonce": {"WKT": 0.4, "top1_acc": 0.5, "undefined": 0},
                 "oracle": {"WKT": 1.0, "top1_acc": 1.0, "undefined": 0}},
    "_meta": {"kind": "quick", "computed_at": "2026-12-01 12:00", "catalog": "tiny", "seconds": 3.2},
}


@pytest.fixture
def report_url(tiny_catalog_dir, tmp_path):
    """A server on a copy of the tiny world (no embeddings: the report page needs none) holding :data:`REPORT`."""
    folder = tmp_path / "world"
    shutil.copytree(tiny_catalog_dir, folder, ignore=shutil.ignore_patterns("artifacts"))
    (folder / "artifacts").mkdir()
    (folder / "artifacts" / REPORT_NAME).write_text(json.dumps(REPORT))
    with serve_studio(folder, tmp_path) as url:
        yield url


def test_the_report_draws_tables_and_charts_without_nan(report_url):
    from playwright.sync_api import expect

    with chromium_page(1600, 1200) as page:
        page.goto(f"{report_url}/report")
        main = page.get_by_test_id("stMain")
        expect(main.get_by_text("Model report").first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        tabs = main.get_by_role("tab")
        expect(tabs).to_have_count(2, timeout=PAGE_TIMEOUT_MS)
        for k, name in enumerate(("Personal", "Dialogue")):
            tabs.nth(k).click()
            panel = page.locator("[data-testid='stMain'] [role='tabpanel']:visible")
            expect(panel).to_have_count(1, timeout=PAGE_TIMEOUT_MS)
            # the figures table first; the papers' own figures, where there are some, below it
            expect(panel.get_by_test_id("stDataFrame").first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            chart = panel.locator("[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg")
            expect(chart.first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            expect(panel.get_by_text("n/a: a figure that could not be computed")).to_be_visible()
            assert tabs.nth(k).inner_text().strip() == name
        page.wait_for_function(RUN_OVER, timeout=PAGE_TIMEOUT_MS)
        expect(main.get_by_text("Quick evaluation", exact=False).first).to_be_visible()
        text = main.inner_text()
        assert "NaN" not in text and "nan" not in text.split(), text[:500]
        assert page.get_by_test_id("stException").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)
