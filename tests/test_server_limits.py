"""Body limits through `taue-server` itself (a subprocess on loopback), read by the clients people use."""

import base64
import io
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    port = _free_port()
    command = [str(Path(sys.executable).with_name("taue-server")), "--model", "tiny-random", "--port", str(port),
               "--data-dir", str(tmp_path_factory.mktemp("limits"))]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/health", timeout=2).json()["state"] == "ready":
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.3)
        else:
            raise AssertionError("taue-server did not get ready in 120 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _noise_png(side: int) -> str:
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 4), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _urllib_post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_real_layer_upload_of_2_mb_is_taken(served):
    png = _noise_png(640)
    assert len(png) > 2_000_000
    body = {"objects": [{"prompt": "a red star", "png": png}], "background_prompts": ["a white background"],
            "steps": 2}
    response = requests.post(served + "/backgrounds", json=body, timeout=60)
    assert response.status_code == 202, response.text
    for job in response.json()["jobs"]:
        requests.post(f"{served}/jobs/{job['id']}/cancel", timeout=30)


@pytest.mark.parametrize("route, size, words", [("/jobs", 5_000_000, "at most 64 KiB"),
                                                ("/backgrounds", 70_000_000, "at most 64 MiB")])
def test_a_body_over_the_routes_limit_is_a_json_413_every_client_reads(served, route, size, words):
    body = json.dumps({"foreground_prompt": "a red star", "background_prompt": "x" * size}).encode()
    response = requests.post(served + route, data=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 413 and response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "body_too_large" and words in error["message"], error
    status, payload = _urllib_post(served + route, body)
    assert status == 413 and payload["error"]["code"] == "body_too_large"
