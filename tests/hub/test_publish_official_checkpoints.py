"""``utils/publish_official_checkpoints.py`` against the loopback fake Hub: the dry run reads and reports without
writing, the real run uploads the converted folder with its card, and the resolver then takes the Hub copy.

The converted folder is put in the labelsynth cache by the `converted_cache` fixture (conftest.py), as a previous
`fetch_release` would have left it; the release download itself is tested in ``test_releases.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fake_hub import FakeHub, fake_hub_fixture  # noqa: F401  (the `fake_hub` fixture)

from labelsynth.hub.fetch import MARKER_FILE

REPO_ROOT = Path(__file__).resolve().parents[2]


def _publish(hub: FakeHub, *args: str) -> str:
    code = f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("publish", {str(REPO_ROOT / "utils" / "publish_official_checkpoints.py")!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        raise SystemExit(module.main({list(args)!r}))
    """
    return hub.run_python(code, timeout=300).stdout


def test_dry_run_reports_and_writes_nothing_then_push_and_resolve(fake_hub, converted_cache: Path) -> None:
    out = _publish(fake_hub, "spade-ade20k", "--dry-run")
    assert "spade-ade20k: " in out and "loaded strictly, all finite" in out
    assert "labelsynth/spade-ade20k (new): 5 file(s) to upload" in out, out
    assert "labelsynth/spade-ade20k" not in fake_hub.store
    assert not any(method in {"POST", "PUT"} for method, _ in fake_hub.requests)

    out = _publish(fake_hub, "spade-ade20k")
    assert "pushed to labelsynth/spade-ade20k" in out
    stored = fake_hub.store["labelsynth/spade-ade20k"]
    folder = converted_cache / "models" / "spade-ade20k"
    assert {name: data for name, data in stored.items() if name != ".gitattributes"} == {
        p.name: p.read_bytes() for p in folder.iterdir()}
    card = stored["README.md"].decode()
    assert "CC BY-NC-SA 4.0" in card and "drive.google.com" in card
    assert json.loads(stored[MARKER_FILE])["published_in"] == "README.md of https://github.com/NVlabs/SPADE"

    out = _publish(fake_hub, "spade-ade20k", "--dry-run")
    assert "labelsynth/spade-ade20k (exists): 0 file(s) to upload" in out

    # A user with an empty cache now gets the Hub copy, not the original release.
    resolved = fake_hub.run_python(f"""
        import os
        os.environ["LABELSYNTH_CACHE"] = {str(converted_cache.parent / "empty-cache")!r}
        from labelsynth import SPADEModel
        from labelsynth.hub.resolve import resolve_model
        path = resolve_model("spade-ade20k")
        SPADEModel.from_pretrained("spade-ade20k")
        print("RESOLVED", path)
    """).stdout
    line = next(row for row in resolved.splitlines() if row.startswith("RESOLVED"))
    assert "models--labelsynth--spade-ade20k" in line


def test_unknown_ids_are_refused(fake_hub) -> None:
    code = f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("publish", {str(REPO_ROOT / "utils" / "publish_official_checkpoints.py")!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print("STATUS", module.main(["spade-cityscapes-tiny"]))
    """
    proc = fake_hub.run_python(code)
    assert "STATUS 2" in proc.stdout and "no official release for: spade-cityscapes-tiny" in proc.stderr
