"""The RGBA foreground layer: key out the green backdrop of I_fg, gated by m_obj, decontaminated and feathered.

Not in the paper. Halos and green fringes are what users notice first in layered output, so edges get care: the
edge colour is unmixed from the key colour, any green excess left over is removed (despill), and pixels that
feathering makes slightly opaque take the colour of the object next to them, not black. Runs in torch on the
pipeline's device: at 1024 px it costs milliseconds on a GPU.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .config import KEY_COLORS, TAUEConfig
from .masks import dilate, gaussian_blur, resize_mask

MIN_KEY_EXCESS = 0.2  # a backdrop with less key excess than this is not a usable key


def key_channels(key_name: str) -> tuple[list[int], list[int]]:
    """The RGB channels a key colour is made of, and the others: green ([1], [0, 2]), magenta ([0, 2], [1])."""
    if key_name not in KEY_COLORS:
        raise ValueError(f"key_color must be one of {', '.join(KEY_COLORS)} (got {key_name!r})")
    on = [c for c, v in enumerate(KEY_COLORS[key_name]) if v > 0.5]
    return on, [c for c in range(3) if c not in on]


def key_excess(rgb: torch.Tensor, key_name: str = "green") -> torch.Tensor:
    """How much a pixel is of the key colour: min(key channels) - max(other channels). For green, G - max(R, B):
    positive on green pixels, about 0 on greys, yellows and cyans, negative on reds and blues."""
    on, off = key_channels(key_name)
    return rgb[..., on].amin(dim=-1) - rgb[..., off].amax(dim=-1)


def pixel_key_distance(rgb: torch.Tensor, key_name: str = "green") -> torch.Tensor:
    """1 - key excess of RGB pixels [..., 3] in 0..1: 0 on the pure key colour, 1 on a grey (or any colour with no
    excess), up to 2 on the colour opposite the key. The object mask's key distance read in pixels
    (TAUEConfig.mask_signal 'decoded'), on the scale of the latent one (0 on the key, 1 on a grey)."""
    return 1.0 - key_excess(rgb.clamp(0.0, 1.0), key_name)


def green_excess(rgb: torch.Tensor) -> torch.Tensor:
    """G - max(R, B) (the green key's excess)."""
    return key_excess(rgb, "green")


MIN_KEY_PIXELS = 16  # fewer key-coloured backdrop pixels than this: no backdrop to measure


def key_backdrop(rgb: torch.Tensor, around: torch.Tensor, key_name: str = "green") -> torch.Tensor:
    """The pixels of the picture around the object (`around`, bool [H, W]) that are key-coloured: what the keying
    measures the backdrop on, and whose share says whether the backdrop formed."""
    return around & (key_excess(rgb, key_name) > MIN_KEY_EXCESS)


def formed_key(image: Image.Image, around: torch.Tensor, asked: str, formed_share: float = 0.5) -> str:
    """The key colour phase 1 actually painted where the backdrop should be (`around`, bool [H, W]): the one asked
    for if at least `formed_share` of `around` is of it, else another key colour that is (a model may paint the
    key it knows for the object: the toy, asked for magenta behind a green object, paints blue), else the one
    asked for (the backdrop did not form; mask_checks says so)."""
    rgb = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)
    if not around.any():
        return asked
    shares = {name: float(key_backdrop(rgb, around.cpu(), name).sum() / around.sum()) for name in KEY_COLORS}
    if shares[asked] >= formed_share:
        return asked
    best = max(shares, key=lambda name: shares[name])
    return best if shares[best] >= formed_share else asked


def estimate_key_color(rgb: torch.Tensor, on_key: torch.Tensor, key_name: str = "green") -> torch.Tensor:
    """The backdrop's actual key colour (models rarely paint pure #00FF00): median of the key-coloured backdrop
    pixels `on_key` (key_backdrop); the pure key colour where there are too few."""
    if int(on_key.sum()) < MIN_KEY_PIXELS:
        return torch.tensor(KEY_COLORS[key_name], device=rgb.device)
    return rgb[on_key].median(dim=0).values


