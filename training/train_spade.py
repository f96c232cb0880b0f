#!/usr/bin/env python
"""Train or fine-tune SPADE / GauGAN on a Hub dataset, a parquet/imagefolder dataset or an original dataset folder.

    accelerate launch training/train_spade.py --dataset data/ade20k --preset ade20k --output_dir runs/spade-ade20k \\
        --train_batch_size 8 --mixed_precision bf16 --max_train_steps 200000 --checkpointing_steps 5000 \\
        --validation_steps 1000 --resume_from_checkpoint latest --push_to_hub --hub_model_id org/spade-ade20k

Runs on CPU, one GPU or many (`accelerate launch --multi_gpu --num_processes N`), and on several machines
(`--num_machines M --machine_rank r --main_process_ip HOST --main_process_port PORT`). Defaults follow the paper's
recipe: hinge loss, feature matching 10, VGG 10, KL 0.05 (VAE), TTUR (G 1e-4, D 4e-4), Adam betas (0, 0.9),
constant then linear decay over the second half when `--decay_start_step` is given.
"""

from __future__ import annotations

import argparse

import torch
from accelerate.utils import set_seed

from labelsynth import LabelMapProcessor, SPADEConfig, SPADEDiscriminator, SPADEModel
from labelsynth.modeling_utils import load_discriminator
from labelsynth.training import (
    SPADETrainingModule,
    add_trainer_arguments,
)
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = add_data_arguments(parser,
                              "ADEChallengeData2016, Cityscapes, CelebAMask-HQ, COCO-Stuff, images/+labels/ pairs")
    data.add_argument("--load_size", type=int, default=None,
                      help="resize the shorter side (or both, for square presets) before the random crop "
                           "(original --load_size; ADE20K/COCO 286 for 256 crops)")
    data.add_argument("--resize_mode", default=None, choices=["resize_and_crop", "fixed", "keep_aspect", "none"],
                      help="paired transform mode (default: fixed for Cityscapes, resize_and_crop otherwise)")

    model = parser.add_argument_group("model")
    model.add_argument("--preset", default="ade20k", help="dataset preset: ade20k, cityscapes, coco-stuff")
    model.add_argument("--pretrained_model", default=None,
                       help="start from a labelsynth SPADE folder / Hub id (e.g. a converted official checkpoint); its "
                            "discriminator/ subfolder is used when present")
    model.add_argument("--image_size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"), default=None)
    model.add_argument("--ngf", type=int, default=None, help="generator width (paper 64)")
    model.add_argument("--ndf", type=int, default=None, help="discriminator width (paper 64)")
    model.add_argument("--spade_hidden_nc", type=int, default=None, help="SPADE hidden width (paper 128)")
    model.add_argument("--num_upsampling_layers", choices=["normal", "more", "most"], default=None)
    model.add_argument("--param_free_norm", choices=["syncbatch", "batch", "instance"], default=None)
    model.add_argument("--use_vae", action="store_true",
                       help="train with the VAE style encoder (KL loss); with a non-VAE --pretrained_model, its "
                            "generator is kept and a style encoder added (G's first layer becomes fc(z))")
    model.add_argument("--z_dim", type=int, default=None, help="size of the VAE latent z (paper 256)")
    model.add_argument("--no_instance", action="store_true", help="do not use instance edges even if the preset does")

    losses = parser.add_argument_group("losses")
    losses.add_argument("--gan_mode", default="hinge", choices=["hinge", "ls", "original", "w"])
    losses.add_argument("--lambda_feat", type=float, default=10.0, help="feature matching weight (0 disables)")
    losses.add_argument("--lambda_vgg", type=float, default=10.0, help="VGG perceptual weight")
    losses.add_argument("--lambda_kld", type=float, default=0.05, help="KL weight (VAE)")
    losses.add_argument("--lambda_l1", type=float, default=0.0,
                        help="L1 loss to the real image (pix2pix's term; 0 in the SPADE paper)")
    losses.add_argument("--vgg_weights", default=None, help=VGG_WEIGHTS_HELP)

    add_evaluation_arguments(parser)
    add_trainer_arguments(parser)
    return parser.parse_args(argv)


