"""End to end: the Text-guided search page in headless Debian Chromium -- stacked captions, a chip removed,
a photo that cannot be decoded, and free text."""

from __future__ import annotations


from tests.test_browser import BROWSER_MARKS, PAGE_TIMEOUT_MS, SCREENSHOTS, chromium_page, ready_url  # noqa: F401

pytestmark = BROWSER_MARKS


def test_text_guided_search_in_chromium(tiny_artifacts, ready_url, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with chromium_page(1600, 1300) as page:
        page.goto(f"{ready_url}/search")
        main = page.get_by_test_id("stMain")
        expect(main.get_by_text("Text-guided search").first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        caption_box = page.get_by_label("Modification caption")
        expect(caption_box).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        for caption in ("is red", "has long sleeves"):
            caption_box.fill(caption)
            page.get_by_role("button", name="Apply caption").click()
            expect(page.get_by_role("button", name=caption)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        expect(main.get_by_text("is red → has long sleeves")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        page.wait_for_function(
            """() => [...document.querySelectorAll("[data-testid='stMain'] [data-testid='stImage'] img")]
                    .filter(i => i.complete && i.naturalWidth > 0).length >= 7""",
            timeout=PAGE_TIMEOUT_MS,
        )
        expect(main.get_by_text("Moved:").first).to_be_visible()
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "search.png"), full_page=True)

        # a chip removed: only the other caption is left
        page.get_by_role("button", name="is red").click()
        expect(page.get_by_role("button", name="is red")).to_have_count(0, timeout=PAGE_TIMEOUT_MS)
        expect(page.get_by_role("button", name="has long sleeves")).to_be_visible()

        # an upload that cannot be decoded gets a sentence, not a traceback
        page.get_by_text("Upload a photo").click()
        page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(broken))
        expect(page.get_by_test_id("stAlert").filter(has_text="image")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        assert page.locator("[data-testid='stException']").count() == 0

        # free text
        page.get_by_text("Free text").click()
        box = page.get_by_label("Describe what you are looking for")
        box.fill("red floral dress")
        box.press("Enter")
        expect(main.get_by_text("Ranked by text-only")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "search_free_text.png"), full_page=False)
