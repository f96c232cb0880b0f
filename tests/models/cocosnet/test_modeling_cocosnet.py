"""CoCosNet model: sizes of the released networks, both test modes, the fast path, input errors, and the soft
warping on real ADE20K samples, the memory of a 256x256 inference."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import force_winograd, randomize_weights
from PIL import Image

from labelsynth import CoCosNetConfig, CoCosNetDiscriminator, CoCosNetModel
from labelsynth.modeling_utils import one_hot_channels

TINY = {"ngf": 8, "ndf": 8, "spade_hidden_nc": 16, "image_size": (64, 64)}


def tiny_model(seed: int = 0, **overrides) -> CoCosNetModel:
    model = CoCosNetModel(CoCosNetConfig(**{**TINY, **overrides})).eval()
    randomize_weights(model, seed)
    with torch.no_grad():
        model.generator.attn.gamma.fill_(0.5)  # 0 at init would hide the attention branch
    return model


def blocky_labels(batch: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 151, (batch, 1, 8, 8), generator=generator).float()
    return F.interpolate(coarse, size=(size, size)).long()[:, 0]


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_equal_the_original_networks() -> None:
    with torch.device("meta"):
        model = CoCosNetModel(CoCosNetConfig.for_dataset("ade20k"))
        netd = CoCosNetDiscriminator(CoCosNetConfig.for_dataset("ade20k"))
    count = lambda module: sum(p.numel() for p in module.parameters())
    assert count(model.generator) == 96_664_260  # netG
    assert count(model.correspondence) == 59_315_716  # netCorr
    assert count(model.correspondence.label_adaptor) == 24_227_776
    assert count(model.correspondence.exemplar_adaptor) == 22_949_056
    assert count(netd) == 6_862_194 - 861_422  # netD without its unused segmentation decoder


def test_both_test_modes_and_noise_control() -> None:
    model = tiny_model()
    labels, exemplar_labels = blocky_labels(seed=0), blocky_labels(seed=1)
    exemplar = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        out = model(labels, exemplar=exemplar, exemplar_label_map=exemplar_labels, output_warped_label=True)
        again = model(labels, exemplar=exemplar, exemplar_label_map=exemplar_labels,
                      generator=torch.Generator().manual_seed(5))
        noise_a = model(labels, exemplar=exemplar, generator=torch.Generator().manual_seed(0))
        noise_b = model(labels, exemplar=exemplar, generator=torch.Generator().manual_seed(0))
        noise_c = model(labels, exemplar=exemplar, generator=torch.Generator().manual_seed(1))
        other_exemplar = model(labels, exemplar=-exemplar, exemplar_label_map=exemplar_labels)
    assert out.images.shape == out.warped_exemplar.shape == (2, 3, 64, 64)
    assert out.images.abs().max() <= 1 and out.images.std() > 0.05
    assert torch.equal(out.images, again.images)  # the exemplar label map mode draws no noise
    assert out.warped_exemplar_label.shape == (2, 151, 16, 16)
    torch.testing.assert_close(out.warped_exemplar_label.sum(1), torch.ones(2, 16, 16))  # soft class probabilities
    assert torch.equal(noise_a.images, noise_b.images) and not torch.equal(noise_a.images, noise_c.images)
    assert not torch.allclose(noise_a.images, out.images)  # noise_for_mask mode differs from the label mode
    assert (other_exemplar.images - out.images).abs().mean() > 1e-3  # the exemplar drives the output
    # explicit noise = the generator's draw
    noise = torch.randn(2, 151, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.01
    with torch.no_grad():
        explicit = model(labels, exemplar=exemplar, mask_noise=noise)
    torch.testing.assert_close(explicit.images, noise_a.images)


@pytest.mark.parametrize("overrides", [
    {},
    {"param_free_norm": "batch", "correlation_centering": "positions", "warp_upsampling": "bilinear",
     "adaptor_kernel_size": 4, "use_attention": False},
])
@pytest.mark.parametrize("winograd", [False, True])
def test_fast_path_equals_the_plain_path(overrides: dict, winograd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path computes the same function: the correspondence agrees to 1e-4; through the randomly weighted
    translation network (activations in the hundreds) float32 rounding grows, so the images are compared with the
    plain path's own float32 error against a float64 run."""
    if winograd:
        force_winograd(monkeypatch)
    model = CoCosNetModel(CoCosNetConfig(**{**TINY, "ngf": 16, "spade_hidden_nc": 32, **overrides})).eval()
    randomize_weights(model, 0)
    labels, exemplar_labels = blocky_labels(seed=2), blocky_labels(seed=3)
    exemplar = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    inputs = {"exemplar": exemplar, "exemplar_label_map": exemplar_labels, "output_warped_label": True,
              "output_correlation": True, "output_warp_cycle": True}
    with torch.no_grad():
        model.fast_inference = False
        plain = model(labels, **inputs)
        plain_noise = model(labels, exemplar=exemplar, generator=torch.Generator().manual_seed(0))
        model.fast_inference = True
        fast = model(labels, **inputs)
        fast_noise = model(labels, exemplar=exemplar, generator=torch.Generator().manual_seed(0))
        model.fast_inference = False
        exact = model.double()(labels, **{**inputs, "exemplar": exemplar.double()})
    torch.testing.assert_close(fast.correlation, plain.correlation, atol=2e-3, rtol=0)  # logits = cosine / 0.01
    torch.testing.assert_close(fast.warped_exemplar, plain.warped_exemplar, atol=1e-4, rtol=0)
    torch.testing.assert_close(fast.warped_exemplar_label, plain.warped_exemplar_label, atol=1e-4, rtol=0)
    torch.testing.assert_close(fast.warp_cycle, plain.warp_cycle, atol=1e-4, rtol=0)
    plain_error = (plain.images.double() - exact.images).abs().max()
    fast_error = (fast.images.double() - exact.images).abs().max()
    assert fast_error <= 5 * plain_error + 1e-5, (fast_error, plain_error)
    assert (fast_noise.images - plain_noise.images).abs().max() <= 10 * plain_error + 1e-5


