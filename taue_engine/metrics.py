"""Layer metrics: how well the three layers fit together, on any model, and against known truth on the toy model.

The paper's protocol compares the foreground layer with the composite inside the object mask (PSNR_fg, SSIM_fg)
and the background layer with the composite outside it (PSNR_bg, SSIM_bg). On the toy model, whose scenes are made
of known palette colours, the truth is known too: the object's colour, the background's colour, key green.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .masks import gaussian_blur

EDGE_BAND = 1  # pixels on each side of the alpha edge that count as edge
FRINGE_EXCESS = 0.1  # key excess (green: G - max(R, B)) above this (0..1) on an edge pixel is a fringe of the key


def _float(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)[..., :3] / 255.0


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """PSNR in dB of two float images in 0..1, over the pixels where `where` is true (all by default)."""
    error = ((a - b) ** 2).mean(axis=-1)
    if where is not None:
        if not where.any():
            return float("nan")
        error = error[where]
    mse = float(error.mean())
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def ssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel SSIM of the luma of two float RGB images in 0..1 (Gaussian window, Wang et al. 2004 constants)."""
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    x, y = torch.from_numpy(a @ weights), torch.from_numpy(b @ weights)
    blur = lambda t: gaussian_blur(t, sigma)  # noqa: E731
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return value.numpy()


def ssim(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    value = ssim_map(a, b)
    if where is not None:
        if not where.any():
            return float("nan")
        value = value[where]
    return float(value.mean())


def layer_fidelity(result) -> dict[str, float]:
    """The paper's PSNR_fg/bg and SSIM_fg/bg of a TAUEResult.

    The foreground layer is compared with the composite where the layer shows the object (alpha above one half):
    its colour under transparent pixels is never seen, so it has nothing to match. The background layer is compared
    with the composite outside m_obj (result.mask above one half), the region it takes from the composite; inside,
    the composite shows the object and the background layer by design does not.
    For SSIM, whose window looks across the region's edge, the layer is pasted into the composite inside its region
    first, so that only differences inside the region count.
    """
    opaque = np.asarray(result.foreground, dtype=np.float32)[..., 3] / 255.0 > 0.5
    hole = np.asarray(result.mask, dtype=np.float32) / 255.0 > 0.5
    composite = _float(result.composite)
    foreground = _float(result.foreground)
    background = _float(result.background)
    pasted_fg = np.where(opaque[..., None], foreground, composite)
    pasted_bg = np.where(hole[..., None], composite, background)
    return {
        "psnr_fg": psnr(foreground, composite, opaque),
        "ssim_fg": ssim(pasted_fg, composite, opaque),
        "psnr_bg": psnr(background, composite, ~hole),
        "ssim_bg": ssim(pasted_bg, composite, ~hole),
    }


def alpha_edge(alpha: np.ndarray) -> np.ndarray:
    """Pixels within EDGE_BAND of the boundary between opaque and transparent (alpha split at one half)."""
    solid = torch.from_numpy((alpha > 0.5).astype(np.float32))[None, None]
    k = 2 * EDGE_BAND + 1
    grown = torch.nn.functional.max_pool2d(solid, k, stride=1, padding=EDGE_BAND)
    shrunk = -torch.nn.functional.max_pool2d(-solid, k, stride=1, padding=EDGE_BAND)
    return ((grown - shrunk)[0, 0] > 0).numpy() | ((alpha > 0.02) & (alpha < 0.98))


def fringe_fraction(foreground_rgba, key_name: str = "green") -> float:
    """Fraction of edge pixels of the RGBA layer that still carry the key colour (green: G well above max(R, B))."""
    from .keying import key_excess

    pixels = np.asarray(foreground_rgba, dtype=np.float32) / 255.0
    alpha = pixels[..., 3]
    edge = alpha_edge(alpha) & (alpha > 0.02)  # a fully transparent pixel shows nothing
    if not edge.any():
        return 0.0
    excess = key_excess(torch.from_numpy(np.ascontiguousarray(pixels[..., :3][edge])), key_name).numpy()
    return float((excess > FRINGE_EXCESS).mean())


def key_color_of(result) -> str:
    """The key colour a result was made with (its metadata's config; green when it does not say)."""
    return ((getattr(result, "metadata", None) or {}).get("config") or {}).get("key_color", "green")


def toy_metrics(result, object_colour: str, background_colour: str) -> dict[str, float]:
    """Metrics where the truth is known: the scene is made of palette colours (see toy/scenes.py)."""
    from .toy.scenes import classify_colours, label_fraction, palette_names

    inside = np.asarray(result.mask, dtype=np.float32) / 255.0 > 0.5
    alpha = np.asarray(result.foreground, dtype=np.float32)[..., 3] / 255.0

    # the object as drawn: pixels of the requested colour in the foreground-on-green image (not merely non-green,
    # or an image that forgot its green backdrop would score an all-opaque alpha as perfect)
    on_green = classify_colours(np.asarray(result.foreground_on_green))
    drawn_object = on_green == palette_names().index(object_colour)
    opaque = alpha > 0.5
    union = (drawn_object | opaque).sum()
    iou = float((drawn_object & opaque).sum() / union) if union else 1.0

    composite = classify_colours(np.asarray(result.composite))
    return {
        "alpha_iou": iou,
        "leakage": label_fraction(classify_colours(np.asarray(result.background)), object_colour, inside),
        "object_colour_in_composite": label_fraction(composite, object_colour, inside),
        "background_colour_in_composite": label_fraction(composite, background_colour, ~inside),
        "fringe": fringe_fraction(result.foreground, key_color_of(result)),
    }
