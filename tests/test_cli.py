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


def test_too_few_steps_for_the_models_own_crop_ratio_name_steps_and_the_setting(capsys):
    """The toy's taue_config.json sets crop_ratio 0.65: --steps 2 cannot be cut there. The line blames the flag
    given and names the model's setting; it never says --set, which the person did not use."""
    assert main(BASE + ["--steps", "2"]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("taue: error")]
    assert len(err) == 1 and err[0].startswith("taue: error: --steps: with this model's default crop_ratio"), err
    assert "taue_config.json" in err[0] and "more steps" in err[0] and "--set" not in err[0]


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


@pytest.mark.parametrize("argv, flag", [
    (["generate", "--foreground", "a", "--object", "b", "--background", "c"], "give --foreground"),
    (["generate", "--object", "a@0.5,0.5,2,1", "--background", "c"], "--object"),
    (["generate", "--object", "a", "--object", "", "--background", "c"], "--object"),
    (["generate", "--object", "a", "--layout", "0.5,0.5,0.5,0.5", "--background", "c"], "--layout"),
    (["generate", "--foreground", "a", "--background", "c", "--key-color", "cyan"], "argument --key-color"),
    (["background", "--from", "/nowhere", "--background", "c"], "--from"),
    (["background", "--layer", "/nowhere.png", "--background", "c"], "--layer"),
    (["background", "--from", "/nowhere", "--background", "c", "--move", "x"], "--move"),
])
def test_object_and_background_flags_are_checked_before_loading(argv, flag, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0], err


@pytest.mark.slow
def test_cli_objects_then_new_backgrounds_moved_and_from_a_layer(tmp_path):
    """Two objects, then two new backgrounds for them with object 1 moved, then a background for a brought layer."""
    import numpy as np
    from PIL import Image

    def run(*argv):
        done = subprocess.run([sys.executable, "-m", "taue_engine.cli", *argv, "--model", "tiny-random", "--quiet"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done

    first = tmp_path / "scene"
    run("generate", "--object", "a red star@0.3,0.5,0.4,0.5", "--object", "a yellow circle", "--background",
        "a white background", "--steps", "4", "--width", "64", "--height", "64", "--out", str(first))
    for name in ("object-1", "object-2", "mask-1", "mask-2"):
        assert (first / f"{name}.png").is_file()
    again = tmp_path / "again"
    run("background", "--from", str(first), "--background", "a blue background", "--background", "a red background",
        "--move", "1@0.5,0.3,0.3,0.3", "--out", str(again))
    for n in ("1", "2"):
        assert (again / n / "result.psd").is_file()
        kept = np.asarray(Image.open(first / "object-2.png"))
        assert (np.asarray(Image.open(again / n / "object-2.png")) == kept).all()
    layer = tmp_path / "layer.png"
    Image.open(first / "object-1.png").save(layer)
    brought = tmp_path / "brought"
    run("background", "--layer", str(layer), "--object", "a red star", "--background", "a white background",
        "--steps", "4", "--out", str(brought))
    assert (np.asarray(Image.open(brought / "object-1.png")) == np.asarray(Image.open(layer))).all()


def test_words_the_toy_does_not_know_get_one_warning_line_and_the_job_still_runs(tmp_path, capsys):
    argv = ["generate", "--foreground", "a red vintage bicycle", "--background", "a cobblestone street at dusk",
            "--steps", "4", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("taue: warning:")]
    words = [line for line in warnings if "does not know the words" in line]
    assert len(words) == 1 and warnings[0] == words[0], warnings  # one line, before what the run itself found
    assert "vintage, bicycle, cobblestone, street, at, dusk" in words[0] and "--model stabilityai" in words[0]
    assert (tmp_path / "result.psd").is_file()
    assert main(BASE + ["--steps", "4", "--out", str(tmp_path / "known"), "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_an_unwritable_out_fails_at_once_with_one_line(tmp_path):
    import time

    blocked = tmp_path / "file"
    blocked.write_text("")
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "taue_engine.cli", *BASE, "--out", str(blocked / "inside")],
                         capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 5 and run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"taue: error: --out '{blocked / 'inside'}' cannot be written (Not a directory): choose a folder you can "
        "write"], run.stderr


def test_a_save_that_fails_after_the_work_leaves_the_files_where_the_message_says(tmp_path, monkeypatch, capsys):
    import errno
    import re
    from pathlib import Path

    from taue_engine.pipeline import TAUEResult

    out = tmp_path / "out"
    original = TAUEResult.save

    def disk_full_in_out(self, directory, *args, **kwargs):
        if Path(directory) == out:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, directory, *args, **kwargs)

    monkeypatch.setattr(TAUEResult, "save", disk_full_in_out)
    assert main(BASE + ["--steps", "4", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0], err
    rescued = Path(re.search(r"the result is in (\S+)$", err[0]).group(1))
    assert {"foreground.png", "background.png", "composite.png", "result.psd"} <= {p.name for p in rescued.iterdir()}


def test_device_cuda_on_a_torch_without_cuda_is_one_line(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(BASE + ["--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("taue: error: --device: ") and "--device cpu" in err[0], err
    assert main(BASE + ["--device", "tpu"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "taue: error: --device: device must be cuda, cuda:N, mps or cpu (got 'tpu')"]


def test_version_is_printed(capsys):
    from taue_engine import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"taue {__version__}"
