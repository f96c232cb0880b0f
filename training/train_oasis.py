#!/usr/bin/env python
"""Train or fine-tune OASIS on a Hub dataset, a parquet/imagefolder dataset or an original dataset folder.

    accelerate launch training/train_oasis.py --dataset data/ADEChallengeData2016 --preset ade20k \\
        --output_dir runs/oasis-ade20k --mixed_precision bf16 --checkpointing_steps 10000 \\
        --resume_from_checkpoint latest --push_to_hub --hub_model_id org/oasis-ade20k

Runs on CPU, one GPU or many (`accelerate launch --multi_gpu --num_processes N`; `--train_batch_size` is per
process). `--preset` sets the original's recipe for that dataset (flags given on the command line win): batch 32 /
20 / 32 (ADE20K / Cityscapes / COCO-Stuff, over 4 GPUs in the original), 126,200 / 29,600 / 369,600 iterations,
constant learning rates G 1e-4 / 4e-4 / 1e-4 and D 4e-4, Adam betas (0, 0.999), EMA decay 0.9999 / 0.999 / 0.9999,
LabelMix weight 10 / 5 / 10, validation every 5000 / 2500 / 5000 steps, class-balanced N+1 cross-entropy, no VGG
loss, BatchNorm statistics of the EMA generator re-estimated on 51 training batches before validation and saving.
Data as the original loaders: ADE20K and COCO-Stuff resized to 286x286 then randomly cropped to 256, Cityscapes
resized to 256x512; random horizontal flips.
"""

from __future__ import annotations

import argparse

import torch
from accelerate.utils import set_seed

from labelsynth import LabelMapProcessor, OASISConfig, OASISDiscriminator, OASISModel
from labelsynth.modeling_utils import load_discriminator
from labelsynth.training import OASISTrainingModule, add_trainer_arguments
from labelsynth.training.oasis import oasis_training_preset
from labelsynth.training.scripts import (
    VGG_WEIGHTS_HELP,
    add_data_arguments,
    add_evaluation_arguments,
    evaluation_fn,
    paired_gan_trainer,
    perceptual_vgg,
    training_rows,
    validation_rows,
)

