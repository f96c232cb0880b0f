"""labelsynth: semantic image synthesis (label map -> image) with a Hugging Face-style API.

``import labelsynth`` is cheap: it imports neither torch nor transformers (the ``labelsynth`` command answers
``--help`` and argument errors without them). The public classes below load on first use, and the models are
registered with transformers' Auto* classes and the "label-to-image" pipeline task as soon as transformers is
imported (before or after labelsynth), so

```python
import labelsynth
from transformers import pipeline

pipe = pipeline("label-to-image")                                   # the built-in model, offline
pipe = pipeline("label-to-image", model="spade-cityscapes-tiny")    # a registered id, a folder or a Hub id
```

work as with any transformers model (see `labelsynth.registration`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import registration

__version__ = "0.1.0"

# Public name -> the module that defines it (imported on first access).
_EXPORTS = {
    "LabelSynthConfig": ".configuration_utils",
    "LabelSpace": ".label_spaces",
    "get_label_space": ".label_spaces",
    "list_label_spaces": ".label_spaces",
    "register_label_space": ".label_spaces",
    "LabelSynthPreTrainedModel": ".modeling_utils",
    "LabelToImageOutput": ".modeling_utils",
    "CoCosNetConfig": ".models.cocosnet",
    "CoCosNetDiscriminator": ".models.cocosnet",
    "CoCosNetModel": ".models.cocosnet",
    "CRNConfig": ".models.crn",
    "CRNModel": ".models.crn",
    "Pix2PixConfig": ".models.pix2pix",
    "Pix2PixDiscriminator": ".models.pix2pix",
    "Pix2PixModel": ".models.pix2pix",
    "Pix2PixHDConfig": ".models.pix2pixhd",
    "Pix2PixHDDiscriminator": ".models.pix2pixhd",
    "Pix2PixHDModel": ".models.pix2pixhd",
    "SEANConfig": ".models.sean",
    "SEANDiscriminator": ".models.sean",
    "SEANModel": ".models.sean",
    "SEANStyles": ".models.sean",
    "OASISConfig": ".models.oasis",
    "OASISDiscriminator": ".models.oasis",
    "OASISModel": ".models.oasis",
    "SPADEConfig": ".models.spade",
    "SPADEDiscriminator": ".models.spade",
    "SPADEModel": ".models.spade",
    "MobileSPADEConfig": ".models.spade.configuration_mobile_spade",
    "MobileSPADEModel": ".models.spade.modeling_mobile_spade",
    "LabelToImagePipeline": ".pipelines.label_to_image",
    "ControlNetSegPipeline": ".diffusion",
    "map_label_space": ".label_space_mappings",
    "LabelMapProcessor": ".processing",
    "pipeline": ".registration",
    "resolve_model": ".hub.resolve",
    "segment": ".segmentation",
    "SegmentationResult": ".segmentation",
}

__all__ = [
    "CRNConfig",
    "CRNModel",
    "CoCosNetConfig",
    "CoCosNetDiscriminator",
    "CoCosNetModel",
    "LabelMapProcessor",
    "LabelSpace",
    "LabelSynthConfig",
    "LabelSynthPreTrainedModel",
    "LabelToImageOutput",
    "LabelToImagePipeline",
    "MobileSPADEConfig",
    "MobileSPADEModel",
    "OASISConfig",
    "OASISDiscriminator",
    "OASISModel",
    "Pix2PixConfig",
    "Pix2PixDiscriminator",
    "Pix2PixHDConfig",
    "Pix2PixHDDiscriminator",
    "Pix2PixHDModel",
    "Pix2PixModel",
    "SEANConfig",
    "SEANDiscriminator",
    "SEANModel",
    "SEANStyles",
    "SPADEConfig",
    "SPADEDiscriminator",
    "SPADEModel",
    "SegmentationResult",
    "get_label_space",
    "list_label_spaces",
    "pipeline",
    "register_label_space",
    "resolve_model",
    "segment",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .configuration_utils import LabelSynthConfig
    from .hub.resolve import resolve_model
    from .label_spaces import LabelSpace, get_label_space, list_label_spaces, register_label_space
    from .modeling_utils import LabelSynthPreTrainedModel, LabelToImageOutput
    from .models.cocosnet import CoCosNetConfig, CoCosNetDiscriminator, CoCosNetModel
    from .models.crn import CRNConfig, CRNModel
    from .models.oasis import OASISConfig, OASISDiscriminator, OASISModel
    from .models.pix2pix import Pix2PixConfig, Pix2PixDiscriminator, Pix2PixModel
    from .models.pix2pixhd import Pix2PixHDConfig, Pix2PixHDDiscriminator, Pix2PixHDModel
    from .models.sean import SEANConfig, SEANDiscriminator, SEANModel, SEANStyles
    from .models.spade import SPADEConfig, SPADEDiscriminator, SPADEModel
    from .models.spade.configuration_mobile_spade import MobileSPADEConfig
    from .models.spade.modeling_mobile_spade import MobileSPADEModel
    from .pipelines.label_to_image import LabelToImagePipeline
    from .processing import LabelMapProcessor
    from .registration import pipeline


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    registration.register_if_pending()  # that import may have brought transformers in
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


registration.activate()