def test_bad_inputs_are_explained() -> None:
    model = tiny_model()
    labels = blocky_labels(batch=1)
    exemplar = torch.zeros(1, 3, 64, 64)
    with pytest.raises(ValueError, match="needs an exemplar"):
        model(labels)
    with pytest.raises(ValueError, match="RGB image batch"):
        model(labels, exemplar=torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="resize it"):
        model(labels, exemplar=torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="divisible by 32"):
        model(blocky_labels(batch=1, size=48), exemplar=torch.zeros(1, 3, 48, 48))
    with pytest.raises(ValueError, match="at least 64"):  # a 1x1 starting grid cannot be reflection-padded
        model(blocky_labels(batch=1, size=32), exemplar=torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="exemplar_label_map has shape"):
        model(labels, exemplar=exemplar, exemplar_label_map=blocky_labels(batch=1, size=32))
    with pytest.raises(ValueError, match="outside the model's label range"):
        model(labels, exemplar=exemplar, exemplar_label_map=torch.full((1, 64, 64), 200))
    with pytest.raises(ValueError, match="mask_noise must have shape"):
        model(labels, exemplar=exemplar, mask_noise=torch.zeros(1, 151, 8, 8))
    with pytest.raises(ValueError, match="instance edges"):
        CoCosNetConfig(use_instance_edges=True)
    with pytest.raises(ValueError, match="divisible by 32"):
        CoCosNetConfig(image_size=(100, 64))
    with pytest.raises(ValueError, match="at least 64"):
        CoCosNetConfig(image_size=(32, 64))


def _load(samples_dir, stem: str, size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    label = Image.open(samples_dir / "CoCosNet_ade20k" / f"{stem}.png").resize((size, size), Image.NEAREST)
    image = Image.open(samples_dir / "CoCosNet_ade20k" / f"{stem}.jpg").convert("RGB").resize((size, size),
                                                                                              Image.BICUBIC)
    return (torch.from_numpy(np.array(label)).long()[None],
            torch.from_numpy(np.array(image)).float().permute(2, 0, 1)[None] / 127.5 - 1)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(4 / ((a - b) ** 2).mean()))


