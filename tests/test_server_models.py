"""Several models on one server (--models-dir): listed by /health, named by jobs, switched between jobs with the
memory given back, and a model that fails to load fails only its own job."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import pytest

from server.config import ServerConfig
from server.fields import Context
from server.job_requests import MODEL
from server.models_folder import scan_models
from tests.helpers.live import live_server

TOY = Path(__file__).resolve().parents[1] / "taue_engine" / "toy" / "model"
LORAS = Path(__file__).parent / "data" / "loras"
JOB = {"foreground_prompt": "a red star", "background_prompt": "a blue striped background", "seed": 5, "steps": 4}


def models_folder(root: Path) -> Path:
    """Two exported copies of the toy under different names, a checkpoint-looking file, a broken model and two
    entries that are not models."""
    folder = root / "models"
    folder.mkdir()
    for name in ("toy-a", "toy-b"):
        shutil.copytree(TOY, folder / name)
    (folder / "broken").mkdir()
    (folder / "broken" / "model_index.json").write_text("{}")
    (folder / "notes.txt").write_text("not a model")
    (folder / "empty").mkdir()
    return folder


def test_the_models_folder_lists_folders_and_checkpoints_and_skips_the_rest(tmp_path, caplog):
    folder = tmp_path / "models"
    (folder / "photo").mkdir(parents=True)
    (folder / "photo" / "model_index.json").write_text("{}")
    (folder / "turbo.safetensors").write_bytes(b"")
    (folder / "photo.safetensors").write_bytes(b"")  # named like the folder: the folder keeps the name
    (folder / "readme.md").write_text("")
    (folder / "half-copied").mkdir()
    with caplog.at_level(logging.WARNING, logger="taue.server"):
        found = scan_models(folder)
    assert [(e.name, e.kind) for e in found.values()] == [("photo", "folder"), ("turbo", "single_file")]
    skipped = " ".join(caplog.messages)
    assert "readme.md" in skipped and "half-copied" in skipped and "photo.safetensors" in skipped
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="taue.server"):
        scan_models(folder)
    assert not caplog.messages  # each entry is told once, not on every /health


def test_a_jobs_model_is_a_name_of_the_folder_never_a_path(tmp_path):
    folder = tmp_path / "models"
    (folder / "photo").mkdir(parents=True)
    (folder / "photo" / "model_index.json").write_text("{}")
    ctx = Context(ServerConfig(data_dir=tmp_path / "data", model="toy", models_dir=folder))
    assert MODEL.check("model", "photo", ctx) == "photo" and MODEL.check("model", "toy", ctx) == "toy"
    for value, words in (("nope", "no model 'nope' on this server; it has: photo, toy"), ("../photo", "not a path"),
                         ("a/b", "not a path"), ("..", "not a path"), (5, "must be a model's name"),
                         ("", "must be a model's name")):
        with pytest.raises(Exception) as refused:
            MODEL.check("model", value, ctx)
        assert refused.value.status == 400 and words in str(refused.value), (value, str(refused.value))
    one = Context(ServerConfig(data_dir=tmp_path / "data", model="toy"))
    with pytest.raises(Exception, match="serves one model .* --models-dir"):
        MODEL.check("model", "photo", one)
    assert MODEL.check("model", "toy", one) == "toy"  # the one it serves (and lists in /health) may be named
    with pytest.raises(ValueError, match="is not a folder"):
        ServerConfig(data_dir=tmp_path / "data", models_dir=tmp_path / "missing")
    with pytest.raises(ValueError, match="--queue"):
        ServerConfig(data_dir=tmp_path / "data", models_dir=folder, queue="redis://127.0.0.1:1/0")


def test_behind_a_queue_jobs_name_what_the_workers_serve(tmp_path):
    """A worker's model name (from its --models-dir, or the folder, file or hub id it loads); the front's default is
    its --model when a worker serves it, else the first served; a name no worker serves is a 409, not a 400."""
    from server.model_choice import workers_choice
    from server.models_folder import entry_name
    from server.worker import served_model

    assert [entry_name(m) for m in ("toy", "/m/photo/", "/m/anime.safetensors", "stabilityai/sdxl-base-1.0")] == [
        "toy", "photo", "anime", "sdxl-base-1.0"]
    folder = tmp_path / "models"
    (folder / "photo").mkdir(parents=True)
    (folder / "photo" / "model_index.json").write_text("{}")
    assert served_model("photo", folder) == ("photo", str(folder / "photo"))
    assert served_model(str(folder / "photo"), None) == ("photo", str(folder / "photo"))
    assert served_model("toy", folder) == ("toy", "toy")  # not an entry: loaded as given
    with pytest.raises(ValueError, match="gives no name"):
        served_model("..", None)
    with pytest.raises(ValueError, match="is not a folder"):
        served_model("photo", tmp_path / "missing")

    choice = workers_choice(["tiny-random", "toy", "toy"], preferred="toy")
    assert choice.default == "toy" and choice.names == ("toy", "tiny-random")
    assert workers_choice(["b", "a"], preferred="toy").default == "a"  # the front's --model is not served
    assert workers_choice([], preferred="toy").default is None
    assert choice.check("model", "tiny-random") == "tiny-random"
    with pytest.raises(Exception) as unserved:
        choice.check("model", "photo")
    assert unserved.value.status == 409 and "served now: tiny-random, toy" in str(unserved.value)
    assert choice.missing("toy") is None and "a taue-worker with it" in choice.missing("photo")
    for value in ("../toy", 5):
        with pytest.raises(Exception) as refused:
            choice.check("model", value)
        assert refused.value.status == 400


def _ready(served, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = served.get("/api/v1/health").json()
        if health["state"] != "loading":
            return health
        time.sleep(0.1)
    raise AssertionError("the start model did not load")


def _result(served, job: dict) -> dict:
    done = served.wait(job["id"], timeout=300)
    assert done["state"] == "succeeded", done
    return json.loads(served.get(done["urls"]["metadata"]).content)


@pytest.mark.slow
def test_jobs_switch_the_served_model_and_a_broken_one_fails_only_its_job(tmp_path):
    folder = models_folder(tmp_path)
    with live_server(tmp_path / "data", None, models_dir=folder, model="toy-a", lora_dir=LORAS,
                     device="cpu") as served:
        health = _ready(served)
        assert health["state"] == "ready" and health["model"] == "toy-a"
        assert [(m["name"], m["kind"], m["loaded"]) for m in health["models"]] == [
            ("toy-a", "folder", True), ("broken", "folder", False), ("toy-b", "folder", False)]
        for value in ("nope", "../toy-b", "toy-b/unet", 3):
            response = served.session.post(served.api + "/jobs", json={**JOB, "model": value}, timeout=30)
            assert response.status_code == 400 and response.json()["error"]["field"] == "model", response.text
        assert "toy-b" in served.session.post(served.api + "/jobs", json={**JOB, "model": "nope"}).text

        on_b = served.submit(**JOB, model="toy-b", loras=[{"name": "toy-pink", "scale": 0.8}])
        assert on_b["request"]["model"] == "toy-b"
        record = _result(served, on_b)
        assert Path(record["model"]).name == "toy-b" and record["loras"][0]["name"] == "toy-pink"
        health = served.get("/api/v1/health").json()
        assert health["model"] == "toy-b" and [m["name"] for m in health["models"] if m["loaded"]] == ["toy-b"]

        back = served.submit(**JOB)  # no model named: the one the server started with
        assert Path(_result(served, back)["model"]).name == "toy-a"

        broken = served.wait(served.submit(**JOB, model="broken")["id"], timeout=120)
        assert broken["state"] == "failed" and "'broken' failed to load" in broken["error"]["message"]
        after = served.submit(**JOB, model="toy-b")
        assert Path(_result(served, after)["model"]).name == "toy-b"
        assert served.get("/api/v1/health").json()["state"] == "ready"

        backgrounds = served.session.post(f"{served.api}/jobs/{after['id']}/backgrounds",
                                          json={"background_prompts": ["a purple background"], "seeds": [2]})
        assert backgrounds.status_code == 202, backgrounds.text
        [new] = backgrounds.json()["jobs"]
        assert new["request"]["model"] == "toy-b"  # a new background runs on its job's model
        assert Path(_result(served, new)["model"]).name == "toy-b"
        assert back["request"]["model"] == "toy-a"  # a job that names none records the default it ran on

        shutil.move(folder / "toy-b", tmp_path / "toy-b-away")  # its model gone: its objects cannot get new scenes
        gone = served.session.post(served.api + f"/jobs/{after['id']}/backgrounds",
                                   json={"background_prompts": ["a purple background"]})
        assert gone.status_code == 409 and gone.json()["error"]["code"] == "model_not_served", gone.text
        assert "put it back in --models-dir" in gone.json()["error"]["message"]


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_switching_back_and_forth_gives_the_memory_back_and_keeps_the_calibration(tmp_path):
    from server.engine import Engine

    folder = models_folder(tmp_path)
    engine = Engine()
    engine.prepare("toy-a", str(folder / "toy-a"), device="cpu")
    engine.load()
    first = engine.pipe
    fitted, keys = first.latent_to_rgb(), first.key_latents()
    del first
    engine.switch("toy-b", str(folder / "toy-b"))
    after_first = _rss_mib()
    for _ in range(5):
        engine.switch("toy-a", str(folder / "toy-a"))
        assert engine.pipe.latent_to_rgb() is fitted and engine.pipe.key_latents() == keys  # nothing measured again
        engine.switch("toy-b", str(folder / "toy-b"))
    assert engine.model == "toy-b" and engine.pipe is not None
    assert _rss_mib() <= 1.10 * after_first, (after_first, _rss_mib())


def test_the_plugins_show_a_model_that_is_loading():
    from taue_client.jobs import describe_progress

    job = {"state": "running", "progress": {"phase": "loading", "model": "turbo", "fraction": 0.0}}
    assert describe_progress(job) == (0.0, "Loading model turbo")
