"""Several objects in one job against one job per object, and a new background against a whole new job.

An N-object job runs N foreground phases, one composite and one background: N + 2 denoising passes, where N
single-object jobs run 3N. A new background for kept objects runs 2. This measures what those counts become in
seconds, medians of interleaved rounds, on one model, size and step count.

    python -m lab.benchmarks.objects                      # the toy model, 64x64, 50 steps (the CPU default)
    python -m lab.benchmarks.objects --model tiny-random --size 128 --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from taue_engine import TAUEPipeline

OBJECTS = ["a red circle", "a yellow square", "a blue star"]
BOXES = [{"cx": 0.25, "cy": 0.35, "w": 0.4, "h": 0.4}, {"cx": 0.75, "cy": 0.35, "w": 0.4, "h": 0.4},
         {"cx": 0.5, "cy": 0.72, "w": 0.4, "h": 0.4}]
BACKGROUND = "a white background"


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="taue_engine/toy/model")
    parser.add_argument("--size", type=int, default=None, help="default: the model's native size")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None, help="also write the measurements as JSON here")
    args = parser.parse_args()

    pipe = TAUEPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    config = pipe.default_config.replace(num_inference_steps=args.steps)
    size = args.size or pipe.unet.config.sample_size * pipe.vae_scale_factor
    common = dict(background_prompt=BACKGROUND, width=size, height=size, config=config)
    pipe(OBJECTS[0], seed=0, **common)  # warm-up

    times: dict[str, list[float]] = {}
    kept = {}
    for round_ in range(args.rounds):
        for count in (1, 2, 3):
            objects = [{"prompt": p, "layout": b} for p, b in zip(OBJECTS[:count], BOXES)]
            times.setdefault(f"one job, {count} objects", []).append(timed(
                lambda c=count, objs=objects, r=round_: kept.__setitem__(c, pipe(objects=objs, seed=r, **common))))
            times.setdefault(f"{count} single jobs", []).append(
                sum(timed(lambda o=o, r=round_: pipe(o["prompt"], layout=o["layout"], seed=r, **common))
                    for o in objects))
            times.setdefault(f"new background, {count} objects", []).append(timed(
                lambda c=count, r=round_: pipe.new_background(kept[c].transplant, "a purple background", seed=r,
                                                              config=config)))
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.model}, {size}x{size}, {args.steps} steps, medians of {args.rounds} interleaved rounds")
    for count in (1, 2, 3):
        one, single, background = (medians[f"one job, {count} objects"], medians[f"{count} single jobs"],
                                   medians[f"new background, {count} objects"])
        print(f"  {count} object(s): one job {one:.2f} s ({count + 2} passes), {count} single jobs {single:.2f} s "
              f"({3 * count} passes), ratio {one / single:.2f}; new background {background:.2f} s (2 passes)")
    if args.out:
        Path(args.out).write_text(json.dumps({"model": args.model, "size": size, "steps": args.steps,
                                              "rounds": args.rounds, "seconds": times, "medians": medians},
                                             indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
