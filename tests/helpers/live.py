"""A real taue-server in this process (waitress on a free loopback port) for tests, benchmarks and plug-in checks;
for the queue, a redis-server of their own and taue-worker processes, started as a person would start them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from server.config import ServerConfig
from server.jobs import FINISHED
from server.serve import build_server

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, app, port: int):
        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self.api = self.url + "/api/v1"
        self.session = requests.Session()

    @property
    def jobs(self):
        return self.app.extensions["taue"]["jobs"]

    def submit(self, **body) -> dict:
        response = self.session.post(self.api + "/jobs", json=body, timeout=30)
        assert response.status_code == 202, response.text
        return response.json()

    def job(self, job_id: str) -> dict:
        return self.session.get(f"{self.api}/jobs/{job_id}", timeout=30).json()

    def wait(self, job_id: str, timeout: float = 120, states=FINISHED) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["state"] in states:
                return job
            time.sleep(0.02)
        raise AssertionError(f"job {job_id} did not reach {states} in {timeout} s: {job}")

    def get(self, path: str, **kwargs):
        return self.session.get(self.url + path, timeout=30, **kwargs)


@contextmanager
def live_server(data_dir: Path, engine, cancel_at_exit: bool = True, **settings):
    """Serve ServerConfig(data_dir, **settings) with `engine` as taue-server does (serve.build_server) on a free
    loopback port until the block ends; the worker is stopped too, cancelling what is left unless `cancel_at_exit`
    is False (a front that goes away while its queue's workers go on)."""
    app, server = build_server(ServerConfig(data_dir=data_dir, **settings), engine=engine, port=0)
    closing = threading.Event()

    def serve() -> None:
        try:
            server.run()
        except (OSError, ValueError):  # the socket closed under the loop at shutdown
            if not closing.is_set():
                raise

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    live = LiveServer(app, server.effective_port)
    try:
        yield live
    finally:
        live.jobs.stop(cancel=cancel_at_exit)  # no job of this server may go on using a shared pipeline
        closing.set()
        live.session.close()
        server.close()
        channels = getattr(server, "_map", None) or getattr(server, "map", {})
        for channel in list(channels.values()):  # kept-alive connections keep waitress's loop running
            channel.close()
        thread.join(timeout=10)


class LocalRedis:
    """Debian's redis-server (`binary`) on a free loopback port, its data in `folder` as an append-only file, so
    that stopping and starting it again keeps the queue (as a studio's Redis with --appendonly yes does)."""

    def __init__(self, binary: str, folder: Path):
        self.binary, self.folder, self.port = binary, folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--save", "", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.binary} did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None


@contextmanager
def worker_process(url: str, name: str, log: Path, model: str = "tiny-random", threads: int = 1,
                   extra: tuple[str, ...] = ("--preview-seconds", "0")):
    """A taue-worker process on the CPU with `threads` torch threads, as `taue-worker` runs (python -m
    server.worker); its output goes to `log`; stopped with SIGTERM (then killed) at the end of the block."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "server.worker", "--queue", url, "--model", model,
                                    "--device", "cpu", "--name", name, *extra],
                                   cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM (a worker finishes its RQ bookkeeping), then SIGKILL after `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


TOY = REPO / "taue_engine" / "toy" / "model"
LORAS = REPO / "tests" / "data" / "loras"


def toy_models_folder(root: Path, names: tuple[str, ...] = ("toy-a", "toy-b")) -> Path:
    """A models folder (taue-server --models-dir) holding exported copies of the toy under `names`."""
    folder = root / "models"
    folder.mkdir(parents=True)
    for name in names:
        shutil.copytree(TOY, folder / name)
    return folder


@contextmanager
def choices_server(root: Path, **settings):
    """A server the plug-ins choose on: two toy copies in a models folder (toy-a loaded at start), the toy's pink
    LoRA in its --lora-dir, and a style file `pink` (the LoRA at 0.8, dpmpp_2m); it loads the model itself."""
    data = root / "data"
    (data / "styles").mkdir(parents=True)
    (data / "styles" / "pink.json").write_text(json.dumps({
        "description": "the pink LoRA", "loras": [{"name": "toy-pink", "scale": 0.8}], "scheduler": "dpmpp_2m"}))
    with live_server(data, None, models_dir=toy_models_folder(root), model="toy-a", lora_dir=LORAS, device="cpu",
                     **settings) as live:
        deadline = time.monotonic() + 120
        while live.get("/api/v1/health").json()["state"] != "ready":
            assert time.monotonic() < deadline, "the toy did not load"
            time.sleep(0.1)
        yield live
