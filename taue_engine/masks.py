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


def key_distance(clean: torch.Tensor, key: torch.Tensor, unit: float, size: tuple[int, int]) -> torch.Tensor:
    """How far each image position of a clean latent [1, C, h, w] is from the key colour's latent `key` [C], in
    units of `unit` (the key's distance from a mid grey): 0 on the backdrop, about 1 or more on an object. The
    latent is interpolated to `size` (bilinear) first, so that the object's outline falls between cells."""
    return latent_distance(fine_latent(clean, size), key, unit)


def fine_latent(clean: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A latent [1, C, h, w] interpolated (bilinear) to image positions `size`: [C, H, W] float32."""
    return F.interpolate(clean.float(), size=size, mode="bilinear", align_corners=False)[0]


def latent_distance(fine: torch.Tensor, latent: torch.Tensor, unit: float = 1.0) -> torch.Tensor:
    """The distance of every position of `fine` ([C, H, W]) from `latent` ([C]), in units of `unit`: [H, W]."""
    return (fine - latent.to(fine).view(-1, 1, 1)).norm(dim=0) / max(float(unit), 1e-6)


def backdrop_region(key_mask: torch.Tensor, attention: torch.Tensor | None, size: tuple[int, int],
                    tau_attention: float) -> torch.Tensor:
    """Where phase 1's backdrop should be, bool [H, W] at `size`: the latent cells the injection turned to the key
    (`key_mask`, [h, w] of 0/1) whose object attention is low (normalised, at most `tau_attention`)."""
    region = resize_mask(key_mask.float(), *size) > 0.5
    if attention is not None:
        region &= resize_mask(normalize(attention.float()), *size) <= tau_attention
    return region


def object_mask(
    distance: torch.Tensor,
    attention: torch.Tensor | None,
    size: tuple[int, int],
    tau_bg: float,
    tau_attention: float,
    blur: float,
    dilation: float = 0.0,
) -> tuple[torch.Tensor, str]:
    """m_obj at image resolution `size`: [G(key distance) > tau_bg] AND [A_fg > tau_A]; [H, W] of 0/1 (float32).
    `distance` [H, W] is the clean estimate's distance from the key colour (key_distance, or keying's
    pixel_key_distance of the decoded estimate: 0 on the key, 1 on a grey); `blur` and `dilation` are fractions of
    the shorter side of `size`.

    Returns the mask and which signals made it: 'key+attention', 'key' (no attention was given), or, when the two
    share no pixel, 'key (attention dropped)' and then 'attention (key dropped)': an empty mask would silently drop
    the object from the composite (mask_checks tells the user instead).
    """
    side = min(size)
    not_key = gaussian_blur(distance.float(), blur * side) > tau_bg
    if attention is None:
        mask, source = not_key, "key"
    else:
        attended = resize_mask(normalize(attention.float()), *size) > tau_attention
        both = not_key & attended
        mask, source = ((both, "key+attention") if both.any() else (not_key, "key (attention dropped)")
                        if not_key.any() else (attended, "attention (key dropped)"))
    return dilate(mask.float(), round(dilation * side)), source


def hold_mask(mask: torch.Tensor, latent_size: tuple[int, int], fraction: float, grow: int = 0,
              within: torch.Tensor | None = None) -> torch.Tensor:
    """The latent cells a transplant holds for an image-resolution mask: those at least `fraction` object (area
    average), grown by `grow` cells into cells that `within` (an image-resolution mask: where the clean estimate is
    not plainly the key colour) covers at least `fraction` of, so that the rim is held and bare backdrop is not; a
    mask too small for that holds its fullest cell, so that no object is dropped. [h, w] of 0/1."""
    pool = lambda m: F.adaptive_avg_pool2d(m[None, None].float(), latent_size)[0, 0]  # noqa: E731
    pooled = pool(mask)
    held = pooled >= fraction - 1e-6
    if not held.any() and float(pooled.max()) > 0:
        held = pooled >= pooled.max()
    grown = dilate(held.float(), grow) > 0.5
    if within is not None:
        grown &= pool(within) >= fraction - 1e-6
    return (held | grown).float()


def resize_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Area-average a [H, W] mask to another size (soft values on the edge)."""
    if mask.shape[-2:] == (height, width):
        return mask
    x = mask[None, None].float()
    if height <= mask.shape[-2] and width <= mask.shape[-1]:
        return F.adaptive_avg_pool2d(x, (height, width))[0, 0]
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)[0, 0]


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Grow a [H, W] mask by `radius` pixels (a (2r+1)-square max filter). Done as a row pass then a column pass: a
    square's maximum is the maximum of its rows' maxima, so the result is exactly the square filter's, at 2(2r+1)
    reads a pixel instead of (2r+1)^2 (the keying gate's 165x165 at 1024 px)."""
    if radius <= 0:
        return mask
    size = 2 * radius + 1
    x = mask[None, None].float()
    x = F.max_pool2d(x, (1, size), stride=1, padding=(0, radius))
    return F.max_pool2d(x, (size, 1), stride=1, padding=(radius, 0))[0, 0]


def erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Shrink a [H, W] mask of 0..1 by `radius` pixels: dilate's dual (1 - dilate(1 - mask)); the image's own edge
    does not erode it."""
    return 1 - dilate(1 - mask.float(), radius) if radius > 0 else mask
