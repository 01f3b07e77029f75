"""`tiny-random`: an SDXL-shaped pipeline with fixed random weights, built offline in about a second.

Same topology as SDXL base (3 UNet levels with 2 layers each, cross-attention on the two lower levels, `text_time`
added embeddings, a 4-level VAE with 8x downsampling, two CLIP text encoders, SDXL's Euler scheduler), with tiny
widths. It makes pictures of noise: it is for smoke runs and tests of the mechanics, not for looking at.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from .tokenizer import load_word_tokenizer, read_word_list

VOCABULARY = Path(__file__).with_name("vocabulary.txt")
SDXL_SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "interpolation_type": "linear",
    "timestep_spacing": "leading",
    "steps_offset": 1,
    "use_karras_sigmas": False,
}
TEXT_HIDDEN = 32
TEXT_HIDDEN_2 = 48  # differs from TEXT_HIDDEN as in SDXL (768 vs 1280): single-file loading tells them apart by width
TIME_EMBED_DIM = 8


def sdxl_euler_scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(**SDXL_SCHEDULER_CONFIG)


def _text_config(vocab_size: int, bos: int, eos: int, hidden: int):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=hidden,
        hidden_act="gelu",
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
    )


def build_tiny_random_components(seed: int = 0, tokenizer_dir: Path | None = None) -> dict:
    """Components for `StableDiffusionXLPipeline(**components)`; the same `seed` gives the same weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    if tokenizer_dir is None:
        tokenizer_dir = Path(tempfile.mkdtemp(prefix="taue-tiny-tokenizer-"))
    tokenizer = load_word_tokenizer(read_word_list(VOCABULARY), tokenizer_dir)
    tokenizer_2 = load_word_tokenizer(read_word_list(VOCABULARY), tokenizer_dir)
    ids = (len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4, 4),
        transformer_layers_per_block=(1, 1, 2),
        cross_attention_dim=TEXT_HIDDEN + TEXT_HIDDEN_2,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=TEXT_HIDDEN_2 + 6 * TIME_EMBED_DIM,
        norm_num_groups=32,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=128,
        scaling_factor=0.13025,
        force_upcast=True,
    )
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_text_config(*ids, hidden=TEXT_HIDDEN))
    torch.manual_seed(seed + 3)
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(*ids, hidden=TEXT_HIDDEN_2))
    for module in (unet, vae, text_encoder, text_encoder_2):
        module.eval()
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "text_encoder_2": text_encoder_2,
        "tokenizer": tokenizer,
        "tokenizer_2": tokenizer_2,
        "scheduler": sdxl_euler_scheduler(),
        "image_encoder": None,
        "feature_extractor": None,
        "force_zeros_for_empty_prompt": True,
    }
