"""The Krita plug-in in real Krita: kritarunner runs tests/krita/taue_krita_e2e.py headless, which drives the
plug-in's panel against a real taue-server (tiny-random) and inserts the result; this test reads its verdict, the
layers' pixels, the saved .kra and the exported .psd.

Needs Debian's krita and python3-pyqt5 (`.ci/run` installs them and sets TAUE_REQUIRE_EDITORS=1, so that a
missing Krita fails CI instead of skipping).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.live import choices_server, live_server
from tests.required import unavailable

pytestmark = pytest.mark.e2e  # real Krita (kritarunner)

REPO = Path(__file__).resolve().parents[1]
W, H = 100, 75  # the script's document


def kritarunner() -> str:
    path = shutil.which("kritarunner")
    if path is None:
        unavailable("Krita is not installed: apt-get install krita python3-pyqt5 (Debian 12: Krita 5.1)")
    return path


@pytest.fixture(scope="module")
def krita_run(pipe, packager, tmp_path_factory):
    runner = kritarunner()
    folder, _ = packager.build_krita(tmp_path_factory.mktemp("dist"))
    out = tmp_path_factory.mktemp("krita-out")
    home = tmp_path_factory.mktemp("krita-home")  # a fresh profile: no settings or plug-ins from this machine
    with live_server(tmp_path_factory.mktemp("krita-server"), pipe, preview_seconds=0) as server, \
            choices_server(tmp_path_factory.mktemp("krita-choices")) as choosing:
        env = {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
               "XDG_DATA_HOME": str(home / "data"), "XDG_CACHE_HOME": str(home / "cache"),
               "XDG_RUNTIME_DIR": str(home), "QT_QPA_PLATFORM": "offscreen", "LANG": "C.UTF-8",
               "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "krita"), str(folder)]),
               "TAUE_URL": server.url, "TAUE_OUT": str(out), "TAUE_STEPS": "4", "TAUE_CHOICES_URL": choosing.url}
        completed = subprocess.run([runner, "-s", "taue_krita_e2e", "-f", "main"], env=env, cwd=out,
                                   capture_output=True, text=True, timeout=300)
        verdict_path = out / "verdict.json"
        assert verdict_path.exists(), f"Krita wrote no verdict:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        verdict = json.loads(verdict_path.read_text())
        assert verdict["ok"], verdict.get("error")
        layers = {key: Image.open(io.BytesIO(server.get(f"/api/v1/jobs/{verdict['job']['id']}/layers/{key}.png")
                                             .content)).convert("RGBA")
                  for key in ("foreground", "background", "composite")}
        for job in ("objects_job", "background_job"):
            for n in (1, 2):
                url = f"/api/v1/jobs/{verdict[job]['id']}/layers/object-{n}.png"
                layers[job, n] = Image.open(io.BytesIO(server.get(url).content)).convert("RGBA")
        yield verdict, out, layers


def bgra(path: Path) -> np.ndarray:
    """Krita's 8-bit RGBA pixel data (B, G, R, A) as an RGBA array."""
    return np.frombuffer(path.read_bytes(), np.uint8).reshape(H, W, 4)[..., [2, 1, 0, 3]].astype(float)


def scaled(image: Image.Image) -> np.ndarray:
    return np.asarray(image.resize((W, H), Image.BICUBIC)).astype(float)


def test_krita_inserts_the_group(krita_run):
    verdict, _, _ = krita_run
    assert verdict["krita_version"].startswith("5.")
    request = verdict["job"]["request"]
    assert (request["width"], request["height"]) == (96, 72)  # the document's 100x75, to multiples of 8
    assert request["layout"] == {"cx": 0.45, "cy": 0.4, "w": 0.5, "h": 0.5333}  # the selection's box
    assert verdict["root"][-1] == [verdict["group"]["name"], "grouplayer"]  # on top of the document's layers
    assert verdict["group"]["name"] == "TAUE: a red star / a blue striped background (seed 7)"
    layers = verdict["group"]["layers"]
    assert [(layer["name"], layer["type"], layer["visible"]) for layer in layers] == [
        ("Background", "paintlayer", True), ("Foreground", "paintlayer", True), ("Composite", "paintlayer", False)]
    assert [layer["bounds"] for layer in layers] == [[0, 0, W, H]] * 3  # scaled to the document
    assert layers[1]["children"] == [["Foreground alpha", "transparencymask"]]
    assert layers[1]["mask_bytes"] == W * H
    assert verdict["size"] == [W, H] and not verdict["running_at_end"]
    calls = [call[0] for call in verdict["view_calls"]]
    assert calls.count("set_running") == 2 and "show_progress" in calls


def test_pixels_match_the_servers_layers(krita_run):
    _, out, layers = krita_run
    for key, name in (("background", "Background"), ("composite", "Composite")):
        assert np.abs(bgra(out / f"layer-{name}.bgra")[..., :3] - scaled(layers[key])[..., :3]).mean() < 2.0
    foreground = scaled(layers["foreground"])
    mask = np.frombuffer((out / "mask-Foreground.a8").read_bytes(), np.uint8).reshape(H, W).astype(float)
    assert np.abs(mask - foreground[..., 3]).mean() < 2.0  # the transparency mask is the alpha
    inside = foreground[..., 3] > 128
    assert inside.any()
    assert np.abs(bgra(out / "layer-Foreground.bgra")[..., :3] - foreground[..., :3])[inside].mean() < 3.0
    alpha = foreground[..., 3:] / 255
    expected = foreground[..., :3] * alpha + scaled(layers["background"])[..., :3] * (1 - alpha)
    projection = bgra(out / "projection.bgra")[..., :3]
    assert np.abs(projection - expected).mean() < 3.0  # what the artist sees: the object over the plate
    exported = np.asarray(Image.open(out / "projection.png").convert("RGB")).astype(float)
    assert exported.shape == (H, W, 3) and np.abs(exported - projection).mean() < 1.0


