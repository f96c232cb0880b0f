#!/usr/bin/env python
"""Train or fine-tune SEAN on CelebAMask-HQ (a Hub dataset, a parquet/imagefolder dataset or the original folder).

    accelerate launch training/train_sean.py --dataset /data/CelebAMask-HQ --output_dir runs/sean \\
        --train_batch_size 8 --mixed_precision bf16 --max_train_steps 300000 --decay_start_step 150000 \\
        --checkpointing_steps 5000 --validation_steps 1000 --resume_from_checkpoint latest \\
        --vgg_weights /path/to/vgg19-dcbb9e9d.pth --push_to_hub --hub_model_id org/sean-celebamask-hq

The original CelebAMask-HQ folder (`CelebA-HQ-img/` + `CelebAMask-HQ-mask-anno/` part masks) is merged into SEAN's
class order on the fly. Runs on CPU, one GPU or many (`accelerate launch --multi_gpu --num_processes N`). Defaults
follow the original recipe: hinge loss, feature matching 10, VGG 10, TTUR (G 1e-4, D 4e-4), Adam betas (0, 0.9),
constant then linear decay when `--decay_start_step` is given (the original: 50 + 50 epochs); the generator
reconstructs every training image from its own region styles.
"""

from __future__ import annotations

import argparse

from accelerate.utils import set_seed

from labelsynth import LabelMapProcessor, SEANConfig, SEANDiscriminator, SEANModel
from labelsynth.modeling_utils import load_discriminator
from labelsynth.training import add_trainer_arguments
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
from labelsynth.training.sean import SEANTrainingModule


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = add_data_arguments(parser, "CelebAMask-HQ: CelebA-HQ-img/ + CelebAMask-HQ-mask-anno/")
    data.add_argument("--load_size", type=int, default=None,
                      help="resize before the random crop (original --load_size: 286 for 256 crops in custom mode)")

    model = parser.add_argument_group("model")
    model.add_argument("--preset", default="celebamask-hq", help="dataset preset: celebamask-hq")
    model.add_argument("--pretrained_model", default=None,
                       help="start from a labelsynth SEAN folder / Hub id (e.g. a converted official checkpoint); its "
                            "discriminator/ subfolder is used when present")
    model.add_argument("--image_size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"), default=None)
    model.add_argument("--ngf", type=int, default=None, help="generator width (paper 64)")
    model.add_argument("--ndf", type=int, default=None, help="discriminator width (paper 64)")
    model.add_argument("--spade_hidden_nc", type=int, default=None, help="SPADE-branch hidden width (paper 128)")
    model.add_argument("--style_dim", type=int, default=None, help="length of a region style code (paper 512)")
    model.add_argument("--style_encoder_ngf", type=int, default=None, help="style encoder width (paper 32)")
    model.add_argument("--param_free_norm", choices=["syncbatch", "batch", "instance"], default=None)

    losses = parser.add_argument_group("losses")
    losses.add_argument("--gan_mode", default="hinge", choices=["hinge", "ls", "original", "w"])
    losses.add_argument("--lambda_feat", type=float, default=10.0, help="feature matching weight (0 disables)")
    losses.add_argument("--lambda_vgg", type=float, default=10.0, help="VGG perceptual weight")
    losses.add_argument("--lambda_l1", type=float, default=0.0,
                        help="L1 loss to the real image (0 in SEAN; steadies small runs without VGG weights)")
    losses.add_argument("--vgg_weights", default=None, help=VGG_WEIGHTS_HELP)

    add_evaluation_arguments(parser, metrics_note=" (psnr,ssim: reconstruction quality from each photo's own "
                                                  "styles)")

    add_trainer_arguments(parser)
    # Blocks without a style branch keep the original's (unused) blending weights, which get no gradient.
    parser.set_defaults(ddp_find_unused_parameters=True)
    return parser.parse_args(argv)


def build_model(args: argparse.Namespace) -> tuple[SEANModel, SEANDiscriminator, LabelMapProcessor]:
    if args.pretrained_model:
        model = SEANModel.from_pretrained(args.pretrained_model)
        processor = LabelMapProcessor.from_pretrained(args.pretrained_model)
        discriminator = load_discriminator(args.pretrained_model, SEANDiscriminator, model.config)
        return model.train(), discriminator.train(), processor
    overrides = {k: v for k, v in {"image_size": args.image_size, "ngf": args.ngf, "ndf": args.ndf,
                                   "spade_hidden_nc": args.spade_hidden_nc, "style_dim": args.style_dim,
                                   "style_encoder_ngf": args.style_encoder_ngf,
                                   "param_free_norm": args.param_free_norm}.items() if v is not None}
    config = SEANConfig.for_dataset(args.preset, **overrides)
    height, width = config.image_size
    processor = LabelMapProcessor(label_space=config.label_space, size={"height": height, "width": width})
    return SEANModel(config), SEANDiscriminator(config), processor


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    set_seed(args.seed)  # before the model is built: --seed covers its initialisation too
    model, discriminator, processor = build_model(args)
    config = model.config
    vgg = perceptual_vgg(args.vgg_weights, args.lambda_vgg)
    module = SEANTrainingModule(model, discriminator, processor, vgg=vgg, gan_mode=args.gan_mode,
                                lambda_feat=args.lambda_feat, lambda_vgg=args.lambda_vgg, lambda_l1=args.lambda_l1)

    rows = training_rows(args, config.label_space)
    transform_options = dict(size=tuple(config.image_size), load_size=args.load_size, mode="resize_and_crop",
                             label_space=config.label_space, use_instance=False, passthrough_columns=())
    val_rows = validation_rows(args, config.label_space, rows)
    trainer = paired_gan_trainer(module, args, argv, "train_sean.py", rows, val_rows, transform_options,
                                 evaluation_fn(args, val_rows, use_style=True))
    trainer.train()
    trainer.accelerator.end_training()


if __name__ == "__main__":
    main()
