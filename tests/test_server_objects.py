"""API v1 for several objects and new backgrounds, on a live server with the real pipeline (tiny-random)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers.live import live_server

SMALL = {"width": 64, "height": 64, "steps": 3}
OBJECTS = [{"prompt": "a red star", "layout": {"cx": 0.3, "cy": 0.5, "w": 0.45, "h": 0.6}},
           {"prompt": "a yellow circle", "layout": {"cx": 0.7, "cy": 0.5, "w": 0.45, "h": 0.6}}]
SCENE = {"objects": OBJECTS, "background_prompt": "a blue striped background", "seed": 8, **SMALL}


@pytest.fixture(scope="module")
def server(pipe, tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("server-objects"), pipe) as live:
        yield live


@pytest.fixture(scope="module")
def scene(server):
    """A succeeded two-object job and the progress it reported."""
    job = server.submit(**SCENE)
    ticks = []
    while True:
        current = server.job(job["id"])
        if current["progress"] and current["progress"]["overall_step"]:
            ticks.append(current["progress"])
        if current["state"] in ("succeeded", "failed", "cancelled"):
            break
    assert current["state"] == "succeeded", current
    return current, ticks


def png(server, url) -> np.ndarray:
    response = server.get(url)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_a_two_object_job_has_a_layer_and_a_mask_per_object(server, scene, pipe):
    job, ticks = scene
    assert job["request"]["objects"] == OBJECTS and job["request"]["foreground_prompt"] is None
    assert {t["overall_total"] for t in ticks} == {4 * 3}
    assert {t["object"] for t in ticks if t["phase"] == "foreground"} <= {1, 2}
    layers = {name: png(server, url) for name, url in job["urls"]["layers"].items()}
    assert {"object-1", "object-2", "mask-1", "mask-2"} <= set(layers)
    assert layers["object-1"].shape == (64, 64, 4) and layers["mask-2"].shape == (64, 64)
    # the server runs exactly the engine's job
    from taue_engine import TAUEConfig

    direct = pipe(objects=OBJECTS, background_prompt=SCENE["background_prompt"], seed=8, width=64, height=64,
                  config=TAUEConfig(num_inference_steps=3))
    assert (layers["object-2"] == np.asarray(direct.objects[1].layer)).all()
    assert (layers["composite"] == np.asarray(direct.composite)).all()


def test_the_psd_holds_one_layer_with_a_mask_per_object(server, scene):
    from psd_tools import PSDImage

    job, _ = scene
    response = server.get(job["urls"]["psd"])
    assert response.status_code == 200
    group = next(iter(PSDImage.open(io.BytesIO(response.content))))
    layers = {layer.name: layer for layer in group}
    assert list(layers) == ["Background", "a red star", "a yellow circle", "Composite", "Mask: a red star",
                            "Mask: a yellow circle"]
    assert layers["a red star"].mask is not None and layers["a yellow circle"].mask is not None


def test_new_backgrounds_make_one_job_per_prompt_and_keep_the_objects(server, scene):
    job, _ = scene
    response = server.session.post(server.api + job["urls"]["backgrounds"][len("/api/v1"):],
                                   json={"background_prompts": ["a white background", "an orange background"],
                                         "seeds": [1, 2]})
    assert response.status_code == 202, response.text
    children = response.json()["jobs"]
    assert [c["request"]["background_prompt"] for c in children] == ["a white background", "an orange background"]
    assert [c["request"]["seed"] for c in children] == [1, 2]
    assert all(c["request"]["parent"] == job["id"] and c["request"]["kind"] == "background" for c in children)
    parent_objects = [png(server, job["urls"]["layers"][f"object-{n}"]) for n in (1, 2)]
    backgrounds = []
    for child in children:
        done = server.wait(child["id"])
        assert done["state"] == "succeeded", done
        assert done["progress"]["overall_total"] == 2 * 3
        for n in (1, 2):
            assert (png(server, done["urls"]["layers"][f"object-{n}"]) == parent_objects[n - 1]).all()
        backgrounds.append(png(server, done["urls"]["layers"]["background"]))
    assert not (backgrounds[0] == backgrounds[1]).all()


def test_one_prompt_with_several_seeds_and_a_moved_object(server, scene):
    job, _ = scene
    box = {"cx": 0.5, "cy": 0.3, "w": 0.3, "h": 0.3}
    response = server.session.post(f"{server.api}/jobs/{job['id']}/backgrounds",
                                   json={"background_prompts": ["a white background"], "seeds": [4, 5, 6],
                                         "layouts": [box, None]})
    assert response.status_code == 202, response.text
    children = response.json()["jobs"]
    assert [c["request"]["seed"] for c in children] == [4, 5, 6]
    assert children[0]["request"]["objects"][0]["layout"] == box and children[0]["request"]["moved"] == [1]
    done = server.wait(children[0]["id"])
    assert done["state"] == "succeeded", done
    moved = png(server, done["urls"]["layers"]["object-1"])[..., 3] > 128
    ys, xs = np.nonzero(moved)
    assert abs(xs.mean() / 64 - 0.5) < 0.1 and abs(ys.mean() / 64 - 0.3) < 0.1
    kept = png(server, done["urls"]["layers"]["object-2"])
    assert (kept == png(server, job["urls"]["layers"]["object-2"])).all()
    for child in children[1:]:
        server.wait(child["id"])


def test_a_new_background_survives_its_parent_being_deleted(server):
    parent = server.wait(server.submit(**{**SCENE, "seed": 21})["id"])
    child = server.session.post(f"{server.api}/jobs/{parent['id']}/backgrounds",
                                json={"background_prompts": ["a white background"]}).json()["jobs"][0]
    assert server.session.delete(f"{server.api}/jobs/{parent['id']}").status_code == 204
    assert server.wait(child["id"])["state"] == "succeeded"


BAD_BACKGROUNDS = [
    ({}, "background_prompts", "list of 1..16"),
    ({"background_prompts": []}, "background_prompts", "list of 1..16"),
    ({"background_prompts": [""]}, "background_prompts[1]", "must not be empty"),
    ({"background_prompts": ["a", "b"], "seeds": [1]}, "seeds", "one seed per background prompt"),
    ({"background_prompts": ["a"], "seeds": [-1]}, "seeds[1]", "in 0.."),
    ({"background_prompts": ["a"], "layouts": [None]}, "layouts", "one entry per object"),
    ({"background_prompts": ["a"], "layouts": [{"cx": 2, "cy": 0.5, "w": 0.1, "h": 0.1}, None]}, "layouts[1].cx",
     "0..1"),
    ({"background_prompts": ["a"], "colour": "red"}, "colour", "unknown field"),
]


@pytest.mark.parametrize("body, field, words", BAD_BACKGROUNDS)
def test_bad_background_requests_name_the_field(server, scene, body, field, words):
    job, _ = scene
    response = server.session.post(f"{server.api}/jobs/{job['id']}/backgrounds", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field and words in error["message"], error


def test_new_backgrounds_need_a_succeeded_job(server):
    missing = server.session.post(f"{server.api}/jobs/{'0' * 32}/backgrounds", json={"background_prompts": ["a"]})
    assert missing.status_code == 404
    running = server.submit(**{**SCENE, "steps": 60})
    response = server.session.post(f"{server.api}/jobs/{running['id']}/backgrounds",
                                   json={"background_prompts": ["a"]})
    assert response.status_code == 409 and "succeeded job" in response.json()["error"]["message"]
    server.session.post(f"{server.api}/jobs/{running['id']}/cancel")
    server.wait(running["id"])


BAD_OBJECTS = [
    ({**SCENE, "foreground_prompt": "a cat"}, "foreground_prompt", "not both"),
    ({**SCENE, "layout": OBJECTS[0]["layout"]}, "layout", "not both"),
    ({**SCENE, "objects": []}, "objects", "1..8"),
    ({**SCENE, "objects": [{"prompt": "a"}] * 9}, "objects", "1..8"),
    ({**SCENE, "objects": [OBJECTS[0], {"prompt": " "}]}, "objects[2].prompt", "must not be empty"),
    ({**SCENE, "objects": [{"prompt": "a", "colour": "red"}]}, "objects[1].colour", "unknown field"),
    ({**SCENE, "objects": [{"prompt": "a", "layout": {"cx": 0.5}}]}, "objects[1].layout", "missing"),
    ({**SCENE, "objects": "a red star"}, "objects", "list"),
    ({**SCENE, "key_color": "cyan"}, "key_color", "green, blue, magenta"),
]


@pytest.mark.parametrize("body, field, words", BAD_OBJECTS)
def test_bad_objects_name_the_field(server, body, field, words):
    response = server.session.post(server.api + "/jobs", data=json.dumps(body),
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field and words in error["message"], error


def test_health_reports_the_object_and_batch_limits(server):
    limits = server.get("/api/v1/health").json()["limits"]
    assert limits["max_objects"] == 8 and limits["max_batch"] == 16


def layer_png(size=(64, 64), box=(16, 20, 40, 48), colour=(220, 30, 30, 255)) -> str:
    import base64

    image = Image.new("RGBA", size, (0, 0, 0, 0))
    image.paste(Image.new("RGBA", (box[2] - box[0], box[3] - box[1]), colour), box[:2])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_object_layers_a_user_brings_get_new_backgrounds(server):
    import base64

    png = layer_png()
    response = server.session.post(f"{server.api}/backgrounds", json={
        "objects": [{"prompt": "a red square", "png": png}], "background_prompts": ["a white background",
                                                                                 "a blue background"],
        "seeds": [1, 2], "steps": 3, "key_color": "blue"})
    assert response.status_code == 202, response.text
    jobs = response.json()["jobs"]
    assert [j["request"]["background_prompt"] for j in jobs] == ["a white background", "a blue background"]
    assert jobs[0]["request"]["parent"] is None and jobs[0]["request"]["settings"] == {"key_color": "blue"}
    brought = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))))
    for job in jobs:
        done = server.wait(job["id"])
        assert done["state"] == "succeeded", done
        assert (png_of(server, done, "object-1") == brought).all()  # the layer is kept as it was brought
        assert png_of(server, done, "background").shape == (64, 64, 3)
        mask = png_of(server, done, "mask-1") > 127
        assert mask[20:48, 16:40].mean() > 0.5 and mask[:8].mean() == 0


def png_of(server, job, name):
    return png(server, job["urls"]["layers"][name])


BAD_LAYERS = [
    ({"objects": [{"prompt": "a", "png": "not base64!"}]}, "objects[1].png", "PNG file encoded as base64"),
    ({"objects": [{"prompt": "a", "png": "aGVsbG8="}]}, "objects[1].png", "PNG file encoded as base64"),
    ({"objects": [{"prompt": "a", "png": layer_png(size=(60, 64))}]}, "objects[1].png", "multiples of 8"),
    ({"objects": [{"prompt": "a", "png": layer_png(colour=(255, 0, 0, 0))}]}, "objects[1].png", "transparent"),
    ({"objects": [{"prompt": "a", "png": layer_png()}, {"prompt": "b", "png": layer_png(size=(72, 64))}]},
     "objects[2].png", "scene's size"),
    ({"objects": [{"prompt": "", "png": layer_png()}]}, "objects[1].prompt", "must not be empty"),
    ({"objects": [{"prompt": "a"}]}, "objects[1]", "{prompt, png}"),
    ({"objects": []}, "objects", "1..8"),
    ({"objects": [{"prompt": "a", "png": layer_png()}], "key_color": "cyan"}, "key_color", "green, blue, magenta"),
]


@pytest.mark.parametrize("body, field, words", BAD_LAYERS)
def test_bad_brought_layers_name_the_field(server, body, field, words):
    response = server.session.post(f"{server.api}/backgrounds",
                                   json={"background_prompts": ["a white background"], **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field and words in error["message"], error
