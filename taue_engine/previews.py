"""Pictures of a job while it runs, cheap enough to make every step.

A preview is the sampler's clean estimate x0-hat of the running phase (what the latent will become, not the noisy
latent itself), turned into colours by a map from a latent cell to its RGB: a cubic polynomial of the cell's channels
(cell_features), one matrix product per cell, no VAE decode. The map is fitted once per model to its own VAE (encode
a few random colour images, least squares from each cell's features to the mean colour of its pixels), so it holds
for any VAE, SDXL's or the toy's. A linear map is enough where a VAE holds colour linearly; the second toy's holds it
bent (on its world scenes 12.9 dB linear, 15.4 quadratic, 16.3 cubic), and a cubic costs no more than a matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations_with_replacement
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

PREVIEW_SIDE = 256  # pixels on a preview's long side at most (never more than the job's own size)
DEGREE = 3  # of the polynomial from a cell's channels to its colour
FIT_IMAGES = 32  # random images encoded to fit the map (35 features for 4 channels: 2048 cells fit them well)
FIT_CELLS = 8  # latent cells per side of each fitting image
BLOCK_CELLS = 2  # a colour block spans this many cells per side (a VAE's latent also sees its neighbours)


def preview_size(width: int, height: int) -> tuple[int, int]:
    """The size of a job's previews: the job's, shrunk so that the long side is at most PREVIEW_SIDE."""
    scale = min(1.0, PREVIEW_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def cell_features(cells: torch.Tensor, degree: int = DEGREE) -> torch.Tensor:
    """[N, C] latent cells to [N, F]: every product of up to `degree` of their channels, and a 1."""
    columns = [torch.ones(len(cells), dtype=cells.dtype)]
    for order in range(1, degree + 1):
        for channels in combinations_with_replacement(range(cells.shape[1]), order):
            columns.append(cells[:, list(channels)].prod(dim=1))
    return torch.stack(columns, dim=1)


@dataclass(frozen=True)
class LatentToRGB:
    """rgb = weights @ cell_features(latent) for each latent cell, in 0..1."""

    weights: torch.Tensor  # [3, F]
    degree: int
    fit_psnr: float  # dB: how closely the map gives the fitting images' cell colours

    @torch.no_grad()
    def __call__(self, latents: torch.Tensor, size: tuple[int, int]) -> Image.Image:
        """The picture of `latents` ([1, C, h, w], UNet units) at `size` (width, height)."""
        cells = latents[0].detach().to("cpu", torch.float32)
        channels, height, width = cells.shape
        features = cell_features(cells.reshape(channels, -1).T, self.degree)
        rgb = (features @ self.weights.T).reshape(height, width, 3)
        pixels = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        return Image.fromarray(pixels, "RGB").resize(size, Image.Resampling.BILINEAR)


def fit_latent_to_rgb(encode: Callable[[Image.Image], torch.Tensor], factor: int, seed: int = 0,
                      degree: int = DEGREE) -> LatentToRGB:
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
    design = cell_features(torch.cat(latents).double(), degree)
    y = torch.cat(targets).double()
    solution = torch.linalg.lstsq(design, y).solution  # [F, 3]
    error = float(((design @ solution).clamp(0, 1) - y).pow(2).mean())
    return LatentToRGB(weights=solution.T.float().contiguous(), degree=degree,
                       fit_psnr=round(10 * float(np.log10(1 / max(error, 1e-12))), 2))


class PreviewMixin:
    """Previews for a pipeline with a VAE (`vae`, `vae_scale_factor`, `encode_pixels`). The pipeline's __init__ calls
    `_init_previews`."""

    if TYPE_CHECKING:  # the pipeline's own
        vae: Any
        vae_scale_factor: int
        encode_pixels: Callable[[Image.Image], torch.Tensor]

    def _init_previews(self) -> None:
        self._latent_to_rgb: dict[int, LatentToRGB] = {}  # id(vae) -> its fitted map: a swapped VAE is fitted anew

    def latent_to_rgb(self) -> LatentToRGB:
        """The model's latent-to-RGB map for previews, fitted to its VAE on first use."""
        if id(self.vae) not in self._latent_to_rgb:
            self._latent_to_rgb.clear()
            self._latent_to_rgb[id(self.vae)] = fit_latent_to_rgb(self.encode_pixels, self.vae_scale_factor)
        return self._latent_to_rgb[id(self.vae)]

    def restore_latent_to_rgb(self, fitted: LatentToRGB) -> None:
        """Put back the map latent_to_rgb fitted when the same model and VAE were loaded before (a server that
        switches models keeps it, so that switching back fits nothing)."""
        self._latent_to_rgb = {id(self.vae): fitted}

    def preview_image(self, latents: torch.Tensor) -> Image.Image:
        """A quick picture of a latent [1, C, h, w] (a clean estimate), at preview_size of its image."""
        height, width = (side * self.vae_scale_factor for side in latents.shape[-2:])
        return self.latent_to_rgb()(latents, preview_size(width, height))
