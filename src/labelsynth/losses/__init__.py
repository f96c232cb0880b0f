"""Training objectives shared by the model families: adversarial (hinge / least squares / original / Wasserstein),
discriminator feature matching, VGG-19 perceptual, the VAE KL term, CRN's diversity loss and CoCosNet's
contextual loss, OASIS's class-balanced N+1 cross-entropy and LabelMix.

Loss weights (``lambda_feat``, ``lambda_vgg``, ``lambda_kld``, ...) are applied by the per-family training modules.
"""

from .adversarial import GAN_MODES, DiscriminatorOutputs, GANLoss, final_logits
from .contextual import COCOSNET_CONTEXTUAL_WEIGHTS, cocosnet_contextual_loss, contextual_loss
from .diversity import CRN_LAYER_WEIGHTS, CRN_VGG_LAYERS, CRNPerceptualLoss, diversity_reduction
from .feature_matching import feature_matching_loss
from .kl import kl_divergence
from .oasis import (
    class_balancing_map,
    class_balancing_weights,
    labelmix_images,
    labelmix_loss,
    labelmix_mask,
    oasis_n1_loss,
)
from .perceptual import SPADE_VGG_LAYERS, SPADE_VGG_WEIGHTS, VGGPerceptualLoss

__all__ = [
    "COCOSNET_CONTEXTUAL_WEIGHTS",
    "CRN_LAYER_WEIGHTS",
    "CRN_VGG_LAYERS",
    "GAN_MODES",
    "SPADE_VGG_LAYERS",
    "SPADE_VGG_WEIGHTS",
    "CRNPerceptualLoss",
    "DiscriminatorOutputs",
    "GANLoss",
    "VGGPerceptualLoss",
    "class_balancing_map",
    "class_balancing_weights",
    "cocosnet_contextual_loss",
    "contextual_loss",
    "diversity_reduction",
    "feature_matching_loss",
    "final_logits",
    "kl_divergence",
    "labelmix_images",
    "labelmix_loss",
    "labelmix_mask",
    "oasis_n1_loss",
]
