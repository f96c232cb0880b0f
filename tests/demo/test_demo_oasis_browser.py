"""OASIS's region painting in a real browser (headless system Chromium driven by Playwright, as
`test_demo_browser.py`, with the same skip rules): a stroke on the painting canvas reaches the server as a region."""

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labelsynth.demo import build_demo

IN_CI = os.environ.get("LABELSYNTH_REQUIRE_BROWSER") == "1"
if IN_CI:
    from playwright import sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None and not IN_CI, reason="no system chromium (apt-get install chromium)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _status(page: Any, text: str) -> str:
    page.wait_for_function("t => document.querySelector('#status').innerText.includes(t)", arg=text)
    return page.inner_text("#status")


def test_painted_stroke_rerolls_its_region(oasis_model: Path) -> None:
    demo = build_demo(str(oasis_model), live=False)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(30_000)
            page.goto(url, wait_until="load")
            page.wait_for_selector("#paint-resample canvas")
            page.click("#generate")
            assert "Re-rolled" not in _status(page, "Generated")
            # Paint a horizontal stroke across the painting canvas (which now shows the result).
            paint = page.locator("#paint-resample")
            paint.scroll_into_view_if_needed()
            paint.get_by_label("Brush", exact=True).click()
            box = page.locator("#paint-resample canvas").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
            page.mouse.down()
            for t in np.linspace(0.3, 0.7, 10):
                page.mouse.move(box["x"] + box["width"] * t, box["y"] + box["height"] * 0.5)
            page.mouse.up()
            page.click("#generate")
            assert "Re-rolled: painted region." in _status(page, "Re-rolled")
            browser.close()
    finally:
        demo.close()