def add_style_encoder(model: SPADEModel, z_dim: int) -> SPADEModel:
    """A VAE copy of a trained non-VAE SPADE: every generator weight is kept except its first layer, which becomes
    fc(z); that layer and the new style encoder start from the paper init (fine-tune them with --use_vae)."""
    config = SPADEConfig(**{**model.config.to_diff_dict(), "use_vae": True, "z_dim": z_dim})
    vae = SPADEModel(config)
    kept = {k: v for k, v in model.state_dict().items() if not k.startswith("generator.fc.")}
    missing, unexpected = vae.load_state_dict(kept, strict=False)
    if unexpected or not all(k.startswith(("generator.fc.", "encoder.")) for k in missing):
        raise ValueError(f"cannot add a style encoder to this model: unexpected {unexpected}, missing {missing}")
    return vae


def build_config(args: argparse.Namespace) -> SPADEConfig:
    """The config of the model `build_model` makes (its label space and instance edges; before `--use_vae` is added
    to a --pretrained_model), without building the model."""
    if args.pretrained_model:
        return SPADEConfig.from_pretrained(args.pretrained_model)
    overrides = {k: v for k, v in {"image_size": args.image_size, "ngf": args.ngf, "ndf": args.ndf,
                                   "num_upsampling_layers": args.num_upsampling_layers,
                                   "spade_hidden_nc": args.spade_hidden_nc,
                                   "param_free_norm": args.param_free_norm}.items() if v is not None}
    if args.use_vae:
        overrides["use_vae"] = True
    if args.z_dim is not None:
        overrides["z_dim"] = args.z_dim
    if args.no_instance:
        overrides["use_instance_edges"] = False
    return SPADEConfig.for_dataset(args.preset, **overrides)


def build_model(args: argparse.Namespace) -> tuple[SPADEModel, SPADEDiscriminator, LabelMapProcessor]:
    if args.pretrained_model:
        model = SPADEModel.from_pretrained(args.pretrained_model, dtype=torch.float32)
        processor = LabelMapProcessor.from_pretrained(args.pretrained_model)
        if args.use_vae and not model.config.use_vae:
            model = add_style_encoder(model, args.z_dim or model.config.z_dim)
        discriminator = load_discriminator(args.pretrained_model, SPADEDiscriminator, model.config)
        return model.train(), discriminator.train(), processor
    config = build_config(args)
    height, width = config.image_size
    processor = LabelMapProcessor(label_space=config.label_space, size={"height": height, "width": width})
    return SPADEModel(config), SPADEDiscriminator(config), processor


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # The data first: a dataset that cannot train this model stops the run before the model is built.
    config = build_config(args)
    rows = training_rows(args, config.label_space)
    val_rows = validation_rows(args, config.label_space, rows)
    if config.use_instance_edges:
        needs = ([("instance edges (the --pretrained_model was trained with them)", None)] if args.pretrained_model
                 else [(f"instance edges (preset {args.preset!r})", "--no_instance")])
        check_instance_maps(args, rows, needs)
        check_instance_maps(args, val_rows, needs)

    evaluate_fn = evaluation_fn(args, val_rows)

    set_seed(args.seed)  # before the model is built: --seed covers its initialisation too
    model, discriminator, processor = build_model(args)
    config = model.config
    vgg = perceptual_vgg(args.vgg_weights, args.lambda_vgg)
    module = SPADETrainingModule(model, discriminator, processor, vgg=vgg, gan_mode=args.gan_mode,
                                 lambda_feat=args.lambda_feat, lambda_vgg=args.lambda_vgg, lambda_kld=args.lambda_kld,
                                 lambda_l1=args.lambda_l1)

    mode = args.resize_mode or ("fixed" if config.image_size[0] != config.image_size[1] else "resize_and_crop")
    transform_options = dict(size=tuple(config.image_size), load_size=args.load_size, mode=mode,
                             label_space=config.label_space, use_instance=config.use_instance_edges,
                             passthrough_columns=())
    trainer = paired_gan_trainer(module, args, argv, "train_spade.py", rows, val_rows, transform_options, evaluate_fn)
    trainer.train()
    trainer.accelerator.end_training()


if __name__ == "__main__":
    main()
