import pytest

from taue_engine import LayoutBox, TAUEConfig
from taue_engine.config import field_names


def test_defaults_are_the_papers():
    c = TAUEConfig()
    assert c.num_inference_steps == 50
    assert c.scheduler == "euler"
    assert (c.guidance_foreground, c.guidance_composite, c.guidance_background) == (7.5, 5.0, 5.0)
    assert c.crop_ratio == 0.5 and c.crop_step == 25
    # the paper's t_crop = floor(T (1 - r)), counted down from T: the cut comes after T - t_crop steps
    assert [c.replace(crop_ratio=r).t_crop for r in (0.25, 0.5, 0.75)] == [37, 25, 12]
    assert [c.replace(crop_ratio=r).crop_step for r in (0.25, 0.5, 0.75)] == [13, 25, 38]
    for steps in (4, 10, 50, 51):
        for step in range(1, steps):
            ratio = TAUEConfig.crop_ratio_cutting_after(step, steps)
            assert c.replace(num_inference_steps=steps, crop_ratio=ratio).crop_step == step
    assert c.green_latent == ()  # measured on the model (vae_io.key_latent)
    assert c.highpass is True


def test_every_field_is_documented():
    import inspect

    source = inspect.getsource(TAUEConfig)
    for name in field_names():
        after = source.split(f"    {name}:", 1)[1]
        assert '"""' in after.split("\n", 2)[1], f"{name} has no docstring"


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"num_inference_steps": 1}, "num_inference_steps"),
        ({"num_inference_steps": 2.5}, "num_inference_steps"),
        ({"crop_ratio": 1.0}, "crop_ratio"),
        ({"crop_ratio": 0.0}, "crop_ratio"),
        ({"crop_ratio": 0.999}, "crop_ratio"),
        ({"guidance_foreground": -1}, "guidance_foreground"),
        ({"green_alpha": 1.5}, "green_alpha"),
        ({"green_latent": (0, 0, 0, 0)}, "green_latent"),
        ({"green_latent": (0, float("nan"), 1, 0)}, "green_latent"),
        ({"mask_std": 0}, "mask_std"),
        ({"mask_p_min": 0.8, "mask_p_max": 0.2}, "mask_p_min"),
        ({"tau_bg": 2.5}, "tau_bg"),
        ({"tau_attention": -0.1}, "tau_attention"),
        ({"mask_blur": -1}, "mask_blur"),
        ({"mask_blur": 2}, "mask_blur"),
        ({"hold_dilation": 1.5}, "hold_dilation"),
        ({"hold_fraction": 0}, "hold_fraction"),
        ({"gate_dilation": 3}, "gate_dilation"),
        ({"despill_band": -0.1}, "despill_band"),
        ({"attention_resolutions": (3,)}, "attention_resolutions"),
        ({"shear_blocks": ("sideways",)}, "shear_blocks"),
        ({"highpass": "yes"}, "highpass"),
        ({"highpass_strength": 5}, "highpass_strength"),
        ({"transplant_noise": -1}, "transplant_noise"),
        ({"key_low": 0.7, "key_high": 0.6}, "key_low"),
        ({"despill_strength": 2}, "despill_strength"),
        ({"feather_px": -2}, "feather_px"),
        ({"scheduler": "heun"}, "scheduler"),
        ({"scheduler": "euler_a"}, "scheduler"),
        ({"timestep_spacing": "random"}, "timestep_spacing"),
    ],
)
def test_invalid_values_name_the_field_and_range(changes, field):
    with pytest.raises(ValueError) as info:
        TAUEConfig(**changes)
    message = str(info.value)
    assert message.startswith(field), message
    assert (any(ch.isdigit() for ch in message) or "one of" in message or "subset" in message
            or "true or false" in message)


def test_replace_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown TAUEConfig field"):
        TAUEConfig().replace(tau=1)


def test_round_trip_through_dict():
    c = TAUEConfig(tau_bg=0.4, shear_blocks=("up",))
    assert TAUEConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("text", ["0.5,0.5,0.2", "a,b,c,d", "0.5,0.5,0,0.2", "-0.1,0.5,0.2,0.2", "0.5,1.1,0.2,0.2"])
def test_layout_box_rejects_bad_boxes(text):
    with pytest.raises(ValueError, match="layout"):
        LayoutBox.parse(text)


def test_layout_box_parses():
    assert LayoutBox.parse("0.25, 0.5, 0.3, 0.4") == LayoutBox(0.25, 0.5, 0.3, 0.4)


def test_the_client_names_the_engines_key_colours():
    """The plug-ins embed the client and cannot import the engine, so the client keeps the key colours' names: the
    same names, in the same order (the first is the default)."""
    from taue_client import KEY_COLORS as CLIENT_KEY_COLORS
    from taue_engine.config import KEY_COLORS

    assert CLIENT_KEY_COLORS == tuple(KEY_COLORS)
