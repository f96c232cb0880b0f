"""Fine-tune (or train from the UNet) a segmentation ControlNet on any dataset labelsynth's adapters read.

diffusers-examples style (`train_controlnet.py`): Stable Diffusion stays frozen, the ControlNet learns the epsilon
(or v) target with an MSE loss. Label maps of any label space with a mapping to the ControlNet's palette protocol
(``--palette ade20k`` or ``coco-panoptic``) are painted exactly as `ControlNetSegPipeline` paints them at inference,
so training and inference see the same control images.

    accelerate launch training/train_controlnet_seg.py --dataset <folder or Hub id> --label_space cityscapes \\
        --pretrained_model_name_or_path stable-diffusion-v1-5/stable-diffusion-v1-5 \\
        --controlnet_model_name_or_path lllyasviel/control_v11p_sd15_seg --output_dir runs/cn-seg \\
        --resolution 512 --train_batch_size 4 --mixed_precision fp16 --max_train_steps 10000

Reproducibility: the data order (a permutation per epoch), flips, VAE sampling, noise and timesteps all come from
generators seeded with ``--seed`` and the step number, so ``--resume_from_checkpoint latest`` continues exactly
where the run stopped (bit-identical weights on the same machine).

The output folder holds the ControlNet (``config.json``, ``diffusion_pytorch_model.safetensors``) and
``labelsynth_controlnet.json`` (palette, base model), so ``labelsynth.pipeline("label-to-image", model=<output_dir>)``
loads it with its base model.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from labelsynth.diffusion.detect import METADATA_FILE
from labelsynth.diffusion.palettes import get_palette_protocol
from labelsynth.label_space_mappings import get_label_space_mapping
from labelsynth.processing import LabelMapProcessor
from labelsynth.training.scripts import add_data_arguments, training_rows, validation_rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrained_model_name_or_path", required=True, help="Stable Diffusion base (id or folder)")
    parser.add_argument("--controlnet_model_name_or_path", default=None,
                        help="ControlNet to fine-tune (default: a new one initialised from the UNet)")
    parser.add_argument("--palette", default="ade20k", choices=("ade20k", "coco-panoptic"),
                        help="palette protocol the ControlNet reads (default: ade20k)")
    parser.add_argument("--label_space", default=None,
                        help="label space of the dataset's maps (default: the dataset's own, else the palette's)")
    add_data_arguments(parser, "ADE20K, Cityscapes, COCO-Stuff")
    parser.add_argument("--resolution", type=int, default=512, help="square training size (multiple of 8)")
    parser.add_argument("--prompt", default=None,
                        help="one prompt for every image (default: the class names present in each label map)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train_batch_size", type=int, default=4)
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    parser.add_argument("--max_train_steps", type=int, required=True)
    parser.add_argument("--learning_rate", type=float, default=1e-5)
    parser.add_argument("--adam_weight_decay", type=float, default=1e-2)
    parser.add_argument("--mixed_precision", default="no", choices=("no", "fp16", "bf16"))
    parser.add_argument("--checkpointing_steps", type=int, default=500)
    parser.add_argument("--resume_from_checkpoint", default=None, help='a checkpoint-N folder or "latest"')
    parser.add_argument("--validation_steps", type=int, default=0, help="write validation images every N steps")
    parser.add_argument("--num_validation_images", type=int, default=2)
    parser.add_argument("--validation_inference_steps", type=int, default=20)
    parser.add_argument("--push_to_hub", action="store_true")
    parser.add_argument("--hub_model_id", default=None)
    args = parser.parse_args(argv)
    if args.resolution % 8:
        parser.error(f"--resolution must be a multiple of 8, got {args.resolution}")
    return args


class ControlNetSegData:
    """Rows -> (pixel values in [-1, 1], control images in [0, 1], prompts) at the training resolution."""

    def __init__(self, rows: Any, label_space: str, palette: str, resolution: int, prompt: str | None) -> None:
        self.rows, self.palette, self.prompt = rows, get_palette_protocol(palette), prompt
        self.processor = LabelMapProcessor(label_space=label_space, size=resolution)
        self.mapping = get_label_space_mapping(label_space, self.palette.label_space)  # clear error if unmappable
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.rows)

    def item(self, index: int, flip: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
        row = self.rows[int(index)]
        ids = self.processor(row["label"], return_tensors="np")["label_map"][0]
        image = self.processor.preprocess_images(row["image"], ids.shape)[0]
        control = torch.from_numpy(self.palette.render(ids, self.processor.label_space)).permute(2, 0, 1).float()
        control = control / 255.0
        if flip:
            ids, image, control = ids[:, ::-1], image.flip(-1), control.flip(-1)
        return image, control, self.prompt or self.class_prompt(ids)

    def class_prompt(self, ids: np.ndarray) -> str:
        space, lut = self.processor.label_space, self.mapping.lut()
        values, counts = np.unique(ids, return_counts=True)
        names = [space.names[v].replace("-", " ") for v in values[np.argsort(-counts, kind="stable")]
                 if v < space.num_classes and lut[v] != self.mapping.unmapped_id][:8]
        return "a photograph of " + ", ".join(names) if names else "a photograph"


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = [(int(m.group(1)), p) for p in output_dir.glob("checkpoint-*")
             if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name))]
    return max(found)[1] if found else None


def main(argv: list[str] | None = None) -> Path:
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration
    from diffusers import AutoencoderKL, ControlNetModel, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision, gradient_accumulation_steps=args.gradient_accumulation_steps,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    base = args.pretrained_model_name_or_path
    tokenizer = CLIPTokenizer.from_pretrained(base, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(base, subfolder="text_encoder")
    vae = AutoencoderKL.from_pretrained(base, subfolder="vae")
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    noise_scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler")
    if args.controlnet_model_name_or_path:
        controlnet = ControlNetModel.from_pretrained(args.controlnet_model_name_or_path)
    else:
        controlnet = ControlNetModel.from_unet(unet)
    for frozen in (vae, unet, text_encoder):
        frozen.requires_grad_(False)
    controlnet.train()
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(args.mixed_precision, torch.float32)
    for frozen in (vae, unet, text_encoder):
        frozen.to(accelerator.device, dtype=weight_dtype)

    if args.label_space is None:  # the dataset's own label space
        from labelsynth.data.loading import load_training_dataset

        _, space = load_training_dataset(args.dataset, kind=args.dataset_kind, split=args.split,
                                         return_label_space=True)
        args.label_space = space.name
    load_rows = training_rows(args, args.label_space)
    data = ControlNetSegData(load_rows, args.label_space, args.palette, args.resolution, args.prompt)
    validation = ControlNetSegData(validation_rows(args, args.label_space, load_rows), args.label_space,
                                   args.palette, args.resolution, args.prompt)

    optimizer = torch.optim.AdamW(controlnet.parameters(), lr=args.learning_rate,
                                  weight_decay=args.adam_weight_decay)
    controlnet, optimizer = accelerator.prepare(controlnet, optimizer)

    start_step = 0
    if args.resume_from_checkpoint:
        checkpoint = (latest_checkpoint(output_dir) if args.resume_from_checkpoint == "latest"
                      else Path(args.resume_from_checkpoint))
        if checkpoint is None:
            accelerator.print(f"no checkpoint in {output_dir}; starting from step 0")
        else:
            accelerator.load_state(str(checkpoint))
            start_step = int(checkpoint.name.split("-")[-1])
            accelerator.print(f"resumed from {checkpoint} (step {start_step})")

    micro = args.train_batch_size
    per_step = micro * args.gradient_accumulation_steps * accelerator.num_processes
    steps_per_epoch = max(1, len(data) // per_step) if len(data) >= per_step else 1

    def batch_indices(step: int, accumulation: int) -> list[int]:
        epoch, within = divmod(step, steps_per_epoch)
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(args.seed + epoch)).tolist()
        first = (within * args.gradient_accumulation_steps + accumulation) * micro * accelerator.num_processes
        first += accelerator.process_index * micro
        return [order[(first + k) % len(data)] for k in range(micro)]

    def encode_prompts(prompts: list[str]) -> torch.Tensor:
        tokens = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                           return_tensors="pt").input_ids.to(accelerator.device)
        return text_encoder(tokens)[0]

    for step in range(start_step, args.max_train_steps):
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step * accelerator.num_processes
                                                  + accelerator.process_index)
        for accumulation in range(args.gradient_accumulation_steps):
            with accelerator.accumulate(controlnet):
                flips = torch.rand(micro, generator=generator) < 0.5
                items = [data.item(i, flip=bool(f) and not args.no_flip)
                         for i, f in zip(batch_indices(step, accumulation), flips)]
                pixels = torch.stack([it[0] for it in items]).to(accelerator.device, weight_dtype)
                control = torch.stack([it[1] for it in items]).to(accelerator.device, weight_dtype)
                with torch.no_grad():
                    posterior = vae.encode(pixels).latent_dist
                    sample = torch.randn(posterior.mean.shape, generator=generator).to(posterior.mean)
                    latents = (posterior.mean + posterior.std * sample) * vae.config.scaling_factor
                    hidden = encode_prompts([it[2] for it in items])
                noise = torch.randn(latents.shape, generator=generator).to(latents)
                timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],),
                                          generator=generator).to(accelerator.device)
                noisy = noise_scheduler.add_noise(latents, noise, timesteps)
                down, mid = controlnet(noisy, timesteps, encoder_hidden_states=hidden, controlnet_cond=control,
                                       return_dict=False)
                prediction = unet(noisy, timesteps, encoder_hidden_states=hidden,
                                  down_block_additional_residuals=[r.to(weight_dtype) for r in down],
                                  mid_block_additional_residual=mid.to(weight_dtype)).sample
                if noise_scheduler.config.prediction_type == "v_prediction":
                    target = noise_scheduler.get_velocity(latents, noise, timesteps)
                else:
                    target = noise
                loss = F.mse_loss(prediction.float(), target.float())
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        done = step + 1
        if done % 10 == 0 or done == args.max_train_steps:
            accelerator.print(f"step {done}/{args.max_train_steps} loss {loss.item():.4f}")
        if done % args.checkpointing_steps == 0 and accelerator.is_main_process:
            accelerator.save_state(str(output_dir / f"checkpoint-{done}"))
        if args.validation_steps and done % args.validation_steps == 0 and accelerator.is_main_process:
            write_validation_images(args, accelerator.unwrap_model(controlnet), validation, done, weight_dtype,
                                    accelerator.device)

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        net = accelerator.unwrap_model(controlnet)
        net.save_pretrained(output_dir)
        (output_dir / METADATA_FILE).write_text(json.dumps({
            "palette": args.palette, "base_model": base, "label_space": args.label_space,
            "trained_steps": args.max_train_steps, "script": "training/train_controlnet_seg.py"}, indent=2) + "\n")
        if args.push_to_hub:
            from huggingface_hub import create_repo, upload_folder

            repo_id = args.hub_model_id or output_dir.name
            create_repo(repo_id, exist_ok=True)
            upload_folder(repo_id=repo_id, folder_path=str(output_dir), ignore_patterns=["checkpoint-*", "logs/*"])
    accelerator.end_training()
    return output_dir


def write_validation_images(args: argparse.Namespace, controlnet: Any, validation: ControlNetSegData, step: int,
                            dtype: torch.dtype, device: torch.device) -> list[Path]:
    """Images from the first `--num_validation_images` validation maps (seed `--seed` + i) under validation/."""
    from diffusers import StableDiffusionControlNetPipeline

    from labelsynth.diffusion.pipeline_controlnet_seg import ControlNetSegPipeline

    was_training = controlnet.training
    controlnet.eval()
    sd = StableDiffusionControlNetPipeline.from_pretrained(args.pretrained_model_name_or_path, controlnet=controlnet,
                                                           safety_checker=None, requires_safety_checker=False)
    sd.to(device, dtype)
    pipe = ControlNetSegPipeline(sd, palette=args.palette, label_space=args.label_space, size=args.resolution,
                                 progress_bar=False)
    folder = Path(args.output_dir) / "validation"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(min(args.num_validation_images, len(validation))):
        label = validation.rows[i]["label"]
        image = pipe(label, prompt=args.prompt, seed=args.seed + i, num_inference_steps=args.validation_inference_steps)
        paths.append(folder / f"step-{step:06d}-{i}.png")
        image.save(paths[-1])
    controlnet.train(was_training)
    return paths


if __name__ == "__main__":
    main(sys.argv[1:])
