"""--vae: a VAE in place of the model's own (SDXL users swap in the float16-fixed one), from a folder, a pipeline
folder, a single .safetensors file or a hub id, through Python, the CLI and the server; one that does not fit the
model's UNet, or is missing, is refused with what to change."""

import json
import subprocess
import sys

import pytest
import torch

from taue_engine import TAUEPipeline
from taue_engine.models.loading import VaeLoadError


@pytest.fixture(scope="module")
def other_vae(tmp_path_factory):
    """tiny-random's VAE with another decoder bias, saved three ways: a VAE folder, a pipeline folder's vae/, and a
    single .safetensors file."""
    from safetensors.torch import save_file

    own = TAUEPipeline.from_pretrained("tiny-random", device="cpu").vae
    vae = type(own).from_config(own.config)
    vae.load_state_dict(own.state_dict())
    with torch.no_grad():
        vae.decoder.conv_out.bias += 0.4
    root = tmp_path_factory.mktemp("vaes")
    vae.save_pretrained(root / "vae-folder")
    vae.save_pretrained(root / "pipeline" / "vae")
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, str(root / "vae.safetensors"))
    return vae, root


def decoded(pipe):
    torch.manual_seed(0)
    return pipe.decode_latent(torch.randn(1, 4, 8, 8))


@pytest.mark.parametrize("form", ["vae-folder", "pipeline", "vae.safetensors"])
def test_the_replacement_decodes_and_the_job_records_it(pipe, other_vae, form, tmp_path):
    vae, root = other_vae
    swapped = TAUEPipeline.from_pretrained("tiny-random", device="cpu", vae=str(root / form))
    swapped.set_progress_bar_config(disable=True)
    assert swapped.vae_name == str(root / form) and pipe.vae_name is None
    assert not torch.allclose(decoded(swapped), decoded(pipe), atol=1e-3)  # not the model's own
    with torch.no_grad():
        torch.manual_seed(0)
        latent = torch.randn(1, 4, 8, 8)
        expected = ((vae.decode(latent / vae.config.scaling_factor).sample[0].permute(1, 2, 0) + 1) / 2).clamp(0, 1)
    assert torch.allclose(decoded(swapped), expected, atol=1e-5)
    result = swapped("a red circle", "a blue background", seed=1, width=64, height=64,
                     config=swapped.default_config.replace(num_inference_steps=2))
    assert result.metadata["vae"] == str(root / form)
    assert pipe("a red circle", "a blue background", seed=1, width=64, height=64,
                config=pipe.default_config.replace(num_inference_steps=2)).metadata["vae"] is None


