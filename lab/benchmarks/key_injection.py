"""Phase 1's key on the toy under a config: green single objects on the green key and "a green circle" on the blue
and the magenta key, scored against the toy world's truth, with the backdrop each run formed.

    python -m lab.benchmarks.key_injection [--pairs 8] [--set FIELD=VALUE ...]

Every run counts; a run that raises counts at IoU 0 and is printed as failed.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from taue_engine.cli import config_from_flags

from ..testbed import choose_pairs, run_testbed, summarize
from ..testbed_scenes import run_key_colours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--pairs", type=int, default=8, help="green-key single objects from the testbed's set")
    parser.add_argument("--steps", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args(argv)
    from taue_engine.pipeline import TAUEPipeline
    from taue_engine.quiet import quiet_libraries

    quiet_libraries()
    pipe = TAUEPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    config = config_from_flags(args, pipe.default_config)
    started = time.perf_counter()
    for key in ("green", "blue", "magenta"):
        print(f"C({key}) = {[round(v, 3) for v in pipe.key_latent(config.replace(key_color=key))]}")
    rows = run_key_colours(pipe, config)
    for key in ("magenta", "blue"):
        values = [r["key_alpha_iou"] for r in rows if r["key"] == key]
        failed = sum(1 for v in values if np.isnan(v))
        counted = [0.0 if np.isnan(v) else v for v in values]
        print(f"{key} key, a green circle: alpha IoU {' / '.join(f'{v:.3f}' for v in counted)} "
              f"(mean {np.mean(counted):.3f}, failed {failed} of {len(values)})")
    green_rows, _ = run_testbed(pipe, choose_pairs(args.pairs), config, plain=False)
    summary = summarize(green_rows)
    for name in ("alpha_iou", "psnr_fg", "mask_coverage", "leakage", "fringe", "composite_foreign_ring",
                 "composite_duplicate", "psnr_bg"):
        if name in summary:
            part = summary[name]
            print(f"green key, {args.pairs} pairs: {name} mean {part['mean']:.3f} worst {part['worst']:.3f} "
                  f"failed {part.get('failed', 0)}")
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
