"""The RGBA foreground layer: key out the green backdrop of I_fg, gated by m_obj, decontaminated and feathered.

Not in the paper. Halos and green fringes are what users notice first in layered output, so edges get care: the
edge colour is unmixed from the key colour, and any green excess left over is removed (despill).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .config import TAUEConfig
from .masks import dilate, gaussian_blur, resize_mask

DEFAULT_KEY = np.array([0.0, 1.0, 0.0], dtype=np.float32)
MIN_KEY_EXCESS = 0.2  # a backdrop with less green excess than this is not a usable key


def green_excess(rgb: np.ndarray) -> np.ndarray:
    """G - max(R, B): positive on green pixels, 0 on greys and yellows/cyans' edges, negative on reds and blues."""
    return rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2])


def estimate_key_color(rgb: np.ndarray, backdrop: np.ndarray) -> np.ndarray:
    """The backdrop's actual green (models rarely paint pure #00FF00): median of green backdrop pixels."""
    excess = green_excess(rgb)
    pick = (backdrop > 0.5) & (excess > MIN_KEY_EXCESS)
    if pick.sum() < 16:
        return DEFAULT_KEY.copy()
    return np.median(rgb[pick], axis=0).astype(np.float32)


def key_alpha(rgb: np.ndarray, key: np.ndarray, low: float, high: float) -> np.ndarray:
    """1 where the green excess is at most `low` x the key's, 0 where at least `high` x, linear between."""
    key_excess = float(green_excess(key[None])[0])
    if key_excess < MIN_KEY_EXCESS:
        key, key_excess = DEFAULT_KEY, 1.0
    ratio = green_excess(rgb) / key_excess
    return 1.0 - np.clip((ratio - low) / (high - low), 0.0, 1.0)


def decontaminate(rgb: np.ndarray, alpha: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Unmix edge pixels: observed = a * F + (1 - a) * key, so F = (observed - (1 - a) * key) / a."""
    a = alpha[..., None]
    unmixed = (rgb - (1.0 - a) * key) / np.maximum(a, 1e-3)
    return np.where(a > 0.05, np.clip(unmixed, 0.0, 1.0), rgb)


def despill(rgb: np.ndarray, strength: float) -> np.ndarray:
    """Cap green at max(R, B) (scaled by `strength`): no green cast survives on the object or its edge."""
    out = rgb.copy()
    excess = np.maximum(green_excess(rgb), 0.0)
    out[..., 1] = rgb[..., 1] - strength * excess
    return out


def bleed_colour(rgb: np.ndarray, alpha: np.ndarray, sigma: float) -> np.ndarray:
    """Fill nearly transparent pixels with the alpha-weighted average colour around them (no dark halo)."""
    weights = torch.from_numpy(alpha.astype(np.float32))
    premultiplied = torch.from_numpy((rgb * alpha[..., None]).astype(np.float32)).permute(2, 0, 1)
    spread = gaussian_blur(premultiplied, sigma) / gaussian_blur(weights, sigma).clamp_min(1e-4)
    spread = spread.permute(1, 2, 0).numpy()
    return np.where(alpha[..., None] < 0.05, np.clip(spread, 0.0, 1.0), rgb)


def object_gate(m_obj: torch.Tensor, size: tuple[int, int], dilation: int) -> np.ndarray:
    """m_obj dilated (latent pixels), upsampled to the image and softened: 1 near the object, 0 far from it."""
    height, width = size
    gate = dilate(m_obj.float().cpu(), dilation)
    gate = resize_mask(gate, height, width)
    scale = height / m_obj.shape[-2]
    gate = gaussian_blur(gate, sigma=max(scale * 0.5, 0.5))
    return gate.clamp(0, 1).numpy()


def foreground_rgba(image: Image.Image, m_obj: torch.Tensor | None, config: TAUEConfig) -> tuple[Image.Image, dict]:
    """I_fg (RGB, object on green) -> RGBA object layer with a clean alpha; also returns what was measured."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    height, width = rgb.shape[:2]
    gate = np.ones((height, width), np.float32) if m_obj is None else object_gate(m_obj, (height, width),
                                                                                  config.mask_gate_dilation)
    key = estimate_key_color(rgb, backdrop=1.0 - gate)
    alpha = (key_alpha(rgb, key, config.key_low, config.key_high) * gate).astype(np.float32)
    colour = decontaminate(rgb, alpha, key)
    if config.despill:
        colour = despill(colour, config.despill_strength)
    if config.feather_px > 0:
        # feathering spreads alpha onto backdrop pixels: give them the colour of the object next to them
        colour = bleed_colour(colour, alpha, sigma=max(2.0, 2.0 * config.feather_px))
        alpha = gaussian_blur(torch.from_numpy(alpha), config.feather_px).numpy()
    alpha = np.clip(alpha, 0.0, 1.0)
    rgba = np.concatenate([colour, alpha[..., None]], axis=-1)
    out = Image.fromarray(np.round(rgba * 255.0).astype(np.uint8), mode="RGBA")
    return out, {"key_color": [round(float(v) * 255) for v in key], "opaque_fraction": float((alpha > 0.5).mean())}
