#!/usr/bin/env python
"""Train or fine-tune CoCosNet (exemplar-based synthesis) on a Hub dataset, a parquet/imagefolder dataset or an
original dataset folder.

    accelerate launch training/train_cocosnet.py --dataset data/ade20k --pairs ade20k_ref.txt --preset ade20k \\
        --output_dir runs/cocosnet-ade20k --vgg_weights vgg19_conv.pth --train_batch_size 4 \\
        --max_train_steps 400000 --decay_start_step 200000 --checkpointing_steps 5000 --validation_steps 1000
    accelerate launch training/train_cocosnet.py --dataset data/ade20k --retrieve ...   # built-in retrieval

Exemplars: `--pairs` reads a list file in the original's format (`name,exemplar[,...]` per line, e.g. CoCosNet's
`data/ade20k_ref.txt`); `--retrieve` pairs every training image with the most similar other ones by label-map
statistics (`labelsynth.training.cocosnet.retrieve_exemplars`). Defaults follow the released ADE20K recipe: hinge GAN
x10, feature matching 10, domain alignment 10, VGG feature matching 1 (self-reference samples), perceptual 0.01,
contextual 10, warped-mask 100; TTUR (G and correspondence 1e-4, D 4e-4), Adam betas (0, 0.9), Adam epsilon 1e-3
(the original's for G; the shared trainer applies it to D too).
"""

from __future__ import annotations

import argparse
import random

from accelerate.utils import set_seed

from labelsynth import CoCosNetConfig, CoCosNetDiscriminator, CoCosNetModel, LabelMapProcessor
from labelsynth.data import PairedTransform
from labelsynth.modeling_utils import load_discriminator
from labelsynth.training import GANTrainer, add_trainer_arguments, training_arguments_from
from labelsynth.training.cocosnet import (
    CoCosNetTrainingModule,
    ExemplarPairTransform,
    load_cocosnet_vgg19,
    read_exemplar_list,
    retrieve_exemplars,
)
from labelsynth.training.scripts import (
    add_data_arguments,
    perceptual_vgg,
    run_card_info,
    training_rows,
    validation_batch,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = add_data_arguments(parser, "e.g. ADEChallengeData2016", validation_split=False)
    data.add_argument("--load_size", type=int, default=None,
                      help="resize before the random crop (original --load_size; ADE20K 286 for 256 crops)")
    pairs = data.add_mutually_exclusive_group(required=True)
    pairs.add_argument("--pairs", help="exemplar list file: 'name,exemplar[,exemplar...]' per line (CoCosNet format)")
    pairs.add_argument("--retrieve", action="store_true",
                       help="pair each image with the most similar others by label-map statistics (built in)")
    data.add_argument("--num_retrieved", type=int, default=5, help="exemplars kept per image with --retrieve")
    data.add_argument("--real_reference_probability", type=float, default=0.7,
                      help="probability of a retrieved exemplar (else the image itself, re-cropped)")
    data.add_argument("--hard_reference_probability", type=float, default=0.2,
                      help="probability of the hard (last listed) exemplar")

    model = parser.add_argument_group("model")
    model.add_argument("--preset", default="ade20k", help="dataset preset: ade20k")
    model.add_argument("--pretrained_model", default=None,
                       help="start from a labelsynth CoCosNet folder / Hub id (e.g. a converted official checkpoint)")
    model.add_argument("--image_size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"), default=None)
    model.add_argument("--ngf", type=int, default=None, help="network width (paper 64)")
    model.add_argument("--ndf", type=int, default=None, help="discriminator width (paper 64)")
    model.add_argument("--spade_hidden_nc", type=int, default=None, help="SPADE hidden width (paper 128)")
    model.add_argument("--noise_for_mask", action="store_true",
                       help="train the exemplar side on noise instead of the exemplar label map (no exemplar label "
                            "needed at inference)")

    losses = parser.add_argument_group("losses (original option names)")
    losses.add_argument("--weight_gan", type=float, default=10.0)
    losses.add_argument("--lambda_feat", type=float, default=10.0, help="discriminator feature matching")
    losses.add_argument("--novgg_featpair", type=float, default=10.0, help="domain alignment of the adaptors")
    losses.add_argument("--lambda_vgg", type=float, default=10.0)
    losses.add_argument("--fm_ratio", type=float, default=0.1, help="VGG feature matching = lambda_vgg * fm_ratio")
    losses.add_argument("--weight_perceptual", type=float, default=0.01)
    losses.add_argument("--ctx_w", type=float, default=1.0, help="contextual loss = lambda_vgg * ctx_w")
    losses.add_argument("--weight_mask", type=float, default=100.0, help="warped label map NLL")
    losses.add_argument("--warp_cycle_w", type=float, default=0.0,
                        help="warp-cycle L1: exemplar warped to the label map and back vs the pooled exemplar")
    losses.add_argument("--warp_self_w", type=float, default=0.0,
                        help="L1 of the warped exemplar to the real image on self-reference samples")
    losses.add_argument("--lambda_l1", type=float, default=0.0,
                        help="L1 to the real image on self-reference samples (not in CoCosNet; helps tiny runs)")
    losses.add_argument("--vgg_weights", default=None,
                        help="CoCosNet's vgg19_conv.pth (Caffe layout) or torchvision-layout VGG19 weights; default: "
                             "torchvision's ImageNet file, downloaded once (the VGG terms are off, with a message, "
                             "when it cannot be had)")
    losses.add_argument("--vgg_preprocessing", choices=["caffe", "imagenet"], default=None,
                        help="caffe for vgg19_conv.pth, imagenet for torchvision weights (default: caffe with "
                             "--vgg_weights, imagenet for the downloaded torchvision file)")

    add_trainer_arguments(parser)
    parser.set_defaults(adam_epsilon=1e-3)
    return parser.parse_args(argv)


