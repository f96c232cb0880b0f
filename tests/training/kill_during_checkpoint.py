"""Stress check, not collected by pytest: SIGKILL a CPU training run at random moments, then resume.

    OMP_NUM_THREADS=1 .venv/bin/python tests/training/kill_during_checkpoint.py --kills 20 --seed 0

A tiny SPADE-VAE run saves a checkpoint at every step (keeping 2, so old ones are pruned at every step too), and is
restarted with `--resume_from_checkpoint latest` after every kill, as a preempted job would be. Most kills land a
random 0-1 s after the run has written its first new checkpoint (so during training, saving or pruning), the others
during start-up and resume (the first kill always waits for a checkpoint). After every kill the newest complete `checkpoint-N` must load and train one more step
(in a separate output folder). Prints: tried, resumed fine, bad outcomes (and how many kills left a half-written
or half-deleted folder behind, i.e. hit a save or a prune). Exit code 1 on any bad outcome.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def make_trainer(output_dir: Path, steps: int, resume: str | None, checkpointing_steps: int):
    import torch
    from test_resume import spade

    from labelsynth.training import GANTrainer, TrainingArguments

    torch.manual_seed(0)
    module, rows, transform = spade(use_vae=True)
    args = TrainingArguments(output_dir=str(output_dir), max_train_steps=steps, train_batch_size=2, report_to=None,
                             validation_steps=0, checkpointing_steps=checkpointing_steps, checkpoints_total_limit=2,
                             ema_decay=0.9, resume_from_checkpoint=resume)
    return GANTrainer(module, args, rows, transform)


def child(output_dir: Path) -> None:
    """The run that gets killed: trains 'forever', a checkpoint every step, resuming from the latest."""
    make_trainer(output_dir, 10**9, "latest", checkpointing_steps=1).train()


def newest_step(output_dir: Path) -> int:
    from labelsynth.training import list_checkpoints

    found = list_checkpoints(output_dir)
    return int(found[-1].name.split("-")[-1]) if found else 0


def leftovers(output_dir: Path) -> set[str]:
    """Folders of a save or prune that did not finish."""
    return {p.name for p in output_dir.iterdir() if p.name.endswith((".tmp", ".old", ".deleting"))}


def check(output_dir: Path) -> str | None:
    """None when the newest complete checkpoint resumes and trains a step, else what went wrong."""
    from labelsynth.training import list_checkpoints

    found = list_checkpoints(output_dir)
    if not found:
        return "no complete checkpoint"
    step = int(found[-1].name.split("-")[-1])
    with tempfile.TemporaryDirectory() as scratch:
        try:
            trainer = make_trainer(Path(scratch), step + 1, str(found[-1]), checkpointing_steps=0)
            trainer.train()
        except Exception as error:  # noqa: BLE001 (every failure is a bad outcome, reported)
            return f"{found[-1].name}: {type(error).__name__}: {error}"
    return None if trainer.counter.step == step + 1 else f"{found[-1].name}: resumed at the wrong step"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time_limit", type=float, default=600, help="stop starting new kills after this (s)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child))
        return 0
    rng = random.Random(args.seed)
    output_dir = Path(tempfile.mkdtemp(prefix="kill_during_checkpoint_"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    tried = fine = hit_save = during_startup = unchecked = 0
    bad: list[str] = []
    process = None
    start = time.monotonic()
    try:
        while tried < args.kills and time.monotonic() - start < args.time_limit:
            before = newest_step(output_dir)
            old_leftovers = leftovers(output_dir)
            process = subprocess.Popen([sys.executable, __file__, "--child", str(output_dir)], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            startup = before > 0 and rng.random() < 0.2
            if not startup:  # wait for a new checkpoint, then a random moment
                deadline = time.monotonic() + 600
                while newest_step(output_dir) <= before and process.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                time.sleep(rng.uniform(0, 1.0))
            else:  # during start-up and resume
                during_startup += 1
                time.sleep(rng.uniform(0, 6.0))
            if process.poll() is not None:
                bad.append(f"kill {tried + 1}: the run exited by itself with code {process.returncode}")
                tried += 1
                continue
            process.send_signal(signal.SIGKILL)
            process.wait()
            tried += 1
            new_leftovers = sorted(leftovers(output_dir) - old_leftovers)
            hit_save += bool(new_leftovers)
            if before == 0 and newest_step(output_dir) == 0:  # killed before its first checkpoint (a slow machine)
                unchecked += 1
                problem = "nothing to resume yet"
            else:
                problem = check(output_dir)
                if problem is None:
                    fine += 1
                else:
                    bad.append(f"kill {tried}: {problem}")
            print(f"kill {tried}{' (start-up)' if startup else ''}: newest checkpoint-{newest_step(output_dir)}, "
                  f"new leftovers {new_leftovers or 'none'}, {problem or 'ok'}", flush=True)
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(output_dir, ignore_errors=True)
    print(f"tried {tried}, resumed fine {fine}, bad outcome {len(bad)}, killed before any checkpoint {unchecked} "
          f"(kills during start-up: {during_startup}, that hit a save or prune: {hit_save}; "
          f"{time.monotonic() - start:.0f} s)")
    for line in bad:
        print("  " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
