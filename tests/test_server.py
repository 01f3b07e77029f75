"""taue-server against a real waitress server on a loopback port, with the real pipeline on tiny-random."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pytest
import requests
from PIL import Image

from tests.helpers.live import live_server

SMALL = {"width": 64, "height": 64, "steps": 3}
JOB = {"foreground_prompt": "a red star", "background_prompt": "a blue striped background", "seed": 5, **SMALL}


@pytest.fixture(scope="module")
def server(pipe, tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("server-data"), pipe) as live:
        yield live


def _png(response) -> np.ndarray:
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_health_says_what_is_served(server):
    health = server.get("/api/v1/health").json()
    assert health["state"] == "ready" and health["model"] == "tiny-random"
    assert health["device"] == "cpu" and health["dtype"] == "float32" and health["queue_length"] >= 0
    assert health["version"]


def test_job_runs_to_success_with_monotonic_progress_and_downloadable_layers(server):
    job = server.submit(**{**JOB, "steps": 8})
    assert job["state"] in ("queued", "running") and len(job["id"]) == 32
    seen, fractions = [job["state"]], []
    while True:
        current = server.job(job["id"])
        if current["state"] != seen[-1]:
            seen.append(current["state"])
        if current["progress"]:
            fractions.append(current["progress"]["fraction"])
        if current["state"] in ("succeeded", "failed", "cancelled"):
            break
    assert seen[-1] == "succeeded", current
    assert seen in (["queued", "running", "succeeded"], ["running", "succeeded"], ["queued", "succeeded"])
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert current["progress"]["phase"] == "background" and current["timings"]["total"] > 0
    assert current["request"]["seed"] == 5 and current["error"] is None

    urls = current["urls"]
    layers = {name: _png(server.get(url)) for name, url in urls["layers"].items()}
    assert set(layers) == {"foreground", "foreground_on_green", "background", "composite", "mask", "object-1",
                           "mask-1"}
    assert (layers["object-1"] == layers["foreground"]).all() and (layers["mask-1"] == layers["mask"]).all()
    assert layers["foreground"].shape == (64, 64, 4) and layers["composite"].shape == (64, 64, 3)
    assert layers["mask"].shape == (64, 64)
    metadata = server.get(urls["metadata"]).json()
    assert metadata["seed"] == 5 and metadata["prompts"]["foreground"] == "a red star"

    psd_response = server.get(urls["psd"])
    assert psd_response.status_code == 200 and psd_response.content[:4] == b"8BPS"
    from psd_tools import PSDImage

    psd = PSDImage.open(io.BytesIO(psd_response.content))
    assert psd.size == (64, 64) and psd.depth == 8
    (group,) = list(psd)
    assert group.is_group() and group.name == "TAUE: a red star / a blue striped background (seed 5)"
    by_name = {layer.name: layer for layer in group}
    assert [layer.name for layer in group] == ["Background", "Foreground", "Composite", "Object mask"]
    assert [layer.visible for layer in group] == [True, True, False, False]
    foreground = by_name["Foreground"]
    assert foreground.has_mask() and foreground.size == (64, 64)
    mask = np.asarray(foreground.mask.topil())
    assert np.array_equal(mask, layers["foreground"][..., 3])  # the alpha, as an editable mask
    assert np.array_equal(np.asarray(foreground.topil())[..., :3], layers["foreground"][..., :3])
    assert np.array_equal(np.asarray(by_name["Background"].topil())[..., :3], layers["background"])
    assert np.array_equal(np.asarray(by_name["Composite"].topil())[..., :3], layers["composite"])
    assert np.array_equal(np.asarray(by_name["Object mask"].topil())[..., 0], layers["mask"])
    ora = server.get(urls["ora"])
    assert ora.status_code == 200 and ora.content[30:38] == b"mimetype"


def test_cancel_stops_a_running_job_within_a_step_and_removes_a_queued_one(server):
    running = server.submit(**{**JOB, "steps": 200, "seed": 1})
    queued = server.submit(**{**JOB, "seed": 2})
    server.wait(running["id"], states=("running",))
    assert server.job(queued["id"])["queue_position"] == 1
    response = server.session.post(f"{server.api}/jobs/{queued['id']}/cancel")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    response = server.session.post(f"{server.api}/jobs/{running['id']}/cancel")
    assert response.status_code == 202 and response.json()["cancel_requested"] is True
    step_at_cancel = response.json()["progress"]["overall_step"]
    final = server.wait(running["id"])
    assert final["state"] == "cancelled" and "cancelled during" in final["error"]["message"]
    assert final["progress"]["overall_step"] <= step_at_cancel + 2  # stopped within a step of the request
    assert final["progress"]["overall_step"] < 600
    assert server.job(queued["id"])["state"] == "cancelled"  # never ran
    again = server.session.post(f"{server.api}/jobs/{running['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "finished"
    assert server.get(f"/api/v1/jobs/{running['id']}/result.psd").status_code == 404


@pytest.mark.slow
def test_twenty_concurrent_clients_all_get_their_results(server):
    results, errors = {}, []

    def client(seed: int) -> None:
        try:
            session = requests.Session()
            response = session.post(server.api + "/jobs", json={**JOB, "steps": 2, "seed": seed}, timeout=60)
            assert response.status_code == 202, response.text
            results[seed] = response.json()["id"]
        except Exception as error:  # noqa: BLE001 - collected and reported below
            errors.append(error)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(100, 120)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(results.values())) == 20
    for seed, job_id in results.items():
        job = server.wait(job_id)
        assert job["state"] == "succeeded" and job["request"]["seed"] == seed
        assert server.get(job["urls"]["layers"]["composite"]).status_code == 200


def test_a_failing_job_is_recorded_and_the_server_goes_on(server):
    # the engine (not the validation) refuses a green latent of the wrong length for this model
    bad = server.submit(**{**JOB, "green_latent": [0, 1, 1]})
    failed = server.wait(bad["id"])
    assert failed["state"] == "failed" and "green_latent must have 4 values" in failed["error"]["message"]
    good = server.wait(server.submit(**JOB)["id"])
    assert good["state"] == "succeeded"


def test_listing_is_newest_first_and_paginated(server):
    ids = [server.submit(**{**JOB, "steps": 2, "seed": s})["id"] for s in (7, 8, 9)]
    page = server.get("/api/v1/jobs?limit=2").json()
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:2] and page["total"] >= 3 and page["next"]
    following = server.get(page["next"]).json()
    assert following["jobs"][0]["id"] == ids[0] and following["offset"] == 2
    for job_id in ids:
        server.wait(job_id)


def test_delete_removes_a_finished_job_and_its_files(server, tmp_path):
    job = server.wait(server.submit(**JOB)["id"])
    folder = server.jobs.store.folder(job["id"])
    assert (folder / "result" / "result.psd").is_file()
    assert server.session.delete(f"{server.api}/jobs/{job['id']}").status_code == 204
    assert not folder.exists()
    assert server.get(f"/api/v1/jobs/{job['id']}").status_code == 404


def test_restart_keeps_finished_jobs_and_fails_the_one_that_was_running(pipe, tmp_path):
    with live_server(tmp_path, pipe) as first:
        done = first.wait(first.submit(**JOB)["id"])
        composite = first.get(done["urls"]["layers"]["composite"]).content
        interrupted = first.wait(first.submit(**JOB)["id"])
    # as if the server had died mid-job: its state on disk still says running
    state_file = tmp_path / "jobs" / interrupted["id"] / "state.json"
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**state, "state": "running", "finished_at": None}))
    with live_server(tmp_path, pipe) as second:
        again = second.job(done["id"])
        assert again["state"] == "succeeded"
        assert second.get(again["urls"]["layers"]["composite"]).content == composite
        failed = second.job(interrupted["id"])
        assert failed["state"] == "failed" and "server stopped while this job was running" in \
            failed["error"]["message"]
        assert second.wait(second.submit(**JOB)["id"])["state"] == "succeeded"  # and it works on


BAD_REQUESTS = [
    # (body or raw bytes, content type, status, field or None, words in the message)
    (b'{"foreground_prompt": "a", ', "application/json", 400, None, "not valid JSON"),
    (b'[1, 2]', "application/json", 400, None, "JSON object"),
    (b'{"foreground_prompt": "a red star", "background_prompt": "b", "seed": NaN}', "application/json", 400, None,
     "NaN"),
    ({"background_prompt": "b"}, "application/json", 400, "foreground_prompt", "is required: describe the foreground"),
    ({"foreground_prompt": "a"}, "application/json", 400, "background_prompt", "is required: describe the background"),
    ({"foreground_prompt": "  ", "background_prompt": "b"}, "application/json", 400, "foreground_prompt", "empty"),
    ({**JOB, "foreground_prompt": 3}, "application/json", 400, "foreground_prompt", "string"),
    ({**JOB, "foreground_prompt": "x" * 5000}, "application/json", 400, "foreground_prompt", "under 2000"),
    ({**JOB, "width": 100000}, "application/json", 400, "width", "multiple of 8 in 64..2048"),
    ({**JOB, "width": 100}, "application/json", 400, "width", "multiple of 8"),
    ({**JOB, "height": "512"}, "application/json", 400, "height", "whole number"),
    ({**JOB, "steps": -5}, "application/json", 400, "steps", "in 2..200"),
    ({**JOB, "steps": True}, "application/json", 400, "steps", "whole number"),
    ({**JOB, "seed": -1}, "application/json", 400, "seed", "in 0.."),
    ({**JOB, "seed": 2**64}, "application/json", 400, "seed", "in 0.."),
    ({**JOB, "layout": {"cx": 0.5, "cy": 0.5, "w": 2, "h": 0.5}}, "application/json", 400, "layout.w", "(0, 1]"),
    ({**JOB, "layout": {"cx": 0.5}}, "application/json", 400, "layout", "missing"),
    ({**JOB, "layout": [0.5, 0.5, 0.2, 0.2]}, "application/json", 400, "layout", "object"),
    ({**JOB, "tau_bg": 7}, "application/json", 400, "tau_bg", "tau_bg must be a number in [0, 2]"),
    ({**JOB, "tau_bg": "high"}, "application/json", 400, "tau_bg", "must be a number"),
    ({**JOB, "highpass": 1}, "application/json", 400, "highpass", "true or false"),
    ({**JOB, "shear_blocks": ["sideways"]}, "application/json", 400, "shear_blocks", "subset"),
    ({**JOB, "crop_ratio": 0.999}, "application/json", 400, "crop_ratio", "least one step on each side"),
    ({**JOB, "num_inference_steps": 20}, "application/json", 400, "num_inference_steps", "use steps"),
    ({**JOB, "colour": "red"}, "application/json", 400, "colour", "unknown field"),
    (b'{"foreground_prompt": "a", "foreground_prompt": "b"}', "application/json", 400, "foreground_prompt", "twice"),
    (json.dumps(JOB).encode(), "text/plain", 415, None, "application/json"),
    ({**JOB, "negative_prompt": "x" * 70000}, "application/json", 413, None, "too large"),
]


@pytest.mark.parametrize("body, content_type, status, field, words", BAD_REQUESTS)
def test_bad_requests_get_their_status_and_a_message_that_says_what_to_change(server, body, content_type, status,
                                                                              field, words):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = server.session.post(server.api + "/jobs", data=data, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field and words in error["message"], error
    assert set(error) == {"code", "message", "field"}


@pytest.mark.parametrize("path, status", [
    ("/api/v1/jobs/../../etc/passwd", 404),
    ("/api/v1/jobs/..%2F..%2Fetc%2Fpasswd", 404),
    ("/api/v1/jobs/" + "0" * 32, 404),
    ("/api/v1/jobs/ABCDEF", 404),
    ("/api/v1/jobs/" + "a" * 32 + "/layers/foreground.png", 404),
    ("/api/v1/jobs/" + "a" * 32 + "/layers/..%2Fjob.png", 404),
    ("/api/v1/jobs?limit=0", 400),
    ("/api/v1/jobs?offset=-3", 400),
    ("/api/v1/nothing", 404),
])
def test_bad_paths_and_ids_get_json_errors(server, path, status):
    response = server.get(path)
    assert response.status_code == status and "error" in response.json()


def test_results_of_an_unfinished_job_are_a_conflict(server):
    job = server.submit(**{**JOB, "steps": 60})
    response = server.get(f"/api/v1/jobs/{job['id']}/layers/composite.png")
    assert response.status_code == 409 and "results exist only for succeeded jobs" in response.json()["error"][
        "message"]
    delete = server.session.delete(f"{server.api}/jobs/{job['id']}")
    assert delete.status_code == 409 and "cancel it first" in delete.json()["error"]["message"]
    server.session.post(f"{server.api}/jobs/{job['id']}/cancel")
    assert server.wait(job["id"])["state"] == "cancelled"


def test_token_is_required_everywhere_but_health(pipe, tmp_path):
    with live_server(tmp_path, pipe, token="s3cret-token") as guarded:
        assert guarded.get("/api/v1/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic s3cret-token"}):
            response = guarded.session.post(guarded.api + "/jobs", json=JOB, headers=headers)
            assert response.status_code == 401 and "token" in response.json()["error"]["message"]
            assert guarded.get("/api/v1/jobs", headers=headers).status_code == 401
            assert guarded.get("/api/v1/openapi.json", headers=headers).status_code == 401
        ok = guarded.session.post(guarded.api + "/jobs", json=JOB, headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 202
        guarded.session.headers["Authorization"] = "Bearer s3cret-token"
        assert guarded.wait(ok.json()["id"])["state"] == "succeeded"


def test_requests_to_other_host_names_are_refused_without_a_token(server):
    # DNS rebinding: a web page's name resolving to 127.0.0.1 must not reach the API
    response = server.get("/api/v1/jobs", headers={"Host": "evil.example:7860"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden_host"
    assert "Access-Control-Allow-Origin" not in server.get("/api/v1/health",
                                                           headers={"Origin": "http://evil.example"}).headers


def test_binding_off_loopback_needs_a_token(tmp_path):
    from server import ServerConfig
    from server.cli import main

    with pytest.raises(ValueError, match="--token"):
        ServerConfig(data_dir=tmp_path, host="0.0.0.0")
    assert ServerConfig(data_dir=tmp_path, host="0.0.0.0", token="long-enough").token
    assert main(["--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 2
    assert main(["--model", str(tmp_path / "missing"), "--data-dir", str(tmp_path)]) == 2


def test_openapi_document_describes_the_job_request(server):
    document = server.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    request = document["components"]["schemas"]["JobRequest"]
    assert request["required"] == ["background_prompt"]
    assert request["oneOf"] == [{"required": ["foreground_prompt"]}, {"required": ["objects"]}]
    assert request["properties"]["objects"]["maxItems"] == 8
    assert "BackgroundsRequest" in document["components"]["schemas"]
    assert "/jobs/{job_id}/backgrounds" in document["paths"]
    assert request["properties"]["width"]["maximum"] == 2048 and "tau_bg" in request["properties"]
    assert "num_inference_steps" not in request["properties"]
    assert set(document["paths"]) >= {"/health", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/cancel",
                                      "/jobs/{job_id}/layers/{name}.png", "/jobs/{job_id}/result.psd"}


def test_a_model_that_cannot_load_is_reported_and_jobs_get_503(tmp_path):
    import time

    from server import ServerConfig, create_app

    missing = tmp_path / "no-such-model"
    app = create_app(ServerConfig(data_dir=tmp_path / "data", model=str(missing)))
    engine = app.extensions["taue"]["engine"]
    deadline = time.monotonic() + 60
    while engine.state == "loading" and time.monotonic() < deadline:
        time.sleep(0.05)
    client = app.test_client()
    health = client.get("/api/v1/health").get_json()
    assert health["state"] == "error" and str(missing) in health["error"]
    response = client.post("/api/v1/jobs", json=JOB)
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "model_error"
    app.extensions["taue"]["jobs"].stop()


def test_a_job_warns_of_prompt_words_the_model_does_not_know_and_runs(pipe, tmp_path):
    pipe.known_words = frozenset("a an red star on blue striped background".split())
    try:
        with live_server(tmp_path, pipe) as served:
            job = served.submit(**{**JOB, "foreground_prompt": "a red vintage bicycle"})
            assert len(job["warnings"]) == 1 and "vintage, bicycle" in job["warnings"][0]
            done = served.wait(job["id"])
            assert done["state"] == "succeeded" and "vintage, bicycle" in done["warnings"][0]
            # once it succeeded, what its foreground run found: tiny-random paints no key backdrop
            assert any("the key backdrop did not form" in w for w in done["warnings"][1:]), done["warnings"]
            assert served.submit(**JOB)["warnings"] == []
    finally:
        pipe.known_words = None


def test_phase_one_warnings_come_from_the_job_record_not_its_taue_json(pipe, tmp_path):
    """The warnings a finished job shows are the ones its runner recorded when it finished (state.json, so a restart
    keeps them): its taue.json changed or gone does not change them, and a job an older version saved (no
    `warnings` in its state.json) loads with none."""
    with live_server(tmp_path, pipe) as first:
        done = first.wait(first.submit(**JOB)["id"])
        assert done["state"] == "succeeded"
        found = done["warnings"]
        assert any("the key backdrop did not form" in w for w in found), found  # tiny-random paints no backdrop
        state_file = tmp_path / "jobs" / done["id"] / "state.json"
        assert json.loads(state_file.read_text())["warnings"] == found  # JOB's words are all known: no prompt's
        taue_json = tmp_path / "jobs" / done["id"] / "result" / "taue.json"
        taue_json.write_text(json.dumps({**json.loads(taue_json.read_text()), "warnings": ["not what phase 1 said"]}))
        assert first.job(done["id"])["warnings"] == found
        taue_json.unlink()
        assert first.job(done["id"])["warnings"] == found
        listed = {job["id"]: job for job in first.get("/api/v1/jobs").json()["jobs"]}
        assert listed[done["id"]]["warnings"] == found
    with live_server(tmp_path, pipe) as second:  # a restart reads them back from state.json
        assert second.job(done["id"])["warnings"] == found
    state = json.loads(state_file.read_text())
    del state["warnings"]  # as an older version wrote it
    state_file.write_text(json.dumps(state))
    with live_server(tmp_path, pipe) as third:
        again = third.job(done["id"])
        assert again["state"] == "succeeded" and again["warnings"] == []
