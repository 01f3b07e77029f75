"""The `taue` command: files a person can open, byte-identical for a seed, one-line errors."""

import subprocess
import sys

import pytest

from taue_engine.cli import main

BASE = ["generate", "--foreground", "a red star", "--background", "a blue striped background"]


@pytest.mark.parametrize("extra, flag", [
    (["--steps", "-3"], "--steps"),
    (["--steps", "many"], "--steps"),
    (["--width", "100"], "--width"),
    (["--height", "8"], "--height"),
    (["--layout", "0.5,0.5,1.5,0.2"], "--layout"),
    (["--layout", "0.5,0.5"], "--layout"),
    (["--model", "./does/not/exist"], "--model"),
    (["--set", "crop_ratio=2"], "--set crop_ratio"),
    (["--set", "nonsense=1"], "--set"),
    (["--seed", "-1"], "--seed"),
])
def test_bad_values_exit_with_one_line_naming_the_flag(extra, flag, capsys):
    assert main(BASE + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"taue: error: {flag}"), err


def test_missing_required_flag_is_one_line(capsys):
    assert main(["generate", "--foreground", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--background" in err[0]


def test_cli_writes_openable_files_identical_for_a_seed(tmp_path):
    from PIL import Image

    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        command = [sys.executable, "-m", "taue_engine.cli", *BASE, "--steps", "4", "--width", "64", "--height", "64",
                   "--seed", "11", "--layout", "0.5,0.5,0.5,0.5", "--out", str(out), "--quiet"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        outs.append(out)
    for name in ("foreground", "foreground_on_green", "background", "composite", "mask"):
        first, second = (o / f"{name}.png" for o in outs)
        assert first.read_bytes() == second.read_bytes(), name
        with Image.open(first) as image:
            assert image.size == (64, 64)
    assert (outs[0] / "taue.json").is_file()
