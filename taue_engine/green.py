"""Phase 1's green latent injection (TKG-DM) and the dithered mask M that says where the backdrop turns green."""

from __future__ import annotations

import torch

from .config import LayoutBox

WHOLE_IMAGE = LayoutBox(0.5, 0.5, 1.0, 1.0)


def layout_probability(
    height: int, width: int, layout: LayoutBox | None, std: float, p_min: float, p_max: float, device=None,
    power: float = 1.0,
) -> torch.Tensor:
    """P(x, y) = exp(-(r^2 / (2 std^2))^power), r the distance from the box's centre in half-box units: high where
    the object should be, rescaled to [p_min, p_max]. power 1 is the paper's Gaussian; a larger power flattens its
    top and steepens its edge towards the box itself.

    Without a layout box the box is the whole image, which makes P TKG-DM's centred Gaussian of std `std` on a
    [-1, 1]^2 grid.
    """
    box = layout or WHOLE_IMAGE
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    dy = ((ys - box.cy) / (box.h / 2)).view(-1, 1)
    dx = ((xs - box.cx) / (box.w / 2)).view(1, -1)
    p = torch.exp(-(((dx**2 + dy**2) / (2 * std**2)) ** power))
    return p_min + (p_max - p_min) * p


def dithered_mask(probability: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """M = 1 (turn green) where R > P: a dithered edge whose expected value is TKG-DM's soft weight 1 - P."""
    return (uniform > probability).to(probability.dtype)


def green_channels(green_latent: tuple[float, ...]) -> list[int]:
    return [c for c, value in enumerate(green_latent) if value != 0]


def inject_green(noise: torch.Tensor, mask: torch.Tensor, green_latent: tuple[float, ...],
                 alpha: float) -> torch.Tensor:
    """z = (1 - M) z_T + M ((1 - alpha) z_T + alpha C) on the key channels, in unit-variance noise space.

    Channels whose C is 0 are left as they are, so the injection changes nothing but the key channels where M = 1.
    Must run before the scheduler's init_noise_sigma scaling: after it, a shift of alpha is lost in noise of std 14.6.
    """
    if noise.shape[1] != len(green_latent):
        raise ValueError(
            f"green_latent has {len(green_latent)} values but the model's latent has {noise.shape[1]} channels"
        )
    out = noise.clone()
    m = mask.to(noise.dtype)
    for c in green_channels(green_latent):
        shifted = (1 - alpha) * noise[:, c] + alpha * green_latent[c]
        out[:, c] = (1 - m) * noise[:, c] + m * shifted
    return out
