"""Each sampler against the paper's Euler on the toy testbed: the same pairs, seeds and steps, only the sampler
changes. A sampler whose PSNR_fg falls more than 1 dB below Euler's would have to be refused.

    python -m lab.benchmarks.schedulers                     # 8 of the 56 pairs, 50 steps, every sampler (~6 min)
    python -m lab.benchmarks.schedulers --pairs 56 --json lab/benchmarks/results/cpu-2core-toy-schedulers.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from lab.testbed import choose_pairs, run_testbed, summarize
from taue_engine import TAUEPipeline
from taue_engine.schedulers import SCHEDULERS

REPORTED = ("psnr_fg", "psnr_fg_paper", "alpha_iou", "leakage", "psnr_bg")
LIMIT_DB = 1.0


def compare(pipe, pairs: int, steps: int, schedulers=SCHEDULERS) -> dict:
    """{sampler: {metric: {mean, worst, failed, n}, 'seconds': ..., 'delta_psnr_fg': ...}} over the same pairs."""
    chosen = choose_pairs(pairs)
    report = {}
    for name in schedulers:
        try:
            config = pipe.default_config.replace(num_inference_steps=steps, scheduler=name)
        except ValueError as error:  # refused at these steps (lcm above its few steps)
            report[name] = {"refused": str(error)}
            continue
        started = time.perf_counter()
        rows, _ = run_testbed(pipe, chosen, config, plain=False)
        summary = summarize(rows)
        report[name] = {m: summary[m] for m in REPORTED if m in summary}
        report[name]["seconds"] = round(time.perf_counter() - started, 1)
        report[name]["failed_pairs"] = sum(1 for r in rows if "error" in r)
    euler = report.get("euler", {}).get("psnr_fg", {}).get("mean")
    for entry in report.values():
        if "refused" not in entry:
            entry["delta_psnr_fg"] = None if euler is None else round(entry["psnr_fg"]["mean"] - euler, 3)
    return report


def table(report: dict) -> str:
    lines = [f"{'sampler':<18}{'PSNR_fg':>9}{'worst':>8}{'vs euler':>10}{'PSNR paper':>12}{'alpha IoU':>11}"
             f"{'leakage':>9}{'failed':>8}{'s':>7}"]
    for name, e in report.items():
        if "refused" in e:
            lines.append(f"{name:<18}refused: {e['refused']}")
            continue
        delta = e["delta_psnr_fg"]
        lines.append(f"{name:<18}{e['psnr_fg']['mean']:>9.2f}{e['psnr_fg']['worst']:>8.2f}"
                     f"{'' if delta is None else f'{delta:+.2f}':>10}{e['psnr_fg_paper']['mean']:>12.2f}"
                     f"{e['alpha_iou']['mean']:>11.3f}{e['leakage']['mean']:>9.3f}{e['failed_pairs']:>8}"
                     f"{e['seconds']:>7.0f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--schedulers", default=",".join(SCHEDULERS), help="comma-separated (euler is the reference)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    pipe = TAUEPipeline.from_pretrained(args.model, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    report = compare(pipe, args.pairs, args.steps, args.schedulers.split(","))
    print(table(report))
    within = [n for n, e in report.items() if e.get("delta_psnr_fg") is not None and e["delta_psnr_fg"] >= -LIMIT_DB]
    refused = [n for n, e in report.items() if "refused" in e]
    print(f"within {LIMIT_DB} dB of euler's PSNR_fg: {', '.join(within)}; refused: {', '.join(refused) or 'none'}; "
          f"not: {', '.join(n for n in report if n not in within + refused) or 'none'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "pairs": args.pairs, "steps": args.steps,
                                               "samplers": report}, indent=1) + "\n")


if __name__ == "__main__":
    main()
