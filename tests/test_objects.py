"""Several objects per scene, kept objects, new backgrounds, re-layout and key colours, on tiny-random (mechanics).

The bars on real pictures (colours per layer, leakage) are in test_objects_toy.py, on the trained toy model.
"""

import numpy as np
import pytest
import torch
from PIL import Image

from taue_engine import LayoutBox, TAUEConfig
from taue_engine.objects import default_layout, scene_objects
from taue_engine.transplant import Transplant, move_layer

from .conftest import SIZE, STEPS

LEFT = {"cx": 0.3, "cy": 0.5, "w": 0.45, "h": 0.6}
RIGHT = {"cx": 0.65, "cy": 0.5, "w": 0.45, "h": 0.6}  # overlaps LEFT between x = 0.425 and 0.525


@pytest.fixture(scope="module")
def two_objects(pipe, config):
    ticks = []
    result = pipe(objects=[{"prompt": "a red star", "layout": LEFT}, {"prompt": "a yellow circle", "layout": RIGHT}],
                  background_prompt="a blue striped background", seed=5, width=SIZE, height=SIZE, config=config,
                  progress_callback=ticks.append)
    return result, ticks


def as_array(image):
    return np.asarray(image, dtype=np.float32) / 255.0


def test_each_object_has_its_own_layer_mask_and_foreground_run(two_objects):
    result, ticks = two_objects
    assert [obj.prompt for obj in result.objects] == ["a red star", "a yellow circle"]
    for obj in result.objects:
        assert obj.layer.mode == "RGBA" and obj.layer.size == (SIZE, SIZE)
        assert obj.mask.mode == "L" and obj.mask.size == (SIZE, SIZE)
    seedlings = result.latents["seedlings"]
    assert len(seedlings) == 2 and not torch.equal(seedlings[0], seedlings[1])
    # one foreground phase per object, then composite and background: 4 runs of STEPS steps
    assert [t.overall_step for t in ticks] == list(range(1, 4 * STEPS + 1))
    assert {t.overall_total for t in ticks} == {4 * STEPS}
    assert [t.object for t in ticks[: 2 * STEPS]] == [1] * STEPS + [2] * STEPS
    assert [t.phase for t in ticks[2 * STEPS :: STEPS]] == ["composite", "background"]
    objects = result.metadata["objects"]
    assert [o["prompt"] for o in objects] == ["a red star", "a yellow circle"]
    assert objects[0]["layout"] == LEFT and all(o["source"] == "generated" for o in objects)


def test_later_objects_are_in_front_and_masks_partition_the_union(two_objects):
    result, _ = two_objects
    masks = [as_array(obj.mask) for obj in result.objects]
    union = as_array(result.mask)
    assert np.abs(masks[0] + masks[1] - union).max() < 2 / 255  # visible parts add up to the union
    assert np.minimum(masks[0], masks[1]).max() <= 0.5 + 1 / 255  # no pixel belongs to both (edges are soft)
    fine = [m.numpy() > 0.5 for m in result.transplant.fine_masks]  # each object's m_obj, image resolution
    overlap = fine[0] & fine[1]
    assert overlap.any(), "the boxes overlap: so must the masks"
    assert (masks[1][overlap] > 0.5).all() and (masks[0][overlap] < 0.5).all()
    # the flattened foreground is the object layers stacked in request order
    stacked = Image.alpha_composite(result.objects[0].layer, result.objects[1].layer)
    assert np.array_equal(np.asarray(stacked), np.asarray(result.foreground))


def test_a_list_of_one_object_is_the_single_object_job(pipe, config):
    box = {"cx": 0.4, "cy": 0.5, "w": 0.5, "h": 0.6}
    single = pipe("a red star", "a blue striped background", seed=3, width=SIZE, height=SIZE, layout=box,
                  config=config)
    listed = pipe(objects=[{"prompt": "a red star", "layout": box}], background_prompt="a blue striped background",
                  seed=3, width=SIZE, height=SIZE, config=config)
    for name in ("foreground", "background", "composite", "mask"):
        assert np.array_equal(np.asarray(getattr(single, name)), np.asarray(getattr(listed, name))), name
    assert np.array_equal(np.asarray(single.objects[0].layer), np.asarray(single.foreground))


