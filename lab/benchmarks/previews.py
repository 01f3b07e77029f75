"""What previews cost: the same job without previews, with one every step (the worst case), and at the server's
default pace (each phase's first and last step, then every 0.5 s), each preview made as taue-server makes it
(the clean estimate through the latent-to-RGB map, encoded as PNG). Also what a VAE decode of the clean estimate
would cost instead, per decode.

    python -m lab.benchmarks.previews                       # the toy on the CPU
    python -m lab.benchmarks.previews --model tiny-random --width 128 --height 128
    python -m lab.benchmarks.previews --model random-sdxl --width 1024 --height 1024 --dtype float16   # GPU
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch

from taue_engine import TAUEConfig, TAUEPipeline

FG, BG = "a red star", "a blue striped background"
SERVER_PACE_S = 0.5  # taue-server's default --preview-seconds


def png_of(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # as server.jobs makes them
    return buffer.getvalue()


def synchronize(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


class Previews:
    """A progress callback that makes previews as the server does: every step, at the server's pace, or never."""

    def __init__(self, mode: str):
        self.mode, self.made, self.seconds, self.last = mode, 0, 0.0, -1e9

    def __call__(self, tick) -> bool:
        if self.mode == "off":
            return True
        now = time.monotonic()
        if self.mode == "every step" or tick.step in (1, tick.phase_steps) or now - self.last >= SERVER_PACE_S:
            started = time.perf_counter()
            png_of(tick.preview())
            self.seconds += time.perf_counter() - started
            self.made, self.last = self.made + 1, now
        return True


def time_job(pipe, args, config, mode: str) -> tuple[float, Previews]:
    previews = Previews(mode)
    synchronize(pipe.device)
    started = time.perf_counter()
    pipe(FG, BG, seed=args.seed, width=args.width, height=args.height, config=config, progress_callback=previews)
    synchronize(pipe.device)
    return time.perf_counter() - started, previews


def time_decode(pipe, args, repeats: int = 5) -> float:
    """Seconds per VAE decode of one latent of the job's size (what a decoded preview would cost each time)."""
    shape = (1, pipe.unet.config.in_channels, args.height // pipe.vae_scale_factor, args.width // pipe.vae_scale_factor)
    latents = torch.randn(shape, device=pipe.device, dtype=pipe.vae.dtype)
    times = []
    with torch.no_grad():
        for _ in range(repeats + 1):
            synchronize(pipe.device)
            started = time.perf_counter()
            pipe.vae.decode(latents / pipe.vae.config.scaling_factor)
            synchronize(pipe.device)
            times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy", help="toy, tiny-random, random-sdxl, or any TAUE model")
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()

    if args.model == "random-sdxl":
        from overhead import build_random_sdxl

        from taue_engine.models.loading import choose_device_and_dtype

        device, dtype = choose_device_and_dtype(args.device, args.dtype)
        pipe = build_random_sdxl(device, dtype)
    else:
        pipe = TAUEPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    pipe.set_progress_bar_config(disable=True)
    native = pipe.unet.config.sample_size * pipe.vae_scale_factor
    args.width, args.height = args.width or native, args.height or native
    config = TAUEConfig(num_inference_steps=args.steps)

    started = time.perf_counter()
    mapping = pipe.latent_to_rgb()  # fitted once per model (the server does it when the model loads)
    fit_s = time.perf_counter() - started
    time_job(pipe, args, config, "off")  # warm-up
    runs = {"off": [], "server pace": [], "every step": []}
    made = {mode: [] for mode in runs}
    preview_s = []
    for _ in range(args.repeats):
        for mode in runs:
            seconds, previews = time_job(pipe, args, config, mode)
            runs[mode].append(seconds)
            made[mode].append(previews.made)
            if mode == "every step":
                preview_s.append(previews.seconds / previews.made)
    decode_s = time_decode(pipe, args)
    job = statistics.median(runs["off"])
    total_steps = 3 * args.steps
    result = {
        "model": getattr(pipe, "model_name", args.model), "device": str(pipe.device), "dtype": str(pipe.dtype),
        "size": [args.width, args.height], "steps": args.steps, "repeats": args.repeats,
        "fit_s": round(fit_s, 3), "fit_psnr_db": mapping.fit_psnr,
        "job_s": {mode: round(statistics.median(times), 4) for mode, times in runs.items()},
        "previews_made": {mode: statistics.median(counts) for mode, counts in made.items()},
        "overhead_pct": {mode: round(100 * (statistics.median(runs[mode]) / job - 1), 2)
                         for mode in ("server pace", "every step")},
        "preview_ms": round(1000 * statistics.median(preview_s), 3),
        "preview_pct_of_job_every_step": round(100 * statistics.median(preview_s) * total_steps / job, 2),
        "vae_decode_ms": round(1000 * decode_s, 2),
        "vae_decode_pct_of_job": {every: round(100 * decode_s * total_steps / every / job, 2) for every in (1, 5)},
    }
    print(f"{result['model']} on {result['device']} ({result['dtype']}), {args.width}x{args.height}, {args.steps} "
          f"steps a phase, medians of {args.repeats}:")
    print(f"  job without previews {result['job_s']['off']:.3f} s; at the server's pace "
          f"{result['job_s']['server pace']:.3f} s ({result['overhead_pct']['server pace']:+.2f}%, "
          f"{result['previews_made']['server pace']:g} previews); every step {result['job_s']['every step']:.3f} s "
          f"({result['overhead_pct']['every step']:+.2f}%)")
    print(f"  one preview (map + PNG) {result['preview_ms']:.3f} ms = {result['preview_pct_of_job_every_step']:.2f}% "
          f"of the job if made every step; map fitted once in {fit_s:.2f} s ({mapping.fit_psnr} dB)")
    print(f"  a VAE decode instead: {result['vae_decode_ms']:.1f} ms each = "
          f"{result['vae_decode_pct_of_job'][1]:.1f}% of the job every step, "
          f"{result['vae_decode_pct_of_job'][5]:.1f}% every 5 steps")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
