"""Each mechanism of TAUE checked where it happens, on the tiny-random model."""

import numpy as np
import pytest
import torch

from taue_engine import TAUECancelled, TAUEConfig
from taue_engine.attention import AttentionShearingProcessor, AttentionState
from taue_engine.hold import highpass

from .conftest import SIZE, STEPS


def test_green_injection_moves_the_noise_towards_the_models_key_step_where_mask_is_one(pipe, recorded_run, config):
    result, _ = recorded_run
    noise, injected, mask = (result.latents[k] for k in ("initial_noise", "initial_foreground", "green_mask"))
    c = torch.tensor(pipe.key_latent(config)).view(-1, 1)  # E(green) - E(grey), measured on the model
    assert not (injected != noise)[0][:, mask == 0].any(), "nothing may change where M = 0"
    # unit-variance space: the shift is alpha * (C - z), i.e. of the order of C, not of order C / 14.6
    shift = (injected - noise)[0][:, mask == 1]
    assert torch.allclose(shift, 0.22 * (c - noise[0][:, mask == 1]), atol=1e-6)
    # a green_latent given keeps the paper's rule: channels whose value is 0 stay plain noise
    from taue_engine.green import inject_green

    plain = inject_green(noise, mask, (0.0, 1.0, 1.0, 0.0), 0.22)
    assert torch.equal(plain[:, [0, 3]], noise[:, [0, 3]]) and not torch.equal(plain[:, 1:3], noise[:, 1:3])


def test_layout_box_keeps_green_out_of_the_box(recorded_run):
    result, _ = recorded_run
    mask = result.latents["green_mask"]
    h, w = mask.shape
    inside = mask[int(0.4 * h) : int(0.6 * h), int(0.3 * w) : int(0.5 * w)]  # centre of box (0.4, 0.5, 0.5, 0.6)
    assert inside.mean() < 0.2
    assert mask[:, -2:].mean() > 0.8  # far right edge, outside the box


def test_seedling_is_phase_one_latent_at_crop_step(recorded_run, config):
    result, recorder = recorded_run
    crop = config.crop_step
    assert len(recorder.latents["foreground"]) == STEPS
    assert torch.equal(recorder.latents["foreground"][crop - 1], result.latents["seedling"])


def test_clean_estimate_is_the_schedulers_prediction_for_the_seedling(pipe, recorded_run, config):
    """x0-hat belongs to the seedling: Euler's step from it is x + (sigma_next - sigma) * (x - x0-hat) / sigma."""
    result, recorder = recorded_run
    crop = config.crop_step
    seedling, clean = result.latents["seedling"], result.latents["clean_estimate"]
    sigmas = pipe.scheduler.sigmas
    following = recorder.latents["foreground"][crop]  # the latent after the step that starts from the seedling
    expected = seedling + (sigmas[crop + 1] - sigmas[crop]) * (seedling - clean) / sigmas[crop]
    assert torch.allclose(following, expected, atol=1e-4)
    assert not torch.allclose(clean, seedling, atol=1e-2)
    assert "step" not in pipe.scheduler.__dict__  # the scheduler's own step is back


def test_composite_object_region_is_held_until_crop_then_released(pipe, recorded_run, config):
    result, recorder = recorded_run
    crop = config.crop_step
    m = result.latents["object_mask"].bool()
    assert m.any() and not m.all()
    target = highpass(result.latents["seedling"], result.latents["clean_estimate"], config.highpass_strength,
                      result.latents["object_mask"])
    steps = recorder.latents["composite"]
    sigmas = pipe.scheduler.sigmas
    # at the cut the object region is the transplanted, high-passed seedling, released keyed over the composite's
    # background (tests/test_release.py checks that step exactly): it moved, and only there
    assert not torch.allclose(steps[crop - 1][0][:, m], target[0][:, m], atol=1e-6)
    # before it, the region is the seedling plus one fixed noise scaled to the current noise level
    noises = []
    for k in range(1, crop):
        scale = float((sigmas[k] ** 2 - sigmas[crop] ** 2).sqrt())
        noises.append((steps[k - 1][0][:, m] - target[0][:, m]) / scale)
    for n in noises[1:]:
        assert torch.allclose(n, noises[0], atol=1e-4)
    # the background around it is denoised freely, and after the cut the object region moves too
    assert not torch.allclose(steps[crop - 2][0][:, ~m], steps[crop - 1][0][:, ~m])
    assert not torch.allclose(steps[crop][0][:, m], target[0][:, m], atol=1e-3)
    # the composite's latent at the cut is what phase 3 transplants
    assert torch.equal(steps[crop - 1], result.latents["background_seedling"])


