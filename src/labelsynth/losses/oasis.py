"""OASIS's training objectives (Schönfeld, Sushko et al., ICLR 2021, Sec. 3): the class-balanced N+1 cross-entropy
of its segmentation discriminator and the LabelMix consistency regulariser.

The discriminator labels every pixel with one of N+1 classes: index 0 is "fake", index c + 1 is label channel c
(channel 0 being "don't care"). Its loss on real images, and the generator's loss, weight each pixel's
cross-entropy by the inverse frequency of its label class in the batch; the "fake" term is a plain mean.

All functions take the label as OASIS *channel indices* (`LongTensor[B, H, W]` in ``0 .. N - 1``, e.g.
`OASISModel.prepare_label_channels(label_map)`), not raw dataset ids.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_channels(channels: torch.Tensor, num_classes: int) -> None:
    if channels.dim() != 3 or channels.dtype != torch.long:
        raise ValueError(f"channels must be a LongTensor [B, H, W] of label channel indices, got {channels.dtype} "
                         f"{tuple(channels.shape)}")
    if channels.numel() and (int(channels.min()) < 0 or int(channels.max()) >= num_classes):
        raise ValueError(f"channels must lie in 0..{num_classes - 1} (the label channels of the model), got "
                         f"{int(channels.min())}..{int(channels.max())}; map raw ids with "
                         "OASISModel.prepare_label_channels first")


def class_balancing_weights(channels: torch.Tensor, num_classes: int, dontcare: bool = True) -> torch.Tensor:
    """Per-class weights of OASIS's class-balanced loss, from the pixel counts of this batch.

    ``weight[c] = (B * H * W) / (count[c] * P)``, with ``P`` the number of classes present in the batch; classes
    absent from the batch get 0, and so does the don't-care channel 0 when `dontcare` (its pixels do not count in
    ``P`` either). Every present class thus carries the same total weight, ``B * H * W / P``.

    Args:
        channels (`LongTensor[B, H, W]`): label channel indices.
        num_classes: number of label channels N.
        dontcare: channel 0 is "don't care" (True for every OASIS preset).

    Returns:
        `FloatTensor[N]`.
    """
    _check_channels(channels, num_classes)
    counts = torch.bincount(channels.flatten(), minlength=num_classes).float()
    if dontcare:
        counts[0] = 0
    present = counts > 0
    num_present = present.sum()
    weights = channels.numel() / (counts * num_present.clamp(min=1))
    return torch.where(present, weights, torch.zeros_like(weights))


def class_balancing_map(channels: torch.Tensor, num_classes: int, dontcare: bool = True) -> torch.Tensor:
    """The weight of every pixel's label class (`class_balancing_weights`): `FloatTensor[B, H, W]`."""
    return class_balancing_weights(channels, num_classes, dontcare)[channels]


def oasis_n1_loss(logits: torch.Tensor, channels: torch.Tensor, target_is_real: bool, balance: bool = True,
                  dontcare: bool = True) -> torch.Tensor:
    """OASIS's N+1 cross-entropy of the discriminator's per-pixel logits.

    Real target (D on real images, and G's loss on generated ones): class ``channel + 1`` at every pixel, each
    pixel's cross-entropy weighted by `class_balancing_map` (when `balance`; don't-care pixels weigh 0), averaged
    over all B * H * W pixels. Fake target (D on generated images): class 0 at every pixel, a plain mean.

    Args:
        logits (`FloatTensor[B, N + 1, H, W]`): discriminator output.
        channels (`LongTensor[B, H, W]`): label channel indices of the batch.
        target_is_real: real (label) targets, or the "fake" class.
        balance: class balancing of the real term (the original's default; `--no_balancing_inloss` turns it off).
        dontcare: channel 0 is "don't care" (weight 0 when balancing).

    Returns:
        0-dim tensor.
    """
    if logits.dim() != 4 or logits.shape[0] != channels.shape[0] or logits.shape[-2:] != channels.shape[-2:]:
        raise ValueError(f"logits {tuple(logits.shape)} must be [B, N + 1, H, W] for channels "
                         f"{tuple(channels.shape)} [B, H, W]")
    num_classes = logits.shape[1] - 1
    _check_channels(channels, num_classes)
    if not target_is_real:
        return F.cross_entropy(logits, torch.zeros_like(channels))
    loss = F.cross_entropy(logits, channels + 1, reduction="none")
    if balance:
        loss = loss * class_balancing_map(channels, num_classes, dontcare).to(loss.dtype)
    return loss.mean()


def labelmix_mask(channels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """LabelMix's binary mask: one random bit per class present in the batch, shared by all its pixels.

    The bits are drawn in ascending class order with one `torch.randint(0, 2, (n,))` call (the same random stream as
    the original's one draw per class). As in the original, which writes each class's bit into the class-id map in
    that order, don't-care pixels (class 0) that drew 1 then take class 1's bit when class 1 is present.

    Args:
        channels (`LongTensor[B, H, W]`): label channel indices.
        generator: source of the bits (on `channels`' device); the global RNG when None.

    Returns:
        `FloatTensor[B, 1, H, W]` of 0 / 1 (1: take the real image).
    """
    classes, index = torch.unique(channels, sorted=True, return_inverse=True)
    device = generator.device if generator is not None else channels.device
    bits = torch.randint(0, 2, (classes.numel(),), generator=generator, device=device).to(channels.device)
    if classes.numel() > 1 and int(classes[0]) == 0 and int(classes[1]) == 1 and int(bits[0]) == 1:
        bits[0] = bits[1]
    return bits[index].float()[:, None]


def labelmix_images(mask: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The LabelMix image `mask * real + (1 - mask) * fake` (`mask [B, 1, H, W]`, images `[B, 3, H, W]`)."""
    return mask * real + (1 - mask) * fake


def labelmix_loss(mask: torch.Tensor, logits_mixed: torch.Tensor, logits_fake: torch.Tensor,
                  logits_real: torch.Tensor) -> torch.Tensor:
    """LabelMix consistency: the MSE between D(mixed image) and the same mix of D(real) and D(fake).

    ``mean((mask * D(real) + (1 - mask) * D(fake) - D(mixed))^2)`` over all logits; gradients flow into all three
    discriminator outputs. The training module multiplies it by ``lambda_labelmix`` (10; 5 for Cityscapes).

    Args:
        mask (`FloatTensor[B, 1, H, W]`): `labelmix_mask`.
        logits_mixed, logits_fake, logits_real (`FloatTensor[B, N + 1, H, W]`): D on the mixed, fake, real images.

    Returns:
        0-dim tensor.
    """
    if not logits_mixed.shape == logits_fake.shape == logits_real.shape:
        raise ValueError(f"the three logits must have one shape, got {tuple(logits_mixed.shape)}, "
                         f"{tuple(logits_fake.shape)}, {tuple(logits_real.shape)}")
    return F.mse_loss(labelmix_images(mask, logits_real, logits_fake), logits_mixed)
