"""The shared GAN trainer (Accelerate) and the per-family training modules."""

from .arguments import add_trainer_arguments, training_arguments_from
from .checkpointing import CheckpointError, list_checkpoints
from .modules import GANTrainingModule
from .trainer import GANTrainer, TrainingArguments


def __getattr__(name: str):
    # Family modules import their losses (and VGG); load them on first use only.
    if name == "SPADETrainingModule":
        from .spade import SPADETrainingModule

        return SPADETrainingModule
    if name == "OASISTrainingModule":
        from .oasis import OASISTrainingModule

        return OASISTrainingModule
    raise AttributeError(name)


__all__ = ["CheckpointError", "GANTrainer", "GANTrainingModule", "SPADETrainingModule", "TrainingArguments",
           "add_trainer_arguments", "list_checkpoints", "training_arguments_from"]
__all__ += ["OASISTrainingModule"]
