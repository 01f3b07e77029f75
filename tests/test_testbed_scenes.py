"""The testbed's checks beyond one object (taue_engine/testbed_scenes.py), on results whose truth is made here."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from lab.testbed_scenes import SCENE_BARS, object_rows, seen_regions, summarize_scenes
from lab.world import PALETTE

SIDE = 32


def layer(colour, box):
    """An RGBA layer: a square of `colour` at box (x0, y0, x1, y1), transparent elsewhere."""
    pixels = np.zeros((SIDE, SIDE, 4), np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1, :3] = PALETTE[colour]
    pixels[y0:y1, x0:x1, 3] = 255
    return Image.fromarray(pixels, "RGBA")


def result_of(layers, background="white", composite_colours=None):
    """A two-object result: the layers over a plain background as its composite (or the composite painted in
    `composite_colours` where each layer is), their union as the mask."""
    canvas = Image.new("RGBA", (SIDE, SIDE), PALETTE[background] + (255,))
    composite = canvas.copy()
    for n, part in enumerate(layers):
        shown = part if composite_colours is None else layer(composite_colours[n], part.getbbox())
        composite = Image.alpha_composite(composite, shown)
    union = np.zeros((SIDE, SIDE), bool)
    for part in layers:
        union |= np.asarray(part)[..., 3] > 127
    objects = [SimpleNamespace(prompt=f"object {n}", layer=part) for n, part in enumerate(layers)]
    return SimpleNamespace(objects=objects, composite=composite.convert("RGB"), background=canvas.convert("RGB"),
                           mask=Image.fromarray(union.astype(np.uint8) * 255))


def test_object_rows_read_each_layer_by_its_colour():
    red, yellow = layer("red", (2, 2, 14, 14)), layer("yellow", (10, 10, 26, 26))
    right = object_rows(result_of([red, yellow]), ["red", "yellow"])
    assert [r["own_colour"] for r in right] == [1.0, 1.0] and [r["others_colour"] for r in right] == [0.0, 0.0]
    assert all(r["composite_colour"] == 1.0 and r["psnr_fg"] >= 40 and r["background_leak"] == 0.0 for r in right)
    swapped = object_rows(result_of([red, yellow]), ["yellow", "red"])
    assert [r["own_colour"] for r in swapped] == [0.0, 0.0] and [r["others_colour"] for r in swapped] == [1.0, 1.0]
    repainted = object_rows(result_of([red, yellow], composite_colours=["blue", "yellow"]), ["red", "yellow"])
    assert repainted[0]["composite_colour"] == 0.0 and repainted[0]["psnr_fg"] < 10


def test_a_front_object_hides_what_is_behind_it():
    back, front = layer("red", (0, 0, 20, 20)), layer("yellow", (10, 10, 30, 30))
    seen_back, seen_front = seen_regions(SimpleNamespace(objects=[SimpleNamespace(layer=back),
                                                                  SimpleNamespace(layer=front)]))
    assert seen_back.sum() == 400 - 100 and seen_front.sum() == 400


def test_a_failed_job_counts_at_the_worst_value():
    rows = [{"own_colour": 1.0, "others_colour": 0.0}, {"own_colour": math.nan, "others_colour": math.nan}]
    summary = summarize_scenes(rows)
    assert summary["own_colour"]["mean"] == 0.5 and summary["own_colour"]["failed"] == 1
    assert summary["others_colour"]["worst"] == 1.0 and not summary["others_colour"]["met"]
    assert {b.name for b in SCENE_BARS} >= {"key_alpha_iou", "new_background_colour", "plain_two_objects_present"}


@pytest.mark.parametrize("value, met", [(0.86, True), (0.84, False)])
def test_a_bar_on_the_mean_is_met_by_the_mean(value, met):
    assert summarize_scenes([{"key_alpha_iou": value}])["key_alpha_iou"]["met"] is met
