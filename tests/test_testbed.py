"""The testbed: its fixed prompt set covers the palette, and its table and bars read the metrics right."""

import json

import pytest

from taue_engine.cli import main
from taue_engine.testbed import BARS, check_bars, choose_pairs, format_table, prompt_set, run_testbed, summarize
from taue_engine.toy.scenes import BACKGROUNDS, COLOURS, SHAPES


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


def test_summary_and_bars():
    good = {"plain_object_colour_present": 1.0, "plain_background_right": 1.0, "alpha_iou": 0.9,
            "leakage": 0.0, "psnr_fg": 25.0, "ssim_fg": 0.95, "fringe": 0.0}
    bad = dict(good, alpha_iou=0.5, leakage=0.1)
    summary = summarize([good, good, bad])
    assert summary["alpha_iou"]["worst"] == 0.5 and summary["leakage"]["worst"] == 0.1
    failures = check_bars(summary)
    assert any(f.startswith("alpha_iou") for f in failures) and any(f.startswith("leakage") for f in failures)
    assert not check_bars(summarize([good]))
    assert "alpha_iou" in format_table(summary)
    assert {name for name, _, _ in BARS} <= set(summarize([good]))


def test_testbed_runs_end_to_end_on_tiny_random(pipe, config):
    rows, results = run_testbed(pipe, prompt_set(2), config)
    assert len(rows) == 2 and len(results) == 2
    for row in rows:
        for name, _, _ in BARS:
            assert name in row


def test_testbed_command_writes_a_report(tmp_path, capsys):
    out = tmp_path / "bed"
    assert main(["testbed", "--model", "tiny-random", "--pairs", "1", "--steps", "4", "--out", str(out)]) == 0
    report = json.loads((out / "testbed.json").read_text())
    assert len(report["rows"]) == 1 and "psnr_fg" in report["summary"]
    assert (out / "contact_sheet.png").is_file()
    assert "bars" in capsys.readouterr().out


def test_testbed_check_fails_on_missed_bars(tmp_path):
    # random weights draw noise: the bars must be missed, and --check must say so with its exit status
    assert main(["testbed", "--model", "tiny-random", "--pairs", "1", "--steps", "4", "--out", str(tmp_path),
                 "--check"]) == 1


@pytest.mark.parametrize("extra", [["--pairs", "0"], ["--steps", "1"], ["--model", "./missing"]])
def test_testbed_bad_flags(extra, capsys):
    assert main(["testbed", *extra]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