def test_saved_kra_and_exported_psd(krita_run):
    from psd_tools import PSDImage

    verdict, out, _ = krita_run
    assert verdict["saved_kra"] and verdict["exported_psd"]
    with zipfile.ZipFile(out / "result.kra") as kra:
        assert kra.read("mimetype") == b"application/x-krita"
        assert "TAUE: a red star" in kra.read("maindoc.xml").decode("utf-8")
    psd = PSDImage.open(out / "result.psd")
    groups = [layer for layer in psd if layer.is_group()]
    assert [g.name.rstrip("\x00") for g in groups] == [verdict["group"]["name"]]
    children = [(layer.name.rstrip("\x00"), layer.visible, layer.has_mask()) for layer in groups[0]]
    assert children == [("Background", True, False), ("Foreground", True, True), ("Composite", False, False)]


def test_two_objects_arrive_as_two_layers_with_masks_and_a_new_background_keeps_them(krita_run):
    verdict, out, layers = krita_run
    request = verdict["objects_job"]["request"]
    assert [obj["prompt"] for obj in request["objects"]] == ["a red star", "a yellow circle"]
    assert request["objects"][0]["layout"] == {"cx": 0.45, "cy": 0.4, "w": 0.5, "h": 0.5333}  # the first selection
    assert request["objects"][1]["layout"] == {"cx": 0.75, "cy": 0.5333, "w": 0.4, "h": 0.5333}  # the second
    for key, job in (("objects_group", "objects_job"), ("background_group", "background_job")):
        group = verdict[key]
        assert [(layer["name"], layer["type"], layer["visible"]) for layer in group["layers"]] == [
            ("Background", "paintlayer", True), ("a red star", "paintlayer", True),
            ("a yellow circle", "paintlayer", True), ("Composite", "paintlayer", False)]
        prefix = "objects" if key == "objects_group" else "new-background"
        for n, name in ((1, "a red star"), (2, "a yellow circle")):
            assert group["layers"][n]["children"] == [[f"{name} alpha", "transparencymask"]]
            expected = scaled(layers[job, n])
            mask = np.frombuffer((out / f"{prefix}-mask-{name}.a8").read_bytes(), np.uint8).reshape(H, W)
            assert np.abs(mask.astype(float) - expected[..., 3]).mean() < 2.0  # each object's own alpha
    background = verdict["background_job"]["request"]
    assert background["kind"] == "background" and background["parent"] == verdict["objects_job"]["id"]
    assert verdict["background_group"]["name"] == \
        "TAUE: a red star + a yellow circle / a white background (seed 3)"
    for n in (1, 2):  # the new background's object layers are the first job's, pixel for pixel
        assert np.array_equal(np.asarray(layers["objects_job", n]), np.asarray(layers["background_job", n]))
    names = [name for name, kind in verdict["root_after"] if kind == "grouplayer"]
    assert len(names) == 3 and names[-1] == verdict["background_group"]["name"]


def test_the_docker_shows_previews_and_pictures_in_real_krita(krita_run):
    verdict, out, _ = krita_run
    docker = verdict["docker"]
    assert docker["binding"] == "PyQt5"  # Krita 5.1's own
    assert len(docker["preview_captions"]) >= 2, docker
    assert all(caption.startswith("Preview: ") and caption.endswith("/30") for caption in docker["preview_captions"])
    assert docker["history"] == 1 and docker["item_icon"]  # the docker has its own panel and history
    assert docker["item_text"] == "a red star / a blue striped background (seed 11)"
    assert docker["picture"] and max(docker["picture"]) == 256 and docker["caption"] == docker["item_text"]
    assert docker["strip"] == ["Background", "Foreground", "Composite"]
    assert Image.open(out / "docker.png").size[0] > 200


def test_the_docker_sends_the_chosen_model_lora_sampler_and_steps_in_real_krita(krita_run):
    choices = krita_run[0]["choices"]
    assert choices["offered"]["models"] == ["", "toy-a", "toy-b"]  # from the server's /health and /styles
    assert choices["offered"]["styles"] == ["", "paper", "few-step", "pink"]
    request, record = choices["request"], choices["metadata"]
    assert request["model"] == "toy-b" and request["loras"] == [{"name": "toy-pink", "scale": 0.8}]
    assert request["steps"] == 4 and request["settings"] == {"scheduler": "dpmpp_2m"}
    assert Path(record["model"]).name == "toy-b" and record["scheduler"] == "dpmpp_2m"  # what the server ran
    assert [(lora["name"], lora["scale"]) for lora in record["loras"]] == [("toy-pink", 0.8)]
    assert choices["remembered"] == {"model": "toy-b", "scheduler": "dpmpp_2m", "steps": 4,
                                     "loras": [{"name": "toy-pink", "scale": 0.8}]}
