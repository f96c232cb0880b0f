from .configuration_pix2pix import PIX2PIX_PRESETS, Pix2PixConfig
from .modeling_pix2pix import Pix2PixDiscriminator, Pix2PixModel, UNetGenerator

__all__ = ["PIX2PIX_PRESETS", "Pix2PixConfig", "Pix2PixDiscriminator", "Pix2PixModel", "UNetGenerator"]