def test_saved_files_and_psd_hold_one_layer_and_mask_per_object(two_objects, tmp_path):
    from psd_tools import PSDImage

    result, _ = two_objects
    written = result.save(tmp_path)
    for name in ("object-1", "object-2", "mask-1", "mask-2", "transplant", "psd", "ora"):
        assert written[name].exists(), name
    psd = PSDImage.open(written["psd"])
    group = next(iter(psd))
    names = [layer.name for layer in group]
    assert names == ["Background", "a red star", "a yellow circle", "Composite", "Mask: a red star",
                     "Mask: a yellow circle"]
    for layer in group:
        if layer.name in ("a red star", "a yellow circle"):
            assert layer.visible and layer.mask is not None  # the object's alpha as an editable mask
    assert not any(layer.visible for layer in group if layer.name.startswith("Mask:") or layer.name == "Composite")


def test_new_background_with_the_same_seed_and_prompt_gives_the_same_scene(pipe, config, two_objects, tmp_path):
    result, _ = two_objects
    again = pipe.new_background(result.transplant, "a blue striped background", seed=5, config=config)
    assert np.array_equal(np.asarray(again.composite), np.asarray(result.composite))
    assert np.array_equal(np.asarray(again.background), np.asarray(result.background))
    # and from the files a job leaves
    result.save(tmp_path)
    loaded = Transplant.load(tmp_path)
    assert loaded.prompts == ["a red star", "a yellow circle"]
    from_disk = pipe.new_background(loaded, "a blue striped background", seed=5, config=config)
    assert np.array_equal(np.asarray(from_disk.composite), np.asarray(result.composite))


def test_new_background_keeps_the_object_layers_and_changes_the_scene(pipe, config, two_objects):
    result, _ = two_objects
    ticks = []
    other = pipe.new_background(result.transplant, "an orange checkered background", seed=9, config=config,
                                progress_callback=ticks.append)
    for before, after in zip(result.objects, other.objects):
        assert np.array_equal(np.asarray(before.layer), np.asarray(after.layer))
        assert np.array_equal(np.asarray(before.mask), np.asarray(after.mask))
    assert not np.array_equal(np.asarray(other.background), np.asarray(result.background))
    assert other.metadata["prompts"]["background"] == "an orange checkered background"
    assert [t.phase for t in ticks[::STEPS]] == ["composite", "background"] and ticks[-1].overall_total == 2 * STEPS


def test_new_background_refuses_other_steps_and_other_sizes(pipe, two_objects):
    result, _ = two_objects
    with pytest.raises(ValueError, match="num_inference_steps=10"):
        pipe.new_background(result.transplant, "a white background", config=TAUEConfig(num_inference_steps=12))
    with pytest.raises(ValueError, match="background_prompt"):
        pipe.new_background(result.transplant, " ", config=TAUEConfig(num_inference_steps=STEPS))


