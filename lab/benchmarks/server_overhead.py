"""What the server adds to the engine: submit-to-result time against a direct call, and the cost of a poll.

    python -m lab.benchmarks.server_overhead [--model tiny-random] [--size 128] [--steps 20] [--rounds 5]

Direct calls first, then the same jobs (prompts, seeds, settings) through a real server on a loopback port; medians
are reported; then GET /jobs/<id> is timed on a finished job (the cost a plug-in's progress polling puts on the
server). The two sides run in separate processes, each as it runs for real: the direct calls on the main thread,
the server with the model loaded and run by its worker thread (torch's CPU thread pools are per calling thread,
and two in one process compete for the cores).
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def measure(args, mode: str) -> dict:
    import json
    import subprocess

    command = [sys.executable, "-m", "lab.benchmarks.server_overhead", "--mode", mode, "--model", args.model,
               "--size", str(args.size), "--steps", str(args.steps), "--rounds", str(args.rounds),
               "--polls", str(args.polls)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_direct(args, request) -> dict:
    from taue_engine import TAUEPipeline

    pipe = TAUEPipeline.from_pretrained(args.model, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    config = pipe.default_config.replace(num_inference_steps=args.steps)
    times = []
    with tempfile.TemporaryDirectory() as data:
        for seed in range(args.rounds + 1):  # seed 0: warm-up
            started = time.perf_counter()
            result = pipe(request["foreground_prompt"], request["background_prompt"], seed=seed, width=args.size,
                          height=args.size, config=config)
            result.save(Path(data) / f"direct-{seed}")  # the server writes the same files: PNGs, PSD, ORA
            times.append(time.perf_counter() - started)
    return {"direct": statistics.median(times[1:])}


def run_server(args, request) -> dict:
    from tests.helpers.live import live_server

    times, polls = [], []
    with tempfile.TemporaryDirectory() as data, live_server(Path(data), None, model=args.model,
                                                            device="cpu") as server:
        while server.get("/api/v1/health").json()["state"] == "loading":
            time.sleep(0.1)
        for seed in range(args.rounds + 1):
            started = time.perf_counter()
            job = server.wait(server.submit(**request, seed=seed)["id"], states=("succeeded", "failed"))
            times.append(time.perf_counter() - started)
            assert job["state"] == "succeeded", job
        for _ in range(args.polls):
            started = time.perf_counter()
            response = server.session.get(f"{server.api}/jobs/{job['id']}", timeout=10)
            polls.append(time.perf_counter() - started)
            assert response.status_code == 200
    polls.sort()
    return {"served": statistics.median(times[1:]), "poll_median": statistics.median(polls),
            "poll_p95": polls[int(0.95 * len(polls))]}


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--polls", type=int, default=500)
    parser.add_argument("--mode", choices=("both", "direct", "server"), default="both")
    args = parser.parse_args()
    request = {"foreground_prompt": "a red star", "background_prompt": "a blue striped background",
               "width": args.size, "height": args.size, "steps": args.steps}
    if args.mode == "direct":
        print(json.dumps(run_direct(args, request)))
        return
    if args.mode == "server":
        print(json.dumps(run_server(args, request)))
        return
    d = measure(args, "direct")["direct"]
    served = measure(args, "server")
    s = served["served"]
    print(f"model {args.model}, {args.size}x{args.size}, {args.steps} steps, {args.rounds} rounds (medians)")
    print(f"direct engine call + save: {d:.3f} s")
    print(f"server submit -> succeeded (polling every 20 ms): {s:.3f} s  (+{s - d:.3f} s, {100 * (s / d - 1):+.1f}%)")
    print(f"budget: {1.1 * d + 0.1:.3f} s (10% + 100 ms): {'met' if s <= 1.1 * d + 0.1 else 'MISSED'}")
    print(f"GET /jobs/<id>: median {1000 * served['poll_median']:.2f} ms, p95 {1000 * served['poll_p95']:.2f} ms "
          f"over {args.polls} polls")


if __name__ == "__main__":
    main()