def test_background_phase_holds_the_inverted_mask(recorded_run, config):
    result, recorder = recorded_run
    crop = config.crop_step
    m = result.latents["object_mask"].bool()
    l_bg = result.latents["background_seedling"]
    steps = recorder.latents["background"]
    # outside the object the background is held to L_bg; the hole is re-grown from fresh noise
    assert torch.allclose(steps[crop - 1][0][:, ~m], l_bg[0][:, ~m], atol=1e-6)
    assert not torch.allclose(steps[crop - 1][0][:, m], l_bg[0][:, m], atol=1e-2)
    assert not torch.allclose(steps[crop][0][:, ~m], l_bg[0][:, ~m], atol=1e-3)


def test_attention_is_captured_before_the_cut_only(pipe, recorded_run, config):
    result, _ = recorded_run
    layers = [n for n in pipe.unet.attn_processors if n.endswith("attn2.processor")]
    factor_of = {"down_blocks.1": 2, "down_blocks.2": 4, "mid_block": 4, "up_blocks.0": 4, "up_blocks.1": 2}
    per_step = sum(1 for n in layers if factor_of[".".join(n.split(".")[:2]) if n.startswith(("down", "up"))
                                                 else "mid_block"] in config.attention_resolutions)
    assert result.metadata["attention_maps_captured"] == per_step * config.crop_step
    attention = result.latents["attention"]
    assert attention.shape == result.latents["object_mask"].shape
    assert float(attention.min()) == 0.0 and float(attention.max()) == 1.0


def _cross_attention_module(pipe):
    return pipe.unet.down_blocks[1].attentions[0].transformer_blocks[0].attn2


def _shear(attn, hidden, all_prompt, fg, bg, mask):
    state = AttentionState(latent_size=(16, 16), shear_mask=mask, shear_context=torch.cat([fg, bg]))
    return AttentionShearingProcessor(state, "down_blocks.1")(attn, hidden, all_prompt)


@pytest.mark.parametrize("fill, expected", [(1.0, "fg"), (0.0, "bg")])
def test_shearing_with_a_full_or_empty_mask_gives_one_prompt(pipe, fill, expected):
    from diffusers.models.attention_processor import AttnProcessor2_0

    attn = _cross_attention_module(pipe)
    torch.manual_seed(0)
    hidden = torch.randn(2, 64, attn.query_dim)  # 8x8 positions, CFG batch of 2
    prompts = {k: torch.randn(2, 77, attn.cross_attention_dim) for k in ("all", "fg", "bg")}
    sheared = _shear(attn, hidden, prompts["all"], prompts["fg"], prompts["bg"], torch.full((16, 16), fill))
    plain = AttnProcessor2_0()(attn, hidden, prompts[expected])
    assert torch.allclose(sheared, plain, atol=1e-5)
    other = AttnProcessor2_0()(attn, hidden, prompts["bg" if expected == "fg" else "fg"])
    assert not torch.allclose(sheared, other, atol=1e-3)


def test_shearing_blends_by_position(pipe):
    from diffusers.models.attention_processor import AttnProcessor2_0

    attn = _cross_attention_module(pipe)
    hidden = torch.randn(2, 64, attn.query_dim)
    fg, bg = torch.randn(2, 77, attn.cross_attention_dim), torch.randn(2, 77, attn.cross_attention_dim)
    mask = torch.zeros(16, 16)
    mask[:, :8] = 1  # left half foreground
    out = _shear(attn, hidden, torch.randn(2, 77, attn.cross_attention_dim), fg, bg, mask)
    out_fg, out_bg = AttnProcessor2_0()(attn, hidden, fg), AttnProcessor2_0()(attn, hidden, bg)
    left = torch.zeros(8, 8, dtype=torch.bool)
    left[:, :4] = True
    left = left.flatten()
    assert torch.allclose(out[:, left], out_fg[:, left], atol=1e-5)
    assert torch.allclose(out[:, ~left], out_bg[:, ~left], atol=1e-5)


