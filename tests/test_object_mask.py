"""Issue 13: m_obj from the seedling's clean estimate, and a high-pass that sharpens the signal, not the noise.

On the tiny-random model, against hand-made latents whose truth is known: a key-coloured backdrop with an object
patch (the model's own VAE latents of a solid key colour and a solid red), plus noise at the cut's sigma.
"""

import dataclasses

import pytest
import torch

from taue_engine.config import KEY_COLORS, MASK_SIGNALS
from taue_engine.hold import HeldRegion, highpass, laplacian
from taue_engine.keying import pixel_key_distance
from taue_engine.masks import hold_mask, key_distance, normalize, object_mask
from taue_engine.phases import PhaseOneRun
from taue_engine.schedulers import NoiseLevels

from .conftest import SIZE


def _run(clean, seedling=None):
    """A phase-1 run with only what the mask reads: the clean estimate (no attention, no key distance yet)."""
    return PhaseOneRun(on_key=None, seedling=seedling, clean=clean, attention=None, key_mask=None, initial=None,
                       maps_captured=0)


def _iou(a, b):
    a, b = a.bool(), b.bool()
    return float((a & b).sum() / (a | b).sum())


def _scene(pipe, config, seed=0):
    """(clean latent, seedling at the cut, truth at image resolution, sigma at the cut)."""
    h = w = SIZE // pipe.vae_scale_factor
    key = pipe.solid_latent("green", KEY_COLORS["green"])
    red = pipe.solid_latent("red", (1.0, 0.0, 0.0))
    clean = key.view(1, -1, 1, 1).repeat(1, 1, h, w)
    top, left, side = h // 4, w // 3, h // 2  # the object patch, in cells
    clean[:, :, top:top + side, left:left + side] = red.view(1, -1, 1, 1)
    generator = torch.Generator().manual_seed(seed)
    pipe.scheduler.set_timesteps(config.num_inference_steps)
    sigma = float(pipe.scheduler.sigmas[config.crop_step])
    seedling = clean + sigma * torch.randn(clean.shape, generator=generator)
    truth = torch.zeros(SIZE, SIZE)
    scale = pipe.vae_scale_factor
    truth[top * scale:(top + side) * scale, left * scale:(left + side) * scale] = 1
    return clean, seedling, truth, sigma


def test_key_distance_is_in_units_of_the_key_to_grey(pipe):
    key, unit = pipe.key_reference("green")
    grey = pipe.solid_latent("grey", (0.5, 0.5, 0.5))
    latent = torch.stack([key, grey]).T.reshape(1, -1, 1, 2)  # one key cell, one grey cell
    distance = key_distance(latent, key, unit, (1, 2))
    assert distance[0, 0] == pytest.approx(0.0, abs=1e-5) and distance[0, 1] == pytest.approx(1.0, abs=1e-5)


def test_mask_from_the_clean_estimate_finds_the_object(pipe, config):
    clean, seedling, truth, sigma = _scene(pipe, config)
    key, unit = pipe.key_reference("green")
    mask, source = object_mask(key_distance(clean, key, unit, (SIZE, SIZE)), None, (SIZE, SIZE), config.tau_bg,
                               config.tau_attention, config.mask_blur)
    assert source == "key" and _iou(mask, truth) >= 0.9
    # an imperfect clean estimate (noise of a tenth of the key-to-grey distance left in it) still gives the object
    residual = clean + 0.1 * unit * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    assert _iou(object_mask(key_distance(residual, key, unit, (SIZE, SIZE)), None, (SIZE, SIZE), config.tau_bg,
                            config.tau_attention, config.mask_blur)[0], truth) >= 0.9
    # what the old mask read, the noisy seedling min-max normalised, does not (the reason for the change)
    green = normalize((seedling[0, 1] + seedling[0, 2]).float())
    old = torch.nn.functional.interpolate((green < 0.5).float()[None, None], size=(SIZE, SIZE))[0, 0]
    assert _iou(old, truth) < 0.9


