"""Per-checkpoint facts of the published labelsynth models: one registry for model cards, Spaces and demos.

Architecture facts (paper, licence of the original weights, citation, the paper's reported figures with their
source) live on each model class (``model_card_info``); what differs per checkpoint lives here: Hub id, dataset
preset, training data, how the weights were made, and what we measured. `checkpoint_card` renders a
card with `render_model_card`, the function ``save_pretrained``/``push_to_hub`` use, so
``model.push_to_hub(entry.hub_id, card_kwargs=card_kwargs(entry))`` uploads the same text as
``model_cards/<id>.md``. ``python -m labelsynth.demo.spaces`` writes those files and the Spaces in ``demos/``.

The registry sits in the library (not in the repository's ``model_cards/`` folder) because the Spaces' ``app.py``
and ``labelsynth demo`` read it at run time, from an installed package.

Adding a checkpoint: append a `Checkpoint` to `CHECKPOINTS` (its ``model_class`` must be exported by ``labelsynth``
and its config class must have ``for_dataset(preset)``), record where its authors publish it in
``labelsynth.hub.releases.RELEASES`` (and a synthetic copy in ``tests/hub/release_fixtures.py``), then run
``python -m labelsynth.demo.spaces``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard

from .model_card import MetricResult, ModelCardInfo, TrainingInfo, render_model_card

__all__ = ["CHECKPOINTS", "HUB_ORGANIZATION", "Checkpoint", "card_kwargs", "checkpoint_card", "checkpoint_config",
           "checkpoint_model_class", "get_checkpoint", "model_card_info"]

HUB_ORGANIZATION = "labelsynth"

# What "converted" means for each family: the parity check of its converter against the original code, run outside
# the repository on checkpoints written by the official classes (the released files cannot be downloaded here).
_NOT_IN_CI = "The released weights themselves were not converted in CI (no network)."
_SPADE_PARITY = (
    "Converted with labelsynth's converter, whose output was checked against the original NVlabs/SPADE code on "
    "checkpoints written by the official classes (random weights, perturbed, BatchNorm statistics and "
    "spectral-norm vectors moved by train-mode passes): max abs difference 0.0 on the plain path and at most "
    f"2.2e-5 on the fast inference path. {_NOT_IN_CI}"
)
_PIX2PIX_PARITY = (
    "Converted with labelsynth's converter, whose output was checked against the original "
    "junyanz/pytorch-CycleGAN-and-pix2pix code on checkpoints written by the official classes (random weights, "
    "BatchNorm statistics moved by train-mode passes; colour and one-hot inputs, unet_256 and unet_128, batch and "
    "instance norm, with and without dropout, batch 1 and 2): max abs difference 0.0 in every case, in eval mode and "
    "in the original test mode (dropout masks from the same seed), discriminator included. Parameters: G "
    f"54,413,955 and D 2,768,705 for the facades model, equal to the original. {_NOT_IN_CI}"
)
_PIX2PIXHD_PARITY = (
    "Converted with labelsynth's converter, whose output was checked against the original NVIDIA/pix2pixHD code on "
    "checkpoints written by the official classes (random weights): max abs difference 0.0 for the global (512p) "
    "and local (1024p) generators and the discriminators, at most 3.5e-5 for images made from encoded instance "
    "features (feature-encoder models). Parameters equal the original: G global 182,546,755, G local "
    f"182,857,059, feature encoder 788,803, D 5,603,202 (2 scales, 512p) and 8,404,803 (3 scales, 1024p). {_NOT_IN_CI}"
)
_SEAN_PARITY = (
    "Converted with labelsynth's converter, whose output was checked against the original ZPdesu/SEAN code on "
    "checkpoints written by the official classes (random weights, BatchNorm statistics moved by train-mode passes; "
    "seeded noise, noise off, styles of other images): max abs difference 1.5e-6 on the plain path and 4.2e-6 on "
    "the fast inference path; style codes 3.0e-7, discriminator features 0.0. Parameters equal the original: G "
    f"266,907,367, D 1,364,098. {_NOT_IN_CI}"
)


@dataclass(frozen=True)
class Checkpoint:
    """One published checkpoint.

    Attributes:
        id: Short name used for ``model_cards/<id>.md`` and ``demos/<id>/``.
        hub_id: Hub repository of the weights.
        model_class: Class name exported by ``labelsynth`` (e.g. ``"SPADEModel"``).
        preset: Dataset preset of the config class (``for_dataset(preset)``); ignored when `local_path` is set.
        title: Human-readable name (Space title).
        datasets: Hub dataset ids of the training data (only repositories that hold that data).
        training: How the weights were made (`TrainingInfo` keys).
        measured_metrics: Figures measured with labelsynth on these weights.
        local_path: Folder inside the installed package holding the weights (the built-in model), else None.
        emoji: Space card emoji.
        short_description: One line for the Space card (at most 60 characters on the Hub).
    """

    id: str
    hub_id: str
    model_class: str
    title: str
    short_description: str
    preset: str | None = None
    datasets: tuple[str, ...] = ()
    training: Mapping[str, Any] = field(default_factory=dict)
    measured_metrics: tuple[MetricResult | Mapping[str, Any], ...] = ()
    local_path: str | None = None
    emoji: str = "🎨"

    def __post_init__(self) -> None:
        if len(self.short_description) > 60:
            raise ValueError(f"{self.id}: short_description must be at most 60 characters (Hub limit)")

    @property
    def weights_folder(self) -> Path | None:
        """Absolute path of `local_path` inside the installed package, or None."""
        return None if self.local_path is None else Path(__file__).resolve().parents[1] / self.local_path
_CRN_PARITY = (
    "Converted without TensorFlow by labelsynth's checkpoint reader; the output was checked against the original "
    "CQFIO/PhotographicImageSynthesis TensorFlow graph on checkpoints it wrote (tf.train.Saver) and a real "
    "Cityscapes label map: max abs difference 1.2e-5 (256p), 1.5e-5 (512p) and 8.4e-6 (1024p) in [-1, 1] units "
    "(at most 1.9e-3 on the original's 0..255 scale). Parameters equal the original checkpoints: 97,875,483 "
    f"(256p, GTA 256p), 98,622,851 (512p), 98,674,531 (1024p). {_NOT_IN_CI}"
)
_COCOSNET_PARITY = (
    "Converted with labelsynth's converter, whose output was checked against the original microsoft/CoCosNet code "
    "on checkpoints written by the official classes (ADE20K layout, real ADE20K samples): max abs difference 2.5e-6 "
    "on the plain path and 8.4e-6 on the fast inference path (images, warped exemplar, warped exemplar label map). "
    f"Parameters equal the original: translation network 96,664,260, correspondence 59,315,716. {_NOT_IN_CI}"
)

_MOBILE_SPADE_PARITY = (
    "Converted with labelsynth's converter, whose output was checked against the original mit-han-lab/gan-compression "
    "code (sub_mobile_spade, --ngf 48 --config_str 32_40_40_32_40_24_32_24) on a checkpoint written by the official "
    "class (random weights, perturbed, BatchNorm statistics moved by train-mode passes; real Cityscapes label and "
    "instance maps at 256x512): max abs difference 0.0 on the plain path and at most 8.3e-6 on the fast inference "
    f"path. Parameters equal the original: 21,002,811. {_NOT_IN_CI}"
)
_OASIS_PARITY = (
    "Converted with labelsynth's converter, whose output was checked against the original boschresearch/OASIS code "
    "(commit aeb875f) on checkpoints written by the official classes (random weights, BatchNorm statistics and "
    "spectral-norm vectors moved by train-mode passes; real label maps, the same 3D noise): max abs difference 0.0 "
    "on the plain path for the EMA and G generators and the discriminator's logits, at most 8.2e-6 on the fast "
    "inference path, for the ADE20K, Cityscapes and COCO-Stuff presets. Parameters equal the original (ADE20K G "
    f"74,314,691 / D 22,258,904; Cityscapes G 71,107,523 / D 22,251,364). {_NOT_IN_CI}"
)


def _crn_official(preset: str, title: str, folder: str, data_note: str) -> Checkpoint:
    model_id = f"crn-{preset}"
    return _official(
        model_id, "CRNModel", preset, f"CRN {title}", f"CRN: {title} label map to photo",
        converted_from=f"{folder}/model.ckpt, a TensorFlow checkpoint downloaded by download_models.py of "
                       "https://github.com/CQFIO/PhotographicImageSynthesis",
        command=f"labelsynth convert crn {folder} converted/{model_id} --preset {preset}",
        notes=f"Trained by the CRN authors on {data_note} {_CRN_PARITY}", emoji="🏙️",
    )


def _official(model_id: str, model_class: str, preset: str, title: str, short_description: str, converted_from: str,
              command: str, notes: str, datasets: tuple[str, ...] = (), emoji: str = "🎨") -> Checkpoint:
    """A converted official checkpoint, published as ``labelsynth/<model_id>``."""
    return Checkpoint(
        id=model_id, hub_id=f"{HUB_ORGANIZATION}/{model_id}", model_class=model_class, preset=preset, title=title,
        short_description=short_description, datasets=datasets, emoji=emoji,
        training={"converted_from": converted_from, "command": command, "notes": notes},
    )


def _spade_official(dataset: str, preset: str, checkpoint: str, datasets: tuple[str, ...], data_note: str,
                    parameters: str) -> Checkpoint:
    model_id = f"spade-{preset}"
    return _official(
        model_id, "SPADEModel", preset, f"SPADE {dataset}", f"GauGAN/SPADE: {dataset} label map to photo",
        converted_from=f"NVlabs/SPADE checkpoint latest_net_G.pth (preset {preset}), from the {checkpoint} release "
                       "of https://github.com/NVlabs/SPADE",
        command=f"labelsynth convert spade checkpoints/{checkpoint} converted/{model_id} --preset {preset}",
        notes=f"Trained by the SPADE authors on {data_note}. Generator parameters: {parameters} (equal to the "
              f"original). {_SPADE_PARITY}",
        datasets=datasets,
    )


CHECKPOINTS: tuple[Checkpoint, ...] = (
    Checkpoint(
        id="spade-cityscapes-tiny",
        hub_id=f"{HUB_ORGANIZATION}/spade-cityscapes-tiny",
        model_class="SPADEModel",
        title="labelsynth built-in street model",
        short_description="A tiny SPADE that runs anywhere (8 Cityscapes photos)",
        local_path="assets/spade-cityscapes-tiny",
        emoji="🛣️",
        training={
            "command": "OMP_NUM_THREADS=1 .venv/bin/python training/train_spade.py --dataset "
                       "../shared/samples/pix2pixHD_cityscapes --preset cityscapes --pretrained_model "
                       "runs/spade-cityscapes-tiny-stage1 --use_vae --z_dim 32 --load_size 144 --resize_mode "
                       "keep_aspect --lambda_l1 10 --lambda_kld 0.05 --train_batch_size 4 --max_train_steps 400 "
                       "--decay_start_step 200 --ema_decay 0.99 --checkpointing_steps 50 --checkpoints_total_limit 2 "
                       "--validation_steps 50 --logging_steps 10 --report_to tensorboard --seed 0 "
                       "--output_dir runs/spade-cityscapes-tiny --resume_from_checkpoint latest",
            "steps": 900,
            "hardware": "1 CPU core (AMD EPYC, 2-core VM shared with other work), fp32",
            "time": "1.6 h",
            "notes": "Two stages on the 8 Cityscapes training photos (with label and instance maps) of the project's "
                     "sample folder, random 128x256 crops of 144x288 resizes with flips, GAN + feature matching + "
                     "L1 (lambda 10; no VGG loss: ImageNet VGG weights cannot be downloaded here). Stage 1 (600 "
                     "steps, 0.8 h): a SPADE without style encoder, `train_spade.py ... --image_size 128 256 --ngf "
                     "12 --spade_hidden_nc 32 --ndf 32 --max_train_steps 600 --ema_decay 0.995` with the data "
                     "options above. Stage 2 (the command above, stopped after step 300, 0.8 h at low priority): "
                     "the stage-1 generator with a VAE style encoder added (`--use_vae` on a non-VAE "
                     "`--pretrained_model` keeps every generator weight except the first layer, which becomes "
                     "fc(z)), so the seed picks the appearance (z ~ N(0, I)) and a style photo can set it. Weights: "
                     "the EMA copy with BatchNorm statistics re-estimated on training batches, stored in bfloat16, "
                     "shipped inside the labelsynth package so the quick start and the default demo work offline. "
                     "A demonstration model: it has seen 8 photos, so its streets are blurry and grey-green, not "
                     "photorealistic, and seeds change the appearance only mildly (PSNR 27.9 dB between seeds 0 and "
                     "1 on the training label maps). The figures from the paper below are for the full-size "
                     "original model, not for this one.",
        },
        measured_metrics=(
            {"dataset": "Cityscapes (8 training pairs, 128x256)", "metric": "PSNR", "value": 21.46,
             "notes": "training pairs (not held out), random z with seed 0; 21.88 dB with z encoded from the "
                      "photo itself; a constant mean colour scores 17.18 dB",
             "source": "labelsynth, training pairs"},
            {"dataset": "Cityscapes (8 training pairs, 128x256)", "metric": "SSIM", "value": 0.575,
             "notes": "training pairs (not held out), random z with seed 0", "source": "labelsynth, training pairs"},
        ),
    ),
    _spade_official("ADE20K", "ade20k", "ade20k_pretrained", ("zhoubolei/scene_parse_150",),
                    "ADE20K (SceneParse150, 20,210 training images)", "96,492,483"),
    _spade_official("Cityscapes", "cityscapes", "cityscapes_pretrained", (),
                    "Cityscapes (2,975 gtFine training images with instance maps; not on the Hub: its licence "
                    "forbids redistribution, see https://www.cityscapes-dataset.com)", "93,048,003"),
    _spade_official("COCO-Stuff", "coco-stuff", "coco_pretrained", (),
                    "COCO-Stuff 164k (118k training images, https://github.com/nightrome/cocostuff)",
                    "97,480,899"),
    _official(
        "pix2pix-facades", "Pix2PixModel", "facades", "pix2pix CMP Facades", "pix2pix: facade label map to photo",
        converted_from="facades_label2photo.pth, the released PyTorch generator of "
                       "https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix "
                       "(http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/facades_label2photo.pth)",
        command="labelsynth convert pix2pix facades_label2photo.pth converted/pix2pix-facades --preset facades",
        notes="Trained by the pix2pix authors on CMP Facades (the pix2pix split: 400 training images), with the "
              "label maps rendered in the facades palette as 256x256 colour images. By default the model runs in "
              "the original test mode (dropout on, batch statistics), so the seed changes the image; "
              f"`test_mode=\"eval\"` is deterministic. {_PIX2PIX_PARITY}",
        emoji="🏛️",
    ),
    _official(
        "pix2pixhd-cityscapes-1024p", "Pix2PixHDModel", "cityscapes-1024p", "pix2pixHD Cityscapes 1024p",
        "pix2pixHD: Cityscapes label map to 2048x1024 photo",
        converted_from="NVIDIA/pix2pixHD checkpoint label2city_1024p/latest_net_G.pth (the only released model; "
                       "Google Drive link in the README of https://github.com/NVIDIA/pix2pixHD)",
        command="labelsynth convert pix2pixhd checkpoints/label2city_1024p converted/pix2pixhd-cityscapes-1024p "
                "--preset cityscapes-1024p",
        notes="Trained by the pix2pixHD authors on Cityscapes (2,975 gtFine training images with instance maps, at "
              "2048x1024; not on the Hub: its licence forbids redistribution, see "
              "https://www.cityscapes-dataset.com): the 512p global generator first, then the local enhancer "
              f"around it. No feature encoder (no cluster choice). {_PIX2PIXHD_PARITY}",
        emoji="🚗",
    ),
    _official(
        "sean-celebamask-hq", "SEANModel", "celebamask-hq", "SEAN CelebAMask-HQ",
        "SEAN: face label map + style image to photo",
        converted_from="ZPdesu/SEAN checkpoint CelebA-HQ_pretrained/latest_net_G.pth (Google Drive link in the "
                       "README of https://github.com/ZPdesu/SEAN)",
        command="labelsynth convert sean checkpoints/CelebA-HQ_pretrained converted/sean-celebamask-hq",
        notes="Trained by the SEAN authors on CelebAMask-HQ (CelebA-HQ photos with 19-class face parsing masks in "
              "SEAN's class order, 256x256; non-commercial research data, not redistributed here). Every image "
              "needs a style image (and ideally its label map): the style codes of its regions set the appearance. "
              f"{_SEAN_PARITY}",
        emoji="🙂",
    ),
    _crn_official("cityscapes-256p", "Cityscapes 256p", "result_256p",
                  "Cityscapes (2,975 training label maps and photos at 512x256) for 200 epochs, with the diversity "
                  "loss: one pass makes 9 different images (the seed or `output_index` picks the one shown)."),
    _crn_official("cityscapes-512p", "Cityscapes 512p", "result_512p",
                  "Cityscapes at 1024x512, fine-tuned for 20 epochs from the 256p model (one image per pass; targets "
                  "were tone-mapped photos)."),
    _crn_official("cityscapes-1024p", "Cityscapes 1024p", "result_1024p",
                  "Cityscapes at 2048x1024, fine-tuned for 5 epochs from the 512p model (only its two finest modules "
                  "trained; one image per pass)."),
    _crn_official("gta-256p", "GTA5 256p", "result_GTA",
                  "GTA5 street scenes (Playing for Data, labels in the Cityscapes ids and colours) at 512x256, with "
                  "the diversity loss: one pass makes 9 different images."),
    _official(
        "gaugan-compressed-cityscapes", "MobileSPADEModel", "cityscapes-compressed", "Compressed GauGAN Cityscapes",
        "GAN Compression GauGAN: fast Cityscapes label map to photo",
        converted_from="mit-han-lab/gan-compression compressed GauGAN pretrained/gaugan/cityscapes/compressed/"
                       "latest_net_G.pth (on the Hub at mit-han-lab/gan-compression, linked by "
                       "scripts/download_model.py of https://github.com/mit-han-lab/gan-compression)",
        command="labelsynth convert mobilespade latest_net_G.pth converted/gaugan-compressed-cityscapes "
                "--preset cityscapes-compressed",
        notes="Distilled by the GAN Compression authors from the full SPADE Cityscapes generator (2,975 gtFine "
              "training images with instance maps, 256x512; not on the Hub: its licence forbids redistribution, see "
              "https://www.cityscapes-dataset.com), then searched and fine-tuned. Deterministic (no latent). The "
              "weights' terms: the code is BSD-style, but the teacher (and the GauGAN code it derives from) is "
              f"NVIDIA's CC BY-NC-SA 4.0, so use them for non-commercial research only. {_MOBILE_SPADE_PARITY}",
        emoji="⚡",
    ),
    _official(
        "oasis-ade20k", "OASISModel", "ade20k", "OASIS ADE20K", "OASIS: ADE20K label map + 3D noise to photo",
        converted_from="boschresearch/OASIS checkpoint oasis_ade20k_pretrained/models/best_EMA.pth (the EMA generator; "
                       "Dropbox folder linked in the README of https://github.com/boschresearch/OASIS)",
        command="labelsynth convert oasis checkpoints/oasis_ade20k_pretrained converted/oasis-ade20k --preset ade20k",
        notes="Trained by the OASIS authors on ADE20K (SceneParse150, 20,210 training images) with the segmentation "
              "discriminator and LabelMix, no VGG loss. The 3D noise picks the appearance: `seed=` draws it, "
              f"`resample=` re-rolls one region. {_OASIS_PARITY}",
        datasets=("zhoubolei/scene_parse_150",), emoji="🌄",
    ),
    _official(
        "oasis-cityscapes", "OASISModel", "cityscapes", "OASIS Cityscapes",
        "OASIS: Cityscapes label map + 3D noise to photo",
        converted_from="boschresearch/OASIS checkpoint oasis_cityscapes_pretrained/models/best_EMA.pth (the EMA "
                       "generator; Dropbox folder linked in the README of https://github.com/boschresearch/OASIS)",
        command="labelsynth convert oasis checkpoints/oasis_cityscapes_pretrained converted/oasis-cityscapes "
                "--preset cityscapes",
        notes="Trained by the OASIS authors on Cityscapes (2,975 gtFine training images at 256x512; not on the Hub: "
              "its licence forbids redistribution, see https://www.cityscapes-dataset.com) with the segmentation "
              f"discriminator and LabelMix, no VGG loss. {_OASIS_PARITY}",
        emoji="🚙",
    ),
    _official(
        "cocosnet-ade20k", "CoCosNetModel", "ade20k", "CoCosNet ADE20K",
        "CoCosNet: ADE20K label map + exemplar to photo",
        converted_from="microsoft/CoCosNet checkpoint ade20k/latest_net_Corr.pth + latest_net_G.pth (download link "
                       "in the README of https://github.com/microsoft/CoCosNet)",
        command="labelsynth convert cocosnet checkpoints/ade20k converted/cocosnet-ade20k --preset ade20k",
        notes="Trained by the CoCosNet authors on ADE20K (SceneParse150, 20,210 training images) for 200 epochs, "
              "with exemplars retrieved by VGG features. Every image needs an exemplar photo (and ideally its label "
              f"map). {_COCOSNET_PARITY}",
        datasets=("zhoubolei/scene_parse_150",), emoji="🖼️",
    ),
)


def get_checkpoint(checkpoint_id: str) -> Checkpoint:
    """The registry entry of `checkpoint_id` (its short id or Hub id).

    Raises:
        KeyError: unknown id; the message lists the known ones.
    """
    for entry in CHECKPOINTS:
        if checkpoint_id in (entry.id, entry.hub_id):
            return entry
    raise KeyError(f"unknown checkpoint {checkpoint_id!r}; known: {', '.join(e.id for e in CHECKPOINTS)}")


def checkpoint_model_class(entry: Checkpoint) -> type:
    """The labelsynth model class of a checkpoint (e.g. `labelsynth.SPADEModel`)."""
    import labelsynth  # the model classes import this package, so resolve them at call time

    return getattr(labelsynth, entry.model_class)


def checkpoint_config(entry: Checkpoint) -> dict[str, Any]:
    """The config dict of a checkpoint: the shipped ``config.json`` or the preset of the model's config class."""
    if entry.weights_folder is not None:
        return json.loads((entry.weights_folder / "config.json").read_text(encoding="utf-8"))
    model_class = checkpoint_model_class(entry)
    config = model_class.config_class.for_dataset(entry.preset).to_dict()
    return {**config, "architectures": [model_class.__name__]}


def model_card_info(entry: Checkpoint) -> ModelCardInfo:
    """The architecture's `ModelCardInfo` (paper, licence of the weights, the paper's figures)."""
    return checkpoint_model_class(entry).model_card_info


def card_kwargs(entry: Checkpoint) -> dict[str, Any]:
    """Keyword arguments of `render_model_card` (and of ``push_to_hub(card_kwargs=...)``) for this checkpoint."""
    training: TrainingInfo = dict(entry.training)  # type: ignore[assignment]
    return {
        "model_id": entry.hub_id,
        "datasets": list(entry.datasets) or None,
        "training": training,
        "measured_metrics": list(entry.measured_metrics) or None,
    }


def checkpoint_card(entry: Checkpoint) -> ModelCard:
    """The model card of a registry entry, rendered by the same code as ``save_pretrained``/``push_to_hub``."""
    return render_model_card(model_card_info(entry), config=checkpoint_config(entry), **card_kwargs(entry))
