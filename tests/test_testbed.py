"""The testbed: its fixed prompt set covers the palette, and its table and bars read the metrics right."""

import json

import pytest

from lab.testbed import (
    BARS,
    CORNER_BOXES,
    PAIR_COLOURS,
    PSNR_CAP,
    add_method_loss,
    check_bars,
    choose_pairs,
    failed_pairs,
    format_table,
    layout_pairs,
    main,
    oracle_pipeline,
    prompt_set,
    run_testbed,
    summarize,
)
from lab.world import BACKGROUNDS, SHAPES

COLOURS = PAIR_COLOURS


def test_prompt_set_covers_every_shape_colour_and_background():
    pairs = prompt_set()
    assert len(pairs) >= 50 and len({p.seed for p in pairs}) == len(pairs)
    assert {p.shape for p in pairs} == set(SHAPES)
    assert {p.colour for p in pairs} == set(COLOURS)
    assert {p.background_colour for p in pairs} == set(COLOURS)
    assert {p.background_kind for p in pairs} == set(BACKGROUNDS)
    assert all(p.colour != p.background_colour for p in pairs)
    assert prompt_set()[:8] == prompt_set(8)  # the reduced set is the start of the full one
    assert pairs[0].scene_prompt == "a red circle on a orange background".replace("a orange", "an orange")


def test_reduced_sets_still_cover_every_shape_colour_and_kind():
    for count in (6, 7, 8, 12):
        pairs = choose_pairs(count)
        assert len({p.seed for p in pairs}) == count
        assert len({p.shape for p in pairs}) == min(count, len(SHAPES))
        assert len({p.colour for p in pairs}) == min(count, len(COLOURS))
        assert len({p.background_kind for p in pairs}) == min(count, len(BACKGROUNDS))
        assert set(pairs) <= set(prompt_set())
    assert choose_pairs(56) == prompt_set() and len(choose_pairs(60)) == 60


GOOD = {"plain_object_colour_present": 1.0, "plain_background_right": 1.0, "alpha_iou": 0.9, "leakage": 0.0,
        "psnr_fg": 25.0, "ssim_fg": 0.95, "fringe": 0.0, "mask_coverage": 0.95, "mask_size_ok": 1.0}


def test_summary_and_bars():
    bad = dict(GOOD, alpha_iou=0.5, leakage=0.1)
    summary = summarize([GOOD, GOOD, bad])
    assert summary["alpha_iou"]["worst"] == 0.5 and summary["leakage"]["worst"] == 0.1
    failures = check_bars(summary)
    assert any(f.startswith("alpha_iou") for f in failures) and any(f.startswith("leakage") for f in failures)
    assert not check_bars(summarize([GOOD]))
    assert "alpha_iou" in format_table(summary)


def test_a_failed_pair_counts_at_the_worst_value_and_is_printed():
    """Nothing is dropped from a mean: an empty layer's NaN PSNR counts as 0 dB, an empty layer's coverage as 0."""
    empty = dict(GOOD, psnr_fg=float("nan"), mask_coverage=float("nan"), leakage=float("nan"))
    rows = [GOOD, empty]
    summary = summarize(rows)
    assert summary["psnr_fg"] == {"mean": 12.5, "worst": 0.0, "n": 2, "failed": 1}
    assert summary["mask_coverage"]["mean"] == pytest.approx(0.475)
    assert summary["leakage"]["worst"] == 1.0  # lower is better: its worst is 1
    assert failed_pairs(rows) == 1 and "failed pairs: 1 of 2" in format_table(summary, rows)
    # an optional metric with no pixels (nothing opaque outside m_obj) is no failure: left out, and said so
    outside = summarize([dict(GOOD, psnr_fg_outside=float("nan")), dict(GOOD, psnr_fg_outside=12.0)])
    assert outside["psnr_fg_outside"] == {"mean": 12.0, "worst": 12.0, "n": 1, "failed": 0}
    assert summarize([dict(GOOD, psnr_fg=float("inf"))])["psnr_fg"]["mean"] == 60.0  # an exact match is capped


