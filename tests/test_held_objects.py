"""benchmarks/held_objects.py composes a two-object job's kept objects again one by one, twice or both
(Transplant.objects_at)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from taue_engine.testbed import object_request

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from held_objects import shares  # noqa: E402


def test_subsets_hold_the_chosen_objects_and_nothing_else(toy):
    config = toy.default_config.replace(num_inference_steps=8)
    made = toy(objects=object_request(2), background_prompt="a white background", seed=1, config=config)
    first, twice, both = (made.transplant.objects_at(i) for i in ([0], [0, 0], [0, 1]))
    assert first.prompts == [made.transplant.prompts[0]] and twice.prompts == [made.transplant.prompts[0]] * 2
    assert torch.equal(twice.seedlings[1], made.transplant.seedlings[0])
    with pytest.raises(ValueError, match="choose objects among 0..1"):
        made.transplant.objects_at([2])
    held = {}
    for name, kept in (("first", first), ("twice", twice), ("both", both)):
        result = toy.new_background(kept, "a white background", seed=1, config=config)
        own, other, held[name] = shares(result, "white")
        assert 0.0 <= own <= 1.0 and other.split()[-1].replace(".", "").isdigit()
    # the same object twice holds exactly its own cells; the second object adds its own
    assert held["twice"] == held["first"] < held["both"]
    union = np.maximum(*(np.asarray(o.mask) for o in made.objects)) > 127
    assert abs(held["both"] - union.mean()) < 0.05
