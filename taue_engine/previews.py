"""Pictures of a job while it runs, cheap enough to make every step.

A preview is the sampler's clean estimate x0-hat of the running phase (what the latent will become, not the noisy
latent itself), turned into colours by a linear map from a latent cell to its RGB: a matrix product per cell, no
VAE decode. The map is fitted once per model to its own VAE (encode a few random colour images, least squares from
each cell's latent to the mean colour of its pixels), so it holds for any VAE, SDXL's or the toy's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from PIL import Image

PREVIEW_SIDE = 256  # pixels on a preview's long side at most (never more than the job's own size)
FIT_IMAGES = 24  # random images encoded to fit the map
FIT_CELLS = 8  # latent cells per side of each fitting image
BLOCK_CELLS = 2  # a colour block spans this many cells per side (a VAE's latent also sees its neighbours)


def preview_size(width: int, height: int) -> tuple[int, int]:
    """The size of a job's previews: the job's, shrunk so that the long side is at most PREVIEW_SIDE."""
    scale = min(1.0, PREVIEW_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True)
class LatentToRGB:
    """rgb = weights @ latent + bias for each latent cell, in 0..1."""

    weights: torch.Tensor  # [3, C]
    bias: torch.Tensor  # [3]
    fit_psnr: float  # dB: how closely the map gives the fitting images' cell colours

    @torch.no_grad()
    def __call__(self, latents: torch.Tensor, size: tuple[int, int]) -> Image.Image:
        """The picture of `latents` ([1, C, h, w], UNet units) at `size` (width, height)."""
        cells = latents[0].detach().to("cpu", torch.float32)
        rgb = torch.einsum("oc,chw->hwo", self.weights, cells) + self.bias
        pixels = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        return Image.fromarray(pixels, "RGB").resize(size, Image.BILINEAR)


def fit_latent_to_rgb(encode: Callable[[Image.Image], torch.Tensor], factor: int, seed: int = 0) -> LatentToRGB:
    """Fit the map to a VAE: `encode(image)` gives its latent [1, C, h, w] (UNet units), `factor` pixels per cell.

    The fitting images are blocks of random colours (solid greys and pure colours among them), so the map sees the
    whole colour cube; the target of each cell is the mean colour of its factor x factor pixels."""
    rng = np.random.default_rng(seed)
    block = BLOCK_CELLS * factor
    blocks = FIT_CELLS // BLOCK_CELLS
    corners = np.array([[r, g, b] for r in (0, 1) for g in (0, 1) for b in (0, 1)], dtype=np.float32)
    latents, targets = [], []
    for n in range(FIT_IMAGES):
        colours = rng.random((blocks, blocks, 3), dtype=np.float32)
        if n < len(corners):  # the cube's corners (black, white, the key colours ...) as some of the blocks
            colours[n % blocks, (n // blocks) % blocks] = corners[n]
        pixels = np.repeat(np.repeat(colours, block, axis=0), block, axis=1)
        image = Image.fromarray((pixels * 255).round().astype(np.uint8), "RGB")
        seen = np.asarray(image, dtype=np.float32) / 255
        latent = encode(image)[0].float().cpu()  # [C, cells, cells]
        cell_colours = seen.reshape(FIT_CELLS, factor, FIT_CELLS, factor, 3).mean(axis=(1, 3))
        latents.append(latent.permute(1, 2, 0).reshape(-1, latent.shape[0]))
        targets.append(torch.from_numpy(cell_colours.reshape(-1, 3)))
    x = torch.cat(latents).double()
    y = torch.cat(targets).double()
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    solution = torch.linalg.lstsq(design, y).solution  # [C + 1, 3]
    error = float(((design @ solution).clamp(0, 1) - y).pow(2).mean())
    return LatentToRGB(weights=solution[:-1].T.float().contiguous(), bias=solution[-1].float(),
                       fit_psnr=round(10 * float(np.log10(1 / max(error, 1e-12))), 2))
