"""Command-line flags of the shared trainer, generated from `TrainingArguments` so scripts stay thin."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from .trainer import TrainingArguments

HELP = {
    "output_dir": "where checkpoints, validation images, logs and the final model go",
    "train_batch_size": "batch size per process",
    "max_train_steps": "number of optimizer steps (one G and one D update each)",
    "decay_start_step": "keep the learning rates constant until this step, then decay linearly to 0 "
                        "(SPADE: half of the run); default: no decay",
    "generator_lr": "generator (and style encoder) learning rate; SPADE TTUR: 1e-4",
    "discriminator_lr": "discriminator learning rate; SPADE TTUR: 4e-4",
    "adam_beta1": "Adam beta1 (SPADE TTUR: 0.0; without TTUR: 0.5)",
    "adam_beta2": "Adam beta2 (SPADE TTUR: 0.9; without TTUR: 0.999)",
    "adam_epsilon": "Adam epsilon",
    "gradient_accumulation_steps": "micro-batches per optimizer step",
    "mixed_precision": "no, fp16 or bf16 (bf16 needs no loss scaling; on a CPU without AVX512-BF16/AMX bf16 is "
                       "emulated and far slower, so it falls back to fp32 unless LABELSYNTH_ALLOW_SLOW_BF16=1)",
    "seed": "seed of the model init, the data order and the augmentations",
    "ema_decay": "keep an exponential moving average of the generator (weights and BatchNorm statistics) with this "
                 "decay, e.g. 0.999; the EMA copy is the saved model",
    "ema_bn_batches": "batches of training data that re-estimate the EMA generator's BatchNorm statistics before "
                      "validation and saving (averaged weights do not produce the averaged statistics)",
    "sync_batchnorm": "convert the generator's BatchNorm to SyncBatchNorm when training on several processes",
    "ddp_find_unused_parameters": "DDP find_unused_parameters (needed only for models with optional branches)",
    "dataloader_num_workers": "dataloader worker processes",
    "checkpointing_steps": "save a resumable checkpoint-N folder every N steps (0: never)",
    "checkpoints_total_limit": "keep at most this many checkpoints",
    "resume_from_checkpoint": "a checkpoint-N folder, or 'latest' for the newest in output_dir",
    "validation_steps": "write a validation image grid every N steps (0: never)",
    "logging_steps": "log the loss terms every N steps",
    "report_to": "tracker: tensorboard, wandb, all, or none",
    "push_to_hub": "push the final model, processor and model card to the Hub",
    "hub_model_id": "Hub repository for --push_to_hub (default: the output_dir name)",
    "max_grad_norm": "clip gradient norms to this value (off by default, as the originals)",
    "channels_last": "keep the models and image batches in channels-last memory format (the same losses to float "
                     "rounding; 1.11x per OASIS iteration on a 2-core CPU, nothing measurable for SPADE; see "
                     "docs/performance.md)",
    "fused_adam": "use torch.optim.Adam(fused=True) (the same updates to float rounding)",
    "keep_cpu_memory": "on the CPU (Linux, glibc): keep freed memory in the process for reuse instead of returning "
                       "it to the system, which saves the page faults of large tensors (the process keeps its peak "
                       "memory; see docs/performance.md)",
}


def add_trainer_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per `TrainingArguments` field (plus `--num_validation_images`)."""
    group = parser.add_argument_group("training")
    for field in dataclasses.fields(TrainingArguments):
        if field.name == "extra_card_kwargs":
            continue
        flag = f"--{field.name}"
        base = str(field.type).split("|")[0].strip()  # annotations are strings ("int | None")
        if base == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default, help=HELP[field.name])
            continue
        required = field.default is dataclasses.MISSING
        group.add_argument(flag, type={"int": int, "float": float, "str": str}[base], required=required,
                           default=None if required else field.default, help=HELP[field.name])
    group.add_argument("--num_validation_images", type=int, default=4, help="label maps in the validation grid")


def training_arguments_from(args: argparse.Namespace, **extra: Any) -> TrainingArguments:
    """Build `TrainingArguments` from parsed flags (unknown flags of the script are ignored)."""
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values.update(extra)
    return TrainingArguments(**values)