def test_mask_keeps_the_papers_and_with_attention(pipe, config):
    clean, _, truth, _ = _scene(pipe, config)
    key, unit = pipe.key_reference("green")
    h, w = clean.shape[-2:]
    attention = torch.zeros(h, w)
    attention[:, : w // 2] = 1.0  # the object tokens attend to the left half only
    distance = key_distance(clean, key, unit, (SIZE, SIZE))
    mask, source = object_mask(distance, attention, (SIZE, SIZE), config.tau_bg, config.tau_attention,
                               config.mask_blur)
    assert source == "key+attention"
    assert mask[:, SIZE // 2 + 8:].sum() == 0 and mask[truth.bool()].sum() > 0
    nowhere = torch.zeros(h, w)
    nowhere[0, 0] = 1.0  # attention that shares no pixel with the object: the key signal alone
    assert object_mask(distance, nowhere, (SIZE, SIZE), config.tau_bg, config.tau_attention,
                       config.mask_blur)[1] == "key (attention dropped)"


@pytest.mark.parametrize("signal", MASK_SIGNALS)
def test_pipeline_reads_the_mask_off_the_clean_estimate(request, config, signal):
    """The latent reading on tiny-random; the decoded one needs a VAE that decodes colours: the toy's."""
    pipe = request.getfixturevalue("pipe" if signal == "latent" else "toy")
    config = dataclasses.replace(config, mask_signal=signal)
    clean, seedling, truth, _ = _scene(pipe, config)
    mask, _ = pipe.object_mask(_run(clean, seedling), config, (SIZE, SIZE))
    assert _iou(mask, truth) >= 0.9


def test_pixel_key_distance_is_zero_on_the_key_and_one_on_a_grey():
    for name, rgb in KEY_COLORS.items():
        pixels = torch.tensor([rgb, (0.5, 0.5, 0.5), (0.9, 0.8, 0.1)])
        distance = pixel_key_distance(pixels, name)
        assert distance[0] == pytest.approx(0.0) and distance[1] == pytest.approx(1.0) and distance[2] > 0.5


def test_decoded_signal_sees_a_backdrop_greener_than_e_green(toy, config):
    """A backdrop painted past E(green), away from grey (what toy 2's UNet paints at the cut), decodes to green:
    the decoded reading keeps it backdrop and finds the object, where the latent distance from E(green) calls the
    backdrop object as well."""
    clean, _, truth, _ = _scene(toy, config)
    key = toy.solid_latent("green", KEY_COLORS["green"])
    grey = toy.solid_latent("grey", (0.5, 0.5, 0.5))
    step = toy.vae_scale_factor
    backdrop_cells = 1 - truth[::step, ::step].view(1, 1, *clean.shape[-2:])
    past = clean + (key - grey).view(1, -1, 1, 1) * backdrop_cells
    flagged = {}
    for signal in MASK_SIGNALS:
        signal_config = dataclasses.replace(config, mask_signal=signal)
        flagged[signal] = float((toy.key_distance_map(past, signal_config, (SIZE, SIZE))[~truth.bool()]
                                 > config.tau_bg).float().mean())
    assert flagged["latent"] > 0.9 and flagged["decoded"] < 0.05, flagged
    mask, _ = toy.object_mask(_run(past), dataclasses.replace(config, mask_signal="decoded"), (SIZE, SIZE))
    assert _iou(mask, truth) >= 0.8


def test_both_signals_measure_the_backdrop_this_job_painted(toy, config):
    """Per-job calibration: given where the backdrop should be (the injection's cells, low attention), the key
    distance is measured from the backdrop found there, so a backdrop painted past E(green) is backdrop for the
    latent reading too, and a paler green backdrop for the decoded one; the object is found either way."""
    clean, _, truth, _ = _scene(toy, config)
    key = toy.solid_latent("green", KEY_COLORS["green"])
    grey = toy.solid_latent("grey", (0.5, 0.5, 0.5))
    step = toy.vae_scale_factor
    backdrop_cells = 1 - truth[::step, ::step].view(1, 1, *clean.shape[-2:])
    around = ~truth.bool()
    for shift in (1.0, -0.4):  # greener than E(green); halfway to grey
        painted = clean + shift * (key - grey).view(1, -1, 1, 1) * backdrop_cells
        for signal in MASK_SIGNALS:
            signal_config = dataclasses.replace(config, mask_signal=signal)
            distance = toy.key_distance_map(painted, signal_config, (SIZE, SIZE), around=around)
            assert float((distance[around] > config.tau_bg).float().mean()) < 0.05, (shift, signal)
            assert float((distance[truth.bool()] > config.tau_bg).float().mean()) > 0.9, (shift, signal)


def test_highpass_sharpens_the_held_objects_inside_only():
    clean = torch.zeros(1, 4, 8, 8)
    clean[:, :, 2:6, 2:6] = 1.0
    seedling = clean + 0.1
    held = torch.zeros(8, 8)
    held[1:7, 1:7] = 1  # the object's cells and a rim of one cell
    out = highpass(seedling, clean, 0.5, held)
    changed = (out != seedling).any(dim=1)[0]
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[2:6, 2:6] = True  # held cells eroded by one
    assert changed[inside].any() and not changed[~inside].any()
    assert torch.equal(highpass(seedling, clean, 0.5), seedling - 0.5 * laplacian(clean))


def test_hold_mask_holds_whole_cells_grown_by_the_setting():
    fine = torch.zeros(64, 64)
    fine[16:40, 16:40] = 1  # cells 2..4 fully, no partial cells
    held = hold_mask(fine, (8, 8), 0.5)
    assert held.sum() == 9 and held[2:5, 2:5].all()
    assert hold_mask(fine, (8, 8), 0.5, grow=1).sum() == 25
    speck = torch.zeros(64, 64)
    speck[1:3, 1:3] = 1  # too small for half a cell: its cell is still held
    assert hold_mask(speck, (8, 8), 0.5).sum() == 1 and hold_mask(torch.zeros(64, 64), (8, 8), 0.5).sum() == 0


def test_released_noise_level_is_the_cuts(pipe, config):
    """The held region at release is f(L) = L + k HP(x0-hat): its noise is the seedling's own, sigma(t_crop)."""
    torch.manual_seed(0)
    pipe.scheduler.set_timesteps(config.num_inference_steps)
    sigmas, crop = pipe.scheduler.sigmas, config.crop_step
    sigma = float(sigmas[crop])
    shape = (1, 4, 128, 128)
    clean = torch.nn.functional.interpolate(torch.randn(1, 4, 16, 16), size=shape[-2:], mode="bilinear")
    seedling = clean + sigma * torch.randn(shape)
    mask = torch.ones(shape[-2:])
    k = config.highpass_strength
    sharpened = clean - k * laplacian(clean)
    region = HeldRegion(highpass(seedling, clean, k), mask, torch.randn(shape), NoiseLevels.of(pipe.scheduler), crop,
                        1.0)
    released = region.apply(torch.zeros(shape), crop)
    assert float((released - sharpened).std()) == pytest.approx(sigma, rel=0.05)
    # filtering the noisy seedling instead multiplies the noise by sqrt(1 + 8k + 20k^2): 1.84 at k = 0.2
    old = seedling - k * laplacian(seedling)
    assert float((old - sharpened).std()) / sigma == pytest.approx((1 + 8 * k + 20 * k * k) ** 0.5, rel=0.05)
