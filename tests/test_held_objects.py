"""lab/benchmarks/held_objects.py composes a two-object job's kept objects again one by one, twice or both
(Transplant.objects_at)."""

import numpy as np
import pytest
import torch

from lab.benchmarks.held_objects import shares
from lab.testbed import object_request

pytestmark = pytest.mark.slow  # a benchmark


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


def test_off_the_key_holds_the_layers_on_the_scene_colour_with_the_seedlings_own_noise(toy):
    from lab.benchmarks.held_objects import off_the_key

    config = toy.default_config.replace(num_inference_steps=8)
    made = toy(objects=object_request(2), background_prompt="a black background", seed=1, config=config)
    kept = off_the_key(toy, made.transplant, (0, 0, 0))
    assert kept.prompts == made.transplant.prompts and len(kept.seedlings) == len(kept.cleans) == 2
    for k in range(2):
        # the seedling's own noise is kept; its content is the layer over black, with no key green left
        assert torch.allclose(made.transplant.seedlings[k] - made.transplant.cleans[k],
                              kept.seedlings[k] - kept.cleans[k], atol=1e-5)
        assert not torch.allclose(kept.cleans[k], made.transplant.cleans[k], atol=0.1)
        decoded = toy.decode_latent(kept.cleans[k]).numpy()
        outside = np.asarray(made.objects[k].layer.getchannel("A")) == 0
        assert decoded[outside].mean() < 0.15
    result = toy.new_background(kept, "a black background", seed=1, config=config)
    assert result.composite.size == made.composite.size