# The original re-estimates the EMA generator's BatchNorm statistics on up to 51 training batches.
EMA_BN_BATCHES = 51
# ADE20K / COCO-Stuff: resize to 286 then a random 256 crop (the load size scales with --image_size).
LOAD_RATIO = 286 / 256


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    # --preset first: it sets the defaults of the training flags.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", default="ade20k")
    preset = pre.parse_known_args(argv)[0].preset
    recipe = oasis_training_preset(preset)

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = add_data_arguments(parser, "ADEChallengeData2016, Cityscapes, COCO-Stuff, images/+labels/ pairs")
    data.add_argument("--load_size", type=int, default=None,
                      help="resize (ignoring the aspect ratio) to this square before the random crop; default: "
                           "286/256 of the image size for square presets (the original's 286 for 256 crops)")
    data.add_argument("--resize_mode", default=None, choices=["resize_and_crop", "fixed", "keep_aspect", "none"],
                      help="paired transform mode (default: fixed for non-square sizes such as Cityscapes', "
                           "resize_and_crop otherwise)")

    model = parser.add_argument_group("model")
    model.add_argument("--preset", default="ade20k",
                       help="dataset preset (label convention and training recipe): ade20k, cityscapes, coco-stuff")
    model.add_argument("--pretrained_model", default=None,
                       help="start from a labelsynth OASIS folder / Hub id (e.g. a converted official checkpoint); "
                            "its discriminator/ subfolder is used when present")
    model.add_argument("--image_size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"), default=None,
                       help="training size, multiples of 64 (default: the preset's, 256x256 or 256x512)")
    model.add_argument("--ngf", type=int, default=None, help="generator width unit (original 64)")
    model.add_argument("--ndf", type=int, default=None, help="discriminator width unit (original 64)")
    model.add_argument("--z_dim", type=int, default=None, help="3D noise channels (original 64)")
    model.add_argument("--spade_hidden_nc", type=int, default=None, help="SPADE hidden width (original 128)")
    model.add_argument("--param_free_norm", choices=["syncbatch", "batch", "instance"], default=None,
                       help="normalisation inside SPADE (original syncbatch)")
    model.add_argument("--no_spectral_norm", action="store_true", help="train without spectral normalisation")

    losses = parser.add_argument_group("losses")
    losses.add_argument("--lambda_labelmix", type=float, default=recipe.pop("lambda_labelmix"),
                        help="LabelMix weight (original: 10, Cityscapes 5; 0 disables LabelMix)")
    losses.add_argument("--no_class_balancing", action="store_true",
                        help="unweighted N+1 cross-entropy (the original's --no_balancing_inloss)")
    losses.add_argument("--lambda_vgg", type=float, default=0.0,
                        help="VGG perceptual weight (0: off, the paper's recipe; the original's --add_vgg_loss "
                             "uses 10)")
    losses.add_argument("--vgg_weights", default=None, help=VGG_WEIGHTS_HELP)
    losses.add_argument("--lambda_l1", type=float, default=0.0,
                        help="L1 loss to the real image (not in OASIS; steadies small runs without VGG weights but "
                             "pulls every noise towards the one photo)")

    # The original computes FID every --freq_fid iterations (the presets' --validation_steps): --eval_metrics fid.
    add_evaluation_arguments(parser)
    add_trainer_arguments(parser)
    parser.set_defaults(ema_bn_batches=EMA_BN_BATCHES, **recipe)
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> OASISConfig:
    """The config of the model `build_model` makes, without building the model."""
    if args.pretrained_model:
        return OASISConfig.from_pretrained(args.pretrained_model)
    overrides = {k: v for k, v in {"image_size": args.image_size, "ngf": args.ngf, "ndf": args.ndf,
                                   "z_dim": args.z_dim, "spade_hidden_nc": args.spade_hidden_nc,
                                   "param_free_norm": args.param_free_norm}.items() if v is not None}
    if args.no_spectral_norm:
        overrides["spectral_norm"] = False
    config = OASISConfig.for_dataset(args.preset, **overrides)
    height, width = config.image_size
    if height % 64 or width % 64:
        raise ValueError(f"--image_size {height} {width}: the OASIS discriminator needs sides divisible by 64 (it "
                         "halves the resolution six times); e.g. 256 256, 256 512, 64 128")
    return config


def build_model(args: argparse.Namespace, config: OASISConfig
                ) -> tuple[OASISModel, OASISDiscriminator, LabelMapProcessor]:
    if args.pretrained_model:
        model = OASISModel.from_pretrained(args.pretrained_model, dtype=torch.float32)
        processor = LabelMapProcessor.from_pretrained(args.pretrained_model)
        discriminator = load_discriminator(args.pretrained_model, OASISDiscriminator, model.config)
        return model.train(), discriminator.train(), processor
    height, width = config.image_size
    processor = LabelMapProcessor(label_space=config.label_space, size={"height": height, "width": width})
    return OASISModel(config), OASISDiscriminator(config), processor


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # The data first: a dataset that cannot train this model stops the run before the model is built.
    config = build_config(args)
    rows = training_rows(args, config.label_space)
    val_rows = validation_rows(args, config.label_space, rows)
    evaluate_fn = evaluation_fn(args, val_rows)

    set_seed(args.seed)  # before the model is built: --seed covers its initialisation too
    model, discriminator, processor = build_model(args, config)
    vgg = perceptual_vgg(args.vgg_weights, args.lambda_vgg)
    module = OASISTrainingModule(model, discriminator, processor, lambda_labelmix=args.lambda_labelmix,
                                 class_balancing=not args.no_class_balancing, vgg=vgg, lambda_vgg=args.lambda_vgg,
                                 lambda_l1=args.lambda_l1)

    size = tuple(config.image_size)
    square = size[0] == size[1]
    mode = args.resize_mode or ("resize_and_crop" if square else "fixed")
    load_size = args.load_size
    if load_size is None and square and mode == "resize_and_crop":
        load_size = round(size[0] * LOAD_RATIO)
    transform_options = {"size": size, "load_size": load_size, "mode": mode, "label_space": config.label_space,
                         "use_instance": False, "passthrough_columns": ()}
    trainer = paired_gan_trainer(module, args, argv, "train_oasis.py", rows, val_rows, transform_options, evaluate_fn)
    trainer.train()
    trainer.accelerator.end_training()


if __name__ == "__main__":
    main()
