"""The toy world's scenes draw every shape in every colour, and the layer metrics measure what they claim (on known
images: a scene's own truth as the ideal result, then spoiled)."""

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from lab.metrics import fringe_fraction, layer_fidelity, psnr, ssim, toy_metrics
from lab.testbed import PAIR_COLOURS
from lab.world import (
    BACKGROUNDS,
    KEYS,
    PALETTE,
    SHAPES,
    SIZE,
    background_image,
    classify_colours,
    foreign_fraction,
    label_fraction,
    make_world_scene,
    shape_mask,
)

KEY_GREEN = KEYS["green"]


def one_object(seed, shape, colour, background_colour, background_kind="solid"):
    return make_world_scene(seed, shapes=[shape], colours=[colour], background_colour=background_colour,
                            background_kind=background_kind)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_is_drawn_in_every_colour_on_every_background(shape):
    for i, colour in enumerate(PAIR_COLOURS):
        kind = BACKGROUNDS[i % len(BACKGROUNDS)]
        background = PAIR_COLOURS[(i + 1) % len(PAIR_COLOURS)]
        scene = one_object(i, shape, colour, background, kind)
        mask = scene.objects[0].mask
        assert 0.03 < mask.mean() < 0.4
        labels = classify_colours(scene.image)
        assert label_fraction(labels, colour, mask > 0.5) > 0.9
        assert label_fraction(labels, background, mask < 0.01) > 0.4  # the scorer reads the truth right


def test_captions_read_like_prompts():
    assert one_object(0, "star", "red", "blue", "striped").scene_prompt == "a red star on a blue striped background"
    assert one_object(0, "ring", "orange", "green").scene_prompt == "an orange ring on a green background"


def _result_from_scene(scene, background=None, fringe=False):
    """A result whose layers are the scene's truth: the ideal TAUE output (optionally spoiled)."""
    mask = scene.objects[0].mask
    on_key = scene.object_on_key(0, "green")
    alpha = (mask * 255).round().astype(np.uint8)
    colour = on_key.copy()
    if fringe:  # leave the backdrop's green in the edge pixels
        colour[(mask > 0.02) & (mask < 0.98)] = KEY_GREEN
    else:
        colour[:] = scene.image[mask > 0.99][0]
    return SimpleNamespace(
        foreground=Image.fromarray(np.dstack([colour, alpha]), "RGBA"),
        foreground_on_green=Image.fromarray(on_key),
        background=Image.fromarray(scene.background if background is None else background),
        composite=Image.fromarray(scene.image),
        mask=Image.fromarray(((mask > 0.5) * 255).astype(np.uint8), "L"),
    )


def test_ideal_layers_score_perfectly():
    result = _result_from_scene(one_object(11, "square", "red", "blue"))
    fidelity = layer_fidelity(result)
    assert fidelity["psnr_fg"] > 24 and fidelity["ssim_fg"] > 0.9  # only the anti-aliased edge differs
    assert fidelity["psnr_bg"] > 30 and fidelity["ssim_bg"] > 0.99
    toy = toy_metrics(result, "red", "blue")
    assert toy["alpha_iou"] > 0.9 and toy["leakage"] == 0.0 and toy["fringe"] == 0.0
    assert toy["object_colour_in_composite"] > 0.95 and toy["background_colour_in_composite"] > 0.95


def test_foreground_fidelity_compares_only_where_the_layer_is_opaque():
    scene = one_object(11, "star", "red", "blue")
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
    scene = one_object(5, "star", "red", "white")
    result = _result_from_scene(scene)
    result.foreground_on_green = Image.fromarray(scene.image)  # the backdrop came out white, not green
    result.foreground = Image.fromarray(np.dstack([scene.image, np.full((SIZE, SIZE), 255, np.uint8)]), "RGBA")
    assert toy_metrics(result, "red", "white")["alpha_iou"] < 0.4


def test_metrics_catch_leakage_and_fringe():
    scene = one_object(11, "circle", "red", "blue")
    ghost = scene.image.copy()  # the object left in the background layer
    result = _result_from_scene(scene, background=ghost, fringe=True)
    toy = toy_metrics(result, "red", "blue")
    # leakage is the share of the whole background layer in the object's colour: here the ghost's area
    assert toy["leakage"] == pytest.approx(float((scene.objects[0].mask > 0.5).mean()), abs=0.02)
    assert toy["leakage"] > 0.1 and toy["fringe"] > 0.3
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
    for seed in range(3):
        truth = background_image(background, kind, np.random.default_rng(seed))
        assert foreign_fraction(truth, colour, background) == 0.0
    # what a nearest-colour count reads in the truth: colours other than the background's own
    assert max(1 - label_fraction(classify_colours(background_image(background, kind, np.random.default_rng(s))),
                                  background) for s in range(3)) > 0.05
    ghost = background_image(background, kind, np.random.default_rng(0))
    mask = shape_mask("circle", 0.5, 0.5, 0.25, size=SIZE) > 0.5
    ghost[mask] = PALETTE[colour]
    assert foreign_fraction(ghost, colour, background) == pytest.approx(float(mask.mean()), abs=0.01)
