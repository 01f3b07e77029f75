"""Words a model publishes, and the one-line warning for the others."""

from pathlib import Path

from taue_engine.models.vocabulary import model_words, unknown_words, unknown_words_warning

TOY = Path(__file__).resolve().parents[1] / "taue_engine" / "toy" / "model"


def test_the_toy_publishes_the_words_of_its_captions():
    words = model_words(TOY)
    assert {"red", "star", "striped", "background", "on", "a"} <= words and "bicycle" not in words


def test_unknown_words_in_first_seen_order_once_each():
    known = frozenset("a red star on blue background".split())
    assert unknown_words(known, ["a red vintage bicycle", None, "a Vintage street, at dusk"]) == [
        "vintage", "bicycle", "street", "at", "dusk"]
    assert unknown_words(known, ["a red star", "a blue background"]) == []
    assert unknown_words(None, ["anything at all"]) == []  # SDXL publishes no vocabulary: no warning


def test_the_warning_is_one_line_that_names_the_words_and_the_way_out():
    line = unknown_words_warning("toy", ["vintage", "bicycle"])
    assert "\n" not in line and "vintage, bicycle" in line and "stabilityai/stable-diffusion-xl-base-1.0" in line
    assert unknown_words_warning("toy", []) is None
    many = unknown_words_warning("toy", [f"w{i}" for i in range(20)])
    assert "and 8 more" in many
