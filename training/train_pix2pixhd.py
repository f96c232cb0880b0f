#!/usr/bin/env python
"""Train or fine-tune pix2pixHD on a Hub dataset, a parquet/imagefolder dataset or an original dataset folder.

    # 1. the global generator (512p recipe)
    accelerate launch training/train_pix2pixhd.py --dataset data/cityscapes --preset cityscapes-512p \\
        --output_dir runs/pix2pixhd-512p --max_train_steps 297500 --decay_start_step 148750
    # 2. the local enhancer on top of it (1024p recipe): the enhancer alone first, then everything
    accelerate launch training/train_pix2pixhd.py --dataset data/cityscapes --preset cityscapes-1024p \\
        --pretrained_global runs/pix2pixhd-512p --fix_global_steps 29750 --output_dir runs/pix2pixhd-1024p \\
        --max_train_steps 148750 --decay_start_step 74375

Defaults follow the original recipe: LSGAN summed over the discriminator scales, feature matching 10, VGG 10 (with
--vgg_weights), Adam lr 2e-4 betas (0.5, 0.999) for G and D, constant then linear decay when --decay_start_step is
given (the original: 100 + 100 epochs of 2975 images at 512p, 50 + 50 at 1024p with --niter_fix_global 10 epochs).
With --instance_feat the feature encoder trains with the generator and, at the end, the training instances are
clustered into the model's feature bank (labelsynth cluster-features does it for an existing model).
"""

from __future__ import annotations

import argparse

import torch
from accelerate.utils import set_seed

from labelsynth import LabelMapProcessor
from labelsynth.data import PairedTransform
from labelsynth.modeling_utils import load_discriminator
from labelsynth.models.pix2pixhd import Pix2PixHDConfig, Pix2PixHDDiscriminator, Pix2PixHDModel
from labelsynth.models.pix2pixhd.configuration_pix2pixhd import PIX2PIXHD_PRESETS
from labelsynth.models.pix2pixhd.feature_clustering import cluster_features
from labelsynth.training import add_trainer_arguments
from labelsynth.training.modules import default_collate
from labelsynth.training.pix2pixhd import Pix2PixHDTrainingModule, init_from_global_model
from labelsynth.training.scripts import (
    VGG_WEIGHTS_HELP,
    add_data_arguments,
    add_evaluation_arguments,
    check_instance_maps,
    evaluation_fn,
    paired_gan_trainer,
    perceptual_vgg,
    training_rows,
    validation_rows,
)

