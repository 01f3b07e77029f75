"""run.sh's torch step, against a stand-in venv whose python records what it is asked to do (no install runs)."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _fake_venv(folder: Path) -> Path:
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    log = folder / "calls.log"
    for name in ("python", "taue"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nprintf "%s|" {name} "$@" >> "{log}"\necho >> "{log}"\nexit 0\n')
        script.chmod(0o755)
    (folder / ".taue-installed").touch()
    os.utime(folder / ".taue-installed", (2**31 - 1, 2**31 - 1))  # newer than pyproject.toml
    return log


def _run(venv: Path, torch: str | None) -> list[list[str]]:
    log = venv / "calls.log"
    log.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "TAUE_TORCH"}
    env["TAUE_VENV"] = str(venv)
    if torch is not None:
        env["TAUE_TORCH"] = torch
    subprocess.run(["bash", str(REPO / "run.sh"), "demo"], check=True, env=env, capture_output=True, text=True)
    return [line.strip("|").split("|") for line in log.read_text().splitlines() if line]


def test_taue_torch_always_wins_and_may_carry_an_index(tmp_path):
    venv = tmp_path / "venv"
    _fake_venv(venv)
    cpu = "torch --index-url https://download.pytorch.org/whl/cpu"
    calls = _run(venv, cpu)
    installs = [c for c in calls if "install" in c]
    assert installs == [["python", "-m", "pip", "--disable-pip-version-check", "-q", "install", "torch",
                         "--index-url", "https://download.pytorch.org/whl/cpu"]]  # although torch imports
    assert [c for c in _run(venv, cpu) if "install" in c] == []  # the same value: installed already
    assert [c[-1] for c in _run(venv, "torch==2.13.0") if "install" in c] == ["torch==2.13.0"]
    assert [c for c in _run(venv, None) if "install" in c] == []  # unset: an importable torch is kept
    assert any(c[0] == "taue" and c[1] == "generate" for c in calls)
