"""The testbed on the committed toy model, in CI: `python -m lab.testbed --pairs 14 --oracle-mask` (50 steps, plain
generations included: a quarter of the fixed set with every shape, colour, background colour and background kind in
it, every colour twice), the boxed jobs (single objects in the corners, the two-object scene), and the same pairs once
more with the truth in place of m_obj.

Asserted: the bars that are met, nothing dropped from a mean, and PSNR_fg within 1.5 dB of the oracle mask's. The
bars not met yet (docs/testbed.md says why, with the measurement that separates the model from the method) are held
at today's level, so a change that makes the layers fit worse fails here; they are to be tightened to the bars
themselves when they are met.
"""

import json

import pytest

from lab.testbed import BARS, main

pytestmark = pytest.mark.slow  # the toy testbed

# metric -> today's level, just under the mean of these 14 pairs (the toy's defaults, its folder setting only crop
# ratio 0.65 and guidance 3 in all three phases): PSNR_fg 15.26 dB (56 pairs: 16.01; the 20 dB bar is missed:
# docs/testbed.md). The method's loss against the model alone (0.59 dB; 56 pairs: 0.06), the composite's foreign
# ring around the object (0.055; 56 pairs: 0.105), alpha IoU (0.932), mask coverage (0.946), leakage (0.003,
# counted where the background's truth has none of the object's colour), plain object colour (0.929) and plain
# background (0.857) meet their bars on these pairs and are asserted as bars
PAIRS = 14
NOT_MET_YET = {"psnr_fg": 15.0}
ORACLE_GAP_DB = 1.5
# the several-object and plain two-object checks missed, held just under the means of the same run (these scenes do
# not depend on the pair count): PSNR_fg 14.41 dB, composite colour 0.712, plain two-object prompts 0.625 (20 of
# 32; docs/testbed.md); a green object on the other keys (0.931) and a new background's colour (0.969) meet their
# bars and are asserted met, as are the others
SCENES_NOT_MET_YET = {"psnr_fg": 14.2, "composite_colour": 0.68, "plain_two_objects_present": 0.5}


def test_toy_testbed_holds_the_bars(tmp_path, capsys):
    code = main(["--pairs", str(PAIRS), "--oracle-mask", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((tmp_path / "testbed.json").read_text())
    summary = dict(report["summary"])
    boxed = report["layout_rows"] + report["object_rows"]
    assert len(report["rows"]) == PAIRS and len(report["oracle_rows"]) == PAIRS and len(boxed) == 8 + 6
    assert "failed pairs:" in printed and all(v["n"] == PAIRS for k, v in summary.items()
                                                if k not in ("psnr_fg_outside", "box_fraction"))
    warned = [(r["foreground"], r["warnings"]) for r in report["rows"] if r["warnings"]]
    assert not warned, warned  # the testbed's prompts are words the toy knows: phase 1 finds nothing to warn of
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
            met = mean <= threshold if direction == "<=" else mean < threshold
            assert met, f"{name}: {mean:.3f}, bar {direction} {threshold}\n{printed}"
    for name, check in report["scene_summary"].items():
        assert check["failed"] == 0, f"scenes, {name}: {check['failed']} failed\n{printed}"
        if name in SCENES_NOT_MET_YET:
            assert check["mean"] >= SCENES_NOT_MET_YET[name], f"scenes, {name} moved to {check['mean']:.3f}\n{printed}"
        else:
            assert check["met"], f"scenes, {name}: {check['mean']:.3f} misses its bar\n{printed}"
    oracle = report["oracle_summary"]
    assert summary["psnr_fg"]["mean"] >= oracle["psnr_fg"]["mean"] - ORACLE_GAP_DB, printed
    assert (tmp_path / "contact_sheet.png").is_file()