# Model flags whose value (when given) overrides the preset: flag -> Pix2PixHDConfig field.
MODEL_FLAGS = {"image_size": "image_size", "generator_type": "generator_type", "ngf": "ngf",
               "n_downsample_global": "n_downsample_global", "n_blocks_global": "n_blocks_global",
               "n_local_enhancers": "n_local_enhancers", "n_blocks_local": "n_blocks_local", "norm": "norm",
               "feat_num": "feat_num", "nef": "nef", "n_downsample_e": "n_downsample_e", "n_clusters": "n_clusters",
               "ndf": "ndf", "n_layers_d": "n_layers_d", "num_d": "num_d"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = add_data_arguments(parser, "Cityscapes, images/+labels/(+instances/) pairs, ...")
    data.add_argument("--load_size", type=int, default=None,
                      help="short side before the random crop in --resize_mode keep_aspect (original --loadSize)")
    data.add_argument("--resize_mode", default="fixed", choices=["resize_and_crop", "fixed", "keep_aspect", "none"],
                      help="paired transform mode; 'fixed' resizes to the model size (the original scale_width)")

    model = parser.add_argument_group("model")
    model.add_argument("--preset", default="cityscapes-512p", choices=sorted(PIX2PIXHD_PRESETS),
                       help="recipe: label space, native size, global/local generator, discriminator scales")
    model.add_argument("--pretrained_model", default=None,
                       help="continue from a labelsynth pix2pixHD folder / Hub id (its discriminator/ subfolder is "
                            "used when present)")
    model.add_argument("--pretrained_global", default=None,
                       help="a trained *global* pix2pixHD folder whose generator (and encoder) initialise a local "
                            "model's global generator (original --load_pretrain from the 512p run)")
    model.add_argument("--fix_global_steps", type=int, default=0,
                       help="train only the outermost local enhancer (and the encoder) for this many steps, then "
                            "everything (original --niter_fix_global, in epochs there)")
    model.add_argument("--image_size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"), default=None)
    model.add_argument("--generator_type", choices=["global", "local"], default=None, help="original --netG")
    for flag, help_text in (("ngf", "generator width (64 global, 32 local)"),
                            ("n_downsample_global", "stride-2 convs of the global generator (4)"),
                            ("n_blocks_global", "residual blocks of the global generator (9)"),
                            ("n_local_enhancers", "local enhancers (1)"), ("n_blocks_local", "their blocks (3)"),
                            ("feat_num", "encoded feature channels (3)"), ("nef", "encoder width (16)"),
                            ("n_downsample_e", "encoder stride-2 convs (4)"),
                            ("n_clusters", "feature clusters per class (10)"), ("ndf", "discriminator width (64)"),
                            ("n_layers_d", "discriminator stride-2 convs (3)"), ("num_d", "discriminator scales")):
        model.add_argument(f"--{flag}", type=int, default=None, help=help_text)
    model.add_argument("--norm", choices=["instance", "batch"], default=None)
    model.add_argument("--instance_feat", action="store_true", help="train the instance-wise feature encoder")
    model.add_argument("--label_feat", action="store_true", help="train the label-wise feature encoder")
    model.add_argument("--no_instance", action="store_true", help="no instance edges even if the preset has them")
    model.add_argument("--no_cluster_features", action="store_true",
                       help="with a feature encoder: do not build the feature bank at the end of training")

    losses = parser.add_argument_group("losses")
    losses.add_argument("--gan_mode", default="ls", choices=["ls", "original", "hinge", "w"],
                        help="ls = LSGAN (pix2pixHD); original = --no_lsgan")
    losses.add_argument("--lambda_feat", type=float, default=10.0,
                        help="discriminator feature matching weight (0 = --no_ganFeat_loss)")
    losses.add_argument("--lambda_vgg", type=float, default=10.0, help="VGG loss weight (the original reuses "
                                                                         "--lambda_feat)")
    losses.add_argument("--lambda_l1", type=float, default=0.0,
                        help="L1 loss to the real image (not in pix2pixHD; steadies small runs without VGG)")
    losses.add_argument("--vgg_weights", default=None, help=VGG_WEIGHTS_HELP)

    add_evaluation_arguments(parser, metrics_note=" (with a feature encoder, each image is generated from its own "
                                                  "photo's encoded features, as the validation grid)")
    add_trainer_arguments(parser)
    # pix2pixHD's optimizer: Adam lr 2e-4, betas (0.5, 0.999), for G (+ E) and D alike.
    parser.set_defaults(generator_lr=2e-4, discriminator_lr=2e-4, adam_beta1=0.5, adam_beta2=0.999)
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> Pix2PixHDConfig:
    """The config of the model `build_model` makes, without building the model."""
    if args.pretrained_model:
        return Pix2PixHDConfig.from_pretrained(args.pretrained_model)
    overrides = {field: getattr(args, flag) for flag, field in MODEL_FLAGS.items() if getattr(args, flag) is not None}
    if args.instance_feat or args.label_feat:
        overrides["feature_mode"] = "label" if args.label_feat else "instance"
    if args.no_instance:
        overrides["use_instance_edges"] = False
    return Pix2PixHDConfig.for_dataset(args.preset, **overrides)


