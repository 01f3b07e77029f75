"""Layer quality of several-object scenes on the toy model, where every colour is known: the testbed's several-object
check (taue_engine/testbed_scenes.py: each object layer's own and others' colour, PSNR_fg and the composite's colour
where the layer is seen, the background layer's leak of the objects' colours), one row per object, with its bars.

    python -m lab.benchmarks.objects_quality [--model toy]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from lab.testbed_scenes import format_scenes, run_several, summarize_scenes
from taue_engine import TAUEPipeline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy")
    args = parser.parse_args()
    pipe = TAUEPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    rows, _ = run_several(pipe, pipe.default_config)
    print(f"{'objects':>7} {'seed':>4}  {'object':<16}{'own':>6}{'others':>8}{'psnr_fg':>9}{'comp':>6}{'bg leak':>9}")
    for r in rows:
        print(f"{r['objects']:>7} {r['seed']:>4}  {r['object']:<16}{r['own_colour']:>6.3f}{r['others_colour']:>8.3f}"
              f"{r['psnr_fg']:>9.2f}{r['composite_colour']:>6.2f}{r['background_leak']:>9.3f}"
              + (f"  {r['error']}" if "error" in r else ""))
    for count in sorted({r["objects"] for r in rows}):
        print(f"\n{count} objects:\n" + format_scenes(summarize_scenes([r for r in rows if r["objects"] == count])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
