"""The embedded toy model: loads by name like any SDXL folder, follows prompts, and carries its own settings."""

import numpy as np
import pytest

from lab.world import classify_colours, colour_names
from taue_engine import TAUEConfig, TAUEPipeline


def test_toy_is_an_sdxl_folder_whose_settings_are_sampling_choices_only(toy):
    """Toy 2: SDXL's UNet and text encoders, a local AutoencoderTiny at 8x, 128 px; its folder's taue_config.json
    holds what a model card would give (the crop ratio and the composite's guidance its sweeps chose,
    lab/notes/sweeps.md), and every other setting is the default an SDXL user gets."""
    from diffusers import AutoencoderTiny

    from taue_engine.config import MODEL_CARD_FIELDS

    assert toy.unet.config.addition_embed_type == "text_time"
    assert isinstance(toy.vae, AutoencoderTiny) and toy.vae_scale_factor == 8
    assert toy.unet.config.sample_size * toy.vae_scale_factor == 128
    config = toy.default_config
    assert (config.crop_ratio, config.guidance_foreground, config.guidance_composite, config.guidance_background) == (
        0.65, 3.0, 3.0, 3.0)
    defaults = TAUEConfig()
    changed = {f for f in defaults.to_dict() if getattr(config, f) != getattr(defaults, f)}
    assert changed <= set(MODEL_CARD_FIELDS), changed


def test_a_model_folder_may_not_set_the_methods_thresholds(tmp_path):
    import json

    from taue_engine.models.loading import ModelLoadError, model_default_config

    (tmp_path / "taue_config.json").write_text(json.dumps({"steps": 1, "tau_bg": 0.3, "crop_ratio": 0.6}))
    with pytest.raises(ModelLoadError, match="may set only the sampling choices.*remove steps, tau_bg"):
        model_default_config(str(tmp_path))
    (tmp_path / "taue_config.json").write_text(json.dumps({"crop_ratio": 0.6, "num_inference_steps": 8}))
    assert model_default_config(str(tmp_path)).crop_ratio == 0.6


@pytest.mark.parametrize("colour, background, seed", [("red", "blue", 1), ("yellow", "purple", 2),
                                                       ("white", "black", 3)])
def test_plain_generation_follows_the_prompt(toy, colour, background, seed):
    import torch
    from diffusers import StableDiffusionXLPipeline

    image = StableDiffusionXLPipeline.__call__(
        toy, prompt=f"a {colour} circle on a {background} background", num_inference_steps=30, guidance_scale=5.0,
        generator=torch.Generator("cpu").manual_seed(seed)).images[0]
    labels = classify_colours(np.asarray(image))
    names = colour_names()
    assert (labels == names.index(colour)).mean() > 0.02
    assert (labels == names.index(background)).mean() > 0.3


def test_toy_foreground_comes_out_on_green(toy):
    result = toy("a red square", "a blue background", seed=4, config=toy.default_config.replace(
        num_inference_steps=30))
    labels = classify_colours(np.asarray(result.foreground_on_green))
    assert (labels == colour_names().index("key green")).mean() > 0.4
    alpha = np.asarray(result.foreground)[..., 3]
    assert 0.03 < (alpha > 127).mean() < 0.6  # an object, not the whole frame


@pytest.mark.slow
def test_training_script_trains_resumes_and_exports_a_loadable_model(tmp_path):
    """Seconds of lab/train.py (the committed model's script): the point is the machinery (data, VAE, latents, UNet with
    its scored checkpoints, decoder stage, going on from the work folder, export, loading, the several-objects
    stage)."""
    import json
    import subprocess
    import sys

    import torch

    work, out = tmp_path / "work", tmp_path / "model"
    early = subprocess.run([sys.executable, "-m", "lab.train", "--work", str(work), "--scenes"],
                           capture_output=True, text=True, timeout=300)
    assert early.returncode == 2 and "--scenes goes on from the finished UNet" in early.stderr, early.stderr[-2000:]
    command = [sys.executable, "-m", "lab.train", "--work", str(work), "--images", "300",
               "--vae-steps", "4", "--decoder-steps", "2", "--unet-steps"]
    done = subprocess.run(command + ["3"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    again = subprocess.run(command + ["5"], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    steps = [json.loads(line) for line in (work / "loss.jsonl").read_text().splitlines()]
    scored = [s["step"] for s in steps if s["stage"] == "unet-score"]
    assert scored == [3, 5], scored  # the second run went on from step 3, it did not start again
    exported = subprocess.run([sys.executable, "-m", "lab.train", "--work", str(work), "--images",
                               "300", "--export", str(out)], capture_output=True, text=True, timeout=900)
    assert exported.returncode == 0, exported.stderr[-2000:]
    pipe = TAUEPipeline.from_pretrained(str(out), device="cpu")
    pipe.set_progress_bar_config(disable=True)
    result = pipe("a red star", "a blue background", seed=0, config=pipe.default_config.replace(
        num_inference_steps=4))
    assert result.composite.size == (128, 128)
    info = json.loads((out / "training.json").read_text())
    assert info["unet_steps"] == 5 and info["decoder_steps"] == 2 and info["vae_steps"] == 4
    # the several-objects stage starts from the finished UNet's weights, not from scratch, and keeps its own files
    scenes = subprocess.run([sys.executable, "-m", "lab.train", "--work", str(work), "--images", "300",
                             "--scenes", "--scenes-steps", "2"], capture_output=True, text=True, timeout=900)
    assert scenes.returncode == 0, scenes.stderr[-2000:]
    assert "unet-scenes: from unet.pt (step 5)" in scenes.stdout
    steps = [json.loads(line) for line in (work / "loss.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if s["stage"] == "unet-scenes-score"] == [2]
    assert (work / "ema-scenes-0000002.pt").exists() and (work / "best-scenes.pt").exists()
    first = torch.load(work / "unet.pt", weights_only=False)["ema"]
    tuned = torch.load(work / "unet-scenes.pt", weights_only=False)["ema"]
    # two steps move the EMA a little from where the first stage left it (a fresh UNet would be far from it)
    assert all(torch.allclose(first[k], tuned[k], atol=0.05) for k in first)
    assert any(not torch.equal(first[k], tuned[k]) for k in first)
