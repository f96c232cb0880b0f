#!/usr/bin/env python
"""Train or fine-tune pix2pix (label -> photo) on a Hub dataset, a parquet/imagefolder dataset or an original folder.

    accelerate launch training/train_pix2pix.py --dataset data/cityscapes --preset cityscapes \\
        --output_dir runs/pix2pix-cityscapes --load_size 286 --max_train_steps 595000 --decay_start_step 297500

Defaults follow the original recipe (`--model pix2pix`): U-Net 256 with BatchNorm and dropout, 70x70 PatchGAN,
vanilla GAN + 100 * L1, Adam lr 2e-4 betas (0.5, 0.999) for G and D, batch size 1, random 256 crops of 286x286
resized images with flips (`--load_size 286`), and a constant then linearly decaying learning rate (the original:
100 + 100 epochs; give --decay_start_step). The label map enters the generator as its palette colour rendering
(`--input_encoding color`, as the released models) or as one-hot channels; datasets provide label ids either way.
"""

from __future__ import annotations

import argparse

from accelerate.utils import set_seed

from labelsynth import LabelMapProcessor, Pix2PixConfig, Pix2PixDiscriminator, Pix2PixModel
from labelsynth.modeling_utils import load_discriminator
from labelsynth.models.pix2pix.configuration_pix2pix import PIX2PIX_PRESETS, UNET_NUM_DOWNS
from labelsynth.training import add_trainer_arguments
from labelsynth.training.pix2pix import Pix2PixTrainingModule
from labelsynth.training.scripts import (
    add_data_arguments,
    add_evaluation_arguments,
    evaluation_fn,
    paired_gan_trainer,
    training_rows,
    validation_rows,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = add_data_arguments(parser, "Cityscapes, images/+labels/ pairs, ...", flip_note=" (original --no_flip)")
    data.add_argument("--load_size", type=int, default=None,
                      help="resize to this square before the random crop (original --load_size 286 for 256 crops); "
                           "default: resize straight to the model size")
    data.add_argument("--resize_mode", default="resize_and_crop",
                      choices=["resize_and_crop", "fixed", "keep_aspect", "none"],
                      help="paired transform mode (original --preprocess resize_and_crop)")

    model = parser.add_argument_group("model")
    model.add_argument("--preset", default="facades", choices=sorted(PIX2PIX_PRESETS),
                       help="dataset preset: label space and size")
    model.add_argument("--pretrained_model", default=None,
                       help="continue from a labelsynth pix2pix folder / Hub id, e.g. a converted official "
                            "checkpoint (its discriminator/ subfolder is used when present)")
    model.add_argument("--image_size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"), default=None)
    model.add_argument("--netG", dest="net_g", choices=sorted(UNET_NUM_DOWNS), default=None,
                       help="U-Net depth: unet_256 (8 levels) or unet_128 (7)")
    model.add_argument("--num_downs", type=int, default=None, help="U-Net levels (overrides --netG; >= 5)")
    model.add_argument("--input_encoding", choices=["color", "one_hot"], default=None,
                       help="generator input: palette colour rendering of the label map or one-hot channels")
    model.add_argument("--ngf", type=int, default=None, help="generator width (64)")
    model.add_argument("--ndf", type=int, default=None, help="discriminator width (64)")
    model.add_argument("--n_layers_D", dest="n_layers_d", type=int, default=None,
                       help="stride-2 layers of the PatchGAN (3 = 70x70)")
    model.add_argument("--norm", choices=["batch", "instance"], default=None, help="norm of G and D (batch)")
    model.add_argument("--no_dropout", action="store_true", help="no dropout in the generator")
    model.add_argument("--test_mode", choices=["original", "eval"], default=None,
                       help="eval-mode behaviour saved in the model (and used for validation images): original "
                            "keeps dropout and batch statistics (default), eval uses neither")

    losses = parser.add_argument_group("losses")
    losses.add_argument("--gan_mode", default="original", choices=["original", "ls", "hinge", "w"],
                        help="original = pix2pix's vanilla GAN (BCE); ls = lsgan")
    losses.add_argument("--lambda_L1", dest="lambda_l1", type=float, default=100.0, help="L1 weight")

    add_evaluation_arguments(parser)
    add_trainer_arguments(parser)
    # pix2pix's optimizer: Adam lr 2e-4, betas (0.5, 0.999), for G and D alike.
    parser.set_defaults(generator_lr=2e-4, discriminator_lr=2e-4, adam_beta1=0.5, adam_beta2=0.999)
    return parser.parse_args(argv)


def build_model(args: argparse.Namespace) -> tuple[Pix2PixModel, Pix2PixDiscriminator, LabelMapProcessor]:
    if args.pretrained_model:
        model = Pix2PixModel.from_pretrained(args.pretrained_model)
        processor = LabelMapProcessor.from_pretrained(args.pretrained_model)
        discriminator = load_discriminator(args.pretrained_model, Pix2PixDiscriminator, model.config)
        return model.train(), discriminator.train(), processor
    overrides = {k: getattr(args, k) for k in ("image_size", "input_encoding", "ngf", "ndf", "n_layers_d", "norm",
                                               "test_mode", "num_downs") if getattr(args, k) is not None}
    if args.net_g and args.num_downs is None:
        overrides["num_downs"] = UNET_NUM_DOWNS[args.net_g]
    if args.no_dropout:
        overrides["use_dropout"] = False
    config = Pix2PixConfig.for_dataset(args.preset, **overrides)
    height, width = config.image_size
    processor = LabelMapProcessor(label_space=config.label_space, size={"height": height, "width": width})
    return Pix2PixModel(config), Pix2PixDiscriminator(config), processor


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    set_seed(args.seed)  # before the model is built: --seed covers its initialisation too
    model, discriminator, processor = build_model(args)
    config = model.config
    module = Pix2PixTrainingModule(model, discriminator, processor, gan_mode=args.gan_mode, lambda_l1=args.lambda_l1)

    rows = training_rows(args, config.label_space)
    transform_options = dict(size=tuple(config.image_size), load_size=args.load_size, mode=args.resize_mode,
                             label_space=config.label_space, use_instance=config.use_instance_edges,
                             passthrough_columns=())
    val_rows = validation_rows(args, config.label_space, rows)
    trainer = paired_gan_trainer(module, args, argv, "train_pix2pix.py", rows, val_rows, transform_options,
                                 evaluation_fn(args, val_rows))
    trainer.train()
    trainer.accelerator.end_training()


if __name__ == "__main__":
    main()
