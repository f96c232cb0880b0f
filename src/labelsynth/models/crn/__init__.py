from .configuration_crn import CRN_PRESETS, CRNConfig
from .modeling_crn import CRNGenerator, CRNModel, CRNOutput, CRNRefinementModule

__all__ = ["CRN_PRESETS", "CRNConfig", "CRNGenerator", "CRNModel", "CRNOutput", "CRNRefinementModule"]
