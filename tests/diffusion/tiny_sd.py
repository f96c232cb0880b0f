"""Tiny random Stable Diffusion + ControlNet components built offline (configs as in diffusers' own fast tests;
tokenizer hand-written, see `environment.md` §7), saved as folders the pipeline loads."""

from __future__ import annotations

import json
from pathlib import Path

import torch

SIZE = 64  # output pixels: the 2-block VAE halves it into the UNet's 32x32 latents


def write_tokenizer(folder: Path) -> Path:
    """A CLIP tokenizer with a 30-token vocabulary (start/end, "!" as pad, a-z and "x</w>"); no merges."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab[letter] = len(vocab)
    vocab["x</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="!",
                              model_max_length=77)  # without it encode_prompt overflows
    tokenizer.save_pretrained(folder)
    return folder


def tiny_components() -> dict:
    """unet, controlnet, vae, text_encoder, tokenizer, scheduler with random weights (seeded, reproducible)."""
    import tempfile

    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=1, time_cond_proj_dim=None,
    )
    torch.manual_seed(0)
    controlnet = ControlNetModel(
        block_out_channels=(4, 8), layers_per_block=2, in_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), cross_attention_dim=32,
        conditioning_embedding_out_channels=(16, 32), norm_num_groups=1,
    )
    torch.manual_seed(0)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[4, 8], in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4, norm_num_groups=2,
    )
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05,
        num_attention_heads=4, num_hidden_layers=5, pad_token_id=1, vocab_size=1000,
    ))
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(Path(tmp)))
    return {"unet": unet, "controlnet": controlnet, "vae": vae, "text_encoder": text_encoder,
            "tokenizer": tokenizer, "scheduler": scheduler}


def diffusers_pipeline(components: dict):
    """diffusers' own `StableDiffusionControlNetPipeline` over the components (no safety checker)."""
    from diffusers import StableDiffusionControlNetPipeline

    return StableDiffusionControlNetPipeline(**components, safety_checker=None, feature_extractor=None,
                                             image_encoder=None, requires_safety_checker=False)


def save_tiny(root: Path) -> dict[str, Path]:
    """Save the tiny model three ways under `root`.

    Returns:
        ``{"pipeline": folder with model_index.json and a controlnet, "controlnet": a bare ControlNet folder,
        "base": an SD folder without ControlNet}``.
    """
    from diffusers import StableDiffusionPipeline

    components = tiny_components()
    full = root / "tiny-sd-controlnet"
    diffusers_pipeline(components).save_pretrained(full)
    components["controlnet"].save_pretrained(root / "tiny-controlnet")
    base = {k: v for k, v in components.items() if k != "controlnet"}
    StableDiffusionPipeline(**base, safety_checker=None, feature_extractor=None, image_encoder=None,
                            requires_safety_checker=False).save_pretrained(root / "tiny-sd")
    return {"pipeline": full, "controlnet": root / "tiny-controlnet", "base": root / "tiny-sd"}
