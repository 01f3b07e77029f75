"""The testbed: TAUE on a fixed set of toy prompts, scored where the truth is known.

Each pair names an object ("a red star") and a background ("a blue striped background") from the toy scenes'
palette, so every layer can be read back by colour: is the object in the foreground layer and only there, is the
background layer free of it, do the layers match the composite, does m_obj cover the object, does a boxed object
land in its box. One table of means and worsts that hides no failure (a pair whose layer is empty, whose metric
cannot be computed or whose run raised counts at the metric's worst value), and one contact sheet.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taue_engine.config import LayoutBox, TAUEConfig

from .metrics import box_fraction, layer_fidelity, mask_fit, toy_metrics
from .world import (
    BACKGROUNDS,
    COLOURS,
    KEY_CLASHES,
    SHAPES,
    background_prompt,
    classify_colours,
    label_fraction,
    object_prompt,
    scene_prompt,
)

FIXED_SET = 56  # pairs in the standard set: 8 of each shape-colour round, every background kind 14 times
PAIR_COLOURS = tuple(c for c in COLOURS if c not in KEY_CLASHES["green"])
"""The colours of the pairs: every colour of the world but those the green key clashes with (a green object is the
several-object testbed's, on the other keys)."""


@dataclass(frozen=True)
class Pair:
    """One testbed case: the object and background it asks for, and the seed."""

    shape: str
    colour: str
    background_colour: str
    background_kind: str
    seed: int
    layout: tuple[float, float, float, float] | None = None  # (cx, cy, w, h): where the object must land

    @property
    def object_prompt(self) -> str:
        return object_prompt(self.colour, self.shape)

    @property
    def background_prompt(self) -> str:
        return background_prompt(self.background_colour, self.background_kind)

    @property
    def scene_prompt(self) -> str:
        return scene_prompt([self.object_prompt], self.background_prompt)


def prompt_set(count: int = FIXED_SET) -> list[Pair]:
    """A fixed, seeded set covering every shape, colour, background colour and background kind."""
    pairs = []
    for i in range(count):
        n = len(PAIR_COLOURS)
        colour = PAIR_COLOURS[i % n]
        background = PAIR_COLOURS[(i % n + 1 + (i // n) % (n - 1)) % n]  # every other colour in turn, never its own
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


# single objects given a box in each corner (issue 13's layout check): (cx, cy, w, h)
CORNER_BOXES = ((0.27, 0.27, 0.46, 0.46), (0.73, 0.27, 0.46, 0.46), (0.27, 0.73, 0.46, 0.46),
                (0.73, 0.73, 0.46, 0.46))


def layout_pairs() -> list[Pair]:
    """Eight boxed single objects: two of the fixed set's pairs in each corner."""
    pairs = choose_pairs(8)
    return [Pair(p.shape, p.colour, p.background_colour, p.background_kind, seed=2000 + i,
                 layout=CORNER_BOXES[i % len(CORNER_BOXES)]) for i, p in enumerate(pairs)]


@dataclass(frozen=True)
class Metric:
    """One column of the testbed: which way is better, the value a failed pair counts at, the bar (if any), and
    whether a pair may lack it (an empty region that is no failure, e.g. no opaque pixel outside m_obj)."""

    name: str
    direction: str  # '>=' higher is better, '<' / '<=' lower is better
    worst: float
    bar: float | None = None
    optional: bool = False
    note: str = ""

    def met(self, value: float) -> bool:
        return {">=": value >= self.bar, "<": value < self.bar, "<=": value <= self.bar}[self.direction]


MASK_SIZE_LIMIT = 1.6  # m_obj at most this many times the opaque object ...
MASK_SIZE_SHARE = 0.8  # ... in at least this share of the pairs
METRICS = (
    Metric("plain_object_colour_present", ">=", 0.0, 0.90),
    Metric("plain_background_right", ">=", 0.0, 0.80),
    Metric("alpha_iou", ">=", 0.0, 0.85),
    Metric("leakage", "<", 1.0, 0.02, note="object colour in the background layer, where its truth has none"),
    Metric("psnr_fg", ">=", 0.0, 20.0, note="dB, layer vs composite over the opaque pixels"),
    Metric("method_loss", "<=", 40.0, 1.0,
           note="dB, PSNR_fg of the model alone (the truth through the model at the composite's cut) minus TAUE's"),
    Metric("psnr_fg_model", ">=", 0.0, note="dB, the model alone: the truth on the key vs in its scene, both "
           "noised to the cut and denoised (lab/benchmarks/round_trip.py)"),
    Metric("psnr_fg_paper", ">=", 0.0, note="dB, I_fg vs I_all inside m_obj (the paper's)"),
    Metric("psnr_fg_inside", ">=", 0.0, note="dB, opaque and inside m_obj"),
    Metric("psnr_fg_outside", ">=", 0.0, optional=True, note="dB, opaque outside m_obj (pairs that have any)"),
    Metric("ssim_fg", ">=", -1.0, note="RGB; reported, not a bar: on flat colours it measures decoder texture"),
    Metric("fringe", "<", 1.0, 0.01),
    Metric("composite_foreign_ring", "<=", 1.0, 0.10,
           note="composite: ring around the object in neither its colour nor the background's"),
    Metric("ring_model", "<=", 1.0, note="the same ring on the model alone's scene (truth through the model at the "
           "cut): what the model's own colour binding leaves"),
    Metric("composite_duplicate", "<", 1.0, note="composite: the object's colour far from m_obj (a copy)"),
    Metric("mask_coverage", ">=", 0.0, 0.90, note="share of the opaque object inside m_obj"),
    Metric("mask_size", "<=", 10.0, note="m_obj area / opaque object area (capped at 10)"),
    Metric("mask_size_ok", ">=", 0.0, MASK_SIZE_SHARE, note=f"share of pairs with mask_size <= {MASK_SIZE_LIMIT}"),
    Metric("mask_precision", ">=", 0.0, note="share of m_obj on the drawn object"),
    Metric("psnr_bg", ">=", 0.0, note="dB, outside m_obj"),
    Metric("ssim_bg", ">=", -1.0),
    Metric("psnr_stack", ">=", 0.0, note="dB, object layers over background vs composite, whole image"),
    Metric("object_colour_in_composite", ">=", 0.0, note="opaque and inside m_obj"),
    Metric("background_colour_in_composite", ">=", 0.0, note="outside m_obj"),
    Metric("box_fraction", ">=", 0.0, 0.70, note="share of the object's alpha inside its box (boxed jobs)"),
)
BY_NAME = {m.name: m for m in METRICS}
BARS = tuple((m.name, m.direction, m.bar) for m in METRICS if m.bar is not None)
PSNR_CAP = 60.0  # dB: an exact match (infinite PSNR) counts as this, about 8-bit quantisation's level
OBJECT_PRESENT_FRACTION = 0.02  # of the whole image: an object covers 5-30% of a toy scene
BACKGROUND_RIGHT_FRACTION = 0.30  # of the whole image: a patterned background is about half its colour


def plain_image(pipe, prompt: str, steps: int, guidance: float, seed: int):
    """A plain SDXL generation of `prompt` on the TAUE pipeline's own model (no TAUE)."""
    import torch
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline.__call__(
        pipe, prompt=prompt, num_inference_steps=steps, guidance_scale=guidance,
        generator=torch.Generator("cpu").manual_seed(seed)).images[0]


def plain_adherence(pipe, pair: Pair, steps: int, guidance: float) -> dict[str, float]:
    """A plain SDXL generation of the scene prompt: are the object's and the background's colours there?"""
    image = plain_image(pipe, pair.scene_prompt, steps, guidance, pair.seed)
    labels = classify_colours(np.asarray(image))
    return {
        "plain_object_colour_present": float(label_fraction(labels, pair.colour) >= OBJECT_PRESENT_FRACTION),
        "plain_background_right": float(
            label_fraction(labels, pair.background_colour) >= BACKGROUND_RIGHT_FRACTION),
    }


def score(result, pair: Pair) -> dict[str, float]:
    """Every metric of one single-object result (NaN where it cannot be computed)."""
    row = {**layer_fidelity(result), **mask_fit(result), **toy_metrics(result, pair.colour, pair.background_colour)}
    size = row["mask_size"]
    row["mask_size"] = min(size, BY_NAME["mask_size"].worst) if not math.isnan(size) else size
    row["mask_size_ok"] = float(size <= MASK_SIZE_LIMIT) if not math.isnan(size) else size
    if pair.layout is not None:
        row["box_fraction"] = box_fraction(result.foreground, LayoutBox(*pair.layout))
    return row


def failed_row(error: Exception, plain: bool, boxed: bool) -> dict[str, float]:
    """The row of a pair whose run raised: every metric at its worst, and the error."""
    names = [m.name for m in METRICS if (plain or not m.name.startswith("plain_")) and
             (boxed or m.name != "box_fraction")]
    return {**{n: float("nan") for n in names}, "error": f"{type(error).__name__}: {error}"}


def run_testbed(pipe, pairs: list[Pair], config: TAUEConfig, plain: bool = True,
                on_pair: Callable[[int, Pair], None] | None = None):
    """TAUE (and optionally a plain generation) on every pair; returns the per-pair rows and the results (None
    for a pair whose run raised: its row holds the error, and every metric counts at its worst)."""
    rows, results = [], []
    for index, pair in enumerate(pairs):
        if on_pair:
            on_pair(index, pair)
        started = time.perf_counter()
        info = {"pair": index, "foreground": pair.object_prompt, "background": pair.background_prompt,
                "seed": pair.seed, "layout": pair.layout}
        try:
            result = pipe(pair.object_prompt, pair.background_prompt, seed=pair.seed, config=config,
                          layout=pair.layout)
            row = {**info, **score(result, pair), "warnings": list(result.metadata.get("warnings", []))}
            if plain:
                row.update(plain_adherence(pipe, pair, config.num_inference_steps, config.guidance_composite))
        except Exception as error:  # noqa: BLE001 - a failed pair is counted, not hidden
            result, row = None, {**info, **failed_row(error, plain, pair.layout is not None)}
        row["seconds"] = time.perf_counter() - started
        rows.append(row)
        results.append(result)
    return rows, results


def run_objects(pipe, config: TAUEConfig, count: int = 2, seeds=OBJECT_SEEDS, made: dict | None = None) -> list[dict]:
    """The several-object scene with `count` objects, one row per object: its box fraction (and the run's error,
    at the worst value, if it raised). `made`: results already made of these jobs, by (count, seed)."""
    rows = []
    for seed in seeds:
        try:
            result = (made or {}).get((count, seed)) or pipe(
                objects=object_request(count), background_prompt="a white background", seed=seed, config=config)
            fractions = [box_fraction(o.layer, o.layout) for o in result.objects]
            error = None
        except Exception as exc:  # noqa: BLE001
            fractions, error = [float("nan")] * count, f"{type(exc).__name__}: {exc}"
        for (prompt, _, box), fraction in zip(OBJECT_SCENES[count], fractions):
            rows.append({"objects": count, "seed": seed, "foreground": prompt, "layout": box,
                         "box_fraction": fraction, **({"error": error} if error else {})})
    return rows


def summarize(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Mean and worst of every metric over the rows that have it. NaN (an empty layer, a metric that cannot be
    computed, a run that raised) counts at the metric's worst value and as a failure, except for optional
    metrics, where it means "no such pixels" and the pair is left out (n says how many are in)."""
    summary = {}
    for metric in METRICS:
        values = [r[metric.name] for r in rows if metric.name in r]
        if not values:
            continue
        nan = [v for v in values if math.isnan(v)]
        counted = [min(v, PSNR_CAP) for v in values if not math.isnan(v)]
        failed = 0 if metric.optional else len(nan)
        counted += [metric.worst] * failed
        if not counted:
            continue
        worst = min(counted) if metric.direction == ">=" else max(counted)
        summary[metric.name] = {"mean": float(np.mean(counted)), "worst": float(worst), "n": len(counted),
                                "failed": failed}
    return summary


def failed_pairs(rows: list[dict]) -> int:
    """Pairs with a run error or any required metric that could not be computed."""
    return sum(1 for r in rows if "error" in r or any(
        math.isnan(r[m.name]) for m in METRICS if m.name in r and not m.optional))


def check_bars(summary: dict) -> list[str]:
    """The bars that the means miss, as readable lines (empty when all are met)."""
    failures = []
    for metric in METRICS:
        if metric.bar is None or metric.name not in summary:
            continue
        mean = summary[metric.name]["mean"]
        if not metric.met(mean):
            failures.append(f"{metric.name}: mean {mean:.3f}, bar {metric.direction} {metric.bar}")
    return failures


def format_table(summary: dict, rows: list[dict] | None = None, other: dict | None = None,
                 titles: tuple[str, str] = ("mask", "oracle")) -> str:
    """The summary as a table (mean, worst, failures, bar); with `other`, a second summary side by side."""
    head = f"{'metric':<32}{'mean':>9}{'worst':>9}{'failed':>8}"
    if other is not None:
        head = f"{'metric':<32}{titles[0] + ' mean':>12}{'worst':>9}{titles[1] + ' mean':>14}{'worst':>9}{'failed':>14}"
    lines = [head + "  bar", "-" * (len(head) + 12)]
    for metric in METRICS:
        if metric.name not in summary:
            continue
        v = summary[metric.name]
        bar = f"{metric.direction} {metric.bar}" if metric.bar is not None else ""
        failed = f"{v['failed']}" + (f" (n={v['n']})" if metric.optional else "")
        if other is not None and metric.name in other:
            o = other[metric.name]
            lines.append(f"{metric.name:<32}{v['mean']:>12.3f}{v['worst']:>9.3f}{o['mean']:>14.3f}{o['worst']:>9.3f}"
                         f"{' ' + failed + '/' + str(o['failed']):>14}  {bar}")
        else:
            lines.append(f"{metric.name:<32}{v['mean']:>9.3f}{v['worst']:>9.3f}{' ' + failed:>8}  {bar}")
    if rows is not None:
        lines.append(f"failed pairs: {failed_pairs(rows)} of {len(rows)}")
    notes = [f"  {m.name}: {m.note}" for m in METRICS if m.note and m.name in summary]
    return "\n".join(lines + (["notes:"] + notes if notes else []))


def write_report(out: Path, rows: list[dict], summary: dict, results, extra: dict | None = None) -> dict[str, Path]:
    import json

    from .sheet import contact_sheet

    out.mkdir(parents=True, exist_ok=True)
    paths = {"rows": out / "testbed.json", "sheet": out / "contact_sheet.png"}
    paths["rows"].write_text(json.dumps({"summary": summary, "rows": rows, "failed_pairs": failed_pairs(rows),
                                         **(extra or {})}, indent=2, default=float))
    contact_sheet([r for r in results if r is not None], tile=128).save(paths["sheet"])
    return paths


def add_method_loss(pipe, pairs: list[Pair], config: TAUEConfig, tables: list[list[dict]]) -> None:
    """Each row's psnr_fg_model (the model alone at the composite's cut, pair by pair) and method_loss, what TAUE's
    PSNR_fg loses against it; a failed pair (either side NaN) counts at the metric's worst value."""
    from .benchmarks.round_trip import model_alone

    size = pipe.default_sample_size * pipe.vae_scale_factor
    alone = model_alone(pipe, pairs, 1.0 - config.crop_ratio, config.num_inference_steps, config.guidance_composite,
                        size)
    for rows in tables:
        for row, reference in zip(rows, alone):
            row.update(psnr_fg_model=min(reference["psnr_fg_model"], PSNR_CAP), ring_model=reference["ring_model"])
            row["method_loss"] = row["psnr_fg_model"] - min(row["psnr_fg"], PSNR_CAP)


def oracle_pipeline(pipe):
    """The same model with the truth in place of m_obj (the pipeline's `object_mask` extension point): each
    object's mask is its own phase 1's final alpha (I_fg keyed with no gate), area-averaged to the latent cells,
    over one half; everything else as in `pipe` (so the held cells are those grown by `hold_dilation`, one cell by
    default). The separating experiment: what the method's mask costs against a right one, on the same pairs."""
    from taue_engine.keying import foreground_rgba
    from taue_engine.masks import resize_mask
    from taue_engine.transplant import alpha_mask

    class OracleMaskPipeline(type(pipe)):
        def object_mask(self, run, config, size):
            layer, _ = foreground_rgba(run.on_key, None, config)
            cells = alpha_mask(layer, tuple(run.seedling.shape[-2:]))
            return (resize_mask(cells, *size) > 0.5).float(), "oracle"

    return pipeline_like(OracleMaskPipeline, pipe)


def pipeline_like(cls, pipe):
    """A `cls` (a TAUEPipeline subclass of an experiment) on `pipe`'s own components and settings: its model's
    name, default config, vocabulary and progress bar."""
    made = cls(**pipe.components)
    made.model_name, made.default_config = pipe.model_name, pipe.default_config
    made.known_words = getattr(pipe, "known_words", None)
    made.set_progress_bar_config(**getattr(pipe, "_progress_bar_config", {}))
    return made


def build_parser():
    from taue_engine.cli import DEFAULT_MODEL, OneLineParser, add_sampling_flags

    parser = OneLineParser(prog="python -m lab.testbed",
                           description="score TAUE on the toy prompt set (where the truth is known)")
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="M", help=f"default: {DEFAULT_MODEL}")
    parser.add_argument("--pairs", default=str(FIXED_SET), metavar="N",
                        help=f"how many pairs, spread evenly over the fixed set of {FIXED_SET} (default: all)")
    parser.add_argument("--steps", default=None, metavar="N", help="denoising steps per phase (default 50)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="any TAUEConfig field")
    add_sampling_flags(parser, loras=False)
    parser.add_argument("--no-plain", action="store_true", help="skip the plain generations (prompt adherence)")
    parser.add_argument("--no-layout", action="store_true",
                        help="skip the boxed jobs (single objects in the corners, a two-object scene)")
    parser.add_argument("--no-scenes", action="store_true",
                        help="skip the several-object, key-colour, new-background and plain two-object checks")
    parser.add_argument("--oracle-mask", action="store_true",
                        help="also run the same pairs with the truth in place of m_obj, side by side")
    parser.add_argument("--no-model-alone", action="store_true",
                        help="skip the model alone at the cut (the method loss' reference)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a bar is missed")
    parser.add_argument("--out", default="taue-testbed", metavar="DIR", help="report folder (default: taue-testbed)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m lab.testbed`: the testbed's table, its bars and a report folder (testbed.json, contact sheet)."""
    import sys

    from taue_engine.cli import EXIT_USAGE, UsageError

    try:
        return run_command(build_parser().parse_args(argv))
    except UsageError as error:
        print(f"testbed: error: {error}", file=sys.stderr)
        return EXIT_USAGE


def run_command(args) -> int:
    """The testbed of parsed flags: the pairs (and the oracle's), the scenes, the boxed jobs; 1 with --check when a
    bar is missed."""
    import sys

    from taue_engine.cli import UsageError, config_from_flags, int_flag
    from taue_engine.models.loading import ModelLoadError, check_model_exists
    from taue_engine.quiet import quiet_libraries

    config = config_from_flags(args)
    pairs = int_flag("--pairs", args.pairs, 1, 1000)
    try:
        check_model_exists(args.model)
    except ModelLoadError as error:
        raise UsageError(f"--model: {error}") from None
    quiet_libraries()
    from taue_engine.pipeline import TAUEPipeline

    from .testbed_scenes import (
        format_scenes,
        run_key_colours,
        run_new_backgrounds,
        run_plain_two_objects,
        run_several,
        summarize_scenes,
    )

    pipe = TAUEPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    config = config_from_flags(args, pipe.default_config)
    chosen = choose_pairs(pairs)

    def run(pipeline, label: str):
        def say(i, p):
            print(f"[{label} {i + 1}/{len(chosen)}] {p.object_prompt} | {p.background_prompt}", file=sys.stderr)

        return run_testbed(pipeline, chosen, config, plain=not args.no_plain, on_pair=say)

    rows, results = run(pipe, "mask")
    oracle_rows = run(oracle_pipeline(pipe), "oracle")[0] if args.oracle_mask else None
    if not args.no_model_alone:
        add_method_loss(pipe, chosen, config, [rows] + ([oracle_rows] if oracle_rows else []))
    summary = summarize(rows)
    extra = {}
    oracle_summary = None
    if oracle_rows is not None:
        oracle_summary = summarize(oracle_rows)
        extra.update(oracle_rows=oracle_rows, oracle_summary=oracle_summary)
    print(format_table(summary, rows, oracle_summary))
    made = {}
    if not args.no_scenes:
        print("scenes: several objects, a green object on the other keys, new backgrounds, plain two-object "
              "prompts", file=sys.stderr)
        several, made = run_several(pipe, config)
        scene_rows = several + run_key_colours(pipe, config) + run_new_backgrounds(pipe, config, made)
        scene_rows += [] if args.no_plain else run_plain_two_objects(pipe, config)
        scene_summary = summarize_scenes(scene_rows)
        extra.update(scene_rows=scene_rows, scene_summary=scene_summary)
        print(format_scenes(scene_summary))
    if not args.no_layout:
        print("layout: boxed single objects (corners) and the two-object scene", file=sys.stderr)
        boxed, _ = run_testbed(pipe, layout_pairs(), config, plain=False)
        objects = run_objects(pipe, config, 2, made=made)
        layout = {"single": summarize(boxed), "two_objects": summarize(objects)}
        extra.update(layout_rows=boxed, object_rows=objects, layout=layout)
        for name, part in layout.items():
            fraction = part.get("box_fraction")
            if fraction:
                print(f"box_fraction ({name.replace('_', ' ')}): mean {fraction['mean']:.3f}, worst "
                      f"{fraction['worst']:.3f}, failed {fraction['failed']} of {fraction['n']}")
        summary_for_bars = dict(summary, box_fraction=summarize(boxed + objects)["box_fraction"])
    else:
        summary_for_bars = summary
    paths = write_report(Path(args.out), rows, summary, results, extra)
    failures = check_bars(summary_for_bars)
    if "scene_summary" in extra:
        failures += [f"{name}: {part['mean']:.3f} (worst {part['worst']:.3f})"
                     for name, part in extra["scene_summary"].items() if not part["met"]]
    print("bars: all met" if not failures else "bars missed: " + "; ".join(failures))
    print(f"report: {paths['rows']}  contact sheet: {paths['sheet']}")
    return 1 if failures and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
