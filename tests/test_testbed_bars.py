"""The testbed on the committed toy model, in CI: `python -m lab.testbed --oracle-mask` over all 56 pairs (50 steps,
plain generations included), the boxed jobs (single objects in the corners, the two-object scene), and the same pairs
once more with the truth in place of m_obj.

Asserted: the bars that are met (issues 3, 13 and 14), nothing dropped from a mean, and PSNR_fg within
1.5 dB of the oracle mask's. The bars not met yet (README, "The testbed", says why, with the measurement that
separates the model from the method) are held at today's level, so a change that makes the layers fit worse fails
here; they are to be tightened to the bars themselves when they are met.
"""

import json

import pytest

from lab.testbed import BARS, main

pytestmark = pytest.mark.slow  # the toy testbed

# metric -> today's level, just under the 56-pair mean measured with this command on toy 2 (its settings: crop ratio
# 0.65, high-pass 0.05, composite guidance 3): PSNR_fg 13.61 dB (the 20 dB bar is missed: README, "The testbed");
# alpha IoU (0.925), mask coverage (0.913) and leakage (0.004, counted where the background's truth has none of the
# object's colour) meet their bars and are asserted as bars
NOT_MET_YET = {"psnr_fg": 13.2}
ORACLE_GAP_DB = 1.5
# the several-object, key-colour, new-background and plain two-object checks missed on toy 2, held just under the
# means of the same run: PSNR_fg 14.03 dB, composite colour 0.737, green object's key alpha IoU 0.569, new
# background's colour 0.492, plain two-object prompts 0.625 (20 of 32; README, "The testbed"); the others are
# asserted met
SCENES_NOT_MET_YET = {"psnr_fg": 13.5, "composite_colour": 0.68, "key_alpha_iou": 0.5, "new_background_colour": 0.45,
                      "plain_two_objects_present": 0.5}


def test_toy_testbed_holds_the_bars(tmp_path, capsys):
    code = main(["--pairs", "56", "--oracle-mask", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((tmp_path / "testbed.json").read_text())
    summary = dict(report["summary"])
    boxed = report["layout_rows"] + report["object_rows"]
    assert len(report["rows"]) == 56 and len(report["oracle_rows"]) == 56 and len(boxed) == 8 + 6
    assert "failed pairs:" in printed and all(v["n"] == 56 for k, v in summary.items()
                                                if k not in ("psnr_fg_outside", "box_fraction"))
    fractions = [r["box_fraction"] for r in boxed]
    summary["box_fraction"] = {"mean": sum(0.0 if f != f else f for f in fractions) / len(fractions)}
    for name, direction, threshold in BARS:
        mean = summary[name]["mean"]
        if name in NOT_MET_YET:  # held at today's level: a floor, or a ceiling where lower is better
            held = mean >= NOT_MET_YET[name] if direction == ">=" else mean <= NOT_MET_YET[name]
            assert held, f"{name} moved to {mean:.3f} (held at {NOT_MET_YET[name]})\n{printed}"
        elif direction == ">=":
            assert mean >= threshold, f"{name}: {mean:.3f}, bar >= {threshold}\n{printed}"
        else:
            assert mean < threshold, f"{name}: {mean:.3f}, bar {direction} {threshold}\n{printed}"
    for name, check in report["scene_summary"].items():
        assert check["failed"] == 0, f"scenes, {name}: {check['failed']} failed\n{printed}"
        if name in SCENES_NOT_MET_YET:
            assert check["mean"] >= SCENES_NOT_MET_YET[name], f"scenes, {name} moved to {check['mean']:.3f}\n{printed}"
        else:
            assert check["met"], f"scenes, {name}: {check['mean']:.3f} misses its bar\n{printed}"
    oracle = report["oracle_summary"]
    assert summary["psnr_fg"]["mean"] >= oracle["psnr_fg"]["mean"] - ORACLE_GAP_DB, printed
    assert (tmp_path / "contact_sheet.png").is_file()
