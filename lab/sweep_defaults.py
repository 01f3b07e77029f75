"""Sweep the method's UNKNOWN hyperparameters on the toy testbed and write lab/notes/sweeps.md.

    python -m lab.sweep_defaults [--pairs 24] [--model toy]

One parameter at a time around the defaults in TAUEConfig; each row is one testbed run on the same pairs.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

from lab.testbed import choose_pairs, failed_pairs, run_testbed, summarize
from taue_engine import TAUEConfig, TAUEPipeline

SWEEPS = {
    "tau_bg": (0.3, 0.4, 0.5, 0.6),
    "tau_attention": (0.0, 0.1, 0.3),
    "mask_dilation": (0.0, 0.03, 0.06),
    "hold_dilation": (0, 1, 2),
    "highpass_strength": (0.0, 0.2, 0.4),
    "crop_ratio": (0.25, 0.5, 0.75),
    "mask_blur": (0.0, 0.004, 0.016),
    "green_alpha": (0.5, 0.6, 0.7, 0.8),
    "transplant_noise": (0.0, 1.0),
}
COLUMNS = ("alpha_iou", "leakage", "psnr_fg", "psnr_fg_paper", "mask_coverage", "mask_size_ok", "psnr_bg",
           "psnr_stack", "object_colour_in_composite", "fringe")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("notes") / "sweeps.md")
    parser.add_argument("--only", nargs="*", default=None, help="parameters to sweep (default: all)")
    args = parser.parse_args()
    pipe = TAUEPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    pairs = choose_pairs(args.pairs)
    base = pipe.default_config  # the model's own settings (the toy ships green_alpha 0.5), else the paper's
    paper = TAUEConfig().to_dict()
    own = {k: v for k, v in base.to_dict().items() if v != paper[k]} or "the paper defaults"
    lines = [f"# Sweeps of the UNKNOWN hyperparameters on the toy testbed ({args.pairs} pairs, model {args.model})",
             "", "Means over the pairs (`python -m lab.sweep_defaults`); one parameter varied at a time, the others at",
             f"the model's settings ({own}).", ""]
    for name, values in SWEEPS.items():
        if args.only and name not in args.only:
            continue
        lines += [f"## {name} (default {getattr(base, name)})", "",
                  "| value | " + " | ".join(COLUMNS) + " | failed pairs |", "|---" * (len(COLUMNS) + 2) + "|"]
        for value in values:
            started = time.perf_counter()
            rows, _ = run_testbed(pipe, pairs, base.replace(**{name: value}), plain=False)
            summary = summarize(rows)
            cells = [f"{summary[c]['mean']:.3f}" if c in summary else "-" for c in COLUMNS]
            lines.append(f"| {value} | " + " | ".join(cells) + f" | {failed_pairs(rows)} |")
            print(f"{name}={value}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        lines.append("")
        args.out.write_text("\n".join(lines))
    print(args.out)


if __name__ == "__main__":
    main()
