from .configuration_spade import SPADE_PRESETS, SPADEConfig
from .modeling_spade import SPADEDiscriminator, SPADEGenerator, SPADEModel, SPADEStyleEncoder

__all__ = ["SPADE_PRESETS", "SPADEConfig", "SPADEDiscriminator", "SPADEGenerator", "SPADEModel", "SPADEStyleEncoder"]
