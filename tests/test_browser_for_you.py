"""End to end: the For you page in headless Debian Chromium, heatmap cards and an explanation."""

from __future__ import annotations


from tests.test_browser import BROWSER_MARKS, PAGE_TIMEOUT_MS, SCREENSHOTS, chromium_page, ready_url  # noqa: F401

LOADED_IMAGES = ("[...document.querySelectorAll(\"[data-testid='stMain'] [data-testid='stImage'] img\")]"
                 ".filter(i => i.complete && i.naturalWidth > 0).length")

pytestmark = BROWSER_MARKS


def test_for_you_shows_heatmap_cards_and_explains_one(tiny_artifacts, ready_url):  # noqa: F811
    from playwright.sync_api import expect

    with chromium_page(1600, 1200) as page:
        page.goto(f"{ready_url}/for_you")
        explain = page.get_by_role("button", name="Explain")
        expect(explain.first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        expect(explain).to_have_count(12, timeout=PAGE_TIMEOUT_MS)
        page.wait_for_function(f"() => {LOADED_IMAGES} >= 12", timeout=PAGE_TIMEOUT_MS)
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "for_you.png"), full_page=False)
        before = page.evaluate(f"() => {LOADED_IMAGES}")
        explain.first.click()
        expect(page.get_by_text("Region scores")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        expect(page.get_by_text("Score terms")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        # The large heatmap and its legend are drawn before the screenshot is taken.
        page.wait_for_function(f"() => {LOADED_IMAGES} >= {before + 2}", timeout=PAGE_TIMEOUT_MS)
        page.get_by_text("Region scores").scroll_into_view_if_needed()
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "for_you_explain.png"), full_page=False)
