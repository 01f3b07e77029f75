"""taue-server --queue with taue-workers behind Redis (RQ), on loopback: Debian's redis-server started on a free
port, a front built as taue-server builds it, and two CPU workers (tiny-random) as separate processes.

Needs `redis-server` (`run.sh test` installs it as root, as it does Krita); CI sets TAUE_REQUIRE_EDITORS=1, so a
missing one fails there instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from server.live import live_server

REPO = Path(__file__).resolve().parents[1]
JOB = {"foreground_prompt": "a red star", "background_prompt": "a blue striped background", "width": 64,
       "height": 64, "steps": 4}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A redis-server of the test's own, on loopback, with its data in a folder (kept across restarts)."""

    def __init__(self, folder: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed: apt-get install redis-server (run.sh test does, as root)"
            if os.environ.get("TAUE_REQUIRE_EDITORS") == "1":
                pytest.fail(message)
            pytest.skip(message)
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
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None


@contextmanager
def worker(url: str, name: str, log: Path):
    """A taue-worker process on the CPU (tiny-random); killed at the end of the block if still running."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "server.worker", "--queue", url, "--model", "tiny-random",
                                    "--device", "cpu", "--name", name, "--preview-seconds", "0"],
                                   cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for(predicate, timeout=120.0, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = Redis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def two_workers(redis_server, tmp_path_factory):
    logs = tmp_path_factory.mktemp("worker-logs")
    with worker(redis_server.url, "w1", logs / "w1.log") as first, \
            worker(redis_server.url, "w2", logs / "w2.log") as second:
        yield first, second, logs


def test_jobs_run_on_both_workers_and_come_back_whole(redis_server, two_workers, tmp_path):
    with live_server(tmp_path, None, queue=redis_server.url) as front:
        health = wait_for(lambda: (lambda h: h if len(h.get("workers") or []) == 2 else None)(
            front.session.get(front.api + "/health", timeout=10).json()), timeout=180)
        assert health["state"] == "ready" and health["model"] == "tiny-random"
        assert {w["name"] for w in health["workers"]} == {"w1", "w2"}
        assert all(w["device"] == "cpu" and w["state"] in ("idle", "busy") for w in health["workers"])

        with ThreadPoolExecutor(8) as pool:
            jobs = list(pool.map(lambda seed: front.submit(**JOB, seed=seed), range(8)))
        done = [front.wait(job["id"], timeout=300) for job in jobs]
        assert [job["state"] for job in done] == ["succeeded"] * 8, [job["error"] for job in done]
        assert {job["timings"]["worker"] for job in done} == {"w1", "w2"}  # spread over both
        for job in done:
            for name in ("foreground", "background", "composite"):
                layer = front.get(job["urls"]["layers"][name])
                assert layer.status_code == 200 and layer.content[:4] == b"\x89PNG"
            assert front.get(job["urls"]["psd"]).status_code == 200
        # the same seed gives the same layers as a single-process server would: the job travels whole
        again = front.wait(front.submit(**JOB, seed=3)["id"], timeout=300)
        assert front.get(again["urls"]["layers"]["composite"]).content == \
            front.get(done[3]["urls"]["layers"]["composite"]).content

        # a new background for a result, on whichever worker takes it
        parent = done[0]
        child = front.session.post(front.api + f"/jobs/{parent['id']}/backgrounds",
                                   json={"background_prompts": ["a white background"], "seeds": [5]},
                                   timeout=30).json()["jobs"][0]
        child = front.wait(child["id"], timeout=300)
        assert child["state"] == "succeeded"
        assert front.get(child["urls"]["layers"]["foreground"]).content == \
            front.get(parent["urls"]["layers"]["foreground"]).content  # the objects kept, unchanged


def test_cancel_while_queued_and_while_running(redis_server, two_workers, tmp_path):
    with live_server(tmp_path, None, queue=redis_server.url) as front:
        wait_for(lambda: front.session.get(front.api + "/health", timeout=10).json()["state"] == "ready", 180)
        jobs = [front.submit(**{**JOB, "steps": 200, "seed": n}) for n in range(3)]  # two workers: one waits
        states = wait_for(lambda: (lambda s: s if "running" in s and "queued" in s else None)(
            [front.job(j["id"])["state"] for j in jobs]), timeout=120, every=0.02)
        queued, running = jobs[states.index("queued")], jobs[states.index("running")]
        answer = front.session.post(front.api + f"/jobs/{queued['id']}/cancel", timeout=30)
        assert answer.status_code == 200 and answer.json()["state"] == "cancelled"

        wait_for(lambda: (front.job(running["id"])["progress"] or {}).get("step", 0) >= 2)
        started = time.monotonic()
        assert front.session.post(front.api + f"/jobs/{running['id']}/cancel", timeout=30).status_code == 202
        stopped = front.wait(running["id"], timeout=60)
        assert stopped["state"] == "cancelled" and time.monotonic() - started < 15
        for job in jobs:
            if not front.job(job["id"])["state"] in ("cancelled", "succeeded"):
                front.session.post(front.api + f"/jobs/{job['id']}/cancel", timeout=30)
                front.wait(job["id"], timeout=60)
        time.sleep(1.0)
        assert front.job(queued["id"])["state"] == "cancelled" and front.job(queued["id"])["started_at"] is None


def test_front_restart_and_redis_restart_lose_nothing(redis_server, two_workers, tmp_path):
    data = tmp_path / "front-data"
    with live_server(data, None, cancel_at_exit=False, queue=redis_server.url) as front:  # goes away, jobs go on
        wait_for(lambda: front.session.get(front.api + "/health", timeout=10).json()["state"] == "ready", 180)
        finished = front.wait(front.submit(**JOB, seed=1)["id"], timeout=300)
        running = front.submit(**{**JOB, "steps": 80, "seed": 2})
        wait_for(lambda: front.job(running["id"])["state"] == "running", timeout=120)
    with live_server(data, None, queue=redis_server.url) as again:
        assert again.job(finished["id"])["state"] == "succeeded"
        assert again.get(finished["urls"]["layers"]["composite"]).status_code == 200
        assert again.wait(running["id"], timeout=300)["state"] == "succeeded"  # followed again, collected

        redis_server.stop()
        refused = again.session.post(again.api + "/jobs", json={**JOB, "seed": 3}, timeout=30)
        assert refused.status_code == 503 and "Redis" in refused.json()["error"]["message"]
        assert again.job(finished["id"])["state"] == "succeeded"  # what the front has is still served
        redis_server.start()  # with its data (append-only file): the queue goes on
        wait_for(lambda: again.session.get(again.api + "/health", timeout=10).json()["state"] == "ready", 120)
        job = again.wait(again.submit(**JOB, seed=3)["id"], timeout=300)
        assert job["state"] == "succeeded"


def test_a_worker_killed_mid_job_loses_no_job(redis_server, two_workers, tmp_path):
    """SIGKILL the worker running a job (last in this file: it kills one of the module's two): within the heartbeat
    TTL the job is abandoned, tried again on the other worker, and succeeds."""
    from server.queue_names import HEARTBEAT_TTL_S

    processes = {"w1": two_workers[0], "w2": two_workers[1]}
    with live_server(tmp_path, None, queue=redis_server.url) as front:
        wait_for(lambda: len(front.session.get(front.api + "/health", timeout=10).json().get("workers") or []) == 2,
                 timeout=180)
        job = front.submit(**{**JOB, "steps": 60, "seed": 4})
        wait_for(lambda: (front.job(job["id"])["progress"] or {}).get("step", 0) >= 2, timeout=120)
        from rq.job import Job as RQJob

        victim = RQJob.fetch(job["id"], connection=front.app.extensions["taue"]["jobs"].redis).worker_name
        processes[victim].send_signal(signal.SIGKILL)
        processes[victim].wait(timeout=10)
        killed = time.monotonic()
        done = front.wait(job["id"], timeout=HEARTBEAT_TTL_S + 180)
        assert done["state"] == "succeeded", done["error"]
        assert done["timings"]["worker"] not in (victim, None)  # the other worker ran it again
        assert time.monotonic() - killed < HEARTBEAT_TTL_S + 60  # the README's bound: the TTL and one more run


def test_the_commands_take_the_queue_and_say_when_redis_is_not_there():
    from server.cli import build_parser

    assert build_parser().parse_args(["--queue", "redis://127.0.0.1:6379/0"]).queue == "redis://127.0.0.1:6379/0"
    assert build_parser().parse_args([]).queue is None  # the single-process server by default
    gone = f"redis://127.0.0.1:{free_port()}/0"
    answer = subprocess.run([sys.executable, "-m", "server.worker", "--queue", gone, "--model", "tiny-random"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 2 and f"no Redis answers at --queue {gone}" in answer.stderr
