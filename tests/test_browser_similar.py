"""End to end: the Similar items page in headless Debian Chromium -- a catalog item picked from the list gets its
results grid with the why-similar chips, and an uploaded photo gets the photo reading sentence and results."""

from __future__ import annotations

import re


from recsys.catalog import Catalog
from tests.test_browser import BROWSER_MARKS, PAGE_TIMEOUT_MS, SCREENSHOTS, chromium_page, ready_url  # noqa: F401

pytestmark = BROWSER_MARKS

#: True once the session's script run is over (the page is judged on what that run drew).
RUN_OVER = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    return !!app && app.getAttribute("data-test-script-state") === "notRunning";
}"""
#: Decoded images in the main area.
LOADED_IMAGES = ("[...document.querySelectorAll(\"[data-testid='stMain'] [data-testid='stImage'] img\")]"
                 ".filter(i => i.complete && i.naturalWidth > 0).length")
RESULTS = 12  # the page's default "How many results"
#: The photo reading's sentence (recsys.photo.PhotoReading.sentence), whichever of its three forms it takes.
READING = re.compile(r"Reads as |Not sure: perhaps |This does not look like a garment")


def test_similar_items_for_a_catalog_item_and_an_upload(tiny_artifacts, tiny_catalog_dir, ready_url, tmp_path):  # noqa: F811
    from PIL import Image
    from playwright.sync_api import expect

    catalog = Catalog.load(tiny_catalog_dir)
    shirt = catalog.items.loc[catalog.items["category"] == "tshirt", "item_id"].iloc[0]
    photo = tmp_path / "my shirt.png"
    with Image.open(catalog.image_path(shirt)) as image:
        image.convert("RGB").resize((96, 96)).save(photo, format="PNG")

    with chromium_page(1600, 1200) as page:
        page.goto(f"{ready_url}/similar")
        main = page.get_by_test_id("stMain")
        first = catalog.items.iloc[0]
        first_shown = min(RESULTS, int((catalog.items["category"] == first["category"]).sum()) - 1)
        expect(main.get_by_text(f"{first_shown} most similar items")).to_be_visible(timeout=PAGE_TIMEOUT_MS)

        # pick another catalog item from the list: the query and its results follow
        picker = main.get_by_test_id("stSelectbox").filter(has_text="Item")
        picker.click()
        option = page.get_by_role("option").nth(1)
        chosen = option.inner_text().strip()
        option.click()
        title = chosen.rsplit("(", 1)[0].strip()
        expect(main.locator("strong", has_text=title).first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        page.wait_for_function(RUN_OVER, timeout=PAGE_TIMEOUT_MS)
        # as many cards as the heading says (the item's category may hold fewer than 12 others)
        heading = main.get_by_text(re.compile(r"^\d+ most similar items$"))
        shown = int(heading.inner_text().split()[0])
        assert 0 < shown <= RESULTS
        expect(main.locator(".card-title")).to_have_count(shown, timeout=PAGE_TIMEOUT_MS)
        # every result card says why it is similar, in one or more chips
        expect(main.locator(".card-chips")).to_have_count(shown)
        assert main.locator(".card-chips:not(:has(.chip))").count() == 0
        assert all(text.strip() for text in main.locator(".chip").all_inner_texts())
        page.wait_for_function(f"() => {LOADED_IMAGES} >= {shown + 1}", timeout=PAGE_TIMEOUT_MS)
        expect(main.locator(".js-plotly-plot").first).to_be_visible(timeout=PAGE_TIMEOUT_MS)  # the catalog map
        assert page.get_by_test_id("stException").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "similar.png"), full_page=False)

        # upload a photo: the reading is one sentence, and the results follow it
        main.get_by_text("Upload a photo").click()
        page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(photo))
        reading = main.get_by_test_id("stAlert").filter(has_text=READING)
        expect(reading).to_have_count(1, timeout=PAGE_TIMEOUT_MS)
        assert reading.inner_text().strip().endswith(".")
        expect(main.get_by_test_id("stImageCaption").filter(has_text="my shirt.png")).to_be_visible()
        expect(heading).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        page.wait_for_function(RUN_OVER, timeout=PAGE_TIMEOUT_MS)
        shown = int(heading.inner_text().split()[0])
        assert 0 < shown <= RESULTS
        expect(main.locator(".card-title")).to_have_count(shown)
        assert main.get_by_test_id("stSelectbox").filter(has_text="Category").count() == 1
        assert page.get_by_test_id("stException").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "similar_upload.png"), full_page=False)