def test_a_pair_whose_run_raises_is_a_failure(config):
    class Broken:
        def __call__(self, *args, **kwargs):
            raise RuntimeError("out of memory")

    rows, results = run_testbed(Broken(), prompt_set(2), config, plain=False)
    assert results == [None, None] and all("out of memory" in r["error"] for r in rows)
    summary = summarize(rows)
    assert summary["psnr_fg"]["failed"] == 2 and summary["psnr_fg"]["mean"] == 0.0
    assert summary["alpha_iou"]["mean"] == 0.0 and failed_pairs(rows) == 2


def test_boxed_pairs_cover_every_corner():
    pairs = layout_pairs()
    assert {p.layout for p in pairs} == set(CORNER_BOXES) and all(p.layout for p in pairs)


def test_box_fraction():
    from PIL import Image

    from lab.metrics import box_fraction
    from taue_engine import LayoutBox

    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    layer.paste(Image.new("RGBA", (16, 16), (255, 0, 0, 255)), (0, 0))
    assert box_fraction(layer, LayoutBox(0.25, 0.25, 0.5, 0.5)) == 1.0
    assert box_fraction(layer, LayoutBox(0.0625, 0.25, 0.125, 0.5)) == 0.5
    assert box_fraction(layer, LayoutBox(0.75, 0.75, 0.5, 0.5)) == 0.0


def test_testbed_runs_end_to_end_on_tiny_random(pipe, config):
    pairs = prompt_set(2) + layout_pairs()[:1]
    rows, results = run_testbed(pipe, pairs, config)
    add_method_loss(pipe, pairs, config, [rows])  # the model alone at the cut, pair by pair
    assert len(rows) == 3 and len(results) == 3
    for row in rows:
        assert row["method_loss"] == pytest.approx(row["psnr_fg_model"] - min(row["psnr_fg"], PSNR_CAP))
        assert 0.0 <= row["ring_model"] <= 1.0
    for row in rows:
        for name, _, _ in BARS:
            assert name in row or (name == "box_fraction" and row["layout"] is None), name
    assert "box_fraction" in rows[2]


def test_oracle_pipeline_puts_the_truth_in_place_of_the_mask(pipe, config):
    oracle = oracle_pipeline(pipe)
    result = oracle("a red star", "a blue background", seed=1, width=64, height=64, config=config)
    assert result.metadata["mask_source"] == "oracle"
    assert type(pipe).object_mask is not type(oracle).object_mask and oracle.unet is pipe.unet


@pytest.mark.slow
def test_testbed_command_writes_a_report(tmp_path, capsys):
    out = tmp_path / "bed"
    assert main(["--model", "tiny-random", "--pairs", "1", "--steps", "4", "--out", str(out)]) == 0
    report = json.loads((out / "testbed.json").read_text())
    assert len(report["rows"]) == 1 and "psnr_fg" in report["summary"]
    assert (out / "contact_sheet.png").is_file()
    printed = capsys.readouterr().out
    assert "bars" in printed and "key_alpha_iou" in printed  # the several-object, key and new-background checks
    assert {r["check"] for r in report["scene_rows"]} == {"several", "key", "new_background", "plain"}
    assert report["scene_summary"]["own_colour"]["n"] == 5 * 3  # the 2- and 3-object scenes, 3 seeds each


@pytest.mark.slow
def test_testbed_check_fails_on_missed_bars(tmp_path):
    # random weights draw noise: the bars must be missed, and --check must say so with its exit status
    assert main(["--model", "tiny-random", "--pairs", "1", "--steps", "4", "--out", str(tmp_path),
                 "--check"]) == 1


@pytest.mark.parametrize("extra", [["--pairs", "0"], ["--steps", "1"], ["--model", "./missing"]])
def test_testbed_bad_flags(extra, capsys):
    assert main(extra) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
