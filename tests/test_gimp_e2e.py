"""The GIMP plug-in in real GIMP 3: gimp-console runs tests/gimp/taue_gimp_e2e.py in batch mode, which calls the
procedures non-interactively against a real taue-server (tiny-random) and exports .xcf and .psd; this test reads
the verdict and the exported files. A second image gets a two-object result and then a new background for it.

GIMP 3 is Debian 13's: on a Debian 12 machine it runs inside a Debian 13 root (tools/gimp_root.sh builds and caches
it outside the repo; needs root). CI sets TAUE_REQUIRE_EDITORS=1, so a missing GIMP fails there instead of skipping.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.live import choices_server, live_server
from tests.required import unavailable

pytestmark = pytest.mark.e2e  # real GIMP 3

REPO = Path(__file__).resolve().parents[1]
W, H = 100, 75
GIMP = "gimp-console-3.0"


def gimp_env(root: Path | None, work: Path, profile: Path, **extra) -> dict:
    """GIMP's whole environment (it runs with env -i): a profile folder, as GIMP sees it, and the test's values."""
    return {"PATH": "/usr/bin:/bin", "HOME": "/root" if root else str(work), "LANG": "C.UTF-8",
            "GIMP3_DIRECTORY": str(profile), **extra}


def gimp_command(root: Path | None, env: dict) -> list:
    batch = [GIMP, "-i", "--batch-interpreter", "python-fu-eval", "-b", "-", "--quit"]
    if root is None:
        return ["env", "-i", *[f"{k}={v}" for k, v in env.items()], *batch]
    return ["chroot", str(root), "env", "-i", *[f"{k}={v}" for k, v in env.items()], *batch]


@pytest.fixture(scope="module")
def gimp():
    """(root or None, a folder inside it for this run, its path as GIMP sees it)."""
    if shutil.which(GIMP):
        root = None
    else:
        if os.geteuid() != 0 or shutil.which("chroot") is None:
            unavailable("GIMP 3 is not installed, and building a Debian 13 root for it needs root "
                        "(sudo bash tools/gimp_root.sh)")
        built = subprocess.run(["bash", str(REPO / "tools" / "gimp_root.sh")], capture_output=True, text=True,
                               timeout=1800)
        if built.returncode != 0:
            unavailable(f"could not build the GIMP 3 root: {built.stderr[-2000:]}")
        root = Path(built.stdout.strip().splitlines()[-1])
    base = (root / "tmp") if root else Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="taue-gimp-e2e-", dir=base))
    inside = Path("/tmp") / work.name if root else work
    yield root, work, inside
    shutil.rmtree(work, ignore_errors=True)


def warm_profile(root, work: Path, inside: Path) -> None:
    """A GIMP profile made once per root (the first start queries every plug-in), copied fresh for each run."""
    cache = (root / "var" / "cache" / "taue-gimp-profile") if root else Path.home() / ".cache" / "taue-gimp-profile"
    if not cache.exists():
        fresh = work / "warming"
        env = gimp_env(root, work, inside / "warming")
        subprocess.run(gimp_command(root, env), input="pass\n", capture_output=True, text=True, timeout=300)
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(fresh), str(cache))
    shutil.copytree(cache, work / "profile")


@pytest.fixture(scope="module")
def gimp_run(gimp, pipe, packager, tmp_path_factory):
    root, work, inside = gimp
    plugin, _ = packager.build_gimp(tmp_path_factory.mktemp("dist"))
    warm_profile(root, work, inside)
    shutil.copytree(plugin, work / "profile" / "plug-ins" / "taue-layers")
    (work / "out").mkdir()
    with live_server(tmp_path_factory.mktemp("gimp-server"), pipe, preview_seconds=0) as server, \
            choices_server(tmp_path_factory.mktemp("gimp-choices")) as choosing:
        server.requests = []  # (method, path, status) of every request GIMP's plug-in made
        app = server.app.wsgi_app

        def recording(environ, start_response):
            def start(status, headers, *rest):
                server.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], int(status.split()[0])))
                return start_response(status, headers, *rest)
            return app(environ, start)

        server.app.wsgi_app = recording
        env = gimp_env(root, work, inside / "profile", TAUE_URL=server.url, TAUE_OUT=str(inside / "out"),
                       TAUE_CHOICES_URL=choosing.url)
        completed = subprocess.run(gimp_command(root, env), input=(REPO / "tests" / "gimp" / "taue_gimp_e2e.py")
                                   .read_text(), capture_output=True, text=True, timeout=600)
        verdict_path = work / "out" / "verdict.json"
        assert verdict_path.exists(), f"GIMP wrote no verdict:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        verdict = json.loads(verdict_path.read_text())
        assert verdict["ok"], verdict.get("exception")
        jobs = server.session.get(server.api + "/jobs?limit=10", timeout=10).json()["jobs"]
        first = [job for job in jobs if job["request"]["width"] == 96][0]
        layers = {key: layer_png(server, first["id"], key) for key in ("foreground", "background", "composite")}
        server.choosing = choosing
        yield verdict, work / "out", layers, first, server


def layer_png(server, job_id: str, key: str) -> Image.Image:
    return Image.open(io.BytesIO(server.get(f"/api/v1/jobs/{job_id}/layers/{key}.png").content)).convert("RGBA")


def psd_groups(path: Path) -> dict:
    """{group name: {layer name: layer}} of an exported .psd (layers bottom to top)."""
    from psd_tools import PSDImage

    return {group.name.rstrip("\x00"): {layer.name.rstrip("\x00"): layer for layer in group}
            for group in PSDImage.open(path) if group.is_group()}


def check_object_layer(layer, rgba: np.ndarray) -> None:
    """A layer inserted from an RGBA PNG (`rgba`, at the layer's size): its mask is the alpha, its colour the PNG's
    where the object is."""
    mask = layer.mask
    assert mask is not None and (mask.width, mask.height) == rgba.shape[1::-1]
    assert np.abs(np.asarray(mask.topil()).astype(float) - rgba[..., 3]).mean() < 4.0  # the layer mask is the alpha
    inside = rgba[..., 3] > 128
    colour = np.asarray(layer.topil().convert("RGB")).astype(float)
    assert inside.any() and np.abs(colour - rgba[..., :3])[inside].mean() < 6.0


def test_filters_procedure_adds_the_group(gimp_run):
    verdict, _, _, job, _ = gimp_run
    assert verdict["gimp"].startswith("3.") and verdict["status"] == "success", verdict.get("error")
    assert (job["request"]["width"], job["request"]["height"]) == (96, 72)  # the image's size, to multiples of 8
    assert job["request"]["layout"] == {"cx": 0.45, "cy": 0.4, "w": 0.5, "h": 0.5333}  # the selection's box
    group, artwork = verdict["layers"]
    assert artwork["name"] == "Artwork" and group["group"]  # on top of the image's layers
    assert group["name"] == "TAUE: a red star / a blue striped background (seed 7)"
    assert [(c["name"], c["visible"], c["mask"]) for c in group["children"]] == [  # top to bottom
        ("Composite", False, False), ("Foreground", True, True), ("Background", True, False)]
    assert all(c["size"] == [W, H] and c["offsets"] == [0, 0] for c in group["children"])  # scaled to the image


def test_new_image_procedure_returns_an_image(gimp_run):
    verdict = gimp_run[0]
    assert verdict["new_status"] == "success", verdict.get("new_error")
    new = verdict["new_image"]
    assert new["size"] == [64, 72]
    [group] = new["layers"]
    assert [c["name"] for c in group["children"]] == ["Composite", "Foreground", "Background"]


def test_errors_are_execution_errors_with_a_message(gimp_run):
    verdict = gimp_run[0]
    assert verdict["down_status"] == "execution-error" and verdict["down_layers"] == 0
    assert "No TAUE server answers" in verdict["down_error"] and "taue-server" in verdict["down_error"]
    assert verdict["bad_status"] == "execution-error" and "Describe the foreground" in verdict["bad_error"]
    assert "Traceback" not in verdict["down_error"] + verdict["bad_error"]


def test_exported_files_hold_the_layers_and_pixels(gimp_run):
    verdict, out, layers, _, _ = gimp_run
    assert verdict["xcf"] and verdict["psd"]
    assert (out / "result.xcf").read_bytes()[:9] == b"gimp xcf "
    [children] = psd_groups(out / "result.psd").values()
    assert list(children) == ["Background", "Foreground", "Composite"]  # bottom to top
    assert [children[n].visible for n in children] == [True, True, False]

    def scaled(image):
        return np.asarray(image.resize((W, H), Image.BICUBIC)).astype(float)

    for key, name in (("background", "Background"), ("composite", "Composite")):
        pixels = np.asarray(children[name].topil().convert("RGB")).astype(float)
        assert pixels.shape == (H, W, 3)
        assert np.abs(pixels - scaled(layers[key])[..., :3]).mean() < 4.0
    check_object_layer(children["Foreground"], scaled(layers["foreground"]))


OBJECTS_GROUP = "TAUE: a yellow moon + a red star / a blue striped background (seed 11)"
BEACH_GROUP = "TAUE: a yellow moon + a red star / a sunny beach (seed 5)"
OBJECT_LAYERS = ["Composite", "a red star", "a yellow moon", "Background"]  # top to bottom: the foreground in front


def test_two_objects_arrive_as_one_layer_each_with_its_mask(gimp_run):
    verdict, out, _, _, server = gimp_run
    assert verdict["objects_status"] == "success", verdict.get("objects_error")
    _, first, artwork = verdict["scene"]
    job = server.job(first["job"])  # the group knows its job
    assert job["request"]["objects"] == [  # the lines of More objects, then the Foreground in the selection
        {"prompt": "a yellow moon", "layout": {"cx": 0.25, "cy": 0.3, "w": 0.4, "h": 0.5}},
        {"prompt": "a red star", "layout": {"cx": 0.7188, "cy": 0.5625, "w": 0.4375, "h": 0.625}}]
    assert server.get(job["urls"]["metadata"]).json()["config"]["key_color"] == "magenta"
    assert first["name"] == OBJECTS_GROUP and artwork["name"] == "Artwork"
    assert [(c["name"], c["visible"], c["mask"]) for c in first["children"]] == [
        ("Composite", False, False), ("a red star", True, True), ("a yellow moon", True, True),
        ("Background", True, False)]
    children = psd_groups(out / "scene.psd")[OBJECTS_GROUP]
    for n, name in ((1, "a yellow moon"), (2, "a red star")):
        check_object_layer(children[name], np.asarray(layer_png(server, job["id"], f"object-{n}")).astype(float))


def test_new_background_keeps_the_objects_of_the_selected_group(gimp_run):
    verdict, out, _, _, server = gimp_run
    assert verdict["background_status"] == "success", verdict.get("background_error")
    new, first, _ = verdict["scene"]  # the new group right above the one it came from
    renamed = [f"{name} (a sunny beach)" for name in OBJECT_LAYERS]  # names the image has: with the new prompt
    assert new["name"] == BEACH_GROUP and [c["name"] for c in new["children"]] == renamed
    assert [c["mask"] for c in new["children"]] == [False, True, True, False]
    job = server.job(new["job"])
    assert new["job"] != first["job"] and job["state"] == "succeeded"
    assert job["request"]["kind"] == "background" and job["request"]["parent"] == first["job"]
    # asked with an empty Server URL: the group remembers where its job ran
    assert verdict["objects_parasite"] == {"job": first["job"], "server": server.url}
    assert verdict["reloaded_jobs"] == [new["job"], first["job"], None]  # the job ids survive .xcf
    groups = psd_groups(out / "scene.psd")
    for name in OBJECT_LAYERS[1:3]:  # object layers and their masks identical
        kept, made = groups[BEACH_GROUP][f"{name} (a sunny beach)"], groups[OBJECTS_GROUP][name]
        assert np.array_equal(np.asarray(kept.topil()), np.asarray(made.topil()))
        assert np.array_equal(np.asarray(kept.mask.topil()), np.asarray(made.mask.topil()))
    background = np.asarray(groups[BEACH_GROUP]["Background (a sunny beach)"].topil().convert("RGB")).astype(float)
    assert np.abs(background - np.asarray(layer_png(server, job["id"], "background"))[..., :3]).mean() < 4.0


def test_new_background_needs_a_layer_of_a_result_group(gimp_run):
    verdict = gimp_run[0]
    assert verdict["outside_status"] == "execution-error"
    assert "'Artwork' is not part of a TAUE result group" in verdict["outside_error"]  # before any server is asked
    assert "Traceback" not in verdict["outside_error"]


def test_previews_come_as_a_layer_that_goes_when_the_job_ends(gimp_run):
    verdict, _, _, _, server = gimp_run
    assert verdict["preview_status"] == "success", verdict.get("preview_error")
    [group, artwork] = verdict["preview_layers"]  # no preview layer left, only the result and the artwork
    assert artwork["name"] == "Artwork" and group["name"].endswith("(seed 21)")
    assert [c["name"] for c in group["children"]] == ["Composite", "Foreground", "Background"]
    job = server.job(group["job"])
    fetched = [status for method, path, status in server.requests
               if method == "GET" and path == f"/api/v1/jobs/{job['id']}/preview.png"]
    assert fetched.count(200) >= 2, fetched  # the plug-in fetched the previews it showed
    assert server.get(f"/api/v1/jobs/{job['id']}/preview.png").status_code == 410


def test_the_chosen_model_lora_sampler_and_steps_ran_on_the_server(gimp_run):
    verdict, _, _, _, server = gimp_run
    assert verdict["choices_status"] == "success", verdict.get("choices_error")
    [group] = verdict["choices_layers"]
    job = server.choosing.job(group["job"])
    request = job["request"]
    assert request["model"] == "toy-b" and request["loras"] == [{"name": "toy-pink", "scale": 0.8}]
    assert request["steps"] == 4 and request["settings"] == {"scheduler": "dpmpp_2m"}
    record = server.choosing.get(job["urls"]["metadata"]).json()  # what the server ran
    assert Path(record["model"]).name == "toy-b" and record["scheduler"] == "dpmpp_2m"
    assert [(lora["name"], lora["scale"]) for lora in record["loras"]] == [("toy-pink", 0.8)]
    assert group["name"] == "TAUE: a pink star / a white background (seed 2, dpmpp_2m, LoRA toy-pink 0.8)"
