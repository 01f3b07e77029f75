"""What phase 1 found, told to the user: a key backdrop that did not form, a mask implausibly large or small, or
one that had to drop one of its signals; each one line in the result's warnings, printed by the CLI."""

import json

import numpy as np
import pytest

from taue_engine.mask_checks import MASK_FRACTION_RANGE, MIN_BACKDROP, phase_one_warnings

GOOD = {"prompt": "a red circle", "mask_source": "key+attention", "mask_fraction": 0.2, "backdrop_fraction": 1.0}


@pytest.mark.parametrize("change, words", [
    ({"backdrop_fraction": MIN_BACKDROP - 0.01}, "the key backdrop did not form (only 49%"),
    ({"mask_fraction": MASK_FRACTION_RANGE[1] + 0.05}, "its mask covers 85% of the picture"),
    ({"mask_fraction": MASK_FRACTION_RANGE[0] / 2}, "its mask covers only 0.10% of the picture"),
    ({"mask_source": "key (attention dropped)"}, "its mask is the key signal alone"),
    ({"mask_source": "attention (key dropped)"}, "its mask is the attention alone"),
])
def test_each_finding_is_one_line_that_says_what_to_try(change, words):
    assert phase_one_warnings([GOOD]) == []
    [line] = phase_one_warnings([{**GOOD, **change}])
    assert line.startswith("the object ('a red circle'): ") and words in line and ("try" in line or "name" in line)
    several = phase_one_warnings([GOOD, {**GOOD, "prompt": "a blue star", **change}])
    assert len(several) == 1 and several[0].startswith("object 2 ('a blue star'): ")


def test_a_backdrop_painted_in_another_key_is_keyed_as_painted_and_said(toy):
    """The toy, asked for a magenta key behind a green object, paints blue for seed 2: the mask and the keying read
    blue (the layer is the green circle), and the result says so."""
    assert phase_one_warnings([{**GOOD, "key": "magenta"}], "magenta") == []
    [line] = phase_one_warnings([{**GOOD, "key": "blue"}], "magenta")
    assert "asked for a magenta backdrop, the model painted blue" in line and "ask for the blue key" in line
    config = toy.default_config.replace(key_color="magenta")
    result = toy("a green circle", "a white background", seed=2, config=config)
    entry = result.metadata["objects"][0]
    assert entry["key"] == "blue" and entry["backdrop_fraction"] > MIN_BACKDROP
    assert any("the model painted blue" in w for w in result.metadata["warnings"])
    from lab.world import classify_colours, colour_names

    alpha = np.asarray(result.foreground)[..., 3] > 127  # the testbed's alpha IoU against the green drawn
    green = classify_colours(np.asarray(result.foreground_on_green)) == colour_names().index("green")
    assert (alpha & green).sum() / (alpha | green).sum() > 0.85


def test_a_model_that_paints_no_backdrop_is_told_in_the_result_and_on_the_cli(pipe, tmp_path, capsys):
    """tiny-random's random weights paint no key backdrop: its result says so, and the CLI prints it, --quiet too."""
    from taue_engine.cli import main

    result = pipe("a red circle", "a blue background", seed=1, width=64, height=64,
                  config=pipe.default_config.replace(num_inference_steps=2))
    assert result.metadata["objects"][0]["backdrop_fraction"] < MIN_BACKDROP
    assert any("did not form" in w for w in result.metadata["warnings"])
    code = main(["generate", "--model", "tiny-random", "--foreground", "a red circle", "--background", "a blue one",
                 "--steps", "2", "--width", "64", "--height", "64", "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 0
    printed = [line for line in capsys.readouterr().err.splitlines() if line.startswith("taue: warning:")]
    recorded = json.loads((tmp_path / "out" / "taue.json").read_text())["warnings"]
    assert recorded and printed == [f"taue: warning: {w}" for w in recorded]
