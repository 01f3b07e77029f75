"""Procedural scenes for the toy model: simple objects over simple backgrounds, with the truth kept.

Every sample is generated from a seed and keeps its ground truth: the object's coverage mask, the clean background
(the scene without the object), the object alone on key green, and the colour names. Captions use the words of the
prompts users type: "a red star on a blue striped background", "a red star", "a blue striped background".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SIZE = 64
KEY_GREEN = (0, 255, 0)
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (245, 220, 30),
    "blue": (30, 70, 220),
    "purple": (140, 40, 190),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
COLOURS = tuple(PALETTE)
SHAPES = ("circle", "square", "triangle", "star", "ring", "cross")
BACKGROUNDS = ("solid", "striped", "checkered", "gradient")
# the second colour of a pattern: a lighter or darker version of the named one, so the background reads as it
PARTNER_MIX = {"white": ("black", 0.35), "black": ("white", 0.35)}
SUPERSAMPLE = 4


class PromptWords:
    """The prompts of a scene, from its shape and colours (scenes and testbed pairs share them)."""

    shape: str
    colour: str
    background_colour: str
    background_kind: str

    @property
    def object_prompt(self) -> str:
        return object_prompt(self.colour, self.shape)

    @property
    def background_prompt(self) -> str:
        return background_prompt(self.background_colour, self.background_kind)

    @property
    def scene_prompt(self) -> str:
        return f"{self.object_prompt} on {self.background_prompt}"


@dataclass
class Scene(PromptWords):
    """One sample and its truth (images are uint8 HxWx3, masks float HxW in 0..1)."""

    image: np.ndarray  # object over background
    object_on_green: np.ndarray  # object over key green
    background: np.ndarray  # the background alone
    mask: np.ndarray  # object coverage (anti-aliased)
    shape: str
    colour: str
    background_colour: str
    background_kind: str


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def object_prompt(colour: str, shape: str) -> str:
    return f"{_article(colour)} {colour} {shape}"


def background_prompt(colour: str, kind: str) -> str:
    words = colour if kind == "solid" or colour == "green" else f"{colour} {kind}"
    return f"{_article(words)} {words} background"


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    n = size * SUPERSAMPLE
    t = (np.arange(n) + 0.5) / n
    return np.meshgrid(t, t, indexing="xy")  # x, y in 0..1


def _polygon_inside(x: np.ndarray, y: np.ndarray, points: list[tuple[float, float]]) -> np.ndarray:
    """Even-odd rule point-in-polygon test, vectorised over the grid."""
    inside = np.zeros(x.shape, dtype=bool)
    n = len(points)
    for i in range(n):
        x1, y1 = points[i]
        x2, y2 = points[(i + 1) % n]
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = (x2 - x1) * (y - y1) / (y2 - y1 + 1e-12) + x1
        inside ^= crosses & (x < x_at)
    return inside


def shape_mask(shape: str, cx: float, cy: float, radius: float, angle: float = 0.0, size: int = SIZE) -> np.ndarray:
    """Anti-aliased coverage of a shape centred at (cx, cy) with outer radius `radius` (fractions of the image)."""
    x, y = _grid(size)
    dx, dy = x - cx, y - cy
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy  # rotated coordinates
    r = np.hypot(dx, dy)
    if shape == "circle":
        inside = r <= radius
    elif shape == "ring":
        inside = (r <= radius) & (r >= radius * 0.55)
    elif shape == "square":
        half = radius * 0.8
        inside = (np.abs(u) <= half) & (np.abs(v) <= half)
    elif shape == "cross":
        arm = radius * 0.33
        inside = ((np.abs(u) <= arm) & (np.abs(v) <= radius)) | ((np.abs(v) <= arm) & (np.abs(u) <= radius))
    elif shape in ("triangle", "star"):
        points = []
        count = 3 if shape == "triangle" else 10
        for k in range(count):
            a = angle - math.pi / 2 + 2 * math.pi * k / count
            rk = radius if shape == "triangle" or k % 2 == 0 else radius * 0.45
            points.append((cx + rk * math.cos(a), cy + rk * math.sin(a)))
        inside = _polygon_inside(x, y, points)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    return inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3)).astype(np.float32)


def partner_colour(name: str) -> np.ndarray:
    """The pattern's second colour: the named colour mixed towards white (or black for white)."""
    base = np.array(PALETTE[name], np.float32)
    other, amount = PARTNER_MIX.get(name, ("white", 0.45))
    return base * (1 - amount) + np.array(PALETTE[other], np.float32) * amount


