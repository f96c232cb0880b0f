"""`import labelsynth` is cheap and registers with transformers whenever transformers arrives, in any import order.

Each case runs in a fresh interpreter (what is imported is the point), offline, on the built-in model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=False, capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_import_labelsynth_imports_neither_torch_nor_transformers() -> None:
    out = _run("""
        import sys
        import labelsynth
        import labelsynth.label_spaces, labelsynth.hub.resolve, labelsynth.cli
        print(sorted(m for m in ("torch", "transformers", "gradio", "datasets") if m in sys.modules))
        print(labelsynth.get_label_space("cityscapes").name)
    """)
    assert out.splitlines()[0] == "[]" and "cityscapes" in out


@pytest.mark.parametrize("order", ["labelsynth_first", "transformers_first", "submodule_first"])
def test_pipeline_task_default_model_and_registered_ids_in_any_import_order(order: str) -> None:
    imports = {
        "labelsynth_first": "import labelsynth\nfrom transformers import pipeline",
        "transformers_first": "import transformers\nimport labelsynth\nfrom transformers import pipeline",
        "submodule_first": "from labelsynth.models.spade import SPADEModel\nfrom transformers import pipeline",
    }[order]
    out = _run(imports + """
from labelsynth.examples import BUILTIN_MODEL, example_paths
label, instance = example_paths(0)
default = pipeline("label-to-image")(str(label), instance_map=str(instance), seed=3, output_type="np")
by_id = pipeline("label-to-image", model="spade-cityscapes-tiny")(str(label), instance_map=str(instance), seed=3,
                                                                  output_type="np")
by_folder = pipeline("label-to-image", model=str(BUILTIN_MODEL))(str(label), instance_map=str(instance), seed=3,
                                                                 output_type="np")
assert (default == by_folder).all() and (by_id == by_folder).all(), "the three ways differ"
from transformers import AutoModel
print(type(AutoModel.from_pretrained(str(BUILTIN_MODEL))).__name__, default.shape)
""")
    assert "SPADEModel (128, 256, 3)" in out


def test_registered_ids_in_from_pretrained_and_a_clear_error_for_unconverted_ones() -> None:
    out = _run("""
        from labelsynth import LabelMapProcessor, SPADEModel
        from labelsynth.hub.resolve import ModelNotAvailableError
        model = SPADEModel.from_pretrained("spade-cityscapes-tiny")
        processor = LabelMapProcessor.from_pretrained("labelsynth/spade-cityscapes-tiny")
        print(model.config.label_space, processor.label_space.name)
        try:
            SPADEModel.from_pretrained("spade-ade20k")
        except ModelNotAvailableError as err:
            print("ERROR", err)
    """)
    assert "cityscapes cityscapes" in out
    error = out.split("ERROR ", 1)[1]
    assert "spade-ade20k" in error and "NVlabs/SPADE" in error and "labelsynth download spade-ade20k --url" in error
