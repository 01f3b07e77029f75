"""The truth at the cut: what a model allows TAUE's foreground layer when phase 1 and the first half are perfect.

    python -m lab.benchmarks.truth_at_cut [--model taue_engine/toy/model] [--pairs 12] [--steps 50]

Separates the model's second half from the method. For each testbed pair, the object as the toy world draws it
(centred, radius RADIUS) on the key colour is encoded, noised to the cut with a seeded noise, and put in place of
phase 1's latent at the cut (the pipeline's `seedling_at_cut` extension point): the seedling, its clean estimate
(the model's, read from the truth) and the rest of phase 1 follow from the truth; m_obj is the oracle's (phase 1's
own final alpha, `testbed.oracle_pipeline`). Everything after the cut is TAUE's own: the composite's first half
grows the background around the transplanted truth, and after the release both runs denoise the same object
latent, one on the key and one in its scene.

Printed, over the same pairs, for TAUE with the oracle mask and for TAUE with the truth at the cut:
- psnr_fg: the object layer against the composite over its opaque pixels (the testbed's PSNR_fg);
- psnr_fg_paper: I_fg against the composite inside m_obj;
- fg_vs_truth (truth runs only): I_fg against the truth inside the truth's object, i.e. how much the model's
  second half repaints a perfect seedling even on the key.
If the truth scores no better than TAUE's own seedling, the method's first half (green injection, cut, transplant,
mask) costs nothing measurable, and PSNR_fg is what the model's second half allows. A pair whose run raises counts
at 0 dB and is counted as failed.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from PIL import Image

from lab.metrics import psnr
from lab.testbed import PSNR_CAP, choose_pairs, oracle_pipeline, pipeline_like, score
from lab.world import make_world_scene
from taue_engine import TAUEPipeline
from taue_engine.schedulers import NoiseLevels

RADIUS = 0.26  # of the image: the middle of the world's single-object radii (0.2-0.32)
COLUMNS = ("psnr_fg", "psnr_fg_paper", "fg_vs_truth")


def truth_image(pair, size: int, key: str) -> tuple[np.ndarray, np.ndarray]:
    """The pair's object, centred, alone on the key colour (uint8 HxWx3), and its coverage (float HxW)."""
    scene = make_world_scene(pair.seed, size=size, shapes=[pair.shape], colours=[pair.colour],
                             background_colour=pair.background_colour, background_kind=pair.background_kind,
                             centres=[(0.5, 0.5)], radii=[RADIUS])
    return scene.object_on_key(0, key), scene.objects[0].mask


def truth_pipeline(pipe):
    """The oracle-mask pipeline whose phase 1 latent at the cut is `truth` (a latent in the UNet's units, set
    before each call) noised to the cut's level with noise seeded by `noise_seed`."""
    oracle = oracle_pipeline(pipe)

    class TruthAtCutPipeline(type(oracle)):
        truth: torch.Tensor | None = None
        noise_seed: int = 0
        truth_pixels: tuple[np.ndarray, np.ndarray] | None = None

        def aim(self, pair, size: int, key: str) -> None:
            """The next call's truth: `pair`'s object (truth_image) encoded, its pixels and coverage kept, the noise
            seeded by the pair's seed."""
            image, coverage = truth_image(pair, size, key)
            self.truth = self.encode_pixels(Image.fromarray(image))
            self.noise_seed = pair.seed
            self.truth_pixels = (image.astype(np.float32) / 255.0, coverage > 0.5)

        def seedling_at_cut(self, latents, config):
            """The truth, noised to the cut's level, in place of phase 1's own latent there."""
            if self.truth is None:
                return latents
            noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(self.noise_seed))
            levels = NoiseLevels.of(self.scheduler)
            return levels.noised(self.truth.to(latents.device, torch.float32), noise.to(latents.device),
                                 config.crop_step).to(latents.dtype)

    return oracle, pipeline_like(TruthAtCutPipeline, oracle)


def run_pair(pipe, pair, config) -> dict:
    started = time.perf_counter()
    try:
        result = pipe(pair.object_prompt, pair.background_prompt, seed=pair.seed, config=config)
        row = {k: v for k, v in score(result, pair).items() if k in COLUMNS}
        if getattr(pipe, "truth_pixels", None) is not None:
            on_key = np.asarray(result.foreground_on_green, dtype=np.float32) / 255.0
            truth, inside = pipe.truth_pixels
            row["fg_vs_truth"] = psnr(on_key, truth, inside)
    except Exception as error:  # noqa: BLE001 - a failed pair is counted at the worst value, not dropped
        row = {"error": f"{type(error).__name__}: {error}"}
    row["seconds"] = time.perf_counter() - started
    return row


def summary(rows: list[dict], name: str) -> dict:
    """Mean and worst; a missing or NaN value (a failed pair) counts at 0 dB."""
    values = [r.get(name, float("nan")) for r in rows]
    failed = sum(1 for v in values if not isinstance(v, float) or math.isnan(v))
    counted = [0.0 if not isinstance(v, float) or math.isnan(v) else min(v, PSNR_CAP) for v in values]
    return {"mean": float(np.mean(counted)), "worst": float(min(counted)), "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--crop-ratio", type=float, default=None)
    args = parser.parse_args()

    pipe = TAUEPipeline.from_pretrained(args.model, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    config = pipe.default_config.replace(num_inference_steps=args.steps)
    if args.crop_ratio is not None:
        config = config.replace(crop_ratio=args.crop_ratio)
    size = int(pipe.default_sample_size * pipe.vae_scale_factor)
    oracle, truth = truth_pipeline(pipe)
    key = config.key_color
    rows = {"oracle mask": [], "truth at the cut": []}
    for pair in choose_pairs(args.pairs):
        truth.aim(pair, size, key)
        rows["oracle mask"].append(run_pair(oracle, pair, config))
        rows["truth at the cut"].append(run_pair(truth, pair, config))
        print(f"{pair.object_prompt} / {pair.background_prompt}: "
              + "; ".join(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in r[-1].items() if k in COLUMNS)
                          for name, r in rows.items()), flush=True)
    print(f"\n{len(rows['oracle mask'])} pairs, {args.steps} steps, crop_ratio {config.crop_ratio}, "
          f"model {args.model}")
    print(f"{'':<18}" + "".join(f"{c:>26}" for c in COLUMNS))
    for name, table in rows.items():
        cells = []
        for column in COLUMNS:
            if name == "oracle mask" and column == "fg_vs_truth":
                cells.append(f"{'-':>26}")
                continue
            s = summary(table, column)
            cells.append(f"{s['mean']:>10.2f} (worst {s['worst']:5.2f}, {s['failed']} f)")
        print(f"{name:<18}" + "".join(cells))


if __name__ == "__main__":
    main()
