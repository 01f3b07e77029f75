"""The installed package is the product: the wheel holds the engine, the server, the client and the embedded toy
model's weights, and nothing that only trains, measures or tests; installed in a fresh venv, `taue generate` runs."""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAB_NAMES = ("train", "testbed", "metrics", "sheet", "world", "benchmark", "live", "lora.py", "sweep", "round_trip")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the checkout's own files (setuptools builds in the source folder, and a build/ folder
    left by an earlier build would travel into the wheel)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    ignore = shutil.ignore_patterns(".git", ".venv", "build", "dist", "runs", "*.egg-info", "__pycache__", "taue-*")
    for entry in REPO.iterdir():
        if ignore(str(REPO), [entry.name]):
            continue
        if entry.is_dir():
            shutil.copytree(entry, source / entry.name, ignore=ignore)
        else:
            shutil.copy2(entry, source / entry.name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
                    "-w", str(out)], check=True, capture_output=True, text=True, timeout=600)
    (built,) = out.glob("taue_layers-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_holds_the_product_and_the_toy_weights_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.startswith("taue_layers-")}
    assert packages == {"taue_engine", "server", "taue_client"}, packages
    lab = [n for n in names if n.endswith(".py") and any(part in n.rsplit("/", 1)[-1] for part in LAB_NAMES)]
    assert lab == [], lab
    assert not [n for n in names if n.endswith((".pt", ".pth", ".pkl", ".ckpt", ".whl"))]
    weights = [n for n in names if n.startswith("taue_engine/toy/model/") and n.endswith(".safetensors")]
    assert {w.split("/")[3] for w in weights} == {"unet", "vae", "text_encoder", "text_encoder_2"}, weights
    assert "taue_engine/toy/model/taue_config.json" in names and "taue_engine/toy/model/model_index.json" in names


@pytest.mark.slow
def test_the_installed_wheel_generates_on_the_toy(wheel, tmp_path):
    """A fresh venv with only the wheel installed (its dependencies seen from this venv's site-packages, read as
    plain folders, so this checkout's editable install is not), run outside the checkout."""
    fresh = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True, timeout=120)
    python = fresh / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, text=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(python), "-c", "import taue_engine, importlib.util as u; print(taue_engine.__file__);"
                            "print(u.find_spec('lab'), u.find_spec('tests'))"],
                           cwd=tmp_path, env=env, check=True, capture_output=True, text=True).stdout.split("\n")
    assert where[0].startswith(str(site)) and where[1] == "None None", where
    out = tmp_path / "out"
    done = subprocess.run([str(fresh / "bin" / "taue"), "generate", "--foreground", "a red star", "--background",
                           "a blue striped background", "--steps", "4", "--seed", "2", "--out", str(out), "--quiet"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("foreground.png", "background.png", "composite.png", "result.psd", "result.ora", "taue.json"):
        assert (out / name).is_file(), name
