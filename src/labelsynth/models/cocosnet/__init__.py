from .configuration_cocosnet import COCOSNET_PRESETS, CoCosNetConfig
from .modeling_cocosnet import CoCosNetDiscriminator, CoCosNetModel, CoCosNetOutput

__all__ = ["COCOSNET_PRESETS", "CoCosNetConfig", "CoCosNetDiscriminator", "CoCosNetModel", "CoCosNetOutput"]
