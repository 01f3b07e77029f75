"""The procedural scenes keep their truth, and the layer metrics measure what they claim (on known images)."""

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from taue_engine.metrics import fringe_fraction, layer_fidelity, psnr, ssim, toy_metrics
from taue_engine.toy.scenes import (
    BACKGROUNDS, COLOURS, KEY_GREEN, SHAPES, classify_colours, colour_fraction, foreign_fraction, label_fraction,
    make_scene,
)


def test_scenes_are_seeded_and_keep_their_truth():
    a, b = make_scene(3), make_scene(3)
    assert np.array_equal(a.image, b.image) and a.scene_prompt == b.scene_prompt
    assert not np.array_equal(make_scene(4).image, a.image)
    inside, outside = a.mask > 0.99, a.mask < 0.01
    assert np.array_equal(a.image[outside], a.background[outside])
    assert (a.object_on_green[outside] == KEY_GREEN).all()
    assert np.array_equal(a.image[inside], a.object_on_green[inside])


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_is_drawn_in_every_colour_on_every_background(shape):
    for i, colour in enumerate(COLOURS):
        kind = BACKGROUNDS[i % len(BACKGROUNDS)]
        bg = COLOURS[(i + 1) % len(COLOURS)]
        scene = make_scene(i, shape=shape, colour=colour, background_colour=bg, background_kind=kind)
        assert 0.03 < scene.mask.mean() < 0.4
        assert colour_fraction(scene.image, colour, scene.mask > 0.5) > 0.9
        assert colour_fraction(scene.image, bg, scene.mask < 0.01) > 0.4  # the scorer reads the truth right


def test_captions_read_like_prompts():
    scene = make_scene(0, shape="star", colour="red", background_colour="blue", background_kind="striped")
    assert scene.scene_prompt == "a red star on a blue striped background"
    scene = make_scene(0, shape="ring", colour="orange", background_colour="green")
    assert scene.scene_prompt == "an orange ring on a green background"
    with pytest.raises(ValueError, match="differ"):
        make_scene(0, colour="red", background_colour="red")


def _result_from_scene(scene, background=None, fringe=False):
    """A result whose layers are the scene's truth: the ideal TAUE output (optionally spoiled)."""
    alpha = (scene.mask * 255).round().astype(np.uint8)
    colour = scene.object_on_green.copy()
    if fringe:  # leave the backdrop's green in the edge pixels
        edge = (scene.mask > 0.02) & (scene.mask < 0.98)
        colour[edge] = KEY_GREEN
    else:
        colour[:] = scene.image[scene.mask > 0.99][0]
    rgba = np.dstack([colour, alpha])
    return SimpleNamespace(
        foreground=Image.fromarray(rgba, "RGBA"),
        foreground_on_green=Image.fromarray(scene.object_on_green),
        background=Image.fromarray(scene.background if background is None else background),
        composite=Image.fromarray(scene.image),
        mask=Image.fromarray(((scene.mask > 0.5) * 255).astype(np.uint8), "L"),
    )


def test_ideal_layers_score_perfectly():
    scene = make_scene(11, shape="square", colour="red", background_colour="blue", background_kind="solid")
    result = _result_from_scene(scene)
    fidelity = layer_fidelity(result)
    assert fidelity["psnr_fg"] > 24 and fidelity["ssim_fg"] > 0.9  # only the anti-aliased edge differs
    assert fidelity["psnr_bg"] > 30 and fidelity["ssim_bg"] > 0.99
    toy = toy_metrics(result, "red", "blue")
    assert toy["alpha_iou"] > 0.9 and toy["leakage"] == 0.0 and toy["fringe"] == 0.0
    assert toy["object_colour_in_composite"] > 0.95 and toy["background_colour_in_composite"] > 0.95


