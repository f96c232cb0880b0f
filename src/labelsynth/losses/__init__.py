"""Training objectives shared by the model families: adversarial (hinge / least squares / original / Wasserstein),
discriminator feature matching, VGG-19 perceptual and the VAE KL term.

Loss weights (``lambda_feat``, ``lambda_vgg``, ``lambda_kld``, ...) are applied by the per-family training modules.
"""

from .adversarial import GAN_MODES, DiscriminatorOutputs, GANLoss, final_logits
from .feature_matching import feature_matching_loss
from .kl import kl_divergence
from .perceptual import SPADE_VGG_LAYERS, SPADE_VGG_WEIGHTS, VGGPerceptualLoss

__all__ = [
    "GAN_MODES",
    "SPADE_VGG_LAYERS",
    "SPADE_VGG_WEIGHTS",
    "DiscriminatorOutputs",
    "GANLoss",
    "VGGPerceptualLoss",
    "feature_matching_loss",
    "final_logits",
    "kl_divergence",
]
