"""LoRAs: the toy pink LoRA (tests/data/loras, made by `python -m lab.lora`) teaches the toy a colour
word it does not know, in diffusers' format and converted to kohya's; scale 0 and unloading leave no trace; the
server takes LoRAs of its --lora-dir only."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lab.lora import DIFFUSERS_FILE, KOHYA_FILE, pink_share, train
from taue_client.layers import group_name
from taue_engine import TAUEPipeline
from taue_engine.cli import main as taue_main
from taue_engine.loras import LoraSpec, lora_name, parse_lora, taught_words
from tests.helpers.live import live_server

LORAS = Path(__file__).parent / "data" / "loras"
PINK_LORA, PINK_KOHYA = LORAS / DIFFUSERS_FILE, LORAS / KOHYA_FILE
STEPS = 12
PAIRS = [("a pink star", "a white background"), ("a pink circle", "a blue background"),
         ("a pink square", "a yellow striped background")]


@pytest.fixture(scope="module")
def toy():
    pipe = TAUEPipeline.from_pretrained("toy", device="cpu")
    pipe.set_progress_bar_config(disable=True)
    yield pipe
    pipe.load_loras([])


def run(pipe, pair, seed=0, steps=STEPS):
    return pipe(*pair, seed=seed, config=pipe.default_config.replace(num_inference_steps=steps))


def images_of(result) -> dict:
    return {name: np.asarray(image) for name, image in result.images().items()}


def identical(a, b) -> bool:
    """The same files up to one 8-bit level: the same weights give float sums that differ in the last bits once a
    LoRA has been loaded and unloaded (MKL's kernels follow where the tensors lie in memory; the UNet's output moved
    by 7e-7 with every weight bit-equal), and such a sum can round a pixel one level the other way."""
    a, b = images_of(a), images_of(b)
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and np.abs(a[k].astype(int) - b[k].astype(int)).max() <= 1 for k in a)


def weights(pipe) -> dict:
    return {f"{name}.{key}": value.detach().clone() for name in ("unet", "text_encoder", "text_encoder_2")
            for key, value in getattr(pipe, name).state_dict().items()}


def object_pink(result) -> float:
    """Share of the object layer's opaque pixels that are pink (the testbed's nearest-colour scorer)."""
    layer = np.asarray(result.foreground)
    opaque = layer[..., 3] > 127
    return pink_share(layer, opaque) if opaque.any() else 0.0


@pytest.mark.slow
def test_the_pink_lora_teaches_the_word_and_leaves_no_trace(toy):
    toy.load_loras([])
    before = weights(toy)
    bare = [run(toy, pair, seed) for seed, pair in enumerate(PAIRS)]
    assert all(object_pink(r) < 0.05 for r in bare), [object_pink(r) for r in bare]
    assert toy.prompt_warning(["a pink star"]) is not None  # the toy alone does not know the word

    active = toy.load_loras([f"{PINK_LORA}:1.0"])
    assert active[0]["name"] == "toy-pink" and active[0]["scale"] == 1.0 and len(active[0]["sha256"]) == 64
    assert toy.prompt_warning(["a pink star on a white background"]) is None  # the LoRA says it teaches "pink"
    taught = [run(toy, pair, seed) for seed, pair in enumerate(PAIRS)]
    shares = [object_pink(r) for r in taught]
    # the committed LoRA (400 steps, offset noise as the toy was trained), bare under 0.05: 0.32, 0.09 and 0.45 of
    # the objects pink with the key injected as the model's step from grey to green (0.52, 0.77 and 0.50 injecting
    # the toy's E(green) itself: the step's blue-ward channel tints the LoRA's pink objects; docs/testbed.md)
    assert max(shares) >= 0.4 and np.mean(shares) >= 0.25, shares
    meta = taught[0].metadata
    assert meta["loras"] == [{"name": "toy-pink", "file": DIFFUSERS_FILE, "scale": 1.0, "sha256": active[0]["sha256"]}]
    assert "LoRA toy-pink 1" in group_name(meta)

    toy.load_loras([PINK_KOHYA])  # kohya's format reads to the same weights
    assert identical(run(toy, PAIRS[0]), taught[0])
    assert toy.prompt_warning(["a pink star"]) is None  # from kohya's ss_tag_frequency

    toy.load_loras([(PINK_LORA, 0.0)])
    assert identical(run(toy, PAIRS[0]), bare[0]), "scale 0 must give the files of no LoRA"
    toy.load_loras([])
    assert toy.get_list_adapters() == {} or not any(toy.get_list_adapters().values())
    assert identical(run(toy, PAIRS[0]), bare[0]), "after unloading, a job must be the one that never loaded it"
    after = weights(toy)
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before), \
        "unloading must leave every weight as loaded"
    assert run(toy, PAIRS[0]).metadata["loras"] == []


def test_lora_errors_say_what_to_change(toy, tmp_path):
    with pytest.raises(ValueError, match="no LoRA file"):
        toy.load_loras([tmp_path / "missing.safetensors"])
    (tmp_path / "style.ckpt").write_bytes(b"x")
    with pytest.raises(ValueError, match="not a .safetensors file"):
        toy.load_loras([tmp_path / "style.ckpt"])
    save_file({"weight": torch.zeros(3)}, str(tmp_path / "junk.safetensors"))
    with pytest.raises(ValueError, match="junk.safetensors is not a LoRA this model can load"):
        toy.load_loras([tmp_path / "junk.safetensors"])
    tiny = TAUEPipeline.from_pretrained("tiny-random", device="cpu")
    with pytest.raises(ValueError, match="made for another base model"):
        tiny.load_loras([PINK_LORA])
    assert not any(tiny.get_list_adapters().values())  # nothing half-loaded is left behind
    with pytest.raises(ValueError, match="scale must be a number"):
        parse_lora(f"{PINK_LORA}:9")
    assert parse_lora(r"C:\loras\style.safetensors").path.name.endswith("style.safetensors")
    assert parse_lora("x.safetensors:0.5").scale == 0.5 and lora_name("my style (v2).safetensors") == "my_style__v2_"
    assert taught_words({}) is None and taught_words({"taue.words": '["Pink"]'}) == {"pink"}


def test_cli_lora_flag(tmp_path, capsys):
    out = tmp_path / "out"
    assert taue_main(["generate", "--foreground", "a pink circle", "--background", "a blue background", "--steps",
                      str(STEPS), "--seed", "1", "--lora", f"{PINK_LORA}:0.8", "--out", str(out), "--quiet"]) == 0
    meta = json.loads((out / "taue.json").read_text())
    assert [(lora["name"], lora["scale"]) for lora in meta["loras"]] == [("toy-pink", 0.8)]
    assert "taue: warning" not in capsys.readouterr().err  # the LoRA teaches "pink"
    from psd_tools import PSDImage

    psd = PSDImage.open(out / "result.psd")
    assert "LoRA toy-pink 0.8" in psd[0].name
    assert taue_main(["generate", "--foreground", "x", "--background", "y", "--lora",
                      str(tmp_path / "nope.safetensors")]) == 2
    assert "taue: error: --lora: no LoRA file" in capsys.readouterr().err


def test_server_takes_loras_of_its_folder_only(toy, tmp_path):
    folder = tmp_path / "loras"
    folder.mkdir()
    shutil.copy(PINK_LORA, folder / DIFFUSERS_FILE)
    with live_server(tmp_path / "data", toy, lora_dir=folder) as live:
        health = live.get("/api/v1/health").json()
        assert health["loras"] == ["toy-pink"] and health["scheduler"] == "euler"
        assert "dpmpp_2m" in health["schedulers"] and "restart" in health["model_change"]
        toy.load_loras([])
        job = live.submit(foreground_prompt="a pink square", background_prompt="a yellow striped background",
                          seed=2, steps=STEPS, loras=[{"name": "toy-pink", "scale": 1.0}], scheduler="dpmpp_2m")
        assert job["warnings"] == []  # the job's LoRA teaches "pink", though none is loaded yet
        done = live.wait(job["id"], timeout=300)
        assert done["state"] == "succeeded", done
        meta = live.get(f"/api/v1/jobs/{job['id']}/result.json").json()
        assert meta["loras"][0]["name"] == "toy-pink" and meta["scheduler"] == "dpmpp_2m"
        assert live.get("/api/v1/health").json()["loaded_loras"][0]["name"] == "toy-pink"
        plain = live.wait(live.submit(foreground_prompt="a pink square", background_prompt="a yellow striped "
                                      "background", seed=2, steps=STEPS)["id"], timeout=300)
        assert plain["state"] == "succeeded" and "pink" in plain["warnings"][0]  # the bare toy does not know it
        assert live.get(f"/api/v1/jobs/{plain['id']}/result.json").json()["loras"] == []  # the bare model again
        for bad, says in [("nope", "no LoRA 'nope' on this server; it has: toy-pink"),
                          ("../loras/toy-pink", "not a path"), ("/etc/passwd", "not a path")]:
            response = live.session.post(live.api + "/jobs", json={"foreground_prompt": "a red star",
                                                                  "background_prompt": "a white background",
                                                                  "loras": [{"name": bad}]}, timeout=30)
            assert response.status_code == 400 and says in response.json()["error"]["message"], response.text
            assert response.json()["error"]["field"] == "loras[1].name"
        response = live.session.post(live.api + "/jobs", json={"foreground_prompt": "a red star",
                                                              "background_prompt": "a white background",
                                                              "scheduler": "euler_a"}, timeout=30)
        assert response.status_code == 400 and "use 'euler'" in response.json()["error"]["message"]
    with live_server(tmp_path / "data2", toy) as bare:
        response = bare.session.post(bare.api + "/jobs", json={"foreground_prompt": "a red star",
                                                              "background_prompt": "a white background",
                                                              "loras": [{"name": "toy-pink"}]}, timeout=30)
        assert response.status_code == 400 and "--lora-dir" in response.json()["error"]["message"]


@pytest.mark.slow
def test_the_lora_trainer_writes_both_formats(tmp_path):
    record = train("toy", tmp_path, steps=3, count=16, batch=4)
    assert record["files"] == [DIFFUSERS_FILE, KOHYA_FILE]
    for name in record["files"]:
        spec = LoraSpec(tmp_path / name).check()
        assert spec.path.stat().st_size > 10_000
    pipe = TAUEPipeline.from_pretrained("toy", device="cpu")
    pipe.load_loras([tmp_path / KOHYA_FILE])
    assert pipe.prompt_warning(["a pink star"]) is None
