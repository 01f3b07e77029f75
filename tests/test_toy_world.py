"""The second toy's world and the parts of its training that can be checked in seconds."""

import numpy as np
import pytest
import torch

from lab.world import (
    COLOURS,
    KEY_CLASHES,
    KEYS,
    PALETTE,
    SIZE,
    classify_colours,
    colour_names,
    key_for,
    make_world_scene,
)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_scenes_keep_each_objects_truth_and_name_them_as_users_do(count):
    scene = make_world_scene(count * 101, count=count)
    assert scene.image.shape == (SIZE, SIZE, 3) and len(scene.objects) == count
    colours = [o.colour for o in scene.objects]
    assert len(set(colours)) == count and scene.background_colour not in colours
    masks = np.stack([o.mask for o in scene.objects])
    assert (masks.sum(0) <= 1.0 + 1e-6).all()  # placed apart: every pixel belongs to one object at most
    for o in scene.objects:
        assert o.mask.sum() > 0.01 * SIZE * SIZE
    assert scene.scene_prompt.endswith(f"on {scene.background_prompt}")
    assert scene.comma_prompt == ", ".join(scene.object_prompts + [scene.background_prompt])
    if count > 1:
        assert " and " in scene.scene_prompt
    labels = classify_colours(scene.image)
    for o in scene.objects:
        assert (labels[o.mask > 0.99] == colour_names().index(o.colour)).all()


def test_an_object_alone_on_a_key_is_the_key_outside_its_mask():
    scene = make_world_scene(7, count=1, colours=["red"])
    for key, rgb in KEYS.items():
        image = scene.object_on_key(0, key)
        assert (image[scene.objects[0].mask == 0] == rgb).all()
        assert (classify_colours(image)[scene.objects[0].mask > 0.99] == colour_names().index("red")).all()


def test_no_object_is_put_on_a_key_it_clashes_with():
    rng = np.random.default_rng(0)
    for colour in COLOURS:
        keys = {key_for(colour, rng) for _ in range(200)}
        assert keys and not any(colour in KEY_CLASHES[k] for k in keys)
    assert {key_for("red", rng) for _ in range(200)} == set(KEYS)


def test_bad_scene_requests_say_what_is_wrong():
    with pytest.raises(ValueError, match="differ in colour"):
        make_world_scene(1, colours=["red", "red"])
    with pytest.raises(ValueError, match="background must differ"):
        make_world_scene(1, colours=["red"], background_colour="red")


def test_green_objects_exist_and_are_not_the_key():
    assert "green" in PALETTE and PALETTE["green"] != KEYS["green"]
    labels = classify_colours(np.array([[PALETTE["green"], KEYS["green"]]], np.uint8))
    assert [colour_names()[i] for i in labels[0]] == ["green", "key green"]


def test_data_set_samples_are_seeded():
    from lab.train import sample

    a, b = sample(5, 0), sample(5, 0)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(sample(6, 0)[0], a[0]) or sample(6, 0)[1] != a[1]


def test_the_vae_is_8x_and_local():
    """128 px to a 16x16 latent; a change in the left half of the latent reaches only ~3 cells into the right (an
    AutoencoderKL's GroupNorm would carry it everywhere)."""
    from lab.train import build_vae

    torch.manual_seed(0)
    vae = build_vae().eval()
    x = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        latent = vae.encode(x).latents
        assert latent.shape == (1, 4, 16, 16)
        changed = latent.clone()
        changed[..., :8] += torch.randn_like(changed[..., :8])
        difference = (vae.decode(changed).sample - vae.decode(latent).sample).abs().mean(dim=(0, 1, 2))
    per_cell = difference.view(16, 8).mean(1)
    relative = per_cell / per_cell[:8].mean()  # columns of latent cells, against the changed half's change
    assert relative[8] > 0.1 and relative[11:].max() < 0.02, relative  # reaches ~3 cells, not the whole image


def test_checkpoint_score_tells_right_images_from_wrong_ones():
    from lab.train import SCORE_PROMPTS, score_images
    from lab.world import make_world_scene

    right = []
    for n, (_, colours, background) in enumerate(SCORE_PROMPTS):
        if colours:
            right.append(make_world_scene(n, colours=colours, background_colour=background,
                                          background_kind="solid").image)
        else:
            right.append(np.broadcast_to(np.array(PALETTE[background], np.uint8), (SIZE, SIZE, 3)).copy())
    assert score_images(right) == {"object_present": 1.0, "background_right": 1.0, "score": 1.0}
    grey = [np.full((SIZE, SIZE, 3), 128, np.uint8)] * len(SCORE_PROMPTS)
    assert score_images(grey)["score"] < 0.2


