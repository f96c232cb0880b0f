"""labelsynth: semantic image synthesis (label map -> image) with a Hugging Face-style API.

Importing the package registers every model with transformers' Auto* classes and the "label-to-image" pipeline
task, so `transformers.pipeline("label-to-image", model=...)` works after `import labelsynth`.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_utils import LabelSynthConfig
from .label_spaces import LabelSpace, get_label_space, list_label_spaces, register_label_space
from .modeling_utils import LabelSynthPreTrainedModel, LabelToImageOutput
from .models.cocosnet import CoCosNetConfig, CoCosNetDiscriminator, CoCosNetModel
from .models.crn import CRNConfig, CRNModel
from .models.pix2pix import Pix2PixConfig, Pix2PixDiscriminator, Pix2PixModel
from .models.pix2pixhd import Pix2PixHDConfig, Pix2PixHDDiscriminator, Pix2PixHDModel
from .models.sean import SEANConfig, SEANDiscriminator, SEANModel, SEANStyles
from .models.spade import SPADEConfig, SPADEDiscriminator, SPADEModel
from .pipelines.label_to_image import LabelToImagePipeline
from .processing import LabelMapProcessor

__version__ = "0.1.0"

MODEL_CLASSES = {
    Pix2PixConfig: Pix2PixModel,
    Pix2PixHDConfig: Pix2PixHDModel,
    CRNConfig: CRNModel,
    SPADEConfig: SPADEModel,
    SEANConfig: SEANModel,
    CoCosNetConfig: CoCosNetModel,
}


def _register() -> None:
    for config_class, model_class in MODEL_CLASSES.items():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
        AutoImageProcessor.register(config_class, image_processor_classes={"pil": LabelMapProcessor}, exist_ok=True)
    PIPELINE_REGISTRY.register_pipeline("label-to-image", pipeline_class=LabelToImagePipeline, pt_model=AutoModel,
                                        type="image")


_register()

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
    "get_label_space",
    "list_label_spaces",
    "register_label_space",
]
