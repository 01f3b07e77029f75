"""How local a model's VAE is: the numbers beside the model in the README.

    python -m lab.benchmarks.vae_locality [--model taue_engine/toy/model] [--pairs 32] [--cap 8]

1. Paste-decode PSNR. TAUE moves latent regions between scenes (the seedling into the composite, the composite's
   background into the background run) and expects them to decode as the same pixels there. For each pair, the
   latent cells that cover an object on key green are pasted into the latent of another scene's background; the
   decode is compared with the same paste done on the images, inside the pasted cells (dB), beside the VAE's own
   reconstruction of the two images pasted the same way (what a perfectly local VAE would score).
2. The paste-decode cap (`--cap N`, runs TAUE N times): the foreground's final latent pasted into the composite's
   final latent over the object's cells and decoded, against I_fg inside m_obj. No object layer read from the
   composite can be closer to I_fg than this; SDXL's VAE keeps it high, a VAE that is not local does not.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lab.train import to_tensor
from lab.world import make_world_scene


def load_vae(model: str):
    """The model folder's VAE, whichever class its config names."""
    import diffusers

    name = json.loads((Path(model) / "vae" / "config.json").read_text())["_class_name"]
    return getattr(diffusers, name).from_pretrained(model, subfolder="vae").eval()


def encode(vae, x: torch.Tensor) -> torch.Tensor:
    out = vae.encode(x)
    return out.latent_dist.mean if hasattr(out, "latent_dist") else out.latents


def _psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor) -> float:
    mse = (((a.clamp(-1, 1) - b) / 2)[where] ** 2).mean().item()
    return 10 * math.log10(1 / max(mse, 1e-10))


@torch.no_grad()
def paste_psnr(vae, pairs: int, size: int) -> tuple[list[float], list[float]]:
    """(paste-decode PSNR, own-reconstruction PSNR) inside the pasted cells, per pair."""
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    pasted_scores, own_scores = [], []
    for i in range(pairs):
        obj = make_world_scene(10_000 + i, size=size, count=1)
        other = make_world_scene(20_000 + i, size=size, count=1)
        a, b = to_tensor(obj.object_on_key(0, "green")[None]), to_tensor(other.background[None])
        cells = F.max_pool2d(torch.from_numpy(obj.objects[0].mask)[None, None].float(), factor) > 0
        pixels = F.interpolate(cells.float(), scale_factor=factor, mode="nearest").expand_as(a) > 0
        la, lb = encode(vae, a), encode(vae, b)
        target = torch.where(pixels, a, b)
        pasted_scores.append(_psnr(vae.decode(torch.where(cells, la, lb)).sample, target, pixels))
        own = torch.where(pixels, vae.decode(la).sample, vae.decode(lb).sample)
        own_scores.append(_psnr(own, target, pixels))
    return pasted_scores, own_scores


@torch.no_grad()
def paste_decode_cap(model: str, runs: int) -> list[float]:
    """Per TAUE run: PSNR inside m_obj of the decoded paste (final foreground latent over the composite's)."""
    from lab.testbed import choose_pairs
    from taue_engine import TAUEPipeline

    pipe = TAUEPipeline.from_pretrained(model, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    scores = []
    for pair in choose_pairs(runs):
        final: dict[str, torch.Tensor] = {}

        def keep(p, step, timestep, kwargs, final=final):
            final[p.current_phase] = kwargs["latents"].detach().clone()
            return {}

        result = pipe(pair.object_prompt, pair.background_prompt, seed=pair.seed, callback_on_step_end=keep)
        cells = result.latents["object_mask"].float().view(1, 1, *final["foreground"].shape[-2:]) > 0.5
        pasted = torch.where(cells, final["foreground"], final["composite"]) / pipe.vae.config.scaling_factor
        decoded = pipe.vae.decode(pasted.to(pipe.vae.dtype)).sample.float()
        fg = to_tensor(np.asarray(result.foreground_on_green.convert("RGB"))[None])
        inside = torch.from_numpy(np.asarray(result.mask) > 127)[None, None].expand_as(fg)
        scores.append(_psnr(decoded, fg, inside) if inside.any() else 0.0)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(Path(__file__).resolve().parents[2] / "taue_engine/toy/model"))
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--cap", type=int, default=0, help="also the paste-decode cap over this many TAUE runs")
    args = parser.parse_args()
    vae = load_vae(args.model)
    unet = json.loads((Path(args.model) / "unet" / "config.json").read_text())
    size = unet["sample_size"] * 2 ** (len(vae.config.block_out_channels) - 1)
    pasted, own = paste_psnr(vae, args.pairs, size)
    print(f"paste-decode PSNR inside the pasted cells, {args.pairs} pairs at {size} px: mean {np.mean(pasted):.1f} "
          f"dB, worst {np.min(pasted):.1f} dB; the VAE's own reconstruction there: {np.mean(own):.1f} dB")
    if args.cap:
        cap = paste_decode_cap(args.model, args.cap)
        print(f"paste-decode cap (final I_fg latent in the composite's, inside m_obj), {args.cap} runs: mean "
              f"{np.mean(cap):.1f} dB, worst {np.min(cap):.1f} dB")


if __name__ == "__main__":
    main()