def test_a_vae_that_does_not_fit_or_is_missing_is_refused(pipe, tmp_path):
    config = dict(pipe.vae.config)
    config["latent_channels"] = 8
    type(pipe.vae).from_config(config).save_pretrained(tmp_path / "eight")
    with pytest.raises(VaeLoadError, match="8-channel latents, this model's UNet takes 4"):
        TAUEPipeline.from_pretrained("tiny-random", device="cpu", vae=str(tmp_path / "eight"))
    with pytest.raises(VaeLoadError, match="does not exist: give a diffusers VAE folder"):
        TAUEPipeline.from_pretrained("tiny-random", device="cpu", vae=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(VaeLoadError, match="not a diffusers VAE"):
        TAUEPipeline.from_pretrained("tiny-random", device="cpu", vae=str(tmp_path / "empty"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(VaeLoadError, match="must be a VAE of the model's own architecture"):
        TAUEPipeline.from_pretrained("tiny-random", device="cpu", vae=str(tmp_path / "junk.safetensors"))
    with pytest.raises(VaeLoadError, match="hf download someone/no-such-vae"):  # HF_HUB_OFFLINE (conftest)
        TAUEPipeline.from_pretrained("tiny-random", device="cpu", vae="someone/no-such-vae")


def taue(*argv):
    return subprocess.run([sys.executable, "-m", "taue_engine.cli", *argv], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow  # three CLI processes
def test_cli_generate_and_background_use_the_vae(other_vae, tmp_path):
    _, root = other_vae
    folder = str(root / "vae-folder")
    made = taue("generate", "--model", "tiny-random", "--vae", folder, "--foreground", "a red circle",
                "--background", "a blue background", "--steps", "2", "--width", "64", "--height", "64",
                "--out", str(tmp_path / "made"), "--quiet")
    assert made.returncode == 0, made.stderr
    assert json.loads((tmp_path / "made" / "taue.json").read_text())["vae"] == folder
    again = taue("background", "--from", str(tmp_path / "made"), "--background", "a yellow background",
                 "--out", str(tmp_path / "again"), "--quiet")  # no --vae: the one that made --from
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again" / "taue.json").read_text())["vae"] == folder  # one scene: no sub-folder

    missing = taue("generate", "--model", "tiny-random", "--vae", str(tmp_path / "nowhere"), "--foreground", "x",
                   "--background", "y", "--out", str(tmp_path / "never"))
    assert missing.returncode == 2 and "--vae:" in missing.stderr and "does not exist" in missing.stderr
    assert not (tmp_path / "never").exists()


def test_the_server_says_which_vae_it_runs(other_vae, tmp_path):
    from server.cli import main as server_main
    from tests.helpers.live import live_server

    _, root = other_vae
    swapped = TAUEPipeline.from_pretrained("tiny-random", device="cpu", vae=str(root / "vae-folder"))
    with live_server(tmp_path / "data", swapped) as live:
        assert live.get("/api/v1/health").json()["vae"] == str(root / "vae-folder")
        document = live.get("/api/v1/openapi.json").json()
        assert "vae" in document["components"]["schemas"]["Health"]["properties"]
    assert server_main(["--vae", str(tmp_path / "nowhere"), "--data-dir", str(tmp_path / "d2")]) == 2


def test_the_key_latents_are_measured_at_load_away_from_the_edge_and_again_for_a_new_vae(pipe, other_vae, tmp_path):
    """E(colour) of each key colour and grey, measured once when the model loads, on the inner cells of a large
    solid image (the encoder sees the picture's edge several cells in), recorded in taue.json; a VAE with another
    encoder is measured again."""
    from PIL import Image

    from taue_engine.vae_io import CALIBRATION_BORDER, CALIBRATION_CELLS

    loaded = TAUEPipeline.from_pretrained("tiny-random", device="cpu")
    assert {name for _, name in loaded._solid_latents} == {"green", "blue", "magenta", "grey"}  # at load
    side = CALIBRATION_CELLS * loaded.vae_scale_factor
    latent = loaded.encode_pixels(Image.new("RGB", (side, side), (0, 255, 0)))[0]
    inner = latent[:, CALIBRATION_BORDER:-CALIBRATION_BORDER, CALIBRATION_BORDER:-CALIBRATION_BORDER].mean(dim=(1, 2))
    assert torch.allclose(loaded.solid_latent("green", (0.0, 1.0, 0.0)), inner)
    assert float((latent.mean(dim=(1, 2)) - inner).norm()) > 1e-3  # the edge cells would have moved it
    result = loaded("a red circle", "a blue background", seed=1, width=64, height=64,
                    config=loaded.default_config.replace(num_inference_steps=2))
    assert result.metadata["key_latents"] == loaded.key_latents() and len(result.metadata["key_latents"]) == 4

    vae = type(loaded.vae).from_config(loaded.vae.config)
    vae.load_state_dict(loaded.vae.state_dict())
    with torch.no_grad():
        vae.encoder.conv_in.bias += 0.5
    before = loaded.key_latents()
    loaded.replace_vae(vae)
    assert loaded.key_latents() != before and loaded.vae_name == "AutoencoderKL"
