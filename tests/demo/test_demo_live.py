"""Live mode of the demo (generate on every canvas edit) and the status line's time per image."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file

from labelsynth import get_label_space
from labelsynth.demo import app as demo_app
from labelsynth.demo import build_demo
from labelsynth.examples import example_paths

CITY = get_label_space("cityscapes")
STATUS = re.compile(r"Generated 1 image of 128x64: [1-9]\d* ms per image\.( .*)?")


def _component(demo: gr.Blocks, elem_id: str) -> Any:
    return next(c for c in demo.blocks.values() if getattr(c, "elem_id", None) == elem_id)


@pytest.fixture()
def live_demo(city_model: Path) -> Iterator[gr.Blocks]:
    demo = build_demo(city_model, live=True)
    yield demo
    demo.close()


def test_live_box_starts_ticked_for_fast_models_only(city_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    measured = []
    real = demo_app._Demo.seconds_per_image
    monkeypatch.setattr(demo_app._Demo, "seconds_per_image",
                        lambda self, *args: measured.append(real(self, *args)) or measured[-1])
    build_demo(city_model).close()
    assert measured and measured[0] is not None and measured[0] > 0  # a real generation was timed
    for seconds, live, expected in ((0.1, None, True), (demo_app.LIVE_SECONDS_PER_IMAGE * 4, None, False),
                                    (None, None, False), (None, True, True), (0.1, False, False)):
        monkeypatch.setattr(demo_app._Demo, "seconds_per_image", lambda self, *args, s=seconds: s)
        demo = build_demo(city_model, live=live)
        try:
            assert _component(demo, "live").value is expected
        finally:
            demo.close()


def test_canvas_edits_generate_while_live(live_demo: gr.Blocks) -> None:
    editor = _component(live_demo, "editor")
    (event,) = [fn for fn in live_demo.fns.values() if fn.name == "live_from_canvas"]
    assert event.targets == [(editor._id, "input")] and event.trigger_mode == "always_last"
    assert [getattr(c, "elem_id", None) for c in event.outputs] == ["result", "label_view", "status"]
    reference = next(c.value for c in live_demo.blocks.values() if isinstance(c, gr.State)
                     and isinstance(c.value, dict) and "label" in c.value)
    canvas = CITY.colorize(reference["label"])
    canvas[5:20, 10:60] = CITY.palette[26]  # paint a car
    value = {"background": canvas, "layers": [], "composite": canvas}
    extra = [None] * (len(event.inputs) - 5)  # live, editor, reference, ..., seed, variations

    gallery, label_view, status = event.fn(True, value, reference, *extra, 0, 1)
    assert STATUS.fullmatch(status), status
    assert (np.asarray(label_view)[5:20, 10:60] == CITY.palette[26]).all()
    assert np.asarray(gallery[0][0]).shape == (64, 128, 3)
    # Unticked: an edit changes nothing (the outputs keep the last result).
    assert event.fn(False, value, reference, *extra, 0, 1) == (gr.skip(),) * 3


def test_status_states_the_time_per_image(live_demo: gr.Blocks) -> None:
    _, url, _ = live_demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    client = Client(url, verbose=False)
    label, _ = example_paths(0)
    _, _, status = client.predict(handle_file(str(label)), None, 0, 1, api_name="/generate_from_file")
    assert STATUS.fullmatch(status), status
    assert all("live" not in name for name in client.view_api(print_info=False, return_format="dict")["named_endpoints"])
