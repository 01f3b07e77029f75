"""Synthetic 1024x1024 key plates with a known alpha, as a model paints them: a green that is not #00FF00 and
changes across the image (darker and warmer towards one corner) with grain, and objects composited over it by the
matting equation I = a F + (1 - a) B. Keying is measured against the `alpha` each plate was drawn with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 1024


@dataclass
class Plate:
    """One drawn plate: the picture, the true alpha, the true object colour, and m_obj as phase 1 would give it."""

    name: str
    rgb: np.ndarray  # [H, W, 3] float in 0..1
    alpha: np.ndarray  # [H, W]
    colour: np.ndarray  # [H, W, 3]: the foreground colour where alpha > 0
    m_obj: np.ndarray  # [H, W] 0/1: the object, not its shadow or strands (the mask phase 1 finds)


def graded_backdrop(seed: int = 0) -> np.ndarray:
    """A painted key: green from (0.10, 0.92, 0.22) at the top left to (0.22, 0.42, 0.10) at the bottom right (a
    lit backdrop falling into shade, as models paint them), with grain."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, SIZE)[:, None]
    x = np.linspace(0.0, 1.0, SIZE)[None, :]
    shade = 0.5 * (x + y)
    backdrop = np.stack(np.broadcast_arrays(0.10 + 0.12 * shade, 0.92 - 0.50 * shade, 0.22 - 0.12 * shade), axis=-1)
    return np.clip(backdrop + rng.normal(0.0, 0.012, backdrop.shape), 0.0, 1.0)


def _disc(cx: float, cy: float, radius: float) -> np.ndarray:
    """An anti-aliased disc: coverage of each pixel (a one-pixel ramp on the edge)."""
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float64) + 0.5
    return np.clip(radius - np.hypot(xx - cx, yy - cy) + 0.5, 0.0, 1.0)


def _compose(name: str, alpha: np.ndarray, colour: np.ndarray, m_obj: np.ndarray, seed: int = 0) -> Plate:
    backdrop = graded_backdrop(seed)
    rgb = alpha[..., None] * colour + (1.0 - alpha[..., None]) * backdrop
    return Plate(name, np.clip(rgb, 0.0, 1.0), alpha, colour, m_obj.astype(np.float32))


def solid_object() -> Plate:
    """A red disc across the whole gradient: a hard, anti-aliased edge."""
    alpha = _disc(512, 560, 300)
    return _compose("solid", alpha, np.broadcast_to(np.array([0.80, 0.12, 0.15]), (SIZE, SIZE, 3)), alpha > 0.5)


def strands() -> Plate:
    """A dark-brown head with 48 hair-like strands (1.5 px wide, alpha 0.35-0.8) reaching 70 px out of it."""
    rng = np.random.default_rng(1)
    head = _disc(512, 540, 220)
    hair = np.zeros((SIZE, SIZE))
    for angle in np.linspace(0.0, 2 * np.pi, 48, endpoint=False):
        strength = rng.uniform(0.35, 0.8)
        bend = rng.uniform(-0.25, 0.25)
        for r in np.arange(200.0, 290.0, 0.5):
            a = angle + bend * (r - 200.0) / 90.0
            x, y = 512 + r * np.cos(a), 540 + r * np.sin(a)
            x0, y0 = int(x), int(y)
            for dx in (0, 1):
                for dy in (0, 1):
                    weight = (1 - abs(x - x0 - dx)) * (1 - abs(y - y0 - dy))
                    hair[y0 + dy, x0 + dx] = max(hair[y0 + dy, x0 + dx], strength * min(1.0, 1.5 * weight))
    alpha = np.maximum(head, hair)
    return _compose("strands", alpha, np.broadcast_to(np.array([0.30, 0.18, 0.10]), (SIZE, SIZE, 3)), head > 0.5)


def soft_shadow() -> Plate:
    """An orange square casting a soft shadow (black, alpha up to 0.45) down and to the right of it."""
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float64) + 0.5
    square = np.clip(np.minimum(np.minimum(xx - 300, 700 - xx), np.minimum(yy - 300, 700 - yy)) + 0.5, 0.0, 1.0)
    shadow = 0.45 * np.exp(-0.5 * (np.maximum(np.abs(xx - 530) - 190, 0) ** 2
                                   + np.maximum(np.abs(yy - 530) - 190, 0) ** 2) / 18.0**2)
    alpha = square + (1 - square) * shadow  # the square over its shadow: the shadow's colour is black
    colour = square[..., None] * np.array([0.95, 0.55, 0.10]) / np.maximum(alpha[..., None], 1e-6)
    return _compose("shadow", alpha, colour, square > 0.5)


def white_with_spill() -> Plate:
    """A white disc whose rim (10 px) carries the key's spill: its pixels are opaque but up to 40% key green."""
    disc = _disc(512, 512, 280)
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float64) + 0.5
    depth = 280 - np.hypot(xx - 512, yy - 512)  # pixels inside the edge
    spill = np.clip(0.4 * (1 - depth / 10.0), 0.0, 0.4)[..., None]
    key = graded_backdrop(0)
    colour = (1 - spill) * np.ones(3) + spill * key
    return _compose("spill", disc, colour, disc > 0.5)


PLATES = (solid_object, strands, soft_shadow, white_with_spill)


def alpha_error(plate: Plate, alpha: np.ndarray) -> tuple[float, float]:
    """Mean absolute alpha error over the whole plate, and over the pixels where the truth or the result is partly
    transparent or they disagree (the edge, strands, shadow: where keying is hard)."""
    error = np.abs(alpha - plate.alpha)
    hard = ((plate.alpha > 0.01) & (plate.alpha < 0.99)) | (error > 0.05)
    return float(error.mean()), float(error[hard].mean()) if hard.any() else 0.0


def key_fringe(rgba: np.ndarray) -> float:
    """The key colour left on the layer: mean of max(0, G - max(R, B)) x alpha over pixels at least 5% opaque."""
    colour, alpha = rgba[..., :3], rgba[..., 3]
    excess = np.clip(colour[..., 1] - np.maximum(colour[..., 0], colour[..., 2]), 0.0, None)
    seen = alpha > 0.05
    return float((excess * alpha)[seen].mean()) if seen.any() else 0.0