def test_shearing_several_objects_later_in_front(pipe):
    """Issue 7: K object prompts, each ruling where its mask is visible; overlaps go to the later object."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    attn = _cross_attention_module(pipe)
    hidden = torch.randn(2, 64, attn.query_dim)
    first, second, bg = (torch.randn(2, 77, attn.cross_attention_dim) for _ in range(3))
    masks = torch.zeros(2, 16, 16)
    masks[0, :, :10] = 1  # columns 0-4 of the 8x8 layer
    masks[1, :, 6:12] = 1  # columns 3-5: in front of the first where they overlap
    state = AttentionState(latent_size=(16, 16), shear_mask=masks, shear_context=torch.cat([first, second, bg]))
    out = AttentionShearingProcessor(state, "down_blocks.1")(attn, hidden, torch.randn(2, 77, attn.cross_attention_dim))
    plain = {name: AttnProcessor2_0()(attn, hidden, prompt) for name, prompt in
             (("first", first), ("second", second), ("bg", bg))}
    column = torch.arange(8).repeat(8)
    for name, where in (("first", column < 3), ("second", (column >= 3) & (column < 6)), ("bg", column >= 6)):
        assert torch.allclose(out[:, where], plain[name][:, where], atol=1e-5), name
    with pytest.raises(ValueError, match="2 object prompt"):
        AttentionShearingProcessor(AttentionState(latent_size=(16, 16), shear_mask=masks,
                                                  shear_context=torch.cat([first, bg])), "down_blocks.1")(
            attn, hidden, bg)


def test_front_to_back_weights():
    from taue_engine.masks import front_to_back

    masks = torch.tensor([[[1.0, 1.0, 0.0, 0.5]], [[0.0, 1.0, 1.0, 0.5]]])
    weights, remainder = front_to_back(masks)
    assert torch.allclose(weights, torch.tensor([[[1.0, 0.0, 0.0, 0.25]], [[0.0, 1.0, 1.0, 0.5]]]))
    assert torch.allclose(remainder, torch.tensor([[0.0, 0.0, 0.0, 0.25]]))
    assert torch.allclose(weights.sum(0) + remainder, torch.ones(1, 4))
    single, rest = front_to_back(masks[:1])
    assert torch.equal(single[0], masks[0]) and torch.allclose(rest, 1 - masks[0])


def test_only_the_chosen_blocks_shear_and_capture_stops_at_the_cut(pipe, config):
    from diffusers.models.attention_processor import AttnProcessor2_0

    from taue_engine.attention import AttentionCaptureProcessor

    seen = {}

    def look(p, step, timestep, kwargs):
        kinds = {type(proc).__name__ for name, proc in p.unet.attn_processors.items()
                 if name.endswith("attn2.processor") and name.startswith(("down", "mid"))}
        up_kinds = {type(proc).__name__ for name, proc in p.unet.attn_processors.items()
                    if name.endswith("attn2.processor") and name.startswith("up")}
        seen[(p.current_phase, step)] = (kinds, up_kinds)

    pipe("a red star", "a blue background", seed=1, width=64, height=64, callback_on_step_end=look,
         config=config.replace(shear_blocks=("up",)))
    crop = config.crop_step
    capture, plain, shearing = "AttentionCaptureProcessor", "AttnProcessor2_0", "AttentionShearingProcessor"
    assert seen[("foreground", crop - 2)] == ({capture}, {capture})  # callbacks run after the step's edits
    assert seen[("foreground", crop - 1)] == ({plain}, {plain})  # restored once the seedling is cut
    assert seen[("composite", 0)] == ({plain}, {shearing})  # unsheared layers attend to T_all as usual
    assert seen[("background", 0)] == ({plain}, {plain})
    assert AttentionCaptureProcessor and AttnProcessor2_0


@torch.no_grad()
def test_capture_processor_leaves_the_output_unchanged(pipe):
    from diffusers.models.attention_processor import AttnProcessor2_0

    from taue_engine.attention import AttentionCaptureProcessor

    attn = _cross_attention_module(pipe)
    hidden, context = torch.randn(2, 64, attn.query_dim), torch.randn(2, 77, attn.cross_attention_dim)
    state = AttentionState(latent_size=(16, 16), capture_until=5, capture_factors=(2,), token_indices=[1, 2])
    out = AttentionCaptureProcessor(state, "down_blocks.1")(attn, hidden, context)
    assert torch.allclose(out, AttnProcessor2_0()(attn, hidden, context), atol=1e-5)
    assert state.captured_maps == 1 and state.attention_map().shape == (16, 16)


def test_processors_are_restored_after_a_run(pipe, recorded_run):
    from diffusers.models.attention_processor import AttnProcessor2_0

    assert all(isinstance(p, AttnProcessor2_0) for p in pipe.unet.attn_processors.values())


def test_result_layers(recorded_run):
    result, _ = recorded_run
    assert result.foreground.mode == "RGBA" and result.foreground.size == (SIZE, SIZE)
    assert result.foreground_on_green.mode == "RGB"
    assert result.background.size == result.composite.size == (SIZE, SIZE)
    assert result.mask.mode == "L" and result.mask.size == (SIZE, SIZE)
    assert set(result.metadata["timings_s"]) >= {"foreground", "composite", "background", "keying", "total"}
    assert result.metadata["prompts"]["composite"] == "a red star, a blue striped background"


def test_same_seed_same_pictures_other_seed_other_pictures(pipe, config, tmp_path):
    runs = [pipe("a red star", "a blue striped background", seed=s, width=SIZE, height=SIZE, config=config)
            for s in (3, 3, 4)]
    paths = [runs[i].save(tmp_path / str(i)) for i in range(3)]
    for name in ("foreground", "foreground_on_green", "background", "composite", "mask"):
        assert paths[0][name].read_bytes() == paths[1][name].read_bytes(), name
    assert paths[0]["composite"].read_bytes() != paths[2]["composite"].read_bytes()


def test_progress_reports_every_step_and_can_cancel(pipe, config):
    ticks = []
    pipe("a red star", "a blue striped background", seed=1, width=64, height=64, config=config,
         progress_callback=ticks.append)
    assert [t.overall_step for t in ticks] == list(range(1, 3 * STEPS + 1))
    assert [t.phase for t in ticks[:: STEPS]] == ["foreground", "composite", "background"]
    assert ticks[-1].fraction == 1.0

    seen = []

    def stop_in_composite(tick):
        seen.append(tick)
        return not (tick.phase == "composite" and tick.step == 2)

    with pytest.raises(TAUECancelled, match="composite"):
        pipe("a red star", "a blue striped background", seed=1, width=64, height=64, config=config,
             progress_callback=stop_in_composite)
    assert seen[-1].overall_step == STEPS + 2  # stopped within the step that asked
    from diffusers.models.attention_processor import AttnProcessor2_0

    assert all(isinstance(p, AttnProcessor2_0) for p in pipe.unet.attn_processors.values())


def test_no_shearing_and_no_highpass_are_honoured(pipe, config):
    base = pipe("a red star", "a blue striped background", seed=2, width=64, height=64, config=config)
    plain = pipe("a red star", "a blue striped background", seed=2, width=64, height=64,
                 config=config.replace(shear_blocks=(), highpass=False))
    assert torch.equal(base.latents["seedling"], plain.latents["seedling"])  # phase 1 is unaffected
    assert not torch.equal(base.latents["background_seedling"], plain.latents["background_seedling"])


@pytest.mark.parametrize("kwargs, field", [
    ({"width": 100}, "width"), ({"height": 32}, "height"), ({"seed": -1}, "seed"),
    ({"foreground_prompt": ""}, "foreground_prompt"), ({"layout": (0.5, 0.5, 2, 0.2)}, "layout.w"),
])
def test_bad_call_arguments_raise_value_errors(pipe, config, kwargs, field):
    request = {"foreground_prompt": "a red star", "background_prompt": "a blue background", "width": 64,
               "height": 64, "config": config, **kwargs}
    with pytest.raises(ValueError, match=field):
        pipe(**request)


def test_green_latent_must_match_the_models_channels(pipe):
    with pytest.raises(ValueError, match="green_latent"):
        pipe("a", "b", width=64, height=64, config=TAUEConfig(num_inference_steps=4, green_latent=(0, 1, 1)))


def test_guidance_off_runs_without_the_cfg_batch(pipe, config):
    no_cfg = config.replace(guidance_foreground=1.0, guidance_composite=1.0, guidance_background=1.0)
    result = pipe("a red star", "a blue background", seed=2, width=64, height=64, config=no_cfg)
    assert result.metadata["attention_maps_captured"] > 0
    assert result.composite.size == (64, 64)


@pytest.mark.parametrize("negative", [None, "blurry"])
def test_prompt_encoding_matches_sdxl(pipe, negative):
    ours = pipe._encode_prompts(["a red star", "a blue background"], negative, "cpu")[1]
    sdxl = pipe.encode_prompt("a blue background", device="cpu", negative_prompt=negative)
    order = (0, 1, 2, 3)  # (embeds, negative, pooled, negative pooled) in both
    for i in order:
        assert torch.allclose(ours[i], sdxl[i], atol=1e-6), i


def test_two_threads_on_one_pipeline_get_what_each_would_get_alone(pipe):
    """Two servers (or a server and a script) sharing one loaded model must not step each other's scheduler."""
    import threading

    from taue_engine import TAUEConfig

    config = TAUEConfig(num_inference_steps=4)
    args = [dict(foreground_prompt="a red star", background_prompt="a blue striped background", seed=s, width=64,
                 height=64, config=config) for s in (3, 4)]
    alone = [pipe(**a).composite for a in args]
    together, errors = [None, None], []

    def run(n):
        try:
            together[n] = pipe(**args[n]).composite
        except Exception as error:  # noqa: BLE001 - the assertion below reports it
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for a, b in zip(alone, together):
        assert np.array_equal(np.asarray(a), np.asarray(b))
