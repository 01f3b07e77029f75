"""A real taue-server in this process (waitress on a free loopback port) for tests, benchmarks and plug-in checks."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from .config import ServerConfig
from .jobs import FINISHED
from .serve import build_server



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
        server.close()
        thread.join(timeout=10)
