from .configuration_oasis import OASIS_PRESETS, OASISConfig
from .modeling_oasis import OASISDiscriminator, OASISGenerator, OASISModel

__all__ = ["OASIS_PRESETS", "OASISConfig", "OASISDiscriminator", "OASISGenerator", "OASISModel"]
