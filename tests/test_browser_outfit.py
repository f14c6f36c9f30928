"""End to end: the Complete-the-look page in headless Debian Chromium -- a catalog query, a re-roll, an upload."""

from __future__ import annotations


from recsys.catalog import Catalog
from tests.test_browser import BROWSER_MARKS, PAGE_TIMEOUT_MS, SCREENSHOTS, chromium_page, ready_url  # noqa: F401

pytestmark = BROWSER_MARKS


def test_outfit_board_rerolls_and_takes_an_upload(tiny_artifacts, tiny_catalog_dir, ready_url):  # noqa: F811
    from playwright.sync_api import expect

    catalog = Catalog.load(tiny_catalog_dir)
    photo = catalog.image_path(catalog.items.loc[catalog.items["category"] == "tshirt", "item_id"].iloc[0])
    with chromium_page(1600, 1200) as page:
        page.goto(f"{ready_url}/outfit")
        score = page.get_by_test_id("stMetric").filter(has_text="Outfit score")
        expect(score).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        reroll = page.get_by_role("button", name="Re-roll unlocked")
        expect(reroll).to_be_visible()
        expect(page.get_by_role("button", name="Next best").first).to_be_visible()
        page.wait_for_function(
            """() => [...document.querySelectorAll("[data-testid='stMain'] [data-testid='stImage'] img")]
                    .filter(i => i.complete && i.naturalWidth > 0).length >= 4""",
            timeout=PAGE_TIMEOUT_MS,
        )
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "outfit.png"), full_page=False)

        before = score.inner_text()
        titles_before = page.locator(".card-title").all_inner_texts()
        reroll.click()
        expect(page.locator(".card-title").first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        page.wait_for_function(
            """before => {
                const now = [...document.querySelectorAll('.card-title')].map(e => e.innerText);
                return now.length > 0 && now.some((title, k) => title !== before[k]);
            }""",
            arg=titles_before,
            timeout=PAGE_TIMEOUT_MS,
        )
        assert page.locator("[data-testid='stException']").count() == 0
        assert before  # the score was shown before the re-roll

        page.get_by_text("Your photo").first.click()
        page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(photo))
        expect(page.get_by_text("Your photo", exact=True).nth(1)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        expect(score).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "outfit_upload.png"), full_page=False)