def build_model(args: argparse.Namespace) -> tuple[CoCosNetModel, CoCosNetDiscriminator, LabelMapProcessor]:
    if args.pretrained_model:
        model = CoCosNetModel.from_pretrained(args.pretrained_model)
        processor = LabelMapProcessor.from_pretrained(args.pretrained_model)
        discriminator = load_discriminator(args.pretrained_model, CoCosNetDiscriminator, model.config)
        if args.noise_for_mask:
            model.config.noise_for_mask = True
        return model.train(), discriminator.train(), processor
    overrides = {k: v for k, v in {"image_size": args.image_size, "ngf": args.ngf, "ndf": args.ndf,
                                   "spade_hidden_nc": args.spade_hidden_nc}.items() if v is not None}
    if args.noise_for_mask:
        overrides["noise_for_mask"] = True
    config = CoCosNetConfig.for_dataset(args.preset, **overrides)
    height, width = config.image_size
    processor = LabelMapProcessor(label_space=config.label_space, size={"height": height, "width": width})
    return CoCosNetModel(config), CoCosNetDiscriminator(config), processor


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    set_seed(args.seed)  # before the model is built: --seed covers its initialisation too
    model, discriminator, processor = build_model(args)
    config = model.config
    vgg = perceptual_vgg(args.vgg_weights, args.lambda_vgg, loader=load_cocosnet_vgg19)
    preprocessing = args.vgg_preprocessing or ("caffe" if args.vgg_weights else "imagenet")
    module = CoCosNetTrainingModule(
        model, discriminator, processor, vgg=vgg, vgg_preprocessing=preprocessing, weight_gan=args.weight_gan,
        lambda_feat=args.lambda_feat, novgg_featpair=args.novgg_featpair, lambda_vgg=args.lambda_vgg,
        fm_ratio=args.fm_ratio, weight_perceptual=args.weight_perceptual, ctx_w=args.ctx_w,
        weight_mask=args.weight_mask, lambda_l1=args.lambda_l1, warp_cycle_w=args.warp_cycle_w,
        warp_self_w=args.warp_self_w)

    rows = training_rows(args, config.label_space)
    pairs = (read_exemplar_list(args.pairs) if args.pairs
             else retrieve_exemplars(rows, config.label_space, num_exemplars=args.num_retrieved))
    if args.pairs:  # keep the pairs whose exemplars are in this (possibly truncated) training set
        names = set(rows["image_id"])
        pairs = {k: [e for e in v if e in names] for k, v in pairs.items()}
        pairs = {k: v for k, v in pairs.items() if v}
    transform_options = dict(size=tuple(config.image_size), load_size=args.load_size, mode="resize_and_crop",
                             label_space=config.label_space, use_instance=False, passthrough_columns=())
    pair_options = dict(real_reference_probability=args.real_reference_probability,
                        hard_reference_probability=args.hard_reference_probability)
    transform = ExemplarPairTransform(rows, PairedTransform(flip=not args.no_flip, **transform_options), pairs,
                                      **pair_options)
    # Validation: fixed crops, always the listed (easy) exemplar when there is one.
    fixed = ExemplarPairTransform(rows, PairedTransform(flip=False, seed=args.seed, **transform_options), pairs,
                                  real_reference_probability=1.0, hard_reference_probability=0.0)
    val_batch = validation_batch(module, lambda row: fixed.apply(row, rng=random.Random(args.seed)), rows,
                                 args.num_validation_images)

    training_args = training_arguments_from(args, extra_card_kwargs=run_card_info(args, "train_cocosnet.py", argv))
    trainer = GANTrainer(module, training_args, rows, transform.apply, validation_batch=val_batch)
    trainer.train()
    trainer.accelerator.end_training()


if __name__ == "__main__":
    main()
