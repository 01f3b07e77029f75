"""Body limits through `taue-server` itself (a subprocess on loopback), read by the clients people use."""

import base64
import io
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

pytestmark = pytest.mark.e2e  # taue-server processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, data_dir: Path) -> tuple[str, subprocess.Popen]:
    """`taue-server --model MODEL` on a free loopback port, once /health says ready: (API url, process)."""
    port = _free_port()
    command = [str(Path(sys.executable).with_name("taue-server")), "--model", model, "--port", str(port),
               "--data-dir", str(data_dir)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/api/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/health", timeout=2).json()["state"] == "ready":
                return url, process
        except requests.ConnectionError:
            pass
        if process.poll() is not None:
            raise AssertionError(process.stdout.read())
        time.sleep(0.3)
    process.terminate()
    raise AssertionError("taue-server did not get ready in 120 s")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    url, process = start_server("tiny-random", tmp_path_factory.mktemp("limits"))
    try:
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
    if shutil.which("curl"):
        with tempfile.NamedTemporaryFile(suffix=".json") as file:
            file.write(body)
            file.flush()
            done = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-H", "Content-Type: application/json",
                                   "--data-binary", f"@{file.name}", served + route],
                                  capture_output=True, text=True, timeout=60)
        text, _, code = done.stdout.rpartition("\n")
        assert done.returncode == 0 and code == "413" and json.loads(text)["error"]["code"] == "body_too_large"


def test_the_servers_log_holds_its_own_lines_only(tmp_path):
    """The toy loads as SDXL checkpoints do (from_pretrained): no loading bars, escape codes or library warnings."""
    _, process = start_server("toy", tmp_path)
    time.sleep(1.5)  # the "model ready" line comes from a watcher that looks every 0.2 s
    process.terminate()
    log = process.communicate(timeout=30)[0]
    assert "taue-server: model ready" in log, log
    assert "\x1b[" not in log and "torchvision" not in log and "Loading pipeline components" not in log, log