def test_self_warping_reproduces_the_input_on_real_samples(samples_dir) -> None:
    """With the exemplar equal to the input (and its label map), a correspondence that matches label patterns
    warps every region onto itself: the warped exemplar reproduces the photo's regions closely, much better than
    the photo's mean colour, and a different exemplar does not."""
    model = CoCosNetModel(CoCosNetConfig(ngf=8, spade_hidden_nc=16, image_size=(128, 128))).eval()
    corr = model.correspondence
    with torch.no_grad():
        for block in corr.blocks:  # identity residual blocks: conv weights 0, PReLU slope 1
            for conv in (block.conv1, block.conv2):
                conv.weight.zero_()
                conv.bias.zero_()
            block.prelu.weight.fill_(1.0)
        projection = torch.randn(corr.theta.out_channels, 151, generator=torch.Generator().manual_seed(0))
        for conv in (corr.theta, corr.phi):  # match on the label channels only, same projection both sides
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[:, -151:, 0, 0] = projection
    label, photo = _load(samples_dir, "validation/ADE_val_00001232")
    other_label, other_photo = _load(samples_dir, "training/ADE_train_00004996")
    with torch.no_grad():
        out = model(label, exemplar=photo, exemplar_label_map=label, output_warp_cycle=True)
        warped = out.warped_exemplar
        plain = model.correspondence(one_hot_channels(label, 151), photo, one_hot_channels(label, 151),
                                     output_warp_cycle=True)
        other = corr(one_hot_channels(label, 151), other_photo, one_hot_channels(other_label, 151)).warped_exemplar
    mean_colour = photo.mean((2, 3), keepdim=True).expand_as(photo)
    assert _psnr(warped, photo) > _psnr(mean_colour, photo) + 4
    assert _psnr(warped, photo) > _psnr(other, photo) + 4
    torch.testing.assert_close(warped, plain.warped_exemplar, atol=1e-4, rtol=0)
    # ... and the reverse correspondence carries it back onto the exemplar: the warp cycle closes.
    pooled = F.avg_pool2d(photo, 4)
    assert out.warp_cycle.shape == pooled.shape == (1, 3, 32, 32)
    assert _psnr(out.warp_cycle, pooled) > _psnr(pooled.mean((2, 3), keepdim=True).expand_as(pooled), pooled) + 4
    torch.testing.assert_close(out.warp_cycle, plain.warp_cycle, atol=1e-4, rtol=0)


_MEMORY_PROBE = """
import sys, torch
from labelsynth import CoCosNetConfig, CoCosNetModel


def status_mib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


torch.manual_seed(0)
model = CoCosNetModel(CoCosNetConfig(ngf=8, spade_hidden_nc=16, image_size=(256, 256))).eval()
model.fast_inference = sys.argv[1] == "fast"
g = torch.Generator().manual_seed(0)
labels = torch.nn.functional.interpolate(torch.randint(0, 151, (1, 1, 16, 16), generator=g).float(),
                                         size=(256, 256))[:, 0].long()
exemplar = torch.rand(1, 3, 256, 256, generator=g) * 2 - 1
with torch.no_grad():
    model(labels[:, :64, :64], exemplar=exemplar[..., :64, :64], exemplar_label_map=labels[:, :64, :64])
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets the peak (VmHWM) to the current resident size
    before = status_mib("VmRSS")
    model(labels, exemplar=exemplar, exemplar_label_map=labels)
print(status_mib("VmHWM") - before)
"""


@pytest.mark.parametrize(("path", "budget_mib"), [("fast", 400), ("plain", 900)])
def test_memory_of_a_256_inference(path: str, budget_mib: int) -> None:
    """Peak memory added by one 256x256 inference (a fresh process per path; its resident-size high-water mark, reset
    just before): the 4096 x 4096 correlation (64 MiB) and its softmax are there, and the total stays within the
    documented scale (the plain path also holds the 16384 x 4096 attention matrix, 256 MiB, and its softmax)."""
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("measures the resident-size high-water mark through Linux /proc")
    result = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, path], capture_output=True, text=True, check=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    added_mib = float(result.stdout.strip().splitlines()[-1])
    assert 128 <= added_mib <= budget_mib, added_mib
