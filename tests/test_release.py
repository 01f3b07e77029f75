"""The held objects are released at the cut keyed over the composite's own background (release.KeyedRelease)."""

import numpy as np
import pytest
import torch

from taue_engine import TAUEConfig
from taue_engine.hold import highpass
from taue_engine.release import KeyedRelease, fill_from, kept_inside
from taue_engine.schedulers import NoiseLevels

from .conftest import SIZE, STEPS, StepRecorder


def test_fill_from_takes_the_free_cells_around_and_leaves_them_as_they_are():
    latent = torch.arange(4 * 12 * 12, dtype=torch.float32).view(1, 4, 12, 12)
    free = torch.ones(12, 12)
    free[3:9, 3:9] = 0  # a held block, deeper than one fill step reaches
    filled = fill_from(latent, free)
    assert torch.equal(filled[..., free > 0.5], latent[..., free > 0.5])
    assert torch.isfinite(filled).all()
    # a held cell takes values from free cells: inside the free values' range, channel by channel
    for c in range(4):
        inside, outside = filled[0, c][free < 0.5], latent[0, c][free > 0.5]
        assert inside.min() >= outside.min() and inside.max() <= outside.max()
    constant = torch.full((1, 4, 12, 12), 2.5)
    constant[..., free < 0.5] = -9.0  # what the held cells held is not read
    assert torch.allclose(fill_from(constant, free), torch.full_like(constant, 2.5))


def test_the_release_keeps_m_obj_as_it_is_inside_a_band_its_erosion_wide():
    from taue_engine.masks import resize_mask

    m_obj = torch.zeros(8, 8)
    m_obj[2:6, 2:6] = 1  # at 64 px: pixels 16..47
    kept = kept_inside(m_obj, (64, 64), 0.0)
    assert kept.dtype == torch.bool and torch.equal(kept, resize_mask(m_obj, 64, 64) > 0.5)
    shrunk = kept_inside(m_obj, (64, 64), 2 / 64)  # 2 px in from every side
    assert not bool((shrunk & ~kept).any())
    for line in (kept[32], kept[:, 32]):
        assert line.nonzero().flatten().tolist() == list(range(16, 48))
    for line in (shrunk[32], shrunk[:, 32]):
        assert line.nonzero().flatten().tolist() == list(range(18, 46))
    assert torch.equal(kept_inside(m_obj, (64, 64), 0.001), kept)  # under half a pixel: nothing to take off


@pytest.mark.parametrize("name", ["euler", "ddim"])  # unit scale, and a scale below one (the step is scaled)
def test_the_held_region_at_the_cut_is_the_seedling_plus_the_keyed_release(pipe, monkeypatch, name):
    steps_taken = []
    original = KeyedRelease.__call__

    def spy(self, clean):
        step = original(self, clean)
        steps_taken.append(step)
        return step

    monkeypatch.setattr(KeyedRelease, "__call__", spy)
    config = TAUEConfig(num_inference_steps=STEPS, scheduler=name, tau_attention=0.6)
    recorder = StepRecorder()
    result = pipe("a red star", "a blue striped background", seed=7, width=SIZE, height=SIZE,
                  layout=(0.4, 0.5, 0.5, 0.6), config=config, callback_on_step_end=recorder)
    assert len(steps_taken) == 1, "released once, at the cut"
    crop, mask = config.crop_step, result.latents["object_mask"].bool()
    target = highpass(result.latents["seedling"], result.latents["clean_estimate"], config.highpass_strength,
                      result.latents["object_mask"])
    scale = float(NoiseLevels.of(pipe.scheduler).scale[crop])
    released = target + scale * steps_taken[0]
    at_cut = recorder.latents["composite"][crop - 1]
    assert torch.allclose(at_cut[0][:, mask], released[0][:, mask], atol=1e-5)
    assert not torch.allclose(at_cut[0][:, mask], target[0][:, mask], atol=1e-3)
    # outside the held cells nothing is moved: the composite's own latent
    assert torch.equal(at_cut[0][:, ~mask], result.latents["background_seedling"][0][:, ~mask])

    monkeypatch.setattr(KeyedRelease, "__call__", original)
    recorder = StepRecorder()
    held = pipe("a red star", "a blue striped background", seed=7, width=SIZE, height=SIZE,
                layout=(0.4, 0.5, 0.5, 0.6), config=config.replace(release_keyed=False), callback_on_step_end=recorder)
    assert torch.allclose(recorder.latents["composite"][crop - 1][0][:, mask], target[0][:, mask], atol=1e-6)
    assert torch.equal(held.latents["seedling"], result.latents["seedling"])


@pytest.mark.slow
def test_the_toy_composite_loses_the_key_fringe_around_the_object(toy):
    """On the toy, a yellow circle on a red checkered background (a testbed pair whose composite, released as held,
    kept a magenta rim where phase 1's key had been): the ring around the object in neither its colour nor the
    background's shrinks with the keyed release (measured with the defaults: 0.451 released as held, 0.001 released
    over the composite's background)."""
    from lab.metrics import foreign_ring, opaque_of

    shares = {}
    for release in (False, True):
        config = toy.default_config.replace(release_keyed=release)
        result = toy("a yellow circle", "a red checkered background", seed=1030, config=config)
        rgb = np.asarray(result.composite.convert("RGB"))
        shares[release] = foreign_ring(rgb, opaque_of(result.foreground), "yellow", "red")
    assert shares[True] <= 0.10 and shares[False] - shares[True] >= 0.2, shares
