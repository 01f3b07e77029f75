"""taue-server --queue with taue-workers behind Redis (RQ), on loopback: Debian's redis-server started on a free
port, a front built as taue-server builds it, and two CPU workers (tiny-random) as separate processes.

Needs `redis-server` (`run.sh test` installs it as root, as it does Krita); CI sets TAUE_REQUIRE_EDITORS=1, so a
missing one fails there instead of skipping.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers.live import REPO, LocalRedis, free_port, live_server, worker_process
from tests.required import unavailable

pytestmark = pytest.mark.e2e  # Redis, taue-worker and taue-server processes

JOB = {"foreground_prompt": "a red star", "background_prompt": "a blue striped background", "width": 64,
       "height": 64, "steps": 4}


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
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed: apt-get install redis-server (run.sh test does, as root)")
    server = LocalRedis(binary, tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def two_workers(redis_server, tmp_path_factory):
    logs = tmp_path_factory.mktemp("worker-logs")
    with worker_process(redis_server.url, "w1", logs / "w1.log") as first, \
            worker_process(redis_server.url, "w2", logs / "w2.log") as second:
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
        deadline, overlaps = time.monotonic() + 300, []
        while time.monotonic() < deadline and not all(front.job(j["id"])["state"] == "succeeded" for j in jobs):
            busy = [w["job"] for w in front.session.get(front.api + "/health", timeout=10).json()["workers"]
                    if w["job"]]
            overlaps += [job_id for job_id in set(busy) if busy.count(job_id) > 1]
            time.sleep(0.05)
        assert not overlaps, f"jobs run by two workers at once: {overlaps}"  # each job is handed over once
        done = [front.wait(job["id"], timeout=300) for job in jobs]
        assert [job["state"] for job in done] == ["succeeded"] * 8, [job["error"] for job in done]
        assert {job["timings"]["worker"] for job in done} == {"w1", "w2"}  # spread over both
        for job in done:  # phase 1's warnings come back in the worker's outcome, into the job's state.json
            kept = json.loads((tmp_path / "jobs" / job["id"] / "state.json").read_text())["warnings"]
            assert any("the key backdrop did not form" in w for w in kept), kept  # tiny-random paints no backdrop
            assert job["warnings"][-len(kept):] == kept
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
        # both workers busy, so that no worker can take the queued job between the look and the cancel
        states = wait_for(lambda: (lambda s: s if s.count("running") == 2 and "queued" in s else None)(
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
            if front.job(job["id"])["state"] not in ("cancelled", "succeeded"):
                front.session.post(front.api + f"/jobs/{job['id']}/cancel", timeout=30)
                front.wait(job["id"], timeout=60)
        time.sleep(1.0)
        assert front.job(queued["id"])["state"] == "cancelled" and front.job(queued["id"])["started_at"] is None


def test_front_restart_and_redis_restart_lose_nothing(redis_server, two_workers, tmp_path):
    data = tmp_path / "front-data"
    with live_server(data, None, cancel_at_exit=False, queue=redis_server.url) as front:  # goes away, jobs go on
        wait_for(lambda: front.session.get(front.api + "/health", timeout=10).json()["state"] == "ready", 180)
        finished = front.wait(front.submit(**JOB, seed=1)["id"], timeout=300)
        long = [front.submit(**{**JOB, "steps": 80, "seed": seed}) for seed in (2, 5, 6)]  # two workers: one waits
        states = wait_for(lambda: (lambda s: s if s.count("running") == 2 and "queued" in s else None)(
            [front.job(j["id"])["state"] for j in long]), timeout=120, every=0.05)
    with live_server(data, None, queue=redis_server.url) as again:
        assert again.job(finished["id"])["state"] == "succeeded"
        assert again.get(finished["urls"]["layers"]["composite"]).status_code == 200
        for job, state in zip(long, states):  # the running ones followed again, the queued one run: all collected
            assert again.wait(job["id"], timeout=300)["state"] == "succeeded", state

        redis_server.stop()
        refused = again.session.post(again.api + "/jobs", json={**JOB, "seed": 3}, timeout=30)
        assert refused.status_code == 503 and "Redis" in refused.json()["error"]["message"]
        assert again.job(finished["id"])["state"] == "succeeded"  # what the front has is still served
        redis_server.start()  # with its data (append-only file): the queue goes on
        wait_for(lambda: again.session.get(again.api + "/health", timeout=10).json()["state"] == "ready", 120)
        job = again.wait(again.submit(**JOB, seed=3)["id"], timeout=300)
        assert job["state"] == "succeeded"


def test_a_job_that_fails_ends_failed_with_the_reason_never_running(redis_server, tmp_path):
    """On a queue of its own (Redis database 1; the module's workers serve 0), three workers: a job that fails on
    its worker (a LoRA the front has and the workers lack) ends failed at once with the worker's reason, not tried
    again; a job whose worker dies on every try (SIGKILL, three times) ends failed saying so, not stuck running."""
    from rq.job import Job as RQJob

    from server.queue_names import HEARTBEAT_TTL_S, TRIES

    url = redis_server.url.rsplit("/", 1)[0] + "/1"
    names = [f"x{n}" for n in range(1, TRIES + 1)]
    with worker_process(url, names[0], tmp_path / "x1.log") as x1, \
            worker_process(url, names[1], tmp_path / "x2.log") as x2, \
            worker_process(url, names[2], tmp_path / "x3.log") as x3, \
            live_server(tmp_path / "front", None, queue=url, lora_dir=REPO / "tests" / "data" / "loras") as front:
        processes = dict(zip(names, (x1, x2, x3)))
        wait_for(lambda: len(front.session.get(front.api + "/health", timeout=10).json().get("workers") or [])
                 == TRIES, timeout=180)
        failing = front.submit(**JOB, seed=1, loras=[{"name": "toy-pink", "scale": 1.0}])
        failed = front.wait(failing["id"], timeout=120)
        assert failed["state"] == "failed"
        assert "LoRA 'toy-pink' is not on taue-worker x" in failed["error"]["message"], failed["error"]

        job = front.submit(**{**JOB, "steps": 200, "seed": 2})
        redis = front.jobs.runner.redis
        started = time.monotonic()
        for attempt in range(TRIES):
            wait_for(lambda: (front.job(job["id"])["progress"] or {}).get("step", 0) >= 1
                     and front.job(job["id"])["state"] == "running"
                     and RQJob.fetch(job["id"], connection=redis).worker_name in processes, timeout=120, every=0.05)
            victim = RQJob.fetch(job["id"], connection=redis).worker_name
            processes.pop(victim).send_signal(signal.SIGKILL)
            if attempt < TRIES - 1:  # the job is given to a living worker after the heartbeat TTL
                wait_for(lambda: RQJob.fetch(job["id"], connection=redis).worker_name in processes
                         and RQJob.fetch(job["id"], connection=redis).get_status() == "started",
                         timeout=HEARTBEAT_TTL_S + 60)
        done = front.wait(job["id"], timeout=HEARTBEAT_TTL_S + 60)
        assert done["state"] == "failed" and f"tried {TRIES} times" in done["error"]["message"], done["error"]
        assert time.monotonic() - started < TRIES * (HEARTBEAT_TTL_S + 30)


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

        victim = RQJob.fetch(job["id"], connection=front.jobs.runner.redis).worker_name
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


def test_the_scaleout_benchmark_runs_and_reports_every_mode(redis_server, tmp_path):
    """lab/benchmarks/scaleout.py, small: it starts its own Redis, fronts and workers, and reports each mode."""
    out = tmp_path / "scaleout.json"
    done = subprocess.run([sys.executable, "-m", "lab.benchmarks.scaleout", "--model", "tiny-random", "--steps", "2",
                           "--jobs", "2", "--rounds", "1", "--workers", "2", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = {row["mode"]: row for row in json.loads(out.read_text())["results"]}
    assert set(results) == {"single", "queue-2"}
    assert results["queue-2"]["failed"] == 0 and sum(results["queue-2"]["spread"].values()) == 2
    assert results["single"]["spread"] == {"server": 2} and results["queue-2"]["alone_handoff_median_s"] < 5
    assert "| queue-2 | 1 |" in done.stdout and "failed jobs: 0" in done.stdout



def test_two_models_each_on_its_own_worker_and_an_unserved_one_is_a_409(redis_server, two_workers, tmp_path):
    """Two tiny-random workers and one toy worker: /health lists both models; a job lands on a worker of the model
    it names (or of the front's --model when it names none), its new backgrounds too; a model no worker serves is a
    409 that lists the served ones, and a path-like name a 400."""
    logs = tmp_path / "logs"
    logs.mkdir()
    with worker_process(redis_server.url, "toy-worker", logs / "toy.log", model="toy"), \
            live_server(tmp_path / "front", None, queue=redis_server.url, model="toy") as front:
        def both_served():
            health = front.session.get(front.api + "/health", timeout=10).json()
            return health if len(health.get("models") or []) == 2 else None

        health = wait_for(both_served, timeout=180)
        assert health["model"] == "toy" and health["state"] == "ready"
        assert [(m["name"], m["kind"], m["loaded"], m["default"]) for m in health["models"]] == [
            ("toy", "worker", True, True), ("tiny-random", "worker", True, False)]
        served_by = {w["name"]: w["model"] for w in health["workers"]}  # w1 may be gone: an earlier test kills one
        assert served_by.pop("toy-worker") == "toy" and set(served_by.values()) == {"tiny-random"}
        unserved = front.session.post(front.api + "/jobs", json={**JOB, "model": "photo"}, timeout=30)
        assert unserved.status_code == 409, unserved.text
        error = unserved.json()["error"]
        assert error["code"] == "model_not_served" and error["field"] == "model"
        assert "served now: tiny-random, toy" in error["message"]
        for value in ("../toy", "a/b", 5):
            refused = front.session.post(front.api + "/jobs", json={**JOB, "model": value}, timeout=30)
            assert refused.status_code == 400 and refused.json()["error"]["field"] == "model", refused.text

        named = ["toy", "tiny-random", "toy", "tiny-random"]
        jobs = [front.submit(**JOB, seed=n, model=model) for n, model in enumerate(named)]
        plain = front.submit(**JOB, seed=9)  # names none: the front's --model, recorded on the job
        assert plain["request"]["model"] == "toy"
        for job, model in zip([*jobs, plain], [*named, "toy"]):
            done = front.wait(job["id"], timeout=300)
            assert done["state"] == "succeeded", done["error"]
            assert (done["timings"]["worker"] == "toy-worker") == (model == "toy"), (model, done["timings"])
            assert front.get(done["urls"]["metadata"]).json()["model"] == model

        child = front.session.post(front.api + f"/jobs/{jobs[0]['id']}/backgrounds",
                                   json={"background_prompts": ["a white background"], "seeds": [5]},
                                   timeout=30).json()["jobs"][0]
        assert child["request"]["model"] == "toy"
        child = front.wait(child["id"], timeout=300)
        assert child["state"] == "succeeded" and child["timings"]["worker"] == "toy-worker"
