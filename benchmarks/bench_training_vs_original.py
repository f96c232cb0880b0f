"""Training speed against the original code: one full G+D iteration of SPADE, pix2pixHD (global generator) and
OASIS, labelsynth's trainer against the authors' code, same weights, same batch, same random draws, side by side.

    python benchmarks/bench_training_vs_original.py --spade-original ~/src/SPADE \\
        --pix2pixhd-original ~/src/pix2pixHD --oasis-original ~/src/OASIS        # or $SPADE_ORIGINAL etc.
    python benchmarks/bench_training_vs_original.py --families oasis --rounds 5 --threads 2
    python benchmarks/bench_training_vs_original.py --tiny                      # smoke run: small widths, ours only
    python benchmarks/bench_training_vs_original.py --device cuda ...           # both sides on the GPU

Recipes (the originals' own options): SPADE ADE20K (`--dataset_mode ade20k`: 151 channels, batch 2, 256x256, hinge
GAN + feature matching + VGG, Adam (0, 0.9), TTUR lr 1e-4 / 4e-4); pix2pixHD global generator (Cityscapes 512p recipe
with instance edges, here at 256x512, batch 1, LSGAN + feature matching + VGG, Adam (0.5, 0.999), lr 2e-4); OASIS
ADE20K (151 channels, batch 2, 256x256, LabelMix 10, class balancing, Adam (0, 0.999), lr 1e-4 / 4e-4, no VGG,
as the paper). Widths are the recipes' unless `--width-scale` shrinks them (then the table says so). Label maps are the
real ADE20K / Cityscapes samples of `../shared/samples` where the checkout has them (random 16x16 blocks otherwise).

Each family runs in its own subprocess (the three originals all have top-level packages called `models`, `util`,
`options`). In it, the original's networks are built and initialised by its own code, their state dicts are converted
with labelsynth's converters into our models, and one iteration runs on each side exactly as each trainer orders it:
ours is `GANTrainer._train_micro_batch` (G loss, G backward, Adam step, D loss, D backward, Adam step); the original's
is its train loop (SPADE `Pix2PixTrainer.run_{generator,discriminator}_one_step`, pix2pixHD's `train.py` body, OASIS's
`train.py` body without the EMA update, which neither side's iteration includes). The first iteration's loss values
are printed side by side (relative difference); then `--rounds` interleaved rounds time every variant once each, and
the table shows the median seconds per iteration and the speed-up over the original.

Variants of ours (same weights, each with its own copy): the trainer with its defaults (fp32, `torch.optim.Adam`
defaults; SPADE's and OASIS's generators read the label map by lookups), with their dense one-hot convolutions instead
(`fast_training = False`, the originals' computation), with `--fused_adam`, with `--channels_last` (+ fused Adam),
and under bf16 autocast (+ fused Adam; emulated and slow on CPUs without AVX512-BF16/AMX, see docs/performance.md).

What is patched in the originals (only inside this process, nothing on disk): `torchvision` is replaced by a stub
whose `models.vgg19().features` is labelsynth's VGG19 with the same random weights as ours (ImageNet weights cannot
be downloaded here; the cost is the same); `nn.Module.cuda` is a no-op while the originals build their models (their
VGG losses call `.cuda()` unconditionally); pix2pixHD's `encode_input` (which calls `.cuda()` unconditionally) is
replaced by one returning the same one-hot + instance-edge input computed by our model. The original code (CC BY-NC-SA
/ AGPL) is only imported from the paths you give, never shipped.

The original runs in a process of its own, as its train.py does: our trainer's process-wide setting
(`--keep_cpu_memory`, on by default on the CPU: glibc keeps freed memory for reuse instead of unmapping it) does not
reach it. `--original-keeps-memory` gives the original's process the same setting, for a comparison of the
computations alone; `--original-in-process` runs it in ours (then it shares the setting).

On CUDA (`--device cuda`) the originals run as their own GPU code paths do: `--gpu_ids 0` (OASIS: "0"), their own
`.cuda()` calls (not stubbed then), SPADE's and OASIS's single-GPU DataParallel wrappers; ours runs on the GPU
through the trainer's Accelerator, bf16 autocast on CUDA. The clock is read after `torch.cuda.synchronize()` and the
table adds each side's peak GPU memory per iteration (above what is allocated between iterations). First-iteration
losses are still printed, but draws that the two sides take from different generators (e.g. OASIS's LabelMix bits:
the original's from the global CPU RNG, ours from the module's GPU generator) make them differ on CUDA.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _timing, also when this file is imported by path
from _timing import Measurement, add_device_argument, describe, measure, set_cpu_threads

FAMILIES = ("spade", "pix2pixhd", "oasis")
ENV_VARS = {"spade": "SPADE_ORIGINAL", "pix2pixhd": "PIX2PIXHD_ORIGINAL", "oasis": "OASIS_ORIGINAL"}
VARIANTS = ("ours fp32", "ours dense one-hot", "ours fused Adam", "ours channels-last", "ours bf16 autocast")
SEED = 1234


@dataclass
class Side:
    """One thing to time: `step()` runs one full iteration and returns its loss terms as floats."""

    name: str
    step: Callable[[], dict[str, float]]
    first_losses: dict[str, float] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)  # process CPU seconds (all threads) per iteration
    peaks: list[float] = field(default_factory=list)  # CUDA only: peak MiB allocated above the iteration's start
    reseed: Callable[[], Any] | None = None  # resets the random stream before the compared first iteration
    timed: Callable[[], Measurement] | None = None  # times one step elsewhere (another process); default: `measure`


class OriginalProcess:
    """The original's side served by a process of its own (`--serve-original`): one JSON line per request."""

    def __init__(self, command: list[str]):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, request: str) -> dict[str, Any]:
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the original's process ended (exit code {self.process.wait()}); its error is above")
        return json.loads(line)

    def side(self) -> Side:
        def timed() -> Measurement:
            return Measurement(**self.ask("time"))

        return Side("original", lambda: self.ask("step"), timed=timed, reseed=lambda: self.ask("reseed"))

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def serve_original(side: Side, device: torch.device) -> None:
    """Answer `reseed` (nothing), `step` (the loss terms) and `time` (a `Measurement`) requests on stdin, one JSON
    line each on stdout; anything else the original prints goes to stderr."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    for line in sys.stdin:
        request, reply = line.strip(), {}
        if request == "reseed":
            if side.reseed is not None:
                side.reseed()
        elif request == "step":
            reply = side.step()
        elif request == "time":
            reply = asdict(measure(side.step, device))
        else:
            raise ValueError(f"unknown request {request!r}: expected reseed, step or time")
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


# ------------------------------------------------------------------------------------------------ helpers
def install_torchvision_stub(vgg_state: dict[str, torch.Tensor]) -> None:
    """`torchvision.models.vgg19(...)` -> labelsynth's VGG19 holding `vgg_state` (same `features` layout)."""
    from labelsynth.layers.vgg import VGG19

    def vgg19(*args: Any, **kwargs: Any) -> torch.nn.Module:
        net = VGG19()
        net.load_state_dict(vgg_state)
        return net

    package = types.ModuleType("torchvision")
    models = types.ModuleType("torchvision.models")
    models.vgg19 = vgg19
    transforms = types.ModuleType("torchvision.transforms")  # imported by the originals' data code, unused here
    package.models, package.transforms = models, transforms
    sys.modules.update({"torchvision": package, "torchvision.models": models, "torchvision.transforms": transforms})


