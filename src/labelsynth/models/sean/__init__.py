from .configuration_sean import SEAN_PRESETS, STYLE_BLOCKS, SEANConfig
from .modeling_sean import SEANDiscriminator, SEANGenerator, SEANModel, SEANOutput, SEANStyleEncoder
from .styles import SEANStyles

__all__ = ["SEAN_PRESETS", "STYLE_BLOCKS", "SEANConfig", "SEANDiscriminator", "SEANGenerator", "SEANModel",
           "SEANOutput", "SEANStyleEncoder", "SEANStyles"]
