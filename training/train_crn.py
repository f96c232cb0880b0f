#!/usr/bin/env python
"""Train or fine-tune CRN (cascaded refinement network) on a Hub dataset, a parquet/imagefolder dataset or an
original dataset folder.

    accelerate launch training/train_crn.py --dataset data/cityscapes --preset cityscapes-256p \\
        --output_dir runs/crn-cityscapes-256p --vgg_weights vgg19-matconvnet.safetensors --max_train_steps 595000

The paper's recipe is the default: the diversity loss with k = 9 outputs and the 256p layer weights, Adam with
lr 1e-4 and TF's default betas (0.9, 0.999), batch size 1, no learning-rate decay (200 epochs of 2975 images).
Higher resolutions are fine-tuned from the lower one (`--pretrained_model`, a new finer module is added by
`--preset cityscapes-512p`: the coarser modules' weights are kept), with the plain loss (k = 1) and their weights.
Without `--vgg_weights`, torchvision's ImageNet VGG19 is downloaded once (offline without it, only the image
term of the loss is used, and the script says so at start).
"""

from __future__ import annotations

import argparse

from accelerate.utils import set_seed

from labelsynth import LabelMapProcessor
from labelsynth.losses.diversity import CRN_LAYER_WEIGHTS
from labelsynth.models.crn import CRNConfig, CRNModel
from labelsynth.training import add_trainer_arguments
from labelsynth.training.crn import CRNTrainingModule
from labelsynth.training.scripts import (
    add_data_arguments,
    add_evaluation_arguments,
    evaluation_fn,
    paired_gan_trainer,
    perceptual_vgg,
    training_rows,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_data_arguments(parser, "Cityscapes leftImg8bit + gtFine, images/+labels/ pairs", validation_split=False,
                       flip_note=" (the original had none)")

    model = parser.add_argument_group("model")
    model.add_argument("--preset", default="cityscapes-256p",
                       help="cityscapes-256p, cityscapes-512p, cityscapes-1024p or gta-256p")
    model.add_argument("--pretrained_model", default=None,
                       help="start from a labelsynth CRN folder / Hub id; modules it shares with the preset's "
                            "architecture are loaded (fine-tuning 256p -> 512p adds the new finest module)")
    model.add_argument("--image_size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"), default=None)
    model.add_argument("--module_channels", type=int, nargs="+", default=None,
                       help="width of each refinement module, coarsest first (paper: 1024 x5, 512 x2)")
    model.add_argument("--num_outputs", type=int, default=None, help="images per label map k (paper: 9 at 256p)")

    losses = parser.add_argument_group("losses")
    losses.add_argument("--layer_weights", default=None, choices=sorted(CRN_LAYER_WEIGHTS),
                        help="lambdas of (image, relu1_2 .. relu5_2) (default: the preset's)")
    losses.add_argument("--vgg_weights", default=None,
                        help="torchvision-layout VGG19 weights (path or Hub id), used with average pooling; default: "
                             "torchvision's ImageNet file, downloaded once (only the image term is used, with a "
                             "message, when it cannot be had)")
    losses.add_argument("--vgg_input", default=None, choices=["matconvnet", "imagenet"],
                        help="matconvnet: 0..255 minus the mean (MatConvNet weights, the original); imagenet: "
                             "torchvision's normalisation (vgg19-dcbb9e9d.pth) (default: matconvnet with "
                             "--vgg_weights, imagenet for the downloaded torchvision file)")

    add_evaluation_arguments(parser, metrics_note=" (CRN has no validation split: the training rows are scored; "
                                                  "each label map's image is one of the k candidates, drawn from "
                                                  "--seed)")
    add_trainer_arguments(parser)
    parser.set_defaults(generator_lr=1e-4, adam_beta1=0.9, adam_beta2=0.999)
    return parser.parse_args(argv)


def build_model(args: argparse.Namespace) -> tuple[CRNModel, LabelMapProcessor]:
    overrides = {k: v for k, v in {"image_size": args.image_size, "module_channels": args.module_channels,
                                   "num_outputs": args.num_outputs}.items() if v is not None}
    config = CRNConfig.for_dataset(args.preset, **overrides)
    model = CRNModel(config)
    if args.pretrained_model:
        pretrained = CRNModel.from_pretrained(args.pretrained_model)
        # The original fine-tunes 512p from 256p by restoring every variable but the new module (and head).
        target = model.state_dict()
        shared = {k: v for k, v in pretrained.state_dict().items() if k in target and v.shape == target[k].shape}
        model.load_state_dict(shared, strict=False)
    height, width = config.image_size
    processor = LabelMapProcessor(label_space=config.label_space, size={"height": height, "width": width})
    return model.train(), processor


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    set_seed(args.seed)  # before the model is built: --seed covers its initialisation too
    model, processor = build_model(args)
    config = model.config
    vgg = perceptual_vgg(args.vgg_weights, 1.0, pool="avg")
    layer_weights = args.layer_weights or CRNConfig.preset_key(args.preset)  # the loss weights of the preset's script
    vgg_input = args.vgg_input or ("matconvnet" if args.vgg_weights else "imagenet")
    module = CRNTrainingModule(model, processor, vgg=vgg, layer_weights=layer_weights, vgg_input=vgg_input)

    rows = training_rows(args, config.label_space)
    transform_options = {"size": tuple(config.image_size), "mode": "fixed", "label_space": config.label_space,
                         "use_instance": False, "passthrough_columns": ()}
    trainer = paired_gan_trainer(module, args, argv, "train_crn.py", rows, rows, transform_options,
                                 evaluation_fn(args, rows))
    trainer.train()
    trainer.accelerator.end_training()


if __name__ == "__main__":
    main()