BACKDROP_CELLS = 32
"""The backdrop model's grid: cells across the shorter side (32 cells of 32 px at 1024). Light falls off over
hundreds of pixels; a shadow or a strand is a few cells or less, so the model follows the first and not the other."""


def backdrop_colour(rgb: torch.Tensor, on_key: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """The key colour behind every pixel, [H, W, 3]: a smooth model of the backdrop a model actually painted (lit
    here, in shade there), not one colour. The mean of the key-coloured backdrop pixels in each cell of a coarse
    grid, smoothed over neighbouring cells, carried into cells that have none (the object, its surroundings) from
    the nearest that have, and interpolated to every pixel. `on_key`: the key-coloured backdrop pixels
    (key_backdrop); `key`, the backdrop's median colour, where none formed.
    """
    height, width = rgb.shape[:2]
    if int(on_key.sum()) < MIN_KEY_PIXELS:
        return key.to(rgb).expand(height, width, 3)
    pick = on_key.to(rgb.dtype)
    cell = max(1, min(height, width) // BACKDROP_CELLS)
    grid = (max(1, round(height / cell)), max(1, round(width / cell)))
    weight = F.adaptive_avg_pool2d(pick[None, None], grid)[0]  # [1, gh, gw]
    total = F.adaptive_avg_pool2d((rgb * pick[..., None]).permute(2, 0, 1)[None], grid)[0]  # [3, gh, gw]
    sigma, filled = 1.0, torch.zeros_like(total)
    missing = torch.ones(grid, dtype=torch.bool, device=rgb.device)
    while missing.any():  # normalised convolution, wider until every cell has backdrop near it
        spread = gaussian_blur(weight, sigma)
        reached = missing & (spread[0] > 1e-3)
        filled = torch.where(reached, gaussian_blur(total, sigma) / spread.clamp_min(1e-6), filled)
        missing &= ~reached
        sigma *= 2.0
        if sigma > 4 * max(grid):
            filled = torch.where(missing, key.to(rgb).view(3, 1, 1), filled)
            break
    smooth = F.interpolate(filled[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    return smooth.permute(1, 2, 0).clamp(0.0, 1.0)


def key_alpha(rgb: torch.Tensor, key: torch.Tensor, low: float, high: float, key_name: str = "green") -> torch.Tensor:
    """1 where the key excess is at most `low` x the key's, 0 where at least `high` x, linear between. `key` is
    one colour [3] or the colour behind each pixel [H, W, 3] (backdrop_colour)."""
    excess_of_key = key_excess(key, key_name)
    excess_of_key = torch.where(excess_of_key < MIN_KEY_EXCESS, torch.ones_like(excess_of_key), excess_of_key)
    ratio = key_excess(rgb, key_name) / excess_of_key
    return 1.0 - ((ratio - low) / (high - low)).clamp(0.0, 1.0)


def decontaminate(rgb: torch.Tensor, alpha: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """Unmix edge pixels: observed = a * F + (1 - a) * key, so F = (observed - (1 - a) * key) / a."""
    a = alpha[..., None]
    unmixed = ((rgb - (1.0 - a) * key) / a.clamp_min(1e-3)).clamp(0.0, 1.0)
    return torch.where(a > 0.05, unmixed, rgb)


def despill(rgb: torch.Tensor, strength: float, key_name: str = "green") -> torch.Tensor:
    """Cap the key's channels at the others' maximum (scaled by `strength`; green: G at max(R, B)): no cast of the
    key colour survives where it is applied (the pipeline applies it in the spill zone only)."""
    out = rgb.clone()
    on, _ = key_channels(key_name)
    excess = key_excess(rgb, key_name).clamp_min(0.0)
    for c in on:
        out[..., c] = rgb[..., c] - strength * excess
    return out


def bleed_colour(rgb: torch.Tensor, alpha: torch.Tensor, sigma: float) -> torch.Tensor:
    """Fill nearly transparent pixels with the alpha-weighted average colour around them (no dark halo)."""
    premultiplied = (rgb * alpha[..., None]).permute(2, 0, 1)
    spread = gaussian_blur(premultiplied, sigma) / gaussian_blur(alpha, sigma).clamp_min(1e-4)
    return torch.where(alpha[..., None] < 0.05, spread.permute(1, 2, 0).clamp(0.0, 1.0), rgb)


def object_gate(m_obj: torch.Tensor, size: tuple[int, int], dilation: float) -> torch.Tensor:
    """m_obj (at any resolution) at the image size, grown by `dilation` x the shorter side and softened: 1 near the
    object, 0 far from it."""
    height, width = size
    side = min(size)
    gate = dilate(resize_mask(m_obj.float(), height, width).clamp(0.0, 1.0), round(dilation * side))
    return gaussian_blur(gate, sigma=max(0.01 * side, 0.5)).clamp(0.0, 1.0)


def spill_zone(alpha: torch.Tensor, band: float) -> torch.Tensor:
    """Where the key can have spilled onto the object: partly transparent pixels, and opaque ones within `band` x
    the shorter side (at least 1 px) of a transparent one. 1 there, 0 in the object's interior and the backdrop."""
    radius = max(1, round(band * min(alpha.shape[-2:]))) if band > 0 else 0
    backdrop = (alpha < 0.98).float()
    near = dilate(backdrop, radius) if radius else backdrop
    return (near * (alpha > 0.02).float()).clamp(0.0, 1.0)


def foreground_rgba(image: Image.Image, m_obj: torch.Tensor | None, config: TAUEConfig,
                    device: torch.device | str | None = None, key_name: str | None = None) -> tuple[Image.Image, dict]:
    """I_fg (RGB, object on the key colour) -> RGBA object layer with a clean alpha; also returns the key (its name,
    and its colour as painted) and the share of the picture around the object that is key-coloured (whether the
    backdrop formed). `m_obj` (image or latent resolution) gates the key; `key_name` (default config.key_color):
    the key phase 1 painted (formed_key)."""
    if key_name is not None and key_name != config.key_color:
        config = config.replace(key_color=key_name)
    device = device if device is not None else (m_obj.device if m_obj is not None else "cpu")
    rgb = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).to(device)
    height, width = rgb.shape[:2]
    gate = (torch.ones((height, width), device=device) if m_obj is None
            else object_gate(m_obj.to(device), (height, width), config.gate_dilation))
    around = (1.0 - gate) > 0.5  # the picture around the object: where the backdrop should be
    on_key = key_backdrop(rgb, around, config.key_color)
    key = estimate_key_color(rgb, on_key, config.key_color)
    behind = backdrop_colour(rgb, on_key, key)
    alpha = key_alpha(rgb, behind, config.key_low, config.key_high, config.key_color) * gate
    colour = decontaminate(rgb, alpha, behind)
    if config.despill:
        zone = spill_zone(alpha, config.despill_band)[..., None]
        colour = zone * despill(colour, config.despill_strength, config.key_color) + (1 - zone) * colour
    if config.feather_px > 0:
        # feathering spreads alpha onto backdrop pixels: give them the colour of the object next to them
        colour = bleed_colour(colour, alpha, sigma=max(2.0, 2.0 * config.feather_px))
        alpha = gaussian_blur(alpha, config.feather_px)
    rgba = torch.cat([colour, alpha.clamp(0.0, 1.0)[..., None]], dim=-1)
    pixels = (rgba * 255.0).round().to(torch.uint8).cpu().numpy()
    formed = float(on_key.sum() / around.sum()) if around.any() else 1.0
    return Image.fromarray(pixels, mode="RGBA"), {"key": config.key_color,
                                                  "key_color": [round(float(v) * 255) for v in key],
                                                  "backdrop_fraction": round(formed, 4)}