def test_foreground_fidelity_compares_only_where_the_layer_is_opaque():
    scene = make_scene(11, shape="star", colour="red", background_colour="blue", background_kind="solid")
    result = _result_from_scene(scene)
    before = layer_fidelity(result)["psnr_fg"]
    rgba = np.asarray(result.foreground).copy()
    rgba[rgba[..., 3] == 0, :3] = KEY_GREEN  # colour under transparent pixels is never seen
    result.foreground = Image.fromarray(rgba, "RGBA")
    assert layer_fidelity(result)["psnr_fg"] == pytest.approx(before)
    result.composite = Image.fromarray(scene.background)  # a composite that lost the object
    lost = layer_fidelity(result)
    assert lost["psnr_fg"] < 10 and lost["ssim_fg"] < 0.9


def test_alpha_iou_needs_the_object_not_just_an_opaque_layer():
    scene = make_scene(5, shape="star", colour="red", background_colour="white", background_kind="solid")
    result = _result_from_scene(scene)
    result.foreground_on_green = Image.fromarray(scene.image)  # the backdrop came out white, not green
    result.foreground = Image.fromarray(np.dstack([scene.image, np.full((64, 64), 255, np.uint8)]), "RGBA")
    assert toy_metrics(result, "red", "white")["alpha_iou"] < 0.4


def test_metrics_catch_leakage_and_fringe():
    scene = make_scene(11, shape="circle", colour="red", background_colour="blue", background_kind="solid")
    ghost = scene.image.copy()  # the object left in the background layer
    result = _result_from_scene(scene, background=ghost, fringe=True)
    toy = toy_metrics(result, "red", "blue")
    # leakage is the share of the whole background layer in the object's colour: here the ghost's area
    assert toy["leakage"] == pytest.approx(float((scene.mask > 0.5).mean()), abs=0.02) and toy["leakage"] > 0.1
    assert toy["fringe"] > 0.3
    assert layer_fidelity(result)["psnr_bg"] == float("inf")  # outside the mask it is still right


def test_psnr_and_ssim_basics():
    rng = np.random.default_rng(0)
    a = rng.random((32, 32, 3)).astype(np.float32)
    assert psnr(a, a) == float("inf")
    assert abs(psnr(a, np.clip(a + 0.1, 0, 1)) - 20) < 1.5
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-5)
    assert ssim(a, 1 - a) < 0.0
    assert fringe_fraction(Image.new("RGBA", (8, 8), (255, 0, 0, 255))) == 0.0


def test_fringe_is_measured_against_the_key_colour():
    edge = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    edge.paste(Image.new("RGBA", (8, 16), (200, 30, 30, 255)), (0, 0))
    edge.paste(Image.new("RGBA", (1, 16), (60, 60, 230, 128)), (8, 0))  # a half-transparent blue edge column
    assert fringe_fraction(edge, "blue") > 0.3 and fringe_fraction(edge, "green") == 0.0


@pytest.mark.parametrize("colour, background, kind", [("yellow", "orange", "striped"), ("purple", "white", "checkered"),
                                                      ("purple", "black", "striped"), ("purple", "blue", "gradient")])
def test_leakage_is_zero_on_the_true_background_and_counts_a_ghost(colour, background, kind):
    """The world's own patterned backgrounds hold colours nearer another palette colour than their own (light orange
    nearer yellow, the grey partners of white and black nearer purple): leakage must not count those, or a perfect
    background layer misses the bar, and must still count the object left in the layer."""
    from taue_engine.toy import world

    for seed in range(3):
        truth = world.background_image(background, kind, np.random.default_rng(seed))
        assert foreign_fraction(truth, colour, background) == 0.0
    assert max(label_fraction(classify_colours(world.background_image(background, kind, np.random.default_rng(s))),
                              colour) for s in range(3)) > 0.05  # what the nearest-palette count took for leakage
    ghost = world.background_image(background, kind, np.random.default_rng(0))
    mask = world.shape_mask("circle", 0.5, 0.5, 0.25, size=world.SIZE) > 0.5
    ghost[mask] = world.PALETTE[colour]
    assert foreign_fraction(ghost, colour, background) == pytest.approx(float(mask.mean()), abs=0.01)
