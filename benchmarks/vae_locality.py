"""How local a model's VAE is: the measurement behind "paste-decode PSNR" in the README.

    python benchmarks/vae_locality.py [--model taue_engine/toy/model] [--pairs 32]

TAUE moves latent regions between scenes (the seedling into the composite, the composite's background into the
background run) and expects them to decode as the same pixels there. For each pair, the latent cells that cover an
object on green are pasted into the latent of another scene's background; the decode is compared with the same
paste done on the images, inside the pasted cells (PSNR, dB). SDXL's VAE is local at its scale; a small VAE must
be trained to be.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from taue_engine.toy.scenes import make_scene  # noqa: E402
from taue_engine.toy.train import to_tensor  # noqa: E402


@torch.no_grad()
def paste_psnr(vae, pairs: int) -> list[float]:
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    scores = []
    for i in range(pairs):
        obj, other = make_scene(10_000 + i), make_scene(20_000 + i)
        a, b = to_tensor(obj.object_on_green[None]), to_tensor(other.background[None])
        cells = F.max_pool2d(torch.from_numpy(obj.mask)[None, None].float(), factor) > 0
        pixels = F.interpolate(cells.float(), scale_factor=factor, mode="nearest")
        la, lb = vae.encode(a).latent_dist.mean, vae.encode(b).latent_dist.mean
        decoded = vae.decode(torch.where(cells, la, lb)).sample.clamp(-1, 1)
        target = pixels * a + (1 - pixels) * b
        inside = pixels.expand_as(target) > 0
        mse = (((decoded - target) / 2)[inside] ** 2).mean().item()
        scores.append(10 * math.log10(1 / max(mse, 1e-10)))
    return scores


def main() -> None:
    from diffusers import AutoencoderKL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[1] / "taue_engine/toy/model"))
    parser.add_argument("--pairs", type=int, default=32)
    args = parser.parse_args()
    vae = AutoencoderKL.from_pretrained(args.model, subfolder="vae").eval()
    scores = paste_psnr(vae, args.pairs)
    print(f"paste-decode PSNR inside the pasted cells, {args.pairs} pairs: mean {np.mean(scores):.1f} dB, "
          f"worst {np.min(scores):.1f} dB")


if __name__ == "__main__":
    main()
