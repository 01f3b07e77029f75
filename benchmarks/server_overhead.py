"""What the server adds to the engine: submit-to-result time against a direct call, and the cost of a poll.

    python benchmarks/server_overhead.py [--model tiny-random] [--size 128] [--steps 20] [--rounds 5]

Direct calls and server jobs alternate (same prompts, seeds and settings), medians are reported; then GET
/jobs/<id> is timed on a finished job (the cost a plug-in's progress polling puts on the server).
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--polls", type=int, default=500)
    args = parser.parse_args()

    from server.live import live_server
    from taue_engine import TAUEPipeline

    pipe = TAUEPipeline.from_pretrained(args.model, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    request = {"foreground_prompt": "a red star", "background_prompt": "a blue striped background",
               "width": args.size, "height": args.size, "steps": args.steps}
    config = pipe.default_config.replace(num_inference_steps=args.steps)
    direct, served = [], []
    with tempfile.TemporaryDirectory() as data, live_server(Path(data), pipe) as server:
        server.wait(server.submit(**request, seed=0)["id"])  # warm-up of both paths
        pipe(request["foreground_prompt"], request["background_prompt"], seed=0, width=args.size,
             height=args.size, config=config)
        for round_index in range(args.rounds):
            seed = 1 + round_index
            started = time.perf_counter()
            result = pipe(request["foreground_prompt"], request["background_prompt"], seed=seed, width=args.size,
                          height=args.size, config=config)
            result.save(Path(data) / f"direct-{seed}")  # the server writes the same files: PNGs, PSD, ORA
            direct.append(time.perf_counter() - started)
            started = time.perf_counter()
            job = server.wait(server.submit(**request, seed=seed)["id"], states=("succeeded", "failed"))
            served.append(time.perf_counter() - started)
            assert job["state"] == "succeeded", job
        polls = []
        for _ in range(args.polls):
            started = time.perf_counter()
            response = server.session.get(f"{server.api}/jobs/{job['id']}", timeout=10)
            polls.append(time.perf_counter() - started)
            assert response.status_code == 200
    d, s = statistics.median(direct), statistics.median(served)
    print(f"model {args.model}, {args.size}x{args.size}, {args.steps} steps, {args.rounds} rounds (medians)")
    print(f"direct engine call + save: {d:.3f} s")
    print(f"server submit -> succeeded (polling every 20 ms): {s:.3f} s  (+{s - d:.3f} s, {100 * (s / d - 1):+.1f}%)")
    print(f"budget: {1.1 * d + 0.1:.3f} s (10% + 100 ms): {'met' if s <= 1.1 * d + 0.1 else 'MISSED'}")
    polls.sort()
    print(f"GET /jobs/<id>: median {1000 * statistics.median(polls):.2f} ms, p95 "
          f"{1000 * polls[int(0.95 * len(polls))]:.2f} ms over {args.polls} polls")


if __name__ == "__main__":
    main()
