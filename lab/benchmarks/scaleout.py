"""Throughput of one, two and three taue-workers behind a queue against the single-process server, in one run,
and what the queue adds to one job's latency.

    python -m lab.benchmarks.scaleout [--model toy] [--size 64] [--steps 20] [--jobs 12] [--rounds 5] [--workers 1 2 3]

Each mode serves the same jobs (prompts, sizes, seeds) through `taue-server` processes on loopback ports, as a
person runs them, polled from this process as a plug-in polls: `single` is taue-server without --queue (the model
in its worker thread, torch's threads as it sets them); `queue-N` is taue-server --queue on a redis-server of its
own (Debian's, on a free port) with N taue-worker processes on the CPU, each given an equal share of the cores (at
least one thread). In each mode a warm-up job per
worker runs first (not counted); then `--rounds` jobs one at a time (the latency of a job alone: submit until the
poll sees it succeeded, and the engine's own run time inside it), then `--jobs` jobs submitted at once
(throughput: jobs finished per minute from the first submit to the last result, and how they spread over the
workers). A failed job is counted and printed, never dropped. On a machine with fewer cores than workers the
workers share the cores: the numbers say what this machine does, not what N GPUs would.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests

from server.jobs import FINISHED

REPO = Path(__file__).resolve().parents[2]

POLL_ALONE_S = 0.02  # a job alone: polled finely, its latency is the point
POLL_BATCH_S = 0.2  # many jobs: polled as a plug-in polls (the poller shares the machine's cores with the workers)
REQUEST = {"foreground_prompt": "a red star", "background_prompt": "a blue striped background"}


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextmanager
def taue_server(data: Path, *options: str):
    """`taue-server` (python -m server.cli) on a free loopback port, its log in `data`, seen through its HTTP API as
    the plug-ins see it (live.LiveServer without an app in this process); stopped at the end."""
    from tests.helpers.live import LiveServer, free_port, stop_process

    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(data / "server.log", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "server.cli", "--port", str(port), "--data-dir",
                                    str(data / "jobs"), "--no-previews", *options],
                                   cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield LiveServer(None, port)
    finally:
        stop_process(process, timeout=60)


def wait_all(front, ids: list[str], timeout: float, every: float = POLL_ALONE_S) -> dict[str, tuple[dict, float]]:
    """Poll the jobs until each has finished; returns each job's record and the time the poll first saw it end."""
    seen: dict[str, tuple[dict, float]] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(ids) - len(seen)} jobs did not finish in {timeout:.0f} s")
        for job_id in ids:
            if job_id not in seen:
                job = front.job(job_id)
                if job["state"] in FINISHED:
                    seen[job_id] = (job, time.perf_counter())
        time.sleep(every)
    return seen


