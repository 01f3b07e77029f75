"""Layer metrics: how well the three layers fit together, on any model, and against known truth on the toy model.

The paper's protocol compares the foreground layer with the composite inside the object mask (PSNR_fg, SSIM_fg)
and the background layer with the composite outside it (PSNR_bg, SSIM_bg). On the toy model, whose scenes are made
of known palette colours, the truth is known too: the object's colour, the background's colour, key green.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from taue_engine.masks import gaussian_blur

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
    """Per-pixel SSIM of two float RGB images in 0..1, each channel on its own and then averaged (Gaussian window,
    Wang et al. 2004 constants). On flat synthetic colours its structure term compares decoder texture: two regions
    a person sees as the same colour, each with its own faint noise, score about 0.5."""
    x, y = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))), torch.from_numpy(
        np.ascontiguousarray(b.transpose(2, 0, 1)))
    blur = lambda t: gaussian_blur(t, sigma)  # noqa: E731
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return value.mean(0).numpy()


def ssim(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    value = ssim_map(a, b)
    if where is not None:
        if not where.any():
            return float("nan")
        value = value[where]
    return float(value.mean())


def opaque_of(layer) -> np.ndarray:
    """Where an RGBA layer shows its object (alpha above one half)."""
    return np.asarray(layer, dtype=np.float32)[..., 3] / 255.0 > 0.5


def visible_stack(result) -> np.ndarray:
    """What a designer sees with the composite hidden: the object layers over the background, as float RGB."""
    from PIL import Image

    stack = result.background.convert("RGBA")
    for layer in [o.layer for o in getattr(result, "objects", None) or []] or [result.foreground]:
        stack = Image.alpha_composite(stack, layer.convert("RGBA"))
    return _float(stack)


def layer_fidelity(result) -> dict[str, float]:
    """How the layers match the composite: the paper's PSNR_fg/bg and SSIM_fg/bg of a TAUEResult, and ours.

    - psnr_fg_paper: the paper's protocol, I_fg (the foreground phase's image) against I_all inside m_obj (the
      result's mask): it counts whatever m_obj holds, backdrop included.
    - psnr_fg, ssim_fg: the RGBA layer against the composite where the layer shows the object (alpha above one
      half): its colour under transparent pixels is never seen, so it has nothing to match.
    - psnr_fg_inside / psnr_fg_outside: psnr_fg split into the opaque pixels inside m_obj and those outside it
      (outside, the composite re-grew background where the layer has object: a mask that misses part of the
      object shows here). NaN where a region has no pixels.
    - psnr_bg, ssim_bg: the background layer against the composite outside m_obj, the region it takes from it.
    - psnr_stack: the whole visible stack (object layers over the background) against the composite.
    For SSIM, whose window looks across the region's edge, the layer is pasted into the composite inside its region
    first, so that only differences inside the region count.
    """
    opaque = opaque_of(result.foreground)
    hole = np.asarray(result.mask, dtype=np.float32) / 255.0 > 0.5
    composite = _float(result.composite)
    foreground = _float(result.foreground)
    background = _float(result.background)
    pasted_fg = np.where(opaque[..., None], foreground, composite)
    pasted_bg = np.where(hole[..., None], composite, background)
    return {
        "psnr_fg": psnr(foreground, composite, opaque),
        "psnr_fg_paper": psnr(_float(result.foreground_on_green), composite, hole),
        "psnr_fg_inside": psnr(foreground, composite, opaque & hole),
        "psnr_fg_outside": psnr(foreground, composite, opaque & ~hole),
        "ssim_fg": ssim(pasted_fg, composite, opaque),
        "psnr_bg": psnr(background, composite, ~hole),
        "ssim_bg": ssim(pasted_bg, composite, ~hole),
        "psnr_stack": psnr(visible_stack(result), composite),
    }


def mask_fit(result) -> dict[str, float]:
    """m_obj (the result's mask) against the object the layer shows: the share of the opaque object it covers, and
    its size in units of the object's (1: as large; NaN when the layer shows nothing)."""
    opaque = opaque_of(result.foreground)
    hole = np.asarray(result.mask, dtype=np.float32) / 255.0 > 0.5
    area = int(opaque.sum())
    if not area:
        return {"mask_coverage": float("nan"), "mask_size": float("nan")}
    return {"mask_coverage": float((hole & opaque).sum() / area), "mask_size": float(hole.sum() / area)}


def box_fraction(layer, box) -> float:
    """The share of an RGBA layer's alpha inside a layout box (cx, cy, w, h in 0..1); NaN for an empty layer."""
    alpha = np.asarray(layer, dtype=np.float32)[..., 3] / 255.0
    total = float(alpha.sum())
    if total <= 0:
        return float("nan")
    height, width = alpha.shape
    left, right = round((box.cx - box.w / 2) * width), round((box.cx + box.w / 2) * width)
    top, bottom = round((box.cy - box.h / 2) * height), round((box.cy + box.h / 2) * height)
    inside = alpha[max(0, top):max(0, bottom), max(0, left):max(0, right)]
    return float(inside.sum() / total)


def alpha_edge(alpha: np.ndarray) -> np.ndarray:
    """Pixels within EDGE_BAND of the boundary between opaque and transparent (alpha split at one half)."""
    solid = torch.from_numpy((alpha > 0.5).astype(np.float32))[None, None]
    k = 2 * EDGE_BAND + 1
    grown = torch.nn.functional.max_pool2d(solid, k, stride=1, padding=EDGE_BAND)
    shrunk = -torch.nn.functional.max_pool2d(-solid, k, stride=1, padding=EDGE_BAND)
    return ((grown - shrunk)[0, 0] > 0).numpy() | ((alpha > 0.02) & (alpha < 0.98))


def fringe_fraction(foreground_rgba, key_name: str = "green") -> float:
    """Fraction of edge pixels of the RGBA layer that still carry the key colour (green: G well above max(R, B))."""
    from taue_engine.keying import key_excess

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
    """Metrics where the truth is known: the scene is made of palette colours (lab/world.py).

    - alpha_iou: the layer's opaque pixels against the object as drawn (pixels of the requested colour in I_fg;
      not merely non-green, or an image that forgot its green backdrop would score an all-opaque alpha as perfect).
    - mask_precision: the share of m_obj on the drawn object (the rest is backdrop the composite must repaint).
    - leakage: the share of the whole background layer in the object's colour where the background's truth has
      none (world.foreign_fraction: nearer the object's colour than any colour the world draws for that
      background, whose partner colours a nearest-palette count would take for the object's).
    - object_colour_in_composite: the share of the composite in the object's colour where the layer is opaque and
      inside m_obj; background_colour_in_composite: the background's colour outside m_obj.
    - fringe: edge pixels of the layer that still carry the key colour.
    """
    from .world import classify_colours, colour_names, foreign_fraction, label_fraction

    inside = np.asarray(result.mask, dtype=np.float32) / 255.0 > 0.5
    opaque = opaque_of(result.foreground)
    drawn_object = classify_colours(np.asarray(result.foreground_on_green)) == colour_names().index(object_colour)
    union = (drawn_object | opaque).sum()
    composite = classify_colours(np.asarray(result.composite))
    return {
        "alpha_iou": float((drawn_object & opaque).sum() / union) if union else 1.0,
        "mask_precision": float((drawn_object & inside).sum() / inside.sum()) if inside.any() else float("nan"),
        "leakage": foreign_fraction(np.asarray(result.background.convert("RGB")), object_colour, background_colour),
        "object_colour_in_composite": (label_fraction(composite, object_colour, opaque & inside)
                                       if (opaque & inside).any() else float("nan")),
        "background_colour_in_composite": label_fraction(composite, background_colour, ~inside),
        "fringe": fringe_fraction(result.foreground, key_color_of(result)),
        **composite_around(result, object_colour, background_colour, opaque, inside),
    }


RING = 0.06  # of the image's shorter side: the ring around the object that composite_foreign_ring reads
CLEAR = 0.1  # of the shorter side: how far from m_obj a copy of the object counts as a duplicate


def composite_around(result, object_colour: str, background_colour: str, opaque: np.ndarray,
                     inside: np.ndarray) -> dict[str, float]:
    """The composite around the object, where fringes and copies show:

    - composite_foreign_ring: the share of a ring around the opaque object (RING wide) whose composite colour is
      neither the object's nor one the background draws (a key-coloured or mixed fringe);
    - composite_duplicate: the share of the composite farther than CLEAR from m_obj in the object's colour where
      the background's truth has none (a second copy of the object; the paper's claim for its high-pass filter).
    """
    own, background = own_and_background(np.asarray(result.composite.convert("RGB")), object_colour,
                                         background_colour)
    far = ~grow_mask(inside | opaque, CLEAR)
    return {"composite_foreign_ring": ring_share(own, background, opaque),
            "composite_duplicate": float((own & far).sum() / far.size)}


def grow_mask(mask: np.ndarray, fraction: float) -> np.ndarray:
    """A bool mask grown by `fraction` of its shorter side (at least one pixel; a square)."""
    import torch

    from taue_engine.masks import dilate

    radius = max(1, round(fraction * min(mask.shape)))
    return dilate(torch.from_numpy(mask.astype(np.float32)), radius).numpy() > 0.5


def own_and_background(rgb: np.ndarray, object_colour: str, background_colour: str) -> tuple[np.ndarray, np.ndarray]:
    """Pixels in the object's named colour, and pixels in a colour the background draws (background_family)."""
    from .world import _named_table, background_family, colour_names, nearest_colour

    family = background_family(background_colour)  # first, so that a tie (its base is a named colour) is background
    nearest = nearest_colour(rgb, np.concatenate([family, _named_table()]))
    return nearest == len(family) + colour_names().index(object_colour), nearest < len(family)


def foreign_ring(rgb: np.ndarray, opaque: np.ndarray, object_colour: str, background_colour: str) -> float:
    """The share of the ring RING wide around `opaque` in `rgb` in neither the object's nor the background's
    colours (composite_foreign_ring; also read on the model alone's scene)."""
    return ring_share(*own_and_background(rgb, object_colour, background_colour), opaque)


def ring_share(own: np.ndarray, background: np.ndarray, opaque: np.ndarray) -> float:
    """The share of the ring RING wide around `opaque` that is neither `own` nor `background` (own_and_background)."""
    ring = grow_mask(opaque, RING) & ~opaque
    return float((~own & ~background)[ring].mean()) if ring.any() else 0.0
