"""Several objects and new backgrounds on the trained toy model, where every colour can be read back.

Bars of issue 7 that the toy can show: each object layer holds its own colour and not the other objects' (attribute
leakage under 5% of its mask), the background layer holds none of them, and a new background keeps the object
layers identical while the background follows the new prompt.
"""

import numpy as np
import pytest

from lab.testbed import OBJECT_SCENES, OBJECT_SEEDS, object_request
from lab.world import classify_colours, colour_names

pytestmark = pytest.mark.slow  # the toy model on several-object scenes

SCENES, SEEDS = OBJECT_SCENES, OBJECT_SEEDS
NAMES = colour_names()


@pytest.fixture(scope="module")
def toy():
    from taue_engine import TAUEPipeline

    pipe = TAUEPipeline.from_pretrained("taue_engine/toy/model", device="cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def scenes(toy):
    runs = {}
    for count in SCENES:
        for seed in SEEDS:
            runs[count, seed] = toy(objects=object_request(count), background_prompt="a white background", seed=seed)
    return runs


def colour_fractions(layer, colours):
    """Of the layer's opaque pixels: the share of each named colour."""
    pixels = np.asarray(layer)
    opaque = pixels[..., 3] > 127
    labels = classify_colours(pixels[..., :3])[opaque]
    return {c: float((labels == NAMES.index(c)).mean()) if opaque.any() else 0.0 for c in colours}


def test_each_object_layer_holds_its_own_colour_and_not_the_others(scenes):
    own = []
    for (count, seed), result in scenes.items():
        colours = [c for _, c, _ in SCENES[count]]
        for obj, colour in zip(result.objects, colours):
            shares = colour_fractions(obj.layer, colours)
            others = sum(v for c, v in shares.items() if c != colour)
            assert others < 0.05, f"{count} objects, seed {seed}: {obj.prompt} carries {others:.1%} of other objects"
            own.append(shares[colour])
    assert np.mean(own) >= 0.8, f"object layers hold their own colour on {np.mean(own):.1%} of their pixels"


def test_the_background_layer_holds_none_of_the_objects(scenes):
    for (count, seed), result in scenes.items():
        object_colours = [NAMES.index(c) for _, c, _ in SCENES[count]]
        union = np.asarray(result.mask) > 127
        labels = classify_colours(np.asarray(result.background))
        leaked = float(np.isin(labels[union], object_colours).mean())
        assert leaked < 0.05, f"{count} objects, seed {seed}: {leaked:.1%} of the objects' area keeps their colours"


@pytest.mark.parametrize("count", [1, 2])
def test_a_new_background_keeps_the_objects_and_follows_the_new_prompt(toy, scenes, count):
    """The background layer follows the new prompt with one object and with two; the composite does with one (with
    two objects toy 2's new composite can keep another colour: README, "The testbed")."""
    result = toy("a red circle", "a white background", seed=1) if count == 1 else scenes[2, 1]
    other = toy.new_background(result.transplant, "a purple background", seed=4)
    for before, after in zip(result.objects, other.objects):
        assert np.array_equal(np.asarray(before.layer), np.asarray(after.layer))
    outside = np.asarray(other.mask) < 128
    purple = NAMES.index("purple")
    for name in ("background", "composite") if count == 1 else ("background",):
        labels = classify_colours(np.asarray(getattr(other, name).convert("RGB")))
        assert (labels[outside] == purple).mean() > 0.5, f"the new {name} is not purple"
    before = classify_colours(np.asarray(result.background))
    assert (before[outside] == purple).mean() < 0.1  # it was white


def test_object_layers_match_the_composite_at_least_as_well_as_they_do_today(scenes):
    """PSNR_fg of each object layer against the composite over the pixels a person sees of it: opaque in the layer
    and not under a later (front) object's opaque pixels; the region does not depend on the method's own mask, which
    an earlier version of this test read (a method that shrank its mask scored better). Issue 7's bar is the
    single-object bar (20 dB), which the toy misses alone too (README, "The testbed"); held here at today's level
    so that it cannot get worse unseen. Toy 2 (issue 14): 12.29 dB over the 6 layers of the two-object scenes, 12.70
    over the 9 of the three-object scenes (toy 1: 13.0 and 8.3: it never saw three objects)."""
    from lab.metrics import psnr

    values = {2: [], 3: []}
    for (count, _), result in scenes.items():
        composite = np.asarray(result.composite, dtype=np.float32) / 255
        layers = [np.asarray(obj.layer, dtype=np.float32) / 255 for obj in result.objects]
        for n, layer in enumerate(layers):
            seen = layer[..., 3] > 0.5
            for front in layers[n + 1:]:
                seen &= front[..., 3] <= 0.5
            values[count].append(psnr(layer[..., :3], composite, seen) if seen.any() else 0.0)
    assert len(values[2]) == 6 and np.mean(values[2]) >= 12.0, values
    assert len(values[3]) == 9 and np.mean(values[3]) >= 12.0, values


@pytest.mark.parametrize("seed", [3, 4])
def test_a_green_object_on_a_blue_key_is_keyed_out(toy, seed):
    """Issue 14's key-colour case on a trained model: toy 2 knows green objects and saw them alone on the blue and
    magenta keys. With the blue key the backdrop comes out blue and the keying cuts the green circle from it
    (alpha IoU 0.943 and 0.950 on seeds 3 and 4, with the toy's guidance 3; seeds 1 and 2 paint a purple backdrop
    there, keyed as painted at 0.988 and 0.920, seeds 5-8 blue). What it does not do (README, "The testbed"): its
    backdrop follows its own prior more than the injected key latent, so a yellow circle with the blue key still
    gets a green backdrop."""
    config = toy.default_config.replace(key_color="blue")
    result = toy("a green circle", "a white background", seed=seed, config=config)
    on_key = np.asarray(result.foreground_on_green, dtype=np.float32) / 255
    alpha = np.asarray(result.foreground)[..., 3] > 127
    backdrop = on_key[~alpha]
    assert np.median(backdrop[:, 2] - np.maximum(backdrop[:, 0], backdrop[:, 1])) > 0.4  # blue, not green
    drawn = classify_colours(np.asarray(result.foreground_on_green)) == NAMES.index("green")
    iou = (drawn & alpha).sum() / (drawn | alpha).sum()
    assert iou >= 0.8, iou
    assert result.metadata["key_color"][2] > 180  # the keying measured a blue key