def background_image(colour: str, kind: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    base = np.array(KEY_GREEN if colour == "green" else PALETTE[colour], np.float32)
    image = np.broadcast_to(base, (size, size, 3)).copy()
    if kind == "solid" or colour == "green":
        return image
    partner = partner_colour(colour)
    t = np.arange(size)
    period = int(rng.integers(16, 33))  # bands of 8-16 px: wide enough for an 8x VAE
    if kind == "striped":
        on = ((t // (period // 2)) % 2 == 1)
        vertical = rng.random() < 0.5
        band = np.broadcast_to(on[None, :] if vertical else on[:, None], (size, size))
        image[band] = partner
    elif kind == "checkered":
        cells = (t // (period // 2)) % 2
        image[(cells[None, :] ^ cells[:, None]) == 1] = partner
    elif kind == "gradient":
        ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
        ramp = ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]
        image = base * (1 - ramp) + partner * ramp
    else:
        raise ValueError(f"unknown background kind {kind!r}; known: {', '.join(BACKGROUNDS)}")
    return np.broadcast_to(image, (size, size, 3)).copy()


def make_scene(seed: int, size: int = SIZE, shape: str | None = None, colour: str | None = None,
               background_colour: str | None = None, background_kind: str | None = None,
               green_background_rate: float = 0.0) -> Scene:
    """One seeded scene; unspecified parts are drawn at random (the object never shares the background's colour)."""
    rng = np.random.default_rng(seed)
    shape = shape or SHAPES[rng.integers(len(SHAPES))]
    colour = colour or COLOURS[rng.integers(len(COLOURS))]
    if background_colour is None:
        if rng.random() < green_background_rate:
            background_colour = "green"
        else:
            choices = [c for c in COLOURS if c != colour]
            background_colour = choices[rng.integers(len(choices))]
    if background_colour == colour:
        raise ValueError(f"object and background must differ in colour (both {colour})")
    background_kind = "solid" if background_colour == "green" else (
        background_kind or BACKGROUNDS[rng.integers(len(BACKGROUNDS))])
    radius = float(rng.uniform(0.2, 0.32))
    cx, cy = (float(rng.uniform(radius, 1 - radius)) for _ in range(2))
    mask = shape_mask(shape, cx, cy, radius, angle=float(rng.uniform(-0.3, 0.3)), size=size)
    background = background_image(background_colour, background_kind, rng, size)
    obj = np.array(PALETTE[colour], np.float32)
    m = mask[..., None]
    image = background * (1 - m) + obj * m
    on_green = np.array(KEY_GREEN, np.float32) * (1 - m) + obj * m
    as_u8 = lambda a: np.clip(np.round(a), 0, 255).astype(np.uint8)  # noqa: E731
    return Scene(as_u8(image), as_u8(on_green), as_u8(background), mask, shape, colour, background_colour,
                 background_kind)


def _palette_table(include_green: bool = True) -> np.ndarray:
    """The RGB of each of `palette_names(include_green)`, in that order."""
    return np.array([KEY_GREEN if n == "green" else PALETTE[n] for n in palette_names(include_green)], np.float32)


def nearest_colour(rgb: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Index into `table` (N x 3) of the nearest colour of each pixel of an HxWx3 image."""
    flat = rgb.reshape(-1, 3).astype(np.float32)
    return ((flat[:, None, :] - table[None, :, :]) ** 2).sum(-1).argmin(1).reshape(rgb.shape[:2])


def classify_colours(rgb: np.ndarray, include_green: bool = True) -> np.ndarray:
    """Nearest palette colour per pixel (index into `palette_names(include_green)`); works on HxWx3 uint8."""
    return nearest_colour(rgb, _palette_table(include_green))


BACKGROUND_FAMILY_SAMPLES = 9  # colours along base -> partner: every colour a patterned background draws


def background_family(colour: str) -> np.ndarray:
    """Every colour the world draws for a background of `colour`: its base, its pattern partner and the gradient
    between them (BACKGROUND_FAMILY_SAMPLES x 3). A partner can lie nearer another palette colour than its own
    (light orange nearer yellow, the grey partners of white and black nearer purple)."""
    base = np.array(KEY_GREEN if colour == "green" else PALETTE[colour], np.float32)
    if colour == "green":
        return base[None]
    ramp = np.linspace(0.0, 1.0, BACKGROUND_FAMILY_SAMPLES, dtype=np.float32)[:, None]
    return base * (1 - ramp) + partner_colour(colour) * ramp


def foreign_fraction(rgb: np.ndarray, colour: str, background_colour: str) -> float:
    """The share of a background image in `colour` that its truth cannot hold: pixels nearer `colour` than any
    other palette colour and than every colour the world draws for `background_colour` (background_family).
    A plain nearest-palette count scores the world's own orange stripes 47% yellow, and its white and black
    patterns up to half purple, so that a perfect background layer would miss a 2% leakage bar."""
    nearest = nearest_colour(rgb, np.concatenate([_palette_table(), background_family(background_colour)]))
    return float((nearest == palette_names().index(colour)).mean())


def palette_names(include_green: bool = True) -> list[str]:
    return list(COLOURS) + (["green"] if include_green else [])


def label_fraction(labels: np.ndarray, colour: str, where: np.ndarray | None = None) -> float:
    """Fraction of classified pixels (optionally only where `where` is true) that are `colour`; 0 on no pixels."""
    hit = labels == palette_names().index(colour)
    if where is not None:
        if not where.any():
            return 0.0
        hit = hit[where]
    return float(hit.mean())


def colour_fraction(rgb: np.ndarray, colour: str, where: np.ndarray | None = None) -> float:
    """Fraction of pixels (optionally only where `where` is true) whose nearest palette colour is `colour`."""
    return label_fraction(classify_colours(rgb), colour, where)
