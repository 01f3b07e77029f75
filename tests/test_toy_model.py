"""The embedded toy model: loads by name like any SDXL folder, follows prompts, and carries its own settings."""

import numpy as np
import pytest

from taue_engine import TAUEConfig, TAUEPipeline
from taue_engine.toy.scenes import classify_colours, palette_names


def test_toy_is_an_sdxl_folder_with_its_own_settings(toy):
    assert toy.unet.config.addition_embed_type == "text_time"
    assert toy.unet.config.sample_size * toy.vae_scale_factor == 64
    assert toy.default_config == TAUEConfig(green_alpha=0.7, attention_resolutions=(1, 2))
    assert toy.default_config.green_latent == (0.0, 1.0, 1.0, 0.0)


@pytest.mark.parametrize("colour, background, seed", [("red", "blue", 1), ("yellow", "purple", 2),
                                                       ("white", "black", 3)])
def test_plain_generation_follows_the_prompt(toy, colour, background, seed):
    import torch
    from diffusers import StableDiffusionXLPipeline

    image = StableDiffusionXLPipeline.__call__(
        toy, prompt=f"a {colour} circle on a {background} background", num_inference_steps=30, guidance_scale=5.0,
        generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    labels = classify_colours(np.asarray(image))
    names = palette_names()
    assert (labels == names.index(colour)).mean() > 0.02
    assert (labels == names.index(background)).mean() > 0.3


def test_toy_foreground_comes_out_on_green(toy):
    result = toy("a red square", "a blue background", seed=4, config=toy.default_config.replace(
        num_inference_steps=30))
    labels = classify_colours(np.asarray(result.foreground_on_green))
    assert (labels == palette_names().index("green")).mean() > 0.4
    alpha = np.asarray(result.foreground)[..., 3]
    assert 0.03 < (alpha > 127).mean() < 0.6  # an object, not the whole frame


def test_training_script_trains_resumes_and_exports_a_loadable_model(tmp_path):
    """Seconds of training: the point is the machinery (stages, green alignment, resume, export, loading)."""
    import json
    import subprocess
    import sys

    work, out = tmp_path / "work", tmp_path / "model"
    command = [sys.executable, "-m", "taue_engine.toy.train", "--work", str(work), "--images", "300",
               "--vae-minutes", "0.03", "--unet-minutes", "0.03", "--decoder-minutes", "0.03"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "--resume" in refused.stderr  # never overwrites checkpoints silently
    resumed = subprocess.run(command[:-1] + ["0.06", "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    alignment = json.loads((work / "alignment.json").read_text())
    g = alignment["green_direction_after"]
    assert abs(g[0]) < 1e-4 and abs(g[3]) < 1e-4 and g[1] == pytest.approx(g[2], rel=1e-4) and g[1] > 0
    exported = subprocess.run([sys.executable, "-m", "taue_engine.toy.train", "--work", str(work), "--export",
                               str(out)], capture_output=True, text=True, timeout=600)
    assert exported.returncode == 0, exported.stderr[-2000:]
    pipe = TAUEPipeline.from_pretrained(str(out), device="cpu")
    pipe.set_progress_bar_config(disable=True)
    result = pipe("a red star", "a blue background", seed=0, config=TAUEConfig(num_inference_steps=4))
    assert result.composite.size == (64, 64)
    info = json.loads((out / "training.json").read_text())
    assert info["unet_steps"] > 0 and info["decoder_steps"] > 0
