"""The bars of issue 3, asserted on the committed toy model: TAUE's layers fit together where the truth is known.

A reduced run of `taue testbed` (8 pairs spread over the fixed set, 50 steps, plain generations included); the full
56-pair table is in the README. A miss prints the table, so the failing metric is in the log.
"""

from taue_engine.cli import main


def test_toy_testbed_meets_the_bars(tmp_path, capsys):
    code = main(["testbed", "--pairs", "8", "--check", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "bars: all met" in printed
    assert (tmp_path / "contact_sheet.png").is_file()
