"""The toy's world: 128x128 scenes of one to three objects over simple backgrounds, green objects, and objects alone
on the three key colours, every part's truth kept; and the one colour classifier that reads pictures back by name.

Captions are the prompts users type: "a red star and a green ring on a white striped background", "a red star, a
green ring, a white striped background" (the pipeline's default composite prompt), "a red star" (an object alone,
on a key colour or on anything), "a white striped background". "green" is always the object colour (40, 160, 60);
the key backdrop is "key green", taken from the engine's own key table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from taue_engine.config import KEY_COLORS

SIZE = 128
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (245, 220, 30),
    "green": (40, 160, 60),  # an object colour, far from the key's pure green
    "blue": (30, 70, 220),
    "purple": (140, 40, 190),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
COLOURS = tuple(PALETTE)
KEYS: dict[str, tuple[int, int, int]] = {name: tuple(round(255 * v) for v in rgb) for name, rgb in KEY_COLORS.items()}
"""The backdrops TAUE keys out, in 0..255 (the engine's key table)."""
SHAPES = ("circle", "square", "triangle", "star", "ring", "cross")
BACKGROUNDS = ("solid", "striped", "checkered", "gradient")
SUPERSAMPLE = 4  # shapes are drawn at 4x4 samples a pixel: anti-aliased edges
KEY_CLASHES = {"green": ("green",), "blue": ("blue", "purple"), "magenta": ("purple",)}
"""Object colours a key is too close to: the world never puts such an object on that key (a user picks another)."""
PARTNER_MIX = {"white": ("black", 0.35), "black": ("white", 0.35)}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def object_prompt(colour: str, shape: str) -> str:
    return f"{_article(colour)} {colour} {shape}"


def background_prompt(colour: str, kind: str) -> str:
    words = colour if kind == "solid" else f"{colour} {kind}"
    return f"{_article(words)} {words} background"


def scene_prompt(objects: list[str], background: str) -> str:
    """'a red star and a blue ring on a white background' (the words a person would type)."""
    listed = objects[0] if len(objects) == 1 else ", ".join(objects[:-1]) + " and " + objects[-1]
    return f"{listed} on {background}"


def comma_prompt(objects: list[str], background: str) -> str:
    """'a red star, a blue ring, a white background': the pipeline's default composite prompt."""
    return ", ".join(objects + [background])


@dataclass
class WorldObject:
    shape: str
    colour: str
    mask: np.ndarray  # anti-aliased coverage, float HxW in 0..1
    box: tuple[float, float, float, float]  # cx, cy, w, h of the shape's extent, fractions of the image

    @property
    def prompt(self) -> str:
        return object_prompt(self.colour, self.shape)


@dataclass
class WorldScene:
    """One sample: objects over a background (later objects in front), with every part's truth (uint8 HxWx3)."""

    image: np.ndarray
    background: np.ndarray
    objects: list[WorldObject]
    background_colour: str
    background_kind: str
    on_key: dict[str, list[np.ndarray]] = field(default_factory=dict)  # key -> each object alone on it

    @property
    def background_prompt(self) -> str:
        return background_prompt(self.background_colour, self.background_kind)

    @property
    def object_prompts(self) -> list[str]:
        return [o.prompt for o in self.objects]

    @property
    def scene_prompt(self) -> str:
        return scene_prompt(self.object_prompts, self.background_prompt)

    @property
    def comma_prompt(self) -> str:
        return comma_prompt(self.object_prompts, self.background_prompt)

    def object_on_key(self, n: int, key: str) -> np.ndarray:
        """Object `n` alone on the key colour `key`."""
        m = self.objects[n].mask[..., None]
        image = np.array(KEYS[key], np.float32) * (1 - m) + np.array(PALETTE[self.objects[n].colour]) * m
        return _u8(image)


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


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
    base = np.array(PALETTE[name], np.float32)
    other, amount = PARTNER_MIX.get(name, ("white", 0.45))
    return base * (1 - amount) + np.array(PALETTE[other], np.float32) * amount


def background_image(colour: str, kind: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """A solid, striped, checkered or gradient background; bands are 1/8-1/4 of the image wide (2-4 latent cells
    of an 8x VAE at 128 px)."""
    base = np.array(PALETTE[colour], np.float32)
    image = np.broadcast_to(base, (size, size, 3)).copy()
    if kind == "solid":
        return image
    partner = partner_colour(colour)
    t = np.arange(size)
    period = int(rng.integers(size // 4, size // 2 + 1))
    if kind == "striped":
        on = (t // (period // 2)) % 2 == 1
        band = np.broadcast_to(on[None, :] if rng.random() < 0.5 else on[:, None], (size, size))
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


def _place(rng: np.random.Generator, radii: list[float], tries: int = 200) -> tuple[list, list[float]]:
    """Centres for shapes of these radii inside the image, not overlapping (rejection sampling); radii that find no
    room in `tries` draws shrink by 10% and try again. Returns (centres, radii)."""
    for _ in range(20):
        for _ in range(tries):
            centres = [(float(rng.uniform(r, 1 - r)), float(rng.uniform(r, 1 - r))) for r in radii]
            if all(np.hypot(a[0] - b[0], a[1] - b[1]) >= ra + rb for i, (a, ra) in enumerate(zip(centres, radii))
                   for b, rb in zip(centres[i + 1:], radii[i + 1:])):
                return centres, radii
        radii = [0.9 * r for r in radii]
    raise RuntimeError(f"no room for {len(radii)} objects of radii {radii}")


def make_world_scene(seed: int, size: int = SIZE, count: int | None = None, shapes: list[str] | None = None,
                     colours: list[str] | None = None, background_colour: str | None = None,
                     background_kind: str | None = None, centres: list[tuple[float, float]] | None = None,
                     radii: list[float] | None = None) -> WorldScene:
    """One seeded scene; what is not given is drawn (objects differ in colour from each other and the background)."""
    rng = np.random.default_rng(seed)
    count = count or len(shapes or colours or centres or []) or int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
    shapes = shapes or [SHAPES[rng.integers(len(SHAPES))] for _ in range(count)]
    if colours is None:
        colours = [str(c) for c in rng.choice(COLOURS, size=count, replace=False)]
    if len(set(colours)) != len(colours):
        raise ValueError(f"objects must differ in colour (got {colours})")
    if background_colour is None:
        choices = [c for c in COLOURS if c not in colours]
        background_colour = choices[rng.integers(len(choices))]
    if background_colour in colours:
        raise ValueError(f"object and background must differ in colour (both {background_colour})")
    background_kind = background_kind or BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    if radii is None:
        low, high = (0.2, 0.32) if count == 1 else (0.13, 0.22)
        radii = [float(rng.uniform(low, high)) for _ in range(count)]
    if centres is None:
        centres, radii = _place(rng, radii)
    background = background_image(background_colour, background_kind, rng, size)
    image = background.copy()
    objects = []
    for shape, colour, (cx, cy), r in zip(shapes, colours, centres, radii):
        mask = shape_mask(shape, cx, cy, r, angle=float(rng.uniform(-0.3, 0.3)), size=size)
        m = mask[..., None]
        image = image * (1 - m) + np.array(PALETTE[colour], np.float32) * m
        objects.append(WorldObject(shape, colour, mask, (cx, cy, 2 * r, 2 * r)))
    return WorldScene(_u8(image), _u8(background), objects, background_colour, background_kind)


def key_for(colour: str, rng: np.random.Generator, weights=(0.5, 0.25, 0.25)) -> str:
    """A key backdrop for an object of this colour: green most often (the paper's), never one it clashes with."""
    names = [k for k in KEYS if colour not in KEY_CLASHES[k]]
    p = np.array([w for k, w in zip(KEYS, weights) if k in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


# ---------------------------------------------------------------------------------------- reading colours back
def nearest_colour(rgb: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Index into `table` (N x 3) of the nearest colour of each pixel of an HxWx3 image."""
    flat = rgb.reshape(-1, 3).astype(np.float32)
    return ((flat[:, None, :] - table[None, :, :]) ** 2).sum(-1).argmin(1).reshape(rgb.shape[:2])


def colour_names() -> list[str]:
    """The names the classifier answers with: the palette, then the keys as 'key green', 'key blue' ..."""
    return list(COLOURS) + [f"key {k}" for k in KEYS]


def _named_table() -> np.ndarray:
    return np.array(list(PALETTE.values()) + list(KEYS.values()), np.float32)


def classify_colours(rgb: np.ndarray, extra: tuple[tuple[int, int, int], ...] = ()) -> np.ndarray:
    """Nearest named colour per pixel, indices into `colour_names()` (palette, then the keys as 'key green' ...),
    then into `extra`, colours the world does not draw (a LoRA's new colour)."""
    return nearest_colour(rgb, np.concatenate([_named_table(), np.array(extra, np.float32).reshape(-1, 3)]))


def label_fraction(labels: np.ndarray, colour: str, where: np.ndarray | None = None) -> float:
    """Fraction of classified pixels (optionally only where `where` is true) that are `colour` (a name of
    `colour_names()`); 0 on no pixels."""
    hit = labels == colour_names().index(colour)
    if where is not None:
        if not where.any():
            return 0.0
        hit = hit[where]
    return float(hit.mean())


BACKGROUND_FAMILY_SAMPLES = 9  # colours along base -> partner: every colour a patterned background draws


def background_family(colour: str) -> np.ndarray:
    """Every colour the world draws for a background of `colour`: its base, its pattern partner and the gradient
    between them (BACKGROUND_FAMILY_SAMPLES x 3). A partner can lie nearer another palette colour than its own
    (light orange nearer yellow, the grey partners of white and black nearer purple)."""
    ramp = np.linspace(0.0, 1.0, BACKGROUND_FAMILY_SAMPLES, dtype=np.float32)[:, None]
    return np.array(PALETTE[colour], np.float32) * (1 - ramp) + partner_colour(colour) * ramp


def foreign_fraction(rgb: np.ndarray, colour: str, background_colour: str) -> float:
    """The share of a background image in `colour` that its truth cannot hold: pixels nearer `colour` than any
    other named colour and than every colour the world draws for `background_colour` (background_family).
    A plain nearest-colour count scores the world's own orange stripes 47% yellow, and its white and black
    patterns up to half purple, so that a perfect background layer would miss a 2% leakage bar."""
    nearest = nearest_colour(rgb, np.concatenate([_named_table(), background_family(background_colour)]))
    return float((nearest == colour_names().index(colour)).mean())