def test_a_carried_run_resumes_where_it_stopped(tmp_path):
    """A stage given --carry writes, at each checkpoint, a compact copy to take to another machine (no optimizer
    moments, the UNet's weights in half precision); a new machine's run takes it back and goes on at the same step
    and spent time, warming its learning rate up again; what the work folder already has is never overwritten."""
    from lab.train import REWARM_STEPS, Budget, Log, Stage, restore_carry

    work, carry, again = tmp_path / "work", tmp_path / "carry", tmp_path / "again"
    work.mkdir()
    again.mkdir()

    def stage_in(folder, seed):
        torch.manual_seed(seed)
        model, ema = torch.nn.Linear(64, 64), torch.nn.Linear(64, 64)
        optimizer = torch.optim.AdamW(model.parameters())
        return Stage("unet", folder / "unet.pt", Log(folder / "loss.jsonl"), Budget(folder, 1.0), 3600, optimizer,
                     max_steps=10, carry=carry, model=model, ema=ema), model, optimizer

    first, model, optimizer = stage_in(work, 0)
    model(torch.randn(2, 64)).sum().backward()
    optimizer.step()
    for _ in range(7):
        first.step_done(0.5)
    first.close()
    saved = torch.load(work / "unet.pt", weights_only=False)["seconds"]
    assert first.rewarm() == 1.0
    assert (carry / "unet.pt").stat().st_size < 0.4 * (work / "unet.pt").stat().st_size
    assert set(restore_carry(carry, again)) == {"unet.pt", "budget.json"}
    assert restore_carry(carry, again) == []  # nothing the folder has is replaced

    second, resumed, _ = stage_in(again, 1)
    assert second.step == 7 and resumed.weight.dtype == torch.float32
    assert torch.allclose(resumed.weight, model.weight, atol=1e-3) and not torch.equal(resumed.weight, model.weight)
    assert second.spent >= saved
    assert second.rewarm() == pytest.approx(1 / REWARM_STEPS)
    second.step_done(0.5)
    assert second.rewarm() == pytest.approx(2 / REWARM_STEPS)
    second.bar.close()


@pytest.mark.slow
def test_the_training_script_trains_every_stage_and_exports_a_loadable_model(tmp_path):
    """Seconds of training: the machinery (data, the three stages by step counts, the scored best checkpoint, the
    carry, the export with its vocabulary and settings, the training log) and the exported folder runs TAUE at the
    model's own size, 128x128."""
    import json
    import subprocess
    import sys

    from taue_engine import TAUEConfig, TAUEPipeline

    work, out, carry = tmp_path / "work", tmp_path / "model", tmp_path / "carry"
    command = [sys.executable, "-m", "lab.train", "--work", str(work), "--images", "300",
               "--vae-steps", "3", "--unet-steps", "3", "--decoder-steps", "3", "--carry", str(carry)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.name for p in carry.iterdir()} >= {"vae.pt", "unet.pt", "best.pt", "decoder.pt", "budget.json"}
    scored = sorted(work.glob("ema-*.pt"))  # every scored checkpoint's EMA weights, for choosing one to export
    assert scored and not any(p.name.startswith("ema-") for p in carry.iterdir())
    for extra in (["--export", str(out), "--checkpoint", str(scored[-1])], ["--report", str(tmp_path / "training.md")]):
        # with --images: the export reads the same data set
        finished = subprocess.run(command[:7] + extra, capture_output=True, text=True, timeout=600)
        assert finished.returncode == 0, finished.stderr[-2000:]
    info = json.loads((out / "training.json").read_text())
    assert info["unet_steps"] == 3 and info["decoder_steps"] == 3 and "paste_psnr" in info["vae"]
    assert info["unet_minutes"] >= 0
    assert "after the decoder's paste stage" in (tmp_path / "training.md").read_text()
    assert "green" in json.loads((out / "vocabulary.json").read_text())["words"]
    assert not (out / "taue_config.json").exists()  # a fresh export chooses no settings: the testbed does
    pipe = TAUEPipeline.from_pretrained(str(out), device="cpu")
    pipe.set_progress_bar_config(disable=True)
    result = pipe("a red star", "a blue background", seed=0, config=TAUEConfig(num_inference_steps=4))
    assert result.composite.size == (128, 128)