@contextlib.contextmanager
def cuda_is_noop():
    """The originals' loss modules call `.cuda()` unconditionally: make it a no-op while they are built."""
    original = torch.nn.Module.cuda
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.nn.Module.cuda = original


def originals_on(device: torch.device) -> contextlib.AbstractContextManager:
    """While an original is built: `.cuda()` stubbed on the CPU, left to do its work on CUDA."""
    return cuda_is_noop() if device.type == "cpu" else contextlib.nullcontext()


def gpu_ids(device: torch.device) -> str:
    """The originals' `--gpu_ids` for `device` ("-1": CPU; `main` admits GPU 0 only)."""
    return "-1" if device.type == "cpu" else "0"


@contextlib.contextmanager
def trainer_on(device: torch.device):
    """Build `GANTrainer`s on `device`: the trainer's Accelerator takes a GPU whenever one is present, so a CPU run
    on a GPU machine tells it there is none."""
    from labelsynth.training import trainer as trainer_module

    original = trainer_module._accelerator_available
    if device.type == "cpu":
        trainer_module._accelerator_available = lambda: False
    try:
        yield
    finally:
        trainer_module._accelerator_available = original


@contextlib.contextmanager
def quiet():
    """Swallow the originals' prints (option dumps, parameter counts)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def import_original(path: str) -> None:
    if not os.path.isdir(path):
        raise ValueError(f"original code path {path!r} is not a folder; pass the checkout's root (the folder holding "
                         "its train.py)")
    sys.path.insert(0, os.path.abspath(path))


def scalar(value: Any) -> float:
    return float(value.detach().float().sum()) if isinstance(value, torch.Tensor) else float(value)


def scaled(width: int, scale: float) -> int:
    return max(4, round(width * scale))


def make_trainer(module: Any, args_kwargs: dict[str, Any], batch: dict[str, torch.Tensor], variant: str,
                 device: torch.device) -> Side:
    """A `GANTrainer` on `module` prepared for `variant` on `device`; its side runs `_train_micro_batch(batch)`."""
    from labelsynth.training import GANTrainer, TrainingArguments

    batch = {k: v.to(device) for k, v in batch.items()}
    # The trainer's own speed options (--fused_adam, --channels_last); every variant but the plain fp32 ones has
    # fused Adam. "dense one-hot" trains SPADE's and OASIS's generators on the dense one-hot map, as the originals.
    options = {"fused_adam": variant not in ("ours fp32", "ours dense one-hot"),
               "channels_last": variant == "ours channels-last"}
    if variant == "ours dense one-hot" and hasattr(module.generator, "fast_training"):
        module.generator.fast_training = False
    args = TrainingArguments(output_dir=tempfile.mkdtemp(prefix="bench-train-"), report_to=None, **args_kwargs,
                             **options)
    with trainer_on(device):
        trainer = GANTrainer(module, args, train_rows=[batch], transform=lambda row, rng: row)
        trainer._prepare()
    if trainer.accelerator.device.type != device.type:
        raise RuntimeError(f"the trainer placed the models on {trainer.accelerator.device}, not on {device}: the "
                           "timings would not be of the device asked for")
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if variant == "ours bf16 autocast"
                else contextlib.nullcontext())

    def step() -> dict[str, float]:
        with autocast:
            logs = trainer._train_micro_batch(batch)
        return {k: scalar(v) for k, v in logs.items()}

    return Side(variant, step)


def our_sides(module: Any, args_kwargs: dict[str, Any], batch: dict[str, torch.Tensor], variants: list[str],
              seed_fn: Callable[[Any], None], device: torch.device) -> list[Side]:
    sides = []
    for variant in variants:
        copy_ = copy.deepcopy(module)
        side = make_trainer(copy_, args_kwargs, batch, variant, device)
        side.reseed = lambda m=copy_: seed_fn(m)
        sides.append(side)
    return sides


# ------------------------------------------------------------------------------------------------ SPADE
def build_spade(path: str | None, scale: float, batch_size: int, size_scale: float, device: torch.device):
    from labelsynth import LabelMapProcessor, SPADEConfig, SPADEDiscriminator, SPADEModel
    from labelsynth.layers.vgg import VGG19
    from labelsynth.models.spade.convert_spade_original_checkpoint import (
        convert_discriminator_state_dict,
        convert_generator_state_dict,
    )
    from labelsynth.training.spade import SPADETrainingModule

    ngf, ndf = scaled(64, scale), scaled(64, scale)
    config = SPADEConfig.for_dataset("ade20k", ngf=ngf, ndf=ndf, image_size=(int(256 * size_scale),) * 2)
    h, w = config.image_size
    vgg = VGG19()
    batch = {"label_map": sample_labels("ade20k", batch_size, h, w, 151),
             "pixel_values": torch.rand(batch_size, 3, h, w) * 2 - 1}
    sides = []
    model, disc = SPADEModel(config), SPADEDiscriminator(config)
    if path:
        import_original(path)
        install_torchvision_stub(vgg.state_dict())
        argv = ["--dataset_mode", "ade20k", "--batchSize", str(batch_size), "--gpu_ids", gpu_ids(device),
                "--ngf", str(ngf), "--ndf", str(ndf), "--dataroot", ".", "--checkpoints_dir", tempfile.mkdtemp()]
        saved, sys.argv = sys.argv, ["train.py", *argv]
        try:
            from options.train_options import TrainOptions
            from trainers.pix2pix_trainer import Pix2PixTrainer

            with quiet():
                opt = TrainOptions().gather_options()
        finally:
            sys.argv = saved
        opt.isTrain, opt.gpu_ids = True, [] if device.type == "cpu" else [0]
        opt.semantic_nc = opt.label_nc + int(opt.contain_dontcare_label) + int(not opt.no_instance)
        torch.manual_seed(SEED)
        with originals_on(device), quiet():
            trainer = Pix2PixTrainer(opt)
        net = trainer.pix2pix_model_on_one_gpu  # the model itself (on GPU, pix2pix_model is its DataParallel)
        model.load_state_dict(convert_generator_state_dict(net.netG.state_dict()))
        disc.load_state_dict(convert_discriminator_state_dict(net.netD.state_dict()))
        # On the device already, like ours (its preprocess_input's .cuda() is then a no-op).
        data = {"label": batch["label_map"][:, None].clone(), "instance": torch.zeros(1),
                "image": batch["pixel_values"].clone()}
        data = {k: v.to(device) for k, v in data.items()}
        semantics, _ = net.preprocess_input(dict(data))
        check_same("semantic input", semantics, model.build_semantic_input(batch["label_map"]))

        def original_step() -> dict[str, float]:
            trainer.run_generator_one_step(dict(data))
            trainer.run_discriminator_one_step(dict(data))
            return {k: scalar(v) for k, v in trainer.get_latest_losses().items()}

        sides.append(Side("original", original_step))
    module = SPADETrainingModule(model, disc, LabelMapProcessor(), vgg=vgg)
    args = {"train_batch_size": batch_size, "generator_lr": 1e-4, "discriminator_lr": 4e-4, "adam_beta1": 0.0,
            "adam_beta2": 0.9}
    names = {"G_GAN": "GAN", "G_GAN_Feat": "GAN_Feat", "G_VGG": "VGG", "D_Fake": "D_Fake", "D_real": "D_real"}
    title = (f"SPADE ADE20K, {h}x{w}, batch {batch_size}, ngf {ngf}, ndf {ndf}, hinge + feature matching + VGG "
             f"(random VGG weights)")
    return sides, names, title, module, args, batch, lambda m: None


# ------------------------------------------------------------------------------------------------ pix2pixHD
def build_pix2pixhd(path: str | None, scale: float, batch_size: int, size_scale: float, device: torch.device):
    from labelsynth import LabelMapProcessor, Pix2PixHDConfig, Pix2PixHDDiscriminator, Pix2PixHDModel
    from labelsynth.layers.vgg import VGG19
    from labelsynth.models.pix2pixhd.convert_pix2pixhd_original_checkpoint import (
        convert_discriminator_state_dict,
        convert_generator_state_dict,
    )
    from labelsynth.training.pix2pixhd import Pix2PixHDTrainingModule

    ngf, ndf = scaled(64, scale), scaled(64, scale)
    h, w = int(256 * size_scale), int(512 * size_scale)
    config = Pix2PixHDConfig.for_dataset("cityscapes-512p", image_size=(h, w), ngf=ngf, ndf=ndf)
    vgg = VGG19()
    labels = sample_labels("cityscapes", batch_size, h, w, 35)
    # Instances: every label region cut into 64-px wide columns (ids label * 1000 + k: edges between them).
    batch = {"label_map": labels, "instance_map": labels * 1000 + torch.arange(w).div(64, rounding_mode="floor"),
             "pixel_values": torch.rand(batch_size, 3, h, w) * 2 - 1}
    model, disc = Pix2PixHDModel(config), Pix2PixHDDiscriminator(config)
    sides = []
    if path:
        import_original(path)
        install_torchvision_stub(vgg.state_dict())
        from models.pix2pixHD_model import Pix2PixHDModel as OriginalModel
        from options.train_options import TrainOptions

        options = TrainOptions()
        options.initialize()
        opt = options.parser.parse_args(["--label_nc", "35", "--gpu_ids", gpu_ids(device), "--ngf", str(ngf),
                                         "--ndf", str(ndf), "--batchSize", str(batch_size),
                                         "--checkpoints_dir", tempfile.mkdtemp()])
        opt.isTrain, opt.gpu_ids = True, [] if device.type == "cpu" else [0]
        torch.manual_seed(SEED)
        net = OriginalModel()
        with originals_on(device), quiet():
            net.initialize(opt)
        model.load_state_dict(convert_generator_state_dict(net.netG.state_dict(), config), strict=False)
        check_loaded(model, net.netG)
        disc.load_state_dict(convert_discriminator_state_dict(net.netD.state_dict(), config.num_d, config.n_layers_d))
        semantics = model.build_semantic_input(batch["label_map"], batch["instance_map"]).to(device)
        real = batch["pixel_values"].clone().to(device)
        # The original's encode_input calls .cuda() unconditionally: hand it the same input (one-hot + edges).
        net.encode_input = lambda *args, **kwargs: (semantics, None, real, None)
        names_in_order = net.loss_names

        def original_step() -> dict[str, float]:
            losses, _ = net(None, None, None, None)
            terms = dict(zip(names_in_order, losses))
            loss_d = (terms["D_fake"] + terms["D_real"]) * 0.5
            loss_g = terms["G_GAN"] + terms.get("G_GAN_Feat", 0) + terms.get("G_VGG", 0)
            net.optimizer_G.zero_grad()
            loss_g.backward()
            net.optimizer_G.step()
            net.optimizer_D.zero_grad()
            loss_d.backward()
            net.optimizer_D.step()
            return {k: scalar(v) for k, v in terms.items()}

        sides.append(Side("original", original_step))
    module = Pix2PixHDTrainingModule(model, disc, LabelMapProcessor(label_space="cityscapes"), vgg=vgg)
    args = {"train_batch_size": batch_size, "generator_lr": 2e-4, "discriminator_lr": 2e-4, "adam_beta1": 0.5,
            "adam_beta2": 0.999}
    names = {k: k for k in ("G_GAN", "G_GAN_Feat", "G_VGG", "D_fake", "D_real")}
    title = (f"pix2pixHD global G (Cityscapes 512p recipe, instance edges) at {h}x{w}, batch {batch_size}, ngf {ngf}, "
             f"ndf {ndf}, 2 scales, LSGAN + feature matching + VGG (random VGG weights)")
    return sides, names, title, module, args, batch, lambda m: None


def check_loaded(model: torch.nn.Module, original: torch.nn.Module) -> None:
    """The converted generator holds every original parameter (the pix2pixHD converter skips feature-bank buffers)."""
    ours = sum(p.numel() for p in model.parameters())
    theirs = sum(p.numel() for p in original.parameters())
    if ours != theirs:
        raise RuntimeError(f"parameter counts differ after conversion: ours {ours}, original {theirs}")


# ------------------------------------------------------------------------------------------------ OASIS
def build_oasis(path: str | None, scale: float, batch_size: int, size_scale: float, device: torch.device):
    from labelsynth import LabelMapProcessor, OASISConfig, OASISDiscriminator, OASISModel
    from labelsynth.models.oasis.convert_oasis_original_checkpoint import (
        convert_discriminator_state_dict,
        convert_generator_state_dict,
    )
    from labelsynth.training.oasis import OASISTrainingModule

    # The original's discriminator widths are fixed (ndf 64): only the generator follows --width-scale when the
    # original runs.
    ngf, ndf = scaled(64, scale), (64 if path else scaled(64, scale))
    config = OASISConfig.for_dataset("ade20k", ngf=ngf, ndf=ndf, image_size=(int(256 * size_scale),) * 2)
    h, w = config.image_size
    batch = {"label_map": sample_labels("ade20k", batch_size, h, w, 151),
             "pixel_values": torch.rand(batch_size, 3, h, w) * 2 - 1}
    model, disc = OASISModel(config), OASISDiscriminator(config)
    sides = []
    if path:
        import_original(path)
        install_torchvision_stub(__import__("labelsynth.layers.vgg", fromlist=["VGG19"]).VGG19().state_dict())
        import models.losses as original_losses
        import models.models as original_models

        opt = types.SimpleNamespace(
            phase="train", gpu_ids=gpu_ids(device), channels_G=ngf, num_res_blocks=6, param_free_norm="syncbatch",
            spade_ks=3, no_EMA=True, no_3dnoise=False, z_dim=config.z_dim, no_spectral_norm=False, crop_size=w,
            aspect_ratio=w / h, semantic_nc=config.num_label_channels, batch_size=batch_size, continue_train=False,
            add_vgg_loss=False, lambda_vgg=10.0, no_labelmix=False, lambda_labelmix=10.0, no_balancing_inloss=False,
            contain_dontcare_label=True, checkpoints_dir=tempfile.mkdtemp(), name="bench")
        torch.manual_seed(SEED)
        with originals_on(device), quiet():
            net = original_models.OASIS_model(opt)
        losses_computer = original_losses.losses_computer(opt)
        model.load_state_dict(convert_generator_state_dict(net.netG.state_dict()))
        disc.load_state_dict(convert_discriminator_state_dict(net.netD.state_dict()))
        inner = net
        if device.type == "cuda":  # as its train.py does: a (single-GPU) DataParallel, moved to the GPU
            net = original_models.put_on_multi_gpus(net, opt)
        channels = model.prepare_label_channels(batch["label_map"])
        image, label = original_models.preprocess_input(opt, {"label": channels[:, None].clone(),
                                                             "image": batch["pixel_values"].clone()})
        check_same("one-hot labels", label, torch.nn.functional.one_hot(channels, config.num_label_channels)
                   .permute(0, 3, 1, 2).float())
        opt_g = torch.optim.Adam(inner.netG.parameters(), lr=1e-4, betas=(0.0, 0.999))
        opt_d = torch.optim.Adam(inner.netD.parameters(), lr=4e-4, betas=(0.0, 0.999))

        def original_step() -> dict[str, float]:
            inner.netG.zero_grad()
            loss_g, terms_g = net(image, label, "losses_G", losses_computer)
            loss_g.backward()
            opt_g.step()
            inner.netD.zero_grad()
            loss_d, terms_d = net(image, label, "losses_D", losses_computer)
            loss_d.backward()
            opt_d.step()
            return {"G_adv": scalar(terms_g[0]), "D_fake": scalar(terms_d[0]), "D_real": scalar(terms_d[1]),
                    "D_LM": scalar(terms_d[2])}

        sides.append(Side("original", original_step))
        sides[-1].reseed = lambda: torch.manual_seed(SEED)
    module = OASISTrainingModule(model, disc, LabelMapProcessor(), lambda_labelmix=10.0)
    args = {"train_batch_size": batch_size, "generator_lr": 1e-4, "discriminator_lr": 4e-4, "adam_beta1": 0.0,
            "adam_beta2": 0.999}
    names = {k: k for k in ("G_adv", "D_fake", "D_real", "D_LM")}
    title = (f"OASIS ADE20K, {h}x{w}, batch {batch_size}, G ngf {ngf}, D ndf {ndf}, LabelMix 10, class balancing, "
             "no VGG (paper recipe), no EMA update")
    # Same random stream on both sides: the original draws noise and LabelMix bits from the global RNG.
    return sides, names, title, module, args, batch, lambda m: m.seed_training_rng(SEED, device)


# ------------------------------------------------------------------------------------------------ common
def sample_labels(dataset: str, batch_size: int, h: int, w: int, num_ids: int) -> torch.Tensor:
    """The first `batch_size` label maps of `dataset` among the real samples (`../shared/samples`; the fast SPADE
    path's work depends on the layout), else maps of 16x16-pixel blocks of random ids in [0, num_ids)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling module, also when imported
    from _inputs import SAMPLE_LABELS, block_maps, load_maps

    maps = load_maps(SAMPLE_LABELS[dataset], (h, w), batch_size)
    if maps is None or len(maps) < batch_size:
        maps = block_maps((h, w), num_ids, batch_size)
    return torch.stack(maps)


def check_same(what: str, original: torch.Tensor, ours: torch.Tensor) -> None:
    # Compared where `ours` is: on CUDA the originals move their inputs to the GPU themselves.
    if original.shape != ours.shape or not torch.equal(original.float().to(ours.device), ours.float()):
        raise RuntimeError(f"{what} differs between the original and ours; the comparison would be meaningless")


BUILDERS = {"spade": build_spade, "pix2pixhd": build_pix2pixhd, "oasis": build_oasis}


def run_family(family: str, path: str | None, args: argparse.Namespace) -> dict[str, Any]:
    device = getattr(args, "device", torch.device("cpu"))  # tests build `args` by hand, without it
    set_cpu_threads(device, args.threads)
    torch.manual_seed(0)
    sides, names, title, module, trainer_args, batch, seed_fn = BUILDERS[family](
        path, args.width_scale, args.batch_size[family], args.size_scale, device)
    if getattr(args, "serve_original", False):
        if getattr(args, "original_keeps_memory", False):
            from labelsynth.utils.memory import keep_freed_cpu_memory

            keep_freed_cpu_memory()
        serve_original(sides[0], device)
        return {}
    server = None
    if sides and getattr(args, "original_command", None):  # built here too, for its weights; timed over there
        server = OriginalProcess(args.original_command)
        sides = [server.side()]
    variants = [v for v in VARIANTS if v in args.variants]
    sides += our_sides(module, trainer_args, batch, variants, seed_fn, device)
    # First iteration of every side from the same weights and the same random stream: the loss values to compare.
    for side in sides:
        if side.reseed is not None:
            side.reseed()
        side.first_losses = side.step()
    for _ in range(args.rounds):  # interleaved: machine load hits every side alike
        for side in sides:
            m = side.timed() if side.timed is not None else measure(side.step, device)
            side.times.append(m.wall)
            side.cpu_times.append(m.cpu)
            if m.peak_mib is not None:
                side.peaks.append(m.peak_mib)
    if server is not None:
        server.close()
    where = "this process" if server is None else "its own process" + (
        ", glibc keeping freed memory" if getattr(args, "original_keeps_memory", False) else "")
    title += f"; original in {where}" if path else ""
    return {"family": family, "title": f"{title}; device {device} ({describe(device, args.threads)})",
            "names": names, "original": path,
            "sides": [{"name": s.name, "losses": s.first_losses, "times": s.times, "cpu_times": s.cpu_times,
                       "peaks": s.peaks} for s in sides]}


def print_family(result: dict[str, Any]) -> None:
    sides = result["sides"]
    print(f"\n## {result['title']}")
    base = next((s for s in sides if s["name"] == "original"), None)
    reference = base or sides[0]
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    ref_time, ref_cpu = median(reference["times"]), median(reference["cpu_times"])
    on_gpu = any(side["peaks"] for side in sides)
    print(f"{'side':<22}{'wall s/iter':>12}{'min':>8}{'speed-up':>10}{'CPU s/iter':>12}{'speed-up':>10}"
          + (f"{'peak MiB':>10}" if on_gpu else "") + f"   (speed-up: vs {reference['name']}; medians over rounds)")
    for side in sides:
        t, c = median(side["times"]), median(side["cpu_times"])
        memory = f"{max(side['peaks'], default=float('nan')):>10.0f}" if on_gpu else ""
        print(f"{side['name']:<22}{t:>12.3f}{min(side['times'], default=float('nan')):>8.3f}{ref_time / t:>9.2f}x"
              f"{c:>12.2f}{ref_cpu / c:>9.2f}x{memory}")
    print("first-iteration losses (ours name = original name): value per side, rel. diff to "
          f"{reference['name']}")
    for ours, theirs in result["names"].items():
        cells = []
        ref_value = reference["losses"].get(theirs if base else ours)
        for side in sides:
            value = side["losses"].get(theirs if side["name"] == "original" else ours)
            if value is None:
                cells.append(f"{side['name']}: -")
                continue
            rel = abs(value - ref_value) / max(abs(ref_value), 1e-12) if ref_value is not None else float("nan")
            cells.append(f"{side['name']}: {value:.7g}" + ("" if side is reference else f" ({rel:.1e})"))
        print(f"  {ours:<11} " + "; ".join(cells))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for family in FAMILIES:
        parser.add_argument(f"--{family}-original", default=os.environ.get(ENV_VARS[family]),
                            help=f"checkout of the original {family} code (default: ${ENV_VARS[family]}); without it "
                                 "only our variants run")
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help="comma-separated subset of " + ",".join(FAMILIES))
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of our variants: " + ", ".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (each runs every side once)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--width-scale", type=float, default=1.0,
                        help="multiply the recipes' widths (ngf, ndf) by this (1 = the recipes)")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke run: width scale 1/16, a quarter of the image size, batch 1, 1 round, ours only "
                             "(originals ignored)")
    add_device_argument(parser)
    parser.add_argument("--original-keeps-memory", action="store_true",
                        help="give the original's process our trainer's --keep_cpu_memory setting (glibc keeps freed "
                             "memory), to compare the computations alone")
    parser.add_argument("--original-in-process", action="store_true",
                        help="run the original in our process instead of its own (it then shares our trainer's "
                             "process-wide settings)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # set for the per-family subprocesses
    parser.add_argument("--serve-original", action="store_true", help=argparse.SUPPRESS)  # the original's process
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if args.device.index not in (None, 0):  # the trainer's Accelerator takes the current GPU (0)
        parser.error(f"--device {args.device}: pick the GPU with CUDA_VISIBLE_DEVICES={args.device.index} and run "
                     "with --device cuda")
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown --families {unknown}; choose from {', '.join(FAMILIES)}")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if sorted(set(args.variants) - set(VARIANTS)):
        raise ValueError(f"unknown --variants {sorted(set(args.variants) - set(VARIANTS))}; choose from "
                         f"{', '.join(VARIANTS)}")
    args.batch_size = {"spade": 2, "pix2pixhd": 1, "oasis": 2}
    args.size_scale = 1.0
    if args.tiny:
        args.width_scale, args.size_scale, args.rounds = 1 / 16, 0.25, 1
        args.batch_size = {f: 1 for f in FAMILIES}
        for family in FAMILIES:
            setattr(args, f"{family}_original", None)
    if args.worker:
        path = getattr(args, f"{args.worker}_original")
        if path and not (args.serve_original or args.original_in_process):
            args.original_command = [sys.executable, os.path.abspath(__file__), *argv, "--serve-original"]
        result = run_family(args.worker, path, args)
        if not args.serve_original:
            print(json.dumps(result))
        return
    from labelsynth.utils.precision import machine_summary

    print(machine_summary())  # what the numbers below ran on
    print(f"torch {torch.__version__}, device {args.device} ({describe(args.device, args.threads)}), {args.rounds} "
          f"rounds, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for family in families:
        command = [sys.executable, os.path.abspath(__file__), "--worker", family, *argv]
        output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        print_family(json.loads(output.strip().splitlines()[-1]))
    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
