"""m_obj: where the object is, from the seedling's green signal and the object tokens' cross-attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a [..., H, W] tensor with replicated borders; sigma 0 returns x."""
    if sigma <= 0:
        return x
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(x.dtype)
    shape = x.shape
    y = x.reshape(-1, 1, shape[-2], shape[-1])
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return y.reshape(shape)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Min-max to [0, 1], so that thresholds are scale-free; a constant map becomes all zeros."""
    low, high = x.min(), x.max()
    if float(high - low) <= 1e-12:
        return torch.zeros_like(x)
    return (x - low) / (high - low)


def front_to_back(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer K soft masks [K, H, W] in order, later in front: the weight each object keeps where it is visible,
    and what is left for the background ([H, W]). One mask m gives (m, 1 - m)."""
    remainder = torch.ones_like(masks[0])
    weights = torch.empty_like(masks)
    for k in range(masks.shape[0] - 1, -1, -1):  # the front object first
        weights[k] = masks[k] * remainder
        remainder = remainder * (1 - masks[k])
    return weights, remainder


def green_signal(latent: torch.Tensor, green_latent: tuple[float, ...]) -> torch.Tensor:
    """v_gb: the latent projected on the key direction (channels 1 + 2 for the paper's [0, 1, 1, 0]); [H, W]."""
    weights = torch.tensor(green_latent, dtype=latent.dtype, device=latent.device).view(-1, 1, 1)
    return (latent[0] * weights).sum(0)


def object_mask(
    seedling: torch.Tensor,
    attention: torch.Tensor | None,
    green_latent: tuple[float, ...],
    tau_bg: float,
    tau_attention: float,
    blur_sigma: float,
) -> tuple[torch.Tensor, str]:
    """m_obj = [G_sigma(v_gb) < tau_bg] AND [A_fg > tau_A], both maps min-max normalised; [H, W] of 0/1.

    Returns the mask and which signals made it. If the two signals share no pixel, the green signal alone is used,
    then the attention alone: an empty mask would silently drop the object from the composite.
    """
    green = normalize(gaussian_blur(green_signal(seedling.float(), green_latent), blur_sigma))
    not_green = green < tau_bg
    if attention is None:
        return not_green.float(), "green"
    attended = normalize(attention.float()) > tau_attention
    both = not_green & attended
    if both.any():
        return both.float(), "green+attention"
    if not_green.any():
        return not_green.float(), "green"
    return attended.float(), "attention"


def resize_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Area-average a [H, W] mask to another size (soft values on the edge)."""
    if mask.shape[-2:] == (height, width):
        return mask
    x = mask[None, None].float()
    if height <= mask.shape[-2] and width <= mask.shape[-1]:
        return F.adaptive_avg_pool2d(x, (height, width))[0, 0]
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)[0, 0]


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    if radius <= 0:
        return mask
    return F.max_pool2d(mask[None, None].float(), 2 * radius + 1, stride=1, padding=radius)[0, 0]
