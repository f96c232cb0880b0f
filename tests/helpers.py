"""Helpers shared by the tests (importable because pytest puts this folder, the conftest's, on sys.path)."""

import copy
import math
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from labelsynth import LabelMapProcessor, SPADEConfig, SPADEModel
from labelsynth.layers import winograd
from labelsynth.layers.spectral_norm import SpectralNorm


def randomize_weights(model: torch.nn.Module, seed: int = 0) -> None:
    """Variance-preserving random weights: the paper init (gain 0.02) makes an untrained generator output flat grey,
    which would hide whether an input (instance edges, style, seed) reached the image."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=generator) / math.sqrt(param[0].numel()))
        # Spectral norm's u, v come from the global RNG at construction and are not updated in eval mode: re-seed them
        # and converge them on the new weights, so that the same seed gives the same model in every process.
        for module in model.modules():
            if not parametrize.is_parametrized(module, "weight"):
                continue
            weights = module.parametrizations.weight
            for norm in weights:
                if isinstance(norm, SpectralNorm):
                    matrix = norm._matrix(weights.original)
                    u = F.normalize(torch.randn(matrix.shape[0], generator=generator).to(matrix), dim=0)
                    for _ in range(15):
                        v = F.normalize(matrix.t() @ u, dim=0)
                        u = F.normalize(matrix @ v, dim=0)
                    norm._u.copy_(u)
                    norm._v.copy_(v)


def save_tiny_model(folder: Path, config: SPADEConfig, seed: int = 0) -> SPADEModel:
    """A small random SPADE model + its processor saved as a model folder; returns the model (eval mode)."""
    model = SPADEModel(config).eval()
    randomize_weights(model, seed)
    model.save_pretrained(folder)
    height, width = config.image_size
    LabelMapProcessor(label_space=config.label_space, size={"height": height, "width": width}).save_pretrained(folder)
    return model


def save_model_folder(folder: Path, model: torch.nn.Module) -> Path:
    """Save any labelsynth model with a processor for its label space and image size, as a pipeline-ready folder."""
    model.save_pretrained(folder)
    height, width = model.config.image_size
    LabelMapProcessor(label_space=model.config.label_space, size={"height": height, "width": width}).save_pretrained(
        folder)
    return folder


def assert_fast_training_matches_dense(model: torch.nn.Module, forward: Any) -> None:
    """A generator with `fast_training` (its SPADE layers on the fast path) trains as on the dense one-hot map:
    same images and gradients in a train-mode step, same images and BatchNorm statistics in a train-mode forward
    without gradients (the fake a discriminator step regenerates). `forward(model)` returns the images; each side
    starts from the same state (spectral norm's power iteration and the statistics advance with every call).

    In float64: in float32 the two sums' rounding differences grow through a random deep network's backward pass
    (train-mode BatchNorm of tiny batches) to ~1e-4 of the largest gradient, too close to what a real error gives."""
    results = []
    for fast in (True, False):
        copy_ = copy.deepcopy(model).double().train()
        copy_.fast_training = fast
        images = forward(copy_)
        (images * torch.linspace(-1, 1, images.numel()).view_as(images)).sum().backward()
        grads = {name: p.grad for name, p in copy_.named_parameters()}
        with torch.no_grad():
            regenerated = forward(copy_)
        stats = {name: b for name, b in copy_.named_buffers() if "running" in name}
        results.append((images.detach(), grads, regenerated, stats))
    (images, grads, regenerated, stats), (dense_images, dense_grads, dense_regenerated, dense_stats) = results
    torch.testing.assert_close(images, dense_images, atol=1e-10, rtol=1e-10)
    assert sum(g is not None and bool(g.abs().max() > 0) for g in dense_grads.values()) > len(dense_grads) // 2
    # Float noise scales with the largest gradients: a bias ahead of a train-mode BatchNorm has a true gradient of 0,
    # computed as the cancellation of terms of that size.
    noise = 1e-10 * max(g.abs().max().item() for g in dense_grads.values() if g is not None)
    for name, grad in dense_grads.items():
        if grad is None:
            assert grads[name] is None, name
        else:
            torch.testing.assert_close(grads[name], grad, atol=noise, rtol=1e-8, msg=name)
    # the fast path builds its tables in float32
    torch.testing.assert_close(regenerated, dense_regenerated, atol=1e-4, rtol=1e-4)
    assert stats and stats.keys() == dense_stats.keys()
    for name, value in dense_stats.items():
        torch.testing.assert_close(stats[name], value, atol=1e-5, rtol=1e-5, msg=name)


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (for servers and `accelerate launch --main_process_port`: tests run
    in parallel workers, so fixed ports would collide)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_demo(demo: Any) -> str:
    """Start a Gradio app on 127.0.0.1 without blocking and return its URL. After starting the server, Gradio checks
    that it answers within a few seconds and raises "localhost is not accessible" otherwise; on a loaded CI machine
    (two test workers on two cores) that check has timed out once, so it is retried."""
    def launch() -> str:
        return demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)[1]

    for _ in range(2):
        try:
            return launch()
        except ValueError as error:
            if "localhost is not accessible" not in str(error):
                raise
            demo.close()
    return launch()


def force_winograd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route every eligible 3x3 inference conv through Winograd F(4x4, 3x3), as the released-size models do for their
    wide layers (the tiny test models are below `winograd_pays`' threshold)."""
    monkeypatch.setattr(winograd, "winograd_pays", lambda *args: True)


def require_chromium() -> str | None:
    """The system Chromium for a browser test. Skips the test where there is none (or no Playwright), except in CI
    (``LABELSYNTH_REQUIRE_BROWSER=1``), where the browser test must run and a missing browser fails it."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if os.environ.get("LABELSYNTH_REQUIRE_BROWSER") != "1":
        pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
        if chromium is None:
            pytest.skip("no system chromium (apt-get install chromium)")
    return chromium


# Quiet, offline, sandbox-free headless Chromium (the CI container has no user namespaces and no network).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium_browser() -> Iterator[Any]:
    """A headless system Chromium driven by Playwright (see `require_chromium` for when it skips)."""
    chromium = require_chromium()
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Any, url: str, height: int = 1200) -> Any:
    """A new page on `url`, loaded, with a 30 s default timeout (generous: CI runs on two busy cores)."""
    page = browser.new_page(viewport={"width": 1400, "height": height})
    page.set_default_timeout(30_000)
    page.goto(url, wait_until="load")
    return page


def settled_status(page: Any, pattern: str, selector: str = "#status") -> str:
    """The text of a demo's status box once it fully matches the regex `pattern`. While an event is pending,
    Gradio's progress timer ("0.1s") shares the box with the text, so reading it at once races the update."""
    page.wait_for_function(
        "([sel, p]) => new RegExp('^(?:' + p + ')$', 's').test(document.querySelector(sel).innerText.trim())",
        arg=[selector, pattern])
    return page.inner_text(selector).strip()