def instance_needs(args: argparse.Namespace, config: Pix2PixHDConfig) -> list[tuple[str, str | None]]:
    """What in `config` reads instance maps, and the flag that trains without it (none for a --pretrained_model)."""
    if args.pretrained_model:
        source = feature_source = "the --pretrained_model was trained with them"
    else:
        source = f"preset {args.preset!r}"
        feature_source = "--instance_feat" if args.instance_feat else source
    needs = []
    if config.use_instance_edges:
        needs.append((f"instance edges ({source})", None if args.pretrained_model else "--no_instance"))
    if config.feature_mode == "instance":
        needs.append((f"the instance-wise feature encoder ({feature_source})",
                      None if args.pretrained_model else "--label_feat"))
    return needs


def build_model(args: argparse.Namespace) -> tuple[Pix2PixHDModel, Pix2PixHDDiscriminator, LabelMapProcessor]:
    if args.pretrained_model:
        model = Pix2PixHDModel.from_pretrained(args.pretrained_model)
        processor = LabelMapProcessor.from_pretrained(args.pretrained_model)
        discriminator = load_discriminator(args.pretrained_model, Pix2PixHDDiscriminator, model.config)
        return model.train(), discriminator.train(), processor
    config = build_config(args)
    height, width = config.image_size
    processor = LabelMapProcessor(label_space=config.label_space, size={"height": height, "width": width})
    model = Pix2PixHDModel(config)
    if args.pretrained_global:
        init_from_global_model(model, Pix2PixHDModel.from_pretrained(args.pretrained_global))
    return model, Pix2PixHDDiscriminator(config), processor


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # The data first: a dataset that cannot train this model stops the run before the model is built.
    config = build_config(args)
    rows = training_rows(args, config.label_space)
    val_rows = validation_rows(args, config.label_space, rows)
    check_instance_maps(args, rows, instance_needs(args, config))
    check_instance_maps(args, val_rows, instance_needs(args, config))
    if args.eval_metrics and config.feature_mode == "instance" and not config.use_instance_edges:
        # evaluate_model hands instance maps only to models with instance edges.
        raise ValueError("--eval_metrics with instance-wise features needs instance edges (drop --no_instance), or "
                         "use --label_feat")
    evaluate_fn = evaluation_fn(args, val_rows, use_style=config.use_features)

    set_seed(args.seed)  # before the model is built: --seed covers its initialisation too
    model, discriminator, processor = build_model(args)
    config = model.config
    vgg = perceptual_vgg(args.vgg_weights, args.lambda_vgg)
    module = Pix2PixHDTrainingModule(model, discriminator, processor, vgg=vgg, gan_mode=args.gan_mode,
                                     lambda_feat=args.lambda_feat, lambda_vgg=args.lambda_vgg, lambda_l1=args.lambda_l1,
                                     fix_global_steps=args.fix_global_steps)

    needs_instances = config.use_instance_edges or config.feature_mode == "instance"
    transform_options = dict(size=tuple(config.image_size), load_size=args.load_size, mode=args.resize_mode,
                             label_space=config.label_space, use_instance=needs_instances, passthrough_columns=())
    # While the global generator is fixed its parameters get no gradient, which DDP must be told about.
    extra = {"ddp_find_unused_parameters": True} if args.fix_global_steps else {}
    trainer = paired_gan_trainer(module, args, argv, "train_pix2pixhd.py", rows, val_rows, transform_options,
                                 evaluate_fn, **extra)
    generator = trainer.train()
    if config.use_features and not args.no_cluster_features and trainer.accelerator.is_main_process:
        # The original's encode_features.py step: the feature bank from the training set, without augmentation.
        view = PairedTransform(flip=False, **transform_options)
        samples = [view.apply(rows[i]) for i in range(len(rows))]
        device = generator.device
        batches = ({k: v.to(device) for k, v in default_collate(samples[i:i + args.train_batch_size]).items()}
                   for i in range(0, len(samples), args.train_batch_size))
        with torch.no_grad():
            cluster_features(generator.eval(), batches, seed=args.seed)
        generator.save_pretrained(args.output_dir)
    trainer.accelerator.end_training()


if __name__ == "__main__":
    main()
