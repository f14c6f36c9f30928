"""End to end: the Stylist chat page in headless Chromium, on a private copy of the tiny world."""

from __future__ import annotations

import shutil

import pytest

from tests.test_browser import BROWSER_MARKS, PAGE_TIMEOUT_MS, SCREENSHOTS, chromium_page, serve_studio

#: The first visit trains the model in place (seconds on an idle machine, minutes on a crowded one).
FIRST_VISIT_TIMEOUT_MS = 400_000

pytestmark = BROWSER_MARKS


@pytest.fixture
def stylist_url(tiny_ready_dir, tmp_path):
    """URL of a streamlit server on a copy of the set-up tiny world (its models trained, as after ``make setup``)."""
    catalog_dir = tmp_path / "tiny"
    shutil.copytree(tiny_ready_dir, catalog_dir)
    with serve_studio(catalog_dir, tmp_path) as url:
        yield url


def test_a_chat_message_gets_a_proposed_coordi_set_in_chromium(stylist_url):
    from playwright.sync_api import expect

    with chromium_page(1400, 1600) as page:
        page.goto(f"{stylist_url}/stylist")
        chat = page.locator("[data-testid='stChatInputTextArea']")
        expect(chat).to_be_visible(timeout=FIRST_VISIT_TIMEOUT_MS)
        chat.fill("I need an outfit for a garden party. For the bottom, a skirt please.")
        chat.press("Enter")
        expect(page.get_by_text("Proposed coordi-set")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        expect(page.get_by_text("Ranked candidates")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        expect(page.locator("[data-testid='stChatMessage']")).to_have_count(2, timeout=PAGE_TIMEOUT_MS)
        # 4 proposed items + 3 candidates x 4 items; the proposal's (above the fold) visible and decoded
        page.wait_for_function(
            """() => {
                const images = [...document.querySelectorAll("[data-testid='stMainBlockContainer'] [data-testid='stImage'] img")];
                return images.length >= 16 && images.slice(0, 4).every(i => i.complete && i.naturalWidth > 0);
            }""",
            timeout=PAGE_TIMEOUT_MS,
        )
        assert page.locator("[data-testid='stException']").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "stylist.png"), full_page=True)