def test_an_object_layer_the_user_brings_is_encoded_and_kept_as_it_is(pipe, config):
    layer = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    layer.paste(Image.new("RGBA", (48, 40), (220, 30, 30, 255)), (20, 50))
    brought = Transplant.from_layers([layer], ["a red square"], latent_size=(SIZE // 8, SIZE // 8),
                                     num_inference_steps=STEPS, crop_step=config.crop_step, model=pipe.model_name)
    assert brought.masks[0].sum() > 0 and brought.sources == ["layer"]
    result = pipe.new_background(brought, "a white background", seed=1, config=config)
    assert np.array_equal(np.asarray(result.objects[0].layer), np.asarray(layer))
    assert result.metadata["objects"][0]["source"] == "layer"
    assert result.transplant.seedlings[0] is not None  # encoded once; kept for the next background
    with pytest.raises(ValueError, match="transparent"):
        Transplant.from_layers([Image.new("RGBA", (SIZE, SIZE))], ["nothing"], latent_size=(16, 16),
                               num_inference_steps=STEPS, crop_step=5)


def test_relayout_moves_and_scales_the_object_layer(pipe, config, two_objects):
    result, _ = two_objects
    box = LayoutBox(0.5, 0.25, 0.3, 0.3)
    moved = result.transplant.moved(0, box, latent_size=(SIZE // 8, SIZE // 8))
    assert moved.sources == ["moved", "generated"] and moved.seedlings[0] is None
    alpha = np.asarray(moved.layers[0])[..., 3] > 128
    ys, xs = np.nonzero(alpha)
    assert abs(xs.mean() / SIZE - 0.5) < 0.08 and abs(ys.mean() / SIZE - 0.25) < 0.08
    assert xs.max() - xs.min() <= 0.3 * SIZE + 2 and ys.max() - ys.min() <= 0.3 * SIZE + 2
    scene = pipe.new_background(moved, "a blue striped background", seed=5, config=config)
    assert np.array_equal(np.asarray(scene.objects[0].layer), np.asarray(moved.layers[0]))
    assert np.array_equal(np.asarray(scene.objects[1].layer), np.asarray(result.objects[1].layer))
    with pytest.raises(ValueError, match="no object 3"):
        result.transplant.moved(2, box, latent_size=(16, 16))


def test_move_layer_keeps_the_aspect_and_refuses_an_empty_layer():
    layer = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    layer.paste(Image.new("RGBA", (40, 20), (255, 0, 0, 255)), (10, 10))
    moved = move_layer(layer, LayoutBox(0.5, 0.5, 0.8, 0.8))
    left, top, right, bottom = moved.getchannel("A").getbbox()
    assert (right - left, bottom - top) == (80, 40) and (left, top) == (10, 30)
    with pytest.raises(ValueError, match="transparent"):
        move_layer(Image.new("RGBA", (10, 10)), LayoutBox(0.5, 0.5, 0.5, 0.5))


def test_objects_are_checked_and_placed_side_by_side_by_default():
    scene = scene_objects([{"prompt": "a"}, "b", {"prompt": "c", "layout": [0.5, 0.5, 0.2, 0.2]}])
    assert [o.layout for o in scene[:2]] == [default_layout(0, 3), default_layout(1, 3)]
    assert scene[0].layout.cx < scene[1].layout.cx and scene[2].layout == LayoutBox(0.5, 0.5, 0.2, 0.2)
    assert scene_objects(None, "one")[0].layout is None  # one object: TKG-DM's centred Gaussian
    for objects, message in (([], "1..8"), ([{"prompt": ""}], "object 1: prompt"),
                             ([{"prompt": "a", "size": 3}], "unknown field"),
                             ([{"prompt": "a", "layout": {"cx": 2, "cy": 0.5, "w": 0.1, "h": 0.1}}], "object 1"),
                             ([{"prompt": "a"}] * 9, "1..8")):
        with pytest.raises(ValueError, match=message):
            scene_objects(objects)
    with pytest.raises(ValueError, match="not both"):
        scene_objects([{"prompt": "a"}], foreground_prompt="b")


def test_every_key_injects_the_vaes_own_step_from_grey_to_it(pipe):
    from taue_engine.vae_io import CALIBRATION_BORDER as B
    from taue_engine.vae_io import CALIBRATION_CELLS

    side = CALIBRATION_CELLS * pipe.vae_scale_factor  # E(colour): the inner cells of a solid image
    encode = lambda rgb: pipe.encode_pixels(Image.new("RGB", (side, side), rgb))[0, :, B:-B, B:-B].mean(dim=(1, 2))  # noqa: E731
    grey = encode((128, 128, 128))
    for key, rgb in (("green", (0, 255, 0)), ("blue", (0, 0, 255)), ("magenta", (255, 0, 255))):
        injected = torch.tensor(pipe.key_latent(TAUEConfig(key_color=key)))
        assert torch.allclose(injected, encode(rgb) - grey, atol=1e-5)
    given = TAUEConfig(green_latent=(0.0, 2.0, 2.0, 0.0))  # a green_latent given is injected as it is for green
    assert pipe.key_latent(given) == given.green_latent
    assert pipe.key_latent(given.replace(key_color="blue")) == pipe.key_latent(TAUEConfig(key_color="blue"))
    with pytest.raises(ValueError, match="key_color must be one of green, blue, magenta"):
        TAUEConfig(key_color="cyan")


def test_a_run_with_a_blue_key_records_it(pipe, config):
    result = pipe("a green apple", "a table", seed=1, width=SIZE, height=SIZE, config=config.replace(key_color="blue"))
    assert result.metadata["config"]["key_color"] == "blue"
    assert result.transplant.key_color == "blue"
