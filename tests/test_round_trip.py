"""lab/benchmarks/round_trip.py measures the model alone: a small strength returns the truth, a large one repaints it,
and a pair whose run raises counts at 0 dB."""

import pytest

from lab.benchmarks import round_trip

pytestmark = pytest.mark.slow  # a benchmark


def test_a_light_round_trip_keeps_the_object_and_a_heavy_one_does_not():
    result = round_trip.run("toy", 2, [0.1, 0.9], steps=10, guidance=5.0)
    light, heavy = result["strengths"]["0.1"], result["strengths"]["0.9"]
    assert light["failed"] == heavy["failed"] == 0
    # the VAE alone is the ceiling; 1 of 10 steps from the truth stays near it, 9 of 10 do not (toy 2: VAE 37.0 dB,
    # strength 0.1 34.4, strength 0.9 18.5)
    assert result["vae_object"] - 3.5 <= light["object"] <= result["vae_object"] + 0.5, result
    assert light["object"] >= heavy["object"] + 10.0, result
    assert light["scene"] >= heavy["scene"] + 5.0 and light["key"] >= heavy["key"] + 5.0, result
    # the object in its scene, and the two runs against each other over the object: a light trip keeps both
    assert light["in scene"] >= heavy["in scene"] + 5.0 and light["key vs scene"] >= heavy["key vs scene"] + 5.0, result


def test_a_failed_pair_counts_at_zero_db(monkeypatch):
    def fail(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(round_trip.StableDiffusionXLImg2ImgPipeline, "__call__", fail)
    result = round_trip.run("toy", 1, [0.5], steps=4, guidance=5.0)
    assert result["strengths"]["0.5"] == {"object": 0.0, "key": 0.0, "scene": 0.0, "in scene": 0.0,
                                         "key vs scene": 0.0, "failed": 1}


def test_scene_round_trip_keeps_the_colours_at_a_light_strength_and_counts_failures(monkeypatch):
    light = round_trip.run_scenes("toy", [0.1], steps=20, guidance=3.0, seeds=(1,))["0.1"]
    assert light["objects"] == 5 and light["failed"] == 0
    assert light["own_colour"] >= 0.8, light  # the truth's colours survive two steps of twenty

    def fail(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(round_trip.StableDiffusionXLImg2ImgPipeline, "__call__", fail)
    failed = round_trip.run_scenes("toy", [0.5], steps=4, guidance=3.0, seeds=(1,))["0.5"]
    assert failed == {"own_colour": 0.0, "worst": 0.0, "objects": 5, "failed": 2}
