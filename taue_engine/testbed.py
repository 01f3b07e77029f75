"""The testbed: TAUE on a fixed set of toy prompts, scored where the truth is known.

Each pair names an object ("a red star") and a background ("a blue striped background") from the toy scenes'
palette, so every layer can be read back by colour: is the object in the foreground layer and only there, is the
background layer free of it, do the layers match the composite. One table of means and worsts, one contact sheet.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .config import TAUEConfig
from .metrics import layer_fidelity, toy_metrics
from .toy.scenes import BACKGROUNDS, COLOURS, SHAPES, PromptWords, classify_colours, label_fraction


FIXED_SET = 56  # pairs in the standard set: 8 of each shape-colour round, every background kind 14 times


@dataclass(frozen=True)
class Pair(PromptWords):
    """One testbed case: the object and background it asks for, and the seed."""

    shape: str
    colour: str
    background_colour: str
    background_kind: str
    seed: int


def prompt_set(count: int = FIXED_SET) -> list[Pair]:
    """A fixed, seeded set covering every shape, colour, background colour and background kind."""
    pairs = []
    for i in range(count):
        n = len(COLOURS)
        colour = COLOURS[i % n]
        background = COLOURS[(i % n + 1 + (i // n) % (n - 1)) % n]  # every other colour in turn, never its own
        pairs.append(Pair(SHAPES[i % len(SHAPES)], colour, background, BACKGROUNDS[i % len(BACKGROUNDS)],
                          seed=1000 + i))
    return pairs


def choose_pairs(count: int = FIXED_SET) -> list[Pair]:
    """`count` pairs of the fixed set, spread over it so that a reduced run still sees every shape, colour and
    background kind (a stride prime to the set's cycles of 6 shapes, 7 colours and 4 kinds); more than the fixed
    set extends it."""
    if count >= FIXED_SET:
        return prompt_set(count)
    stride = max(1, FIXED_SET // count)
    while math.gcd(stride, 2 * 2 * 2 * 3 * 7) != 1:
        stride += 1
    pairs = prompt_set(FIXED_SET)
    return [pairs[(i * stride) % FIXED_SET] for i in range(count)]


# several-object scenes on the toy (issue 7): objects of different colours, their boxes (cx, cy, w, h), and seeds
OBJECT_SCENES = {
    2: [("a red circle", "red", (0.28, 0.5, 0.4, 0.5)), ("a yellow square", "yellow", (0.72, 0.5, 0.4, 0.5))],
    3: [("a red circle", "red", (0.25, 0.3, 0.4, 0.4)), ("a blue star", "blue", (0.75, 0.3, 0.4, 0.4)),
        ("a yellow square", "yellow", (0.5, 0.72, 0.4, 0.4))],
}
OBJECT_SEEDS = (1, 2, 3)


def object_request(count: int) -> list[dict]:
    """The `objects` of the OBJECT_SCENES scene with `count` objects."""
    return [{"prompt": p, "layout": dict(zip(("cx", "cy", "w", "h"), box))} for p, _, box in OBJECT_SCENES[count]]


# bars of issue 3, measured on the committed toy model: (metric, direction, threshold)
BARS = (
    ("plain_object_colour_present", ">=", 0.90),
    ("plain_background_right", ">=", 0.80),
    ("alpha_iou", ">=", 0.85),
    ("leakage", "<", 0.02),
    ("psnr_fg", ">=", 20.0),
    ("ssim_fg", ">=", 0.90),
    ("fringe", "<", 0.01),
)
OBJECT_PRESENT_FRACTION = 0.02  # of the whole image: an object covers 5-30% of a toy scene
BACKGROUND_RIGHT_FRACTION = 0.30  # of the whole image: a patterned background is about half its colour


def plain_adherence(pipe, pair: Pair, steps: int, guidance: float) -> dict[str, float]:
    """A plain SDXL generation of the scene prompt: are the object's and the background's colours there?"""
    import torch
    from diffusers import StableDiffusionXLPipeline

    image = StableDiffusionXLPipeline.__call__(
        pipe, prompt=pair.scene_prompt, num_inference_steps=steps, guidance_scale=guidance,
        generator=torch.Generator("cpu").manual_seed(pair.seed)).images[0]
    labels = classify_colours(np.asarray(image))
    return {
        "plain_object_colour_present": float(label_fraction(labels, pair.colour) >= OBJECT_PRESENT_FRACTION),
        "plain_background_right": float(
            label_fraction(labels, pair.background_colour) >= BACKGROUND_RIGHT_FRACTION),
    }


def run_testbed(pipe, pairs: list[Pair], config: TAUEConfig, plain: bool = True,
                on_pair: Callable[[int, Pair], None] | None = None):
    """TAUE (and optionally a plain generation) on every pair; returns the per-pair rows and the results."""
    rows, results = [], []
    for index, pair in enumerate(pairs):
        if on_pair:
            on_pair(index, pair)
        started = time.perf_counter()
        result = pipe(pair.object_prompt, pair.background_prompt, seed=pair.seed, config=config)
        row = {"pair": index, "foreground": pair.object_prompt, "background": pair.background_prompt,
               **layer_fidelity(result), **toy_metrics(result, pair.colour, pair.background_colour)}
        if plain:
            row.update(plain_adherence(pipe, pair, config.num_inference_steps, config.guidance_composite))
        row["seconds"] = time.perf_counter() - started
        rows.append(row)
        results.append(result)
    return rows, results


def summarize(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Mean and worst of every metric (worst: the lowest, or the highest for leakage and fringe)."""
    summary = {}
    for name, direction, _ in BARS + (("psnr_bg", ">=", 0), ("ssim_bg", ">=", 0),
                                      ("object_colour_in_composite", ">=", 0),
                                      ("background_colour_in_composite", ">=", 0)):
        values = [r[name] for r in rows if name in r and not math.isnan(r[name])]
        if not values:
            continue
        values = [min(v, 99.0) for v in values]  # an exact match has infinite PSNR
        worst = min(values) if direction == ">=" else max(values)
        summary[name] = {"mean": float(np.mean(values)), "worst": float(worst)}
    return summary


def check_bars(summary: dict) -> list[str]:
    """The bars that the means miss, as readable lines (empty when all are met)."""
    failures = []
    for name, direction, threshold in BARS:
        if name not in summary:
            continue
        mean = summary[name]["mean"]
        ok = mean >= threshold if direction == ">=" else mean < threshold
        if not ok:
            failures.append(f"{name}: mean {mean:.3f}, bar {direction} {threshold}")
    return failures


def format_table(summary: dict) -> str:
    bars = {name: f"{direction} {threshold}" for name, direction, threshold in BARS}
    lines = [f"{'metric':<32}{'mean':>10}{'worst':>10}  bar", "-" * 62]
    for name, values in summary.items():
        lines.append(f"{name:<32}{values['mean']:>10.3f}{values['worst']:>10.3f}  {bars.get(name, '')}")
    return "\n".join(lines)


def write_report(out: Path, rows: list[dict], summary: dict, results) -> dict[str, Path]:
    import json

    from .sheet import contact_sheet

    out.mkdir(parents=True, exist_ok=True)
    paths = {"rows": out / "testbed.json", "sheet": out / "contact_sheet.png"}
    paths["rows"].write_text(json.dumps({"summary": summary, "rows": rows}, indent=2, default=float))
    contact_sheet(results, tile=128).save(paths["sheet"])
    return paths
