"""The shared GAN trainer on Accelerate.

One iteration is one generator step then one discriminator step (as SPADE, pix2pixHD and their descendants do;
a module whose `discriminator` is None, such as CRN's, trains its generator alone);
what the losses are is the business of a `GANTrainingModule` (see `training/modules.py`), so every model family
reuses this loop: optimizers with TTUR, constant-then-linear-decay schedule, mixed precision, SyncBatchNorm on
several GPUs, gradient accumulation, EMA of the generator, tracker logging, validation grids, atomic `checkpoint-N`
folders with `--resume_from_checkpoint latest` that continues bit-identically (data position and the training
module's random draws included), and the final `save_pretrained` + model card + `push_to_hub`. Checkpoints hold only
safetensors and JSON (see `training/checkpointing.py`): resuming never unpickles anything.
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration, set_seed
from PIL import Image
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..utils.memory import keep_freed_cpu_memory
from ..utils.precision import cpu_dtype
from . import checkpointing
from .checkpointing import CHECKPOINT_PREFIX, CheckpointError, list_checkpoints
from .modules import GANTrainingModule

logger = get_logger(__name__)


def adam(params: Sequence[torch.nn.Parameter], *, fused: bool, **options: Any) -> torch.optim.Adam:
    """`torch.optim.Adam(params, fused=fused, **options)`. The fused kernel updates the parameters without bumping
    their version counters, which the models' caches of weight-derived tables (`layers.inference_cache.
    tensor_versions`, e.g. SPADE's per-class tables in the discriminator step's no-gradient forward) rely on to see a
    change; a hook after every step bumps them."""
    optimizer = torch.optim.Adam(params, fused=fused, **options)
    if fused:
        optimizer.register_step_post_hook(_mark_parameters_modified)
    return optimizer


def _mark_parameters_modified(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    torch.autograd.graph.increment_version([p for group in optimizer.param_groups for p in group["params"]])


@dataclass
class TrainingArguments:
    """Everything the trainer needs; the training scripts expose each field as a command-line flag.

    Learning rates and betas default to SPADE's TTUR setting (G 1e-4, D 4e-4, Adam betas (0, 0.9)).
    """

    output_dir: str
    train_batch_size: int = 1
    max_train_steps: int = 1000
    decay_start_step: int | None = None  # lr constant until here, then linear to 0 at max_train_steps (None: no decay)
    generator_lr: float = 1e-4
    discriminator_lr: float = 4e-4
    adam_beta1: float = 0.0
    adam_beta2: float = 0.9
    adam_epsilon: float = 1e-8
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "no"  # "no" | "fp16" | "bf16"
    seed: int = 0
    ema_decay: float | None = None
    ema_bn_batches: int = 16  # batches that re-estimate the EMA generator's BatchNorm statistics before use
    sync_batchnorm: bool = True
    ddp_find_unused_parameters: bool = False
    dataloader_num_workers: int = 0
    checkpointing_steps: int = 500
    checkpoints_total_limit: int | None = 3
    resume_from_checkpoint: str | None = None  # a checkpoint folder or "latest"
    validation_steps: int = 500
    logging_steps: int = 10
    report_to: str | None = "tensorboard"  # "tensorboard", "wandb", "all" or None
    push_to_hub: bool = False
    hub_model_id: str | None = None
    max_grad_norm: float | None = None
    channels_last: bool = False  # models and image batches in channels-last memory format
    fused_adam: bool = False  # torch.optim.Adam(fused=True): one kernel per parameter group
    keep_cpu_memory: bool = True  # on CPU with glibc: keep freed memory for reuse (see utils.memory)
    extra_card_kwargs: dict[str, Any] = field(default_factory=dict)


class EpochShuffleSampler(Sampler):
    """Yields `(epoch, index)` pairs in an order fixed by `(seed, epoch)`.

    Carrying the epoch lets the dataset seed its random crops and flips per `(seed, epoch, index)`, so a resumed run
    sees exactly the same augmented samples, whatever the number of dataloader workers.
    """

    def __init__(self, num_samples: int, seed: int, shuffle: bool = True):
        self.num_samples, self.seed, self.shuffle, self.epoch = num_samples, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.num_samples)
        return iter([(self.epoch, int(i)) for i in order])

    def __len__(self) -> int:
        return self.num_samples


class SeededTransformDataset(Dataset):
    """Applies `transform(row, rng=rng)` with an RNG seeded by `(seed, epoch, index)` (see `EpochShuffleSampler`)."""

    def __init__(self, rows: Any, transform: Callable[[Any, random.Random], dict[str, torch.Tensor]], seed: int):
        self.rows, self.transform, self.seed = rows, transform, seed

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        return self.transform(self.rows[index], rng=random.Random(f"{self.seed}-{epoch}-{index}"))


def linear_decay_lambda(decay_start: int | None, total: int) -> Callable[[int], float]:
    """Learning-rate factor: 1 until `decay_start`, then linearly down to 0 at `total` steps (SPADE's schedule)."""
    def factor(step: int) -> float:
        if decay_start is None or step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / max(1, total - decay_start))
    return factor


def with_recomputed_batchnorm(model: torch.nn.Module, batches: Sequence[dict[str, torch.Tensor]],
                              forward: Callable[[torch.nn.Module, dict[str, torch.Tensor]], Any]) -> torch.nn.Module:
    """A copy of `model` (in eval mode) whose BatchNorm statistics are recomputed on `batches`.

    Averaging weights (EMA) does not average the activation statistics they produce, so an EMA generator's
    running statistics must be re-estimated before use (as OASIS does). Train-mode forwards under no_grad, with the
    global RNG left untouched.
    """
    model = copy.deepcopy(model)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or not batches:
        return model.eval()
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches
    model.train()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        for batch in batches:
            forward(model, batch)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    return model.eval()


def process_seed(seed: int, process_index: int) -> int:
    """The seed of process `process_index`'s training random draws: independent streams per process."""
    return int(np.random.SeedSequence([seed, process_index]).generate_state(1, dtype=np.uint64)[0])


class _Counter:
    """Global step, epoch and position in the epoch, saved with every checkpoint."""

    def __init__(self) -> None:
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0


class GANTrainer:
    """Trains the generator and discriminator of a `GANTrainingModule` on a dataset of raw rows.

    Args:
        module: the model family's losses and models.
        args: `TrainingArguments`.
        train_rows: a random-access dataset of rows (e.g. a `datasets.Dataset`).
        transform: `transform(row, rng=rng) -> {"pixel_values", "label_map", ["instance_map"]}` (random crop/flip
            drawn from `rng`), e.g. the bound method `PairedTransform(...).apply`.
        validation_batch: a fixed batch (same keys) rendered into image grids every `validation_steps`.
        evaluate_fn: optional `evaluate_fn(generator) -> dict[str, float]` run at validation time (metrics).
    """

    def __init__(self, module: GANTrainingModule, args: TrainingArguments, train_rows: Any,
                 transform: Callable[[Any, random.Random], dict[str, torch.Tensor]],
                 validation_batch: dict[str, torch.Tensor] | None = None,
                 evaluate_fn: Callable[[torch.nn.Module], dict[str, float]] | None = None):
        self.module, self.args = module, args
        self.validation_batch, self.evaluate_fn = validation_batch, evaluate_fn
        output_dir = Path(args.output_dir)
        self.accelerator = Accelerator(
            # Without a GPU, Accelerate sets up several CPU processes (gloo) only when told the run is on CPU.
            cpu=not _accelerator_available(),
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            mixed_precision=training_mixed_precision(args.mixed_precision, on_cpu=not _accelerator_available()),
            log_with=None if args.report_to in (None, "none") else args.report_to,
            project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=args.ddp_find_unused_parameters)],
            # Schedules count optimizer steps, whatever the number of processes.
            step_scheduler_with_optimizer=False,
        )
        set_seed(args.seed)
        # Every random draw of the losses comes from the module's own generator, saved in checkpoints: the global
        # RNG is also advanced by code outside the module (e.g. each new DataLoader iterator).
        module.seed_training_rng(process_seed(args.seed, self.accelerator.process_index), self.accelerator.device)
        self.dataset = SeededTransformDataset(train_rows, transform, args.seed)
        self.sampler = EpochShuffleSampler(len(self.dataset), args.seed)
        if args.sync_batchnorm and self.accelerator.num_processes > 1 and self.accelerator.device.type != "cpu":
            # SPADE used synchronized BatchNorm across GPUs; PyTorch's SyncBatchNorm does it under DDP (GPU only).
            # On CPU processes BatchNorm stays per process; DDP broadcasts rank 0's statistics at every forward.
            module.generator = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module.generator)
        self.counter = _Counter()
        self.ema = None
        if args.ema_decay:
            self.ema = AveragedModel(module.generator, multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay),
                                     use_buffers=True)

    # ------------------------------------------------------------------------------------------------ setup
    def _prepare(self) -> None:
        args, acc = self.args, self.accelerator
        dataloader = DataLoader(self.dataset, batch_size=args.train_batch_size, sampler=self.sampler,
                                num_workers=args.dataloader_num_workers, drop_last=True,
                                collate_fn=self.module.collate_fn)
        gen_params, disc_params = self.module.parameter_groups()
        if args.keep_cpu_memory and acc.device.type == "cpu" and keep_freed_cpu_memory():
            logger.info("glibc keeps freed memory for reuse (--no-keep_cpu_memory returns it to the system)")
        if args.channels_last:
            for network in (self.module.generator, self.module.discriminator):
                if network is not None:
                    network.to(memory_format=torch.channels_last)
        betas = (args.adam_beta1, args.adam_beta2)
        fused = args.fused_adam  # False: the for-loop (or, on CUDA, foreach) Adam, whatever torch's default becomes
        opt_g = adam(gen_params, lr=args.generator_lr, betas=betas, eps=args.adam_epsilon, fused=fused)
        schedule = linear_decay_lambda(args.decay_start_step, args.max_train_steps)
        sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, schedule)
        opt_d = sched_d = None  # modules without a discriminator (CRN) train the generator alone
        if self.module.discriminator is not None:
            opt_d = adam(disc_params, lr=args.discriminator_lr, betas=betas, eps=args.adam_epsilon, fused=fused)
            sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, schedule)
        (self.generator, self.discriminator, self.opt_g, self.opt_d, self.dataloader, self.sched_g,
         self.sched_d) = acc.prepare(self.module.generator, self.module.discriminator, opt_g, opt_d, dataloader,
                                     sched_g, sched_d)
        if self.ema is not None:
            self.ema.to(acc.device)
        self.module.to(acc.device)
        if acc.is_main_process and acc.log_with:
            config = {k: v for k, v in asdict(args).items() if isinstance(v, (int, float, str, bool))}
            acc.init_trackers("labelsynth", config=config)

    # ------------------------------------------------------------------------------------------ checkpoints
    def _resolve_resume(self) -> Path | None:
        value = self.args.resume_from_checkpoint
        if not value:
            return None
        if value == "latest":
            found = list_checkpoints(self.args.output_dir)
            if not found:
                logger.info("no checkpoint to resume from in %s; starting a new run", self.args.output_dir)
                return None
            return found[-1]
        path = Path(value)
        if not path.is_dir():
            raise FileNotFoundError(f"--resume_from_checkpoint {value}: no such checkpoint folder")
        return path

    def _checkpoint_models(self) -> dict[str, torch.nn.Module]:
        """The modules whose weights a checkpoint holds, unwrapped, by file role."""
        models = {"generator": self.accelerator.unwrap_model(self.generator)}
        if self.discriminator is not None:
            models["discriminator"] = self.accelerator.unwrap_model(self.discriminator)
        if self.ema is not None:
            models["ema"] = self.ema
        return models

    def _optimizer_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"optimizer_generator": self.opt_g.state_dict(),
                                 "scheduler_generator": self.sched_g.state_dict()}
        if self.opt_d is not None:
            state["optimizer_discriminator"] = self.opt_d.state_dict()
            state["scheduler_discriminator"] = self.sched_d.state_dict()
        if self.accelerator.scaler is not None:
            state["grad_scaler"] = self.accelerator.scaler.state_dict()
        return state

    def save_checkpoint(self) -> Path:
        """Write `checkpoint-<step>` atomically: into a `.tmp` folder first, renamed when complete.

        Safetensors and JSON only (see `training/checkpointing.py`); every process writes its own RNG states.
        """
        acc = self.accelerator
        output_dir = Path(self.args.output_dir)
        final = output_dir / f"{CHECKPOINT_PREFIX}{self.counter.step}"
        tmp = final.with_name(final.name + ".tmp")
        models = self._checkpoint_models()
        if acc.is_main_process:
            checkpointing.remove_leftovers(output_dir)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        checkpointing.save_state_tree(tmp / checkpointing.rng_state_file(acc.process_index),
                                      checkpointing.capture_rng_states({"training": self.module.training_rng}))
        if acc.is_main_process:
            for name, model in models.items():
                checkpointing.save_weights(tmp / checkpointing.MODEL_FILES[name], model)
            checkpointing.save_state_tree(tmp / checkpointing.OPTIMIZER_STATE, self._optimizer_state())
            state = {"format": checkpointing.FORMAT_NAME, "version": checkpointing.FORMAT_VERSION,
                     "step": self.counter.step, "epoch": self.counter.epoch,
                     "batch_in_epoch": self.counter.batch_in_epoch, "accelerator_step": acc.step,
                     "num_processes": acc.num_processes, "models": list(models)}
            (tmp / checkpointing.TRAINER_STATE).write_text(json.dumps(state, indent=2))
        acc.wait_for_everyone()
        if acc.is_main_process:
            checkpointing.commit_folder(tmp, final)
            limit = self.args.checkpoints_total_limit
            if limit:
                for old in list_checkpoints(output_dir)[:-limit]:
                    checkpointing.remove_checkpoint(old)
        acc.wait_for_everyone()
        return final

    def load_checkpoint(self, folder: str | Path) -> None:
        """Restore weights, optimizer / scheduler / scaler states, counters and RNG states from a checkpoint folder.

        Every file is read and parsed before any state is applied. Raises `CheckpointError` (a ValueError) naming
        the file for folders written by Accelerate's `save_state` (pickles, refused), missing, unreadable or
        mismatching files.
        """
        acc = self.accelerator
        models = self._checkpoint_models()
        contents = checkpointing.read_checkpoint(folder, list(models), acc.process_index, acc.num_processes)
        if contents.ignored_files:
            logger.warning("ignoring files that labelsynth does not write (never loaded): %s in %s",
                           ", ".join(contents.ignored_files), folder, main_process_only=False)
        for name, model in models.items():
            checkpointing.apply_weights(model, contents.weights[name], Path(folder) / checkpointing.MODEL_FILES[name])
        optimizer_path = Path(folder) / checkpointing.OPTIMIZER_STATE
        expected = self._optimizer_state()
        if set(contents.optimizer_state) != set(expected):
            raise CheckpointError(f"{optimizer_path} holds {sorted(contents.optimizer_state)} but this run needs "
                                  f"{sorted(expected)}; resume with the settings of the run that wrote it")
        targets = {"optimizer_generator": self.opt_g, "scheduler_generator": self.sched_g,
                   "optimizer_discriminator": self.opt_d, "scheduler_discriminator": self.sched_d,
                   "grad_scaler": acc.scaler}
        for name, state in contents.optimizer_state.items():
            # Schedulers and the scaler copy every entry onto themselves: accept only the entries they have.
            if not name.startswith("optimizer") and (not isinstance(state, dict) or set(state) != set(expected[name])):
                raise CheckpointError(f"{optimizer_path}: the {name} state has unexpected entries; the file is "
                                      "damaged or was not written by labelsynth")
            try:
                targets[name].load_state_dict(state)
            except (ValueError, KeyError, TypeError, RuntimeError) as error:
                raise CheckpointError(f"{optimizer_path}: the {name} state does not fit this run ({error}); resume "
                                      "with the settings of the run that wrote it") from None
        for warning in checkpointing.restore_rng_states(
                contents.rng_states, {"training": self.module.training_rng},
                Path(folder) / checkpointing.rng_state_file(acc.process_index)):
            logger.warning("%s", warning, main_process_only=False)
        state = contents.trainer_state
        self.counter.step, self.counter.epoch = state["step"], state["epoch"]
        self.counter.batch_in_epoch = state["batch_in_epoch"]
        acc.step = state["accelerator_step"]  # micro-batches into the current accumulation

    # ---------------------------------------------------------------------------------------------- training
    def train(self) -> torch.nn.Module:
        """Run until `max_train_steps`; returns the trained (EMA, if enabled) generator, unwrapped."""
        self._prepare()
        args, acc = self.args, self.accelerator
        resume = self._resolve_resume()
        if resume is not None:
            self.load_checkpoint(resume)
            logger.info("resumed from %s at step %d", resume, self.counter.step)
        steps_per_epoch = math.ceil(len(self.dataloader) / args.gradient_accumulation_steps)
        if steps_per_epoch == 0:
            raise ValueError(f"the dataset has {len(self.dataset)} rows, fewer than one batch of "
                             f"{args.train_batch_size} x {acc.num_processes} processes")
        progress = None
        if acc.is_local_main_process:
            from tqdm.auto import tqdm
            progress = tqdm(total=args.max_train_steps, initial=self.counter.step, desc="steps")
        while self.counter.step < args.max_train_steps:
            batches = self.dataloader
            if self.counter.batch_in_epoch:
                batches = acc.skip_first_batches(self.dataloader, self.counter.batch_in_epoch)
            # Through accelerate's loader: it re-sets the sampler's epoch from its own counter when iterating.
            batches.set_epoch(self.counter.epoch)
            for batch in batches:
                self.module.on_step_begin(self.counter.step, self)
                logs = self._train_micro_batch(batch)
                self.counter.batch_in_epoch += 1
                if not acc.sync_gradients:
                    continue
                self.counter.step += 1
                if self.ema is not None:
                    self.ema.update_parameters(acc.unwrap_model(self.generator))
                self._after_step(logs, progress)
                if self.counter.step >= args.max_train_steps:
                    break
            else:
                self.counter.epoch += 1
                self.counter.batch_in_epoch = 0
        if progress is not None:
            progress.close()
        return self.finalize()

    def _train_micro_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        acc, module = self.accelerator, self.module
        if self.args.channels_last:  # images too, so that no layer converts between the two layouts
            batch = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 and v.is_floating_point()
                     else v for k, v in batch.items()}
        if self.discriminator is None:
            with acc.accumulate(self.generator):
                g_logs = self._generator_step(batch, None)
                if acc.sync_gradients:
                    self.sched_g.step()
            return g_logs
        discriminator = acc.unwrap_model(self.discriminator)
        with acc.accumulate(self.generator, self.discriminator):
            # Generator step. D's parameters are frozen so no D gradient (and no DDP hook of D) is produced; the
            # unwrapped D is used because the DDP wrapper expects every parameter to receive a gradient.
            discriminator.requires_grad_(False)
            g_logs = self._generator_step(batch, discriminator)
            discriminator.requires_grad_(True)
            # Discriminator step on a freshly generated (detached) fake, as the originals do.
            with acc.autocast():
                d_loss, d_logs = module.discriminator_loss(self.generator, self.discriminator, batch)
            acc.backward(d_loss)
            self._clip(self.discriminator)
            self.opt_d.step()
            self.opt_d.zero_grad(set_to_none=True)
            if acc.sync_gradients:
                self.sched_g.step()
                self.sched_d.step()
        return {**g_logs, **d_logs}

    def _generator_step(self, batch: dict[str, torch.Tensor], discriminator: torch.nn.Module | None
                        ) -> dict[str, torch.Tensor]:
        with self.accelerator.autocast():
            g_loss, g_logs = self.module.generator_loss(self.generator, discriminator, batch)
        self.accelerator.backward(g_loss)
        self._clip(self.generator)
        self.opt_g.step()
        self.opt_g.zero_grad(set_to_none=True)
        return g_logs

    def _clip(self, model: torch.nn.Module) -> None:
        if self.args.max_grad_norm and self.accelerator.sync_gradients:
            self.accelerator.clip_grad_norm_(model.parameters(), self.args.max_grad_norm)

    def _after_step(self, logs: dict[str, torch.Tensor], progress: Any) -> None:
        args, acc, step = self.args, self.accelerator, self.counter.step
        if step % args.logging_steps == 0 or step == 1:
            values = {k: acc.reduce(v.detach().float(), reduction="mean").item() for k, v in logs.items()}
            values["lr_generator"] = self.sched_g.get_last_lr()[0]
            acc.log(values, step=step)
            if progress is not None:
                progress.set_postfix({k: f"{v:.3g}" for k, v in values.items() if not k.startswith("lr")})
        if progress is not None:
            progress.update(1)
        if args.checkpointing_steps and step % args.checkpointing_steps == 0:
            self.save_checkpoint()
        if args.validation_steps and step % args.validation_steps == 0:
            self.validate()

    # ---------------------------------------------------------------------------------------------- outputs
    def inference_generator(self) -> torch.nn.Module:
        """The generator to evaluate and ship: the EMA copy (BatchNorm statistics re-estimated on fixed training
        batches) when enabled, else the trained one (unwrapped)."""
        if self.ema is None:
            return self.accelerator.unwrap_model(self.generator)
        size = self.args.train_batch_size
        count = min(self.args.ema_bn_batches * size, len(self.dataset)) // size * size
        # Fixed samples: epoch -1 never occurs in training, so these crops are the same at every call.
        samples = [self.dataset[(-1, i % len(self.dataset))] for i in range(count)]
        device = self.accelerator.device
        batches = [{k: v.to(device) for k, v in self.module.collate_fn(samples[i:i + size]).items()}
                   for i in range(0, count, size)]
        rng = torch.Generator().manual_seed(self.args.seed)
        return with_recomputed_batchnorm(self.ema.module, batches,
                                         lambda model, batch: self.module.generate(model, batch, rng))

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Render the validation batch to `<output_dir>/validation/step-<N>.png` (and trackers); run metrics."""
        acc = self.accelerator
        results: dict[str, float] = {}
        if not acc.is_main_process:
            acc.wait_for_everyone()
            return results
        generator = self.inference_generator()
        was_training = generator.training
        generator.eval()
        if self.validation_batch is not None:
            batch = {k: v.to(acc.device) for k, v in self.validation_batch.items()}
            fake = self.module.generate(generator, batch, torch.Generator().manual_seed(self.args.seed))
            grid = self.module.validation_grid(batch, fake)
            folder = Path(self.args.output_dir) / "validation"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(grid).save(folder / f"step-{self.counter.step:07d}.png")
            for tracker in acc.trackers:
                if tracker.name == "tensorboard":
                    tracker.writer.add_image("validation", grid, self.counter.step, dataformats="HWC")
        if self.evaluate_fn is not None:
            results = self.evaluate_fn(generator)
            acc.log({f"eval/{k}": v for k, v in results.items()}, step=self.counter.step)
        generator.train(was_training)
        acc.wait_for_everyone()
        return results

    def finalize(self) -> torch.nn.Module:
        """Save the final generator (+ processor, card) to `output_dir`; push when asked."""
        acc, args = self.accelerator, self.args
        acc.wait_for_everyone()
        generator = self.inference_generator()
        if acc.is_main_process:
            if isinstance(generator, torch.nn.SyncBatchNorm) or any(
                    isinstance(m, torch.nn.SyncBatchNorm) for m in generator.modules()):
                generator = _revert_sync_batchnorm(generator)
            generator.card_kwargs = {**(getattr(generator, "card_kwargs", None) or {}), **args.extra_card_kwargs}
            generator.save_pretrained(args.output_dir)
            self.module.save_extras(args.output_dir)
            (Path(args.output_dir) / "training_args.json").write_text(json.dumps(asdict(args), indent=2, default=str))
            if args.push_to_hub:
                repo_id = args.hub_model_id or Path(args.output_dir).name
                generator.push_to_hub(repo_id)
                self.module.push_extras(repo_id)
        for tracker in acc.trackers:  # flush logs; the process group stays up for the caller (end_training ends it)
            tracker.finish()
        acc.wait_for_everyone()
        return generator


def training_mixed_precision(mixed_precision: str, on_cpu: bool) -> str:
    """The Accelerate ``mixed_precision`` to train with: ``"bf16"`` on a CPU that only emulates bf16 becomes ``"no"``
    (fp32), with a `SlowBF16Warning` at start saying so, unless ``LABELSYNTH_ALLOW_SLOW_BF16=1`` insists on it
    (`labelsynth.utils.precision.cpu_dtype`). GPU runs and other settings are returned unchanged."""
    if mixed_precision != "bf16" or not on_cpu:
        return mixed_precision
    dtype = cpu_dtype(torch.bfloat16, "cpu", what="--mixed_precision bf16 (training on the CPU)")
    return "bf16" if dtype == torch.bfloat16 else "no"


def _accelerator_available() -> bool:
    """Whether a GPU-like device (CUDA, XPU, MPS) is present."""
    xpu = getattr(torch, "xpu", None)
    return (torch.cuda.is_available() or (xpu is not None and xpu.is_available())
            or torch.backends.mps.is_available())


def _revert_sync_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """Replace SyncBatchNorm layers by BatchNorm2d (same parameters and statistics) for saving/inference."""
    converted = module
    if isinstance(module, torch.nn.SyncBatchNorm):
        converted = torch.nn.BatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                                         module.track_running_stats)
        if module.affine:
            converted.weight, converted.bias = module.weight, module.bias
        converted.running_mean, converted.running_var = module.running_mean, module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
    for name, child in module.named_children():
        converted.add_module(name, _revert_sync_batchnorm(child))
    return converted
