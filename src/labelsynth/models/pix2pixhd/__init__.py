from .configuration_pix2pixhd import PIX2PIXHD_PRESETS, Pix2PixHDConfig
from .modeling_pix2pixhd import (
    Pix2PixHDDiscriminator,
    Pix2PixHDEncoder,
    Pix2PixHDGenerator,
    Pix2PixHDModel,
    Pix2PixHDOutput,
)

__all__ = ["PIX2PIXHD_PRESETS", "Pix2PixHDConfig", "Pix2PixHDDiscriminator", "Pix2PixHDEncoder", "Pix2PixHDGenerator",
           "Pix2PixHDModel", "Pix2PixHDOutput"]
