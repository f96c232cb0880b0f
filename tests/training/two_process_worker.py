"""Run by `accelerate launch --multi_gpu --num_processes 2` from test_trainer.py: train a few steps, then check that
both ranks hold identical generator and discriminator weights (exit code 1 otherwise)."""

import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]  # test_trainer, and its helpers
from test_trainer import make_module, train


def main(output_dir: str) -> None:
    trainer = train(Path(output_dir), 3)
    acc = trainer.accelerator
    assert acc.num_processes == 2, acc.num_processes
    for name, model in (("generator", trainer.generator), ("discriminator", trainer.discriminator)):
        flat = torch.cat([p.detach().flatten() for p in acc.unwrap_model(model).parameters()])
        gathered = acc.gather(flat[None])
        assert torch.equal(gathered[0], gathered[1]), f"{name} weights diverged between ranks"
    trained = torch.cat([p.detach().flatten() for p in acc.unwrap_model(trainer.generator).parameters()])
    assert not torch.equal(trained, torch.cat([p.flatten() for p in make_module().generator.parameters()]))
    if acc.is_main_process:
        (Path(output_dir) / "ranks_in_sync").write_text("ok")


if __name__ == "__main__":
    main(sys.argv[1])