def wait_ready(front, workers: int, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            health = front.session.get(front.api + "/health", timeout=10).json()
        except requests.ConnectionError:  # still starting
            time.sleep(0.2)
            continue
        if health["state"] == "ready" and len(health.get("workers") or [None] * workers) >= workers:
            return health
        if health["state"] == "error" and not workers:
            raise RuntimeError(f"the server could not load the model: {health.get('error')}")
        time.sleep(0.2)
    raise RuntimeError(f"the front was not ready with {workers} workers in {timeout} s")


def measure(front, args, workers: int) -> dict:
    """Warm-up, latency alone, then throughput, on a front that is ready."""
    job = {**REQUEST, "width": args.size, "height": args.size, "steps": args.steps}
    warm = [front.submit(**job, seed=1000 + n)["id"] for n in range(max(1, workers))]
    wait_all(front, warm, args.timeout, every=POLL_BATCH_S)

    alone, engine, failed = [], [], 0
    for seed in range(args.rounds):
        started = time.perf_counter()
        record, ended = wait_all(front, [front.submit(**job, seed=seed)["id"]], args.timeout).popitem()[1]
        if record["state"] != "succeeded":
            failed += 1
            print(f"  latency round {seed}: {record['state']}: {record.get('error')}", file=sys.stderr)
            continue
        alone.append(ended - started)
        engine.append(record["timings"]["run_s"])

    started = time.perf_counter()
    with ThreadPoolExecutor(min(args.jobs, 16)) as pool:
        submitted = list(pool.map(lambda seed: (front.submit(**job, seed=100 + seed)["id"], time.perf_counter()),
                                  range(args.jobs)))
    submit_times = dict(submitted)
    seen = wait_all(front, list(submit_times), args.timeout * args.jobs, every=POLL_BATCH_S)
    last = max(ended for _, ended in seen.values())
    latencies, spread = [], {}
    for job_id, (record, ended) in seen.items():
        if record["state"] != "succeeded":
            failed += 1
            print(f"  job {job_id}: {record['state']}: {record.get('error')}", file=sys.stderr)
            continue
        latencies.append(ended - submit_times[job_id])
        worker = record["timings"].get("worker") or "server"
        spread[worker] = spread.get(worker, 0) + 1
    wall = last - started
    done = len(latencies)
    return {"workers": workers, "failed": failed, "wall_s": round(wall, 3),
            "jobs_per_minute": round(60.0 * done / wall, 3),
            "batch_latency_median_s": round(statistics.median(latencies), 3) if latencies else None,
            "batch_latency_max_s": round(max(latencies), 3) if latencies else None,
            "alone_median_s": round(statistics.median(alone), 3) if alone else None,
            "alone_engine_median_s": round(statistics.median(engine), 3) if engine else None,
            "alone_handoff_median_s": round(statistics.median(a - e for a, e in zip(alone, engine)), 3)
            if alone else None,
            "spread": dict(sorted(spread.items()))}


def run_single(args, data: Path) -> dict:
    import torch

    with taue_server(data, "--model", args.model, "--device", "cpu") as front:
        wait_ready(front, 0)
        return {"mode": "single", "threads_per_process": torch.get_num_threads(), **measure(front, args, 0)}


def run_queue(args, data: Path, workers: int, redis_binary: str) -> dict:
    from tests.helpers.live import LocalRedis, worker_process

    threads = max(1, cores() // workers)
    redis = LocalRedis(redis_binary, data / "redis")
    (data / "redis").mkdir(parents=True)
    redis.start()
    try:
        with ExitStack() as stack:
            for n in range(workers):
                stack.enter_context(worker_process(redis.url, f"w{n + 1}", data / f"w{n + 1}.log", model=args.model,
                                                   threads=threads, extra=("--no-previews",)))
            front = stack.enter_context(taue_server(data / "front", "--queue", redis.url))
            wait_ready(front, workers)
            return {"mode": f"queue-{workers}", "threads_per_process": threads, **measure(front, args, workers)}
    finally:
        redis.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=12, help="jobs submitted at once per mode (throughput)")
    parser.add_argument("--rounds", type=int, default=5, help="jobs one at a time per mode (latency)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--timeout", type=float, default=600, help="seconds one job may take")
    parser.add_argument("--out", type=Path, default=None, help="write the results here as JSON")
    args = parser.parse_args()
    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        print("scaleout: error: redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory(prefix="taue-scaleout-") as data:
        results.append(run_single(args, Path(data) / "single"))
        print(json.dumps(results[-1]), flush=True)
        for workers in args.workers:
            results.append(run_queue(args, Path(data) / f"queue-{workers}", workers, redis_binary))
            print(json.dumps(results[-1]), flush=True)

    single = results[0]
    print(f"\nmodel {args.model}, {args.size}x{args.size}, {args.steps} steps, {args.jobs} jobs at once, "
          f"{args.rounds} alone; {cores()} cores ({platform.processor() or platform.machine()})")
    print("| mode | threads each | jobs/min | vs single | batch latency median / max | alone | engine alone | "
          "hand-off alone | queue adds | failed | spread |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in results:
        adds = (row["alone_median_s"] - single["alone_median_s"]) if row["alone_median_s"] else None
        print(f"| {row['mode']} | {row['threads_per_process']} | {row['jobs_per_minute']:.1f} | "
              f"{row['jobs_per_minute'] / single['jobs_per_minute']:.2f}x | {row['batch_latency_median_s']} / "
              f"{row['batch_latency_max_s']} s | {row['alone_median_s']} s | {row['alone_engine_median_s']} s | "
              f"{row['alone_handoff_median_s']} s | "
              f"{'' if row is single else f'{adds:+.3f} s'} | {row['failed']} | "
              f"{', '.join(f'{k} {v}' for k, v in row['spread'].items())} |")
    failed = sum(row["failed"] for row in results)
    print(f"failed jobs: {failed}")
    if args.out:
        args.out.write_text(json.dumps({"command": " ".join(sys.argv), "cores": cores(), "model": args.model,
                                        "size": args.size, "steps": args.steps, "jobs": args.jobs,
                                        "rounds": args.rounds, "results": results}, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
