"""OASIS's region painting in a real browser (headless system Chromium driven by Playwright, as
`test_demo_browser.py`, with the same skip rules): a stroke on the painting canvas reaches the server as a region."""

from pathlib import Path

import numpy as np
from helpers import chromium_browser, open_page, settled_status

from labelsynth.demo import build_demo


def test_painted_stroke_rerolls_its_region(oasis_model: Path) -> None:
    demo = build_demo(str(oasis_model), live=False)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        with chromium_browser() as browser:
            page = open_page(browser, url, height=1600)
            page.wait_for_selector("#paint-resample canvas")
            page.click("#generate")
            assert "Re-rolled" not in settled_status(page, "Generated.*")
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
            assert "Re-rolled: painted region." in settled_status(page, "Generated.*Re-rolled.*")
    finally:
        demo.close()
