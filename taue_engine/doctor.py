"""`taue doctor`: checks a model before real work, one line per check and a verdict.

It loads the model as `taue generate` does (its default config included) and measures what TAUE relies on:

1. the VAE in float16 against float32 (SDXL's own VAE overflows in float16: black or NaN pictures);
2. where the key colours lie in the model's latent, and which common object colours lie so near a key that the
   object mask would read them as backdrop (a suggested key colour);
3. phase 1 on three prompts the model knows: whether the key backdrop forms (not forming on most of them makes
   the model unusable for TAUE: exit status 1);
4. the previews' latent-to-RGB map against the VAE's decode;
5. what one job took, at which size and steps.

`--write-config PATH` writes the findings as JSON, with a "config" section of TAUEConfig fields (each one passes as
`--set FIELD=VALUE`; `TAUEConfig.from_dict` takes the section whole) and the command-line flags to use.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import KEY_COLORS, TAUEConfig
from .mask_checks import MIN_BACKDROP

PAPER_C_GB = (0.0, 1.0, 1.0, 0.0)
"""The paper's green injection on SDXL's latent, which the model's own (vae_io.key_latent) is printed against."""
DOCTOR_STEPS = 20
"""Denoising steps per phase of the doctor's jobs."""
DOCTOR_SEED = 0
REAL_PROMPTS = ("a red apple", "a blue car", "a yellow chair")
REAL_BACKGROUND = "a sunny park"
"""Prompts for a model that publishes no vocabulary (SDXL checkpoints)."""
KNOWN_WORD_PROMPTS = ("a red circle", "a blue square", "a yellow star")
KNOWN_WORD_BACKGROUND = "a white striped background"
"""Prompts for a model that knows only shapes and colours (the toy's vocabulary.json lists every word of them)."""
PALETTE: dict[str, tuple[float, float, float]] = {
    "white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "red": (0.8, 0.1, 0.1), "orange": (1.0, 0.55, 0.0),
    "yellow": (1.0, 0.85, 0.1), "lime": (0.6, 0.9, 0.1), "leaf green": (0.2, 0.55, 0.15),
    "teal": (0.0, 0.5, 0.5), "cyan": (0.0, 0.9, 0.9), "sky blue": (0.5, 0.75, 0.95), "navy": (0.05, 0.1, 0.4),
    "purple": (0.5, 0.15, 0.6), "pink": (1.0, 0.6, 0.75), "skin tone": (0.9, 0.7, 0.55), "brown": (0.45, 0.3, 0.15),
}
"""Common object colours (RGB in 0..1), encoded as solid images like the key colours."""
VAE_MAE_LIMIT = 2.0
"""Mean difference (0..255) between the float16 and float32 decodes above which float16 is not to be trusted: the
same VAE in two precisions differs by rounding, a fraction of a level."""
PREVIEW_MAE_LIMIT = 20.0
"""Mean difference (0..255) between a preview and the VAE's decode above which previews show wrong colours."""
TEST_CELLS = 32
"""Latent cells a side of the doctor's test picture (256 px on SDXL)."""
CPU_TEST_CELLS = 12
"""The same on the CPU, where float16 convolutions are slow (the toy's VAE: 16 s for 32 cells, 2 s for 12)."""
WEAK_KEY = 0.1
"""A key colour's distance from grey (in the UNet's latent, where noise has unit variance) below which the VAE
hardly tells the key from grey: the toy's keys lie 1.5 to 3 from it, tiny-random's random VAE puts them 0.01 away."""
STATUS_WIDTH = 5


@dataclass
class Check:
    """One check: its status (ok, warn, fail, skip or info), its line, lines under it, and its numbers."""

    name: str
    status: str
    line: str
    details: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # why the model is not usable (status fail)

    def lines(self) -> list[str]:
        return [f"{self.status:<{STATUS_WIDTH}} {self.name}: {self.line}"] + [f"{'':<{STATUS_WIDTH}}   {d}"
                                                                              for d in self.details]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "line": self.line, "details": self.details,
                **self.numbers}


@dataclass
class Report:
    """What the doctor found for one model."""

    model: str
    vae: str | None
    device: str
    dtype: str
    checks: list[Check] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # TAUEConfig fields to pass
    flags: list[str] = field(default_factory=list)  # `taue generate` flags to pass

    @property
    def reasons(self) -> list[str]:
        return [c.reason or f"{c.name} failed" for c in self.checks if c.status == "fail"]

    @property
    def usable(self) -> bool:
        return not self.reasons

    @property
    def verdict(self) -> str:
        if self.usable:
            return "usable for TAUE"
        return "NOT usable for TAUE: " + "; ".join(self.reasons)

    def lines(self) -> list[str]:
        head = f"taue doctor: {self.model}" + (f" with the VAE {self.vae}" if self.vae else "")
        lines = [f"{head} ({self.device}, {self.dtype})"]
        for check in self.checks:
            lines += check.lines()
        if self.flags:
            lines.append(f"flags to use: {' '.join(self.flags)}")
        lines.append(f"verdict: {self.verdict}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "vae": self.vae, "device": self.device, "dtype": self.dtype,
                "usable": self.usable, "verdict": self.verdict, "reasons": self.reasons,
                "checks": [c.to_dict() for c in self.checks], "config": self.config, "flags": self.flags}


# ---------------------------------------------------------------------------------------------------------- checks
def doctor_picture(side: int) -> Any:
    """A picture with what a VAE must hold: the palette and the key colours as blocks, white and black, a ramp and
    fine grain (seeded: the same picture every time). PIL image, `side` px square."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = list(PALETTE.values()) + list(KEY_COLORS.values())
    pixels = np.zeros((side, side, 3), dtype=np.float32)
    columns = 5
    block = side // columns
    for k, rgb in enumerate(colours):
        row, col = divmod(k, columns)
        pixels[row * block:(row + 1) * block, col * block:(col + 1) * block] = rgb
    rows_used = -(-len(colours) // columns) * block
    ramp = np.linspace(0.0, 1.0, side, dtype=np.float32)
    lower = pixels[rows_used:]
    lower[:] = ramp[None, :, None]
    lower[:, : side // 2] = rng.random(lower[:, : side // 2].shape, dtype=np.float32)  # grain
    return Image.fromarray((pixels * 255).round().astype(np.uint8), "RGB")


def _decode(vae: Any, latent: torch.Tensor, offset: Any, scale: Any) -> torch.Tensor:
    """The VAE's picture of a UNet-unit latent in this VAE's own dtype, [H, W, 3] float32 in 0..255 (not clamped:
    an overflow shows)."""
    param = next(vae.parameters())
    latent = latent.float().to(param.device)
    image = vae.decode((latent / scale + offset).to(param.dtype)).sample
    return (image[0].float().permute(1, 2, 0) + 1.0) * 127.5


@torch.no_grad()
def vae_precision(pipe: Any, latent: torch.Tensor) -> Check:
    """Decode a latent (the test picture's) with the VAE in float32 and in float16 and compare."""
    from .models.loading import FP16_FIXED_SDXL_VAE as fix

    name = "vae precision"
    what = f"the {latent.shape[-1] * pipe.vae_scale_factor} px test picture"
    runs_fp16 = pipe.vae.dtype == torch.float16 or pipe.unet.dtype == torch.float16
    upcasts = bool(getattr(pipe.vae.config, "force_upcast", False))
    vae = pipe.vae
    offset, scale = pipe.latent_scale(next(vae.parameters()).device)
    full = vae if vae.dtype == torch.float32 else copy.deepcopy(vae).to(torch.float32)
    half = vae if vae.dtype == torch.float16 else copy.deepcopy(vae).to(torch.float16)
    reference = _decode(full, latent, offset, scale)
    try:
        low = _decode(half, latent, offset, scale)
    except (RuntimeError, NotImplementedError) as error:
        first = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        return Check(name, "skip", f"float16 cannot run on this device ({first}); run the doctor on the GPU "
                     "(--device cuda) to check it", numbers={"float16": "unsupported"})
    finally:
        del full, half
    finite = bool(torch.isfinite(low).all())
    diff = (low.clamp(0, 255) - reference.clamp(0, 255)).abs()
    mae = float(diff.mean()) if finite else float("inf")
    numbers: dict[str, Any] = {"finite": finite, "mean_abs_error": round(mae, 3) if finite else None,
                               "max_abs_error": round(float(diff.max()), 1) if finite else None}
    if finite and mae <= VAE_MAE_LIMIT:
        return Check(name, "ok", f"float16 decodes {what} as float32 does (mean difference {mae:.2f} of "
                     f"255, largest {float(diff.max()):.0f})", numbers=numbers)
    found = ("float16 overflows: its decode holds NaN or infinite values (black or NaN pictures)" if not finite
             else f"float16 decodes {what} {mae:.1f} of 255 away from float32 on average")
    if runs_fp16 and not upcasts:
        return Check(name, "fail", f"{found}; this model runs in float16: pass --vae {fix} (SDXL's VAE fixed for "
                     "float16)", numbers=numbers, reason=f"its VAE fails in float16 (pass --vae {fix})")
    if runs_fp16:
        line = (f"{found}; the VAE asks to decode in float32 (force_upcast), which costs memory and time: --vae "
                f"{fix} decodes in float16")
    else:
        line = f"{found}; fine in float32, but in float16 (a GPU's default) pass --vae {fix}"
    return Check(name, "warn", line, numbers=numbers)


def doctor_prompts(pipe: Any) -> tuple[Check, tuple[str, ...], str]:
    """Which prompts the doctor's jobs use: real-world ones, or, for a model that lists the words it knows and does
    not know those, ones made of its words."""
    from .models.vocabulary import unknown_words

    name = "vocabulary"
    known = pipe.known_words
    if known is None:
        return (Check(name, "info", "the model lists no vocabulary (as SDXL checkpoints): the jobs use "
                      + ", ".join(repr(p) for p in REAL_PROMPTS)), REAL_PROMPTS, REAL_BACKGROUND)
    unknown = unknown_words(known, [*REAL_PROMPTS, REAL_BACKGROUND])
    if not unknown:
        return (Check(name, "info", f"the model knows {len(known)} words, those of the prompts among them"),
                REAL_PROMPTS, REAL_BACKGROUND)
    missing = unknown_words(known, [*KNOWN_WORD_PROMPTS, KNOWN_WORD_BACKGROUND])
    if missing:
        return (Check(name, "warn", f"the model knows {len(known)} words, not {', '.join(unknown)} nor "
                      f"{', '.join(missing)}: the jobs use real-world prompts it may not draw"),
                REAL_PROMPTS, REAL_BACKGROUND)
    return (Check(name, "info", f"the model knows only {len(known)} words (not {', '.join(unknown[:4])}...): the "
                  "jobs use " + ", ".join(repr(p) for p in KNOWN_WORD_PROMPTS)),
            KNOWN_WORD_PROMPTS, KNOWN_WORD_BACKGROUND)


@torch.no_grad()
def key_geometry(pipe: Any, config: TAUEConfig) -> tuple[Check, str]:
    """Each key colour's distance from grey in the model's latent, the palette colours nearer a key than the object
    mask's threshold (read as the mask reads it: config.mask_signal), and the key with fewest of them."""
    from .keying import pixel_key_distance

    name = "key colours"
    keys = pipe.key_latents()
    grey = torch.tensor(keys["grey"])
    units = {k: float((torch.tensor(keys[k]) - grey).norm()) for k in KEY_COLORS}
    cells = 8
    near: dict[str, list[str]] = {k: [] for k in KEY_COLORS}
    distances: dict[str, dict[str, float]] = {k: {} for k in KEY_COLORS}
    for colour, rgb in PALETTE.items():
        latent = pipe.solid_latent(f"doctor palette {colour}", rgb)
        if config.mask_signal == "decoded":  # the object mask reads the decoded picture: 1 - its key excess
            picture = pipe.decode_latent(latent.view(1, -1, 1, 1).expand(1, -1, cells, cells))
            side = picture.shape[0]
            centre = picture[side // 4: 3 * side // 4, side // 4: 3 * side // 4]
        for key in KEY_COLORS:
            if config.mask_signal == "decoded":
                d = float(pixel_key_distance(centre, key).median())
            else:
                d = float((latent - torch.tensor(keys[key])).norm()) / max(units[key], 1e-6)
            distances[key][colour] = round(d, 3)
            if d < config.tau_bg:
                near[key].append(colour)
    weak = [k for k in KEY_COLORS if units[k] < WEAK_KEY]
    order = [config.key_color] + [k for k in KEY_COLORS if k != config.key_color and k not in weak]
    suggested = min(order, key=lambda k: len(near[k]))
    where = "its decoded picture" if config.mask_signal == "decoded" else "the latent"
    details = [f"{key}: {units[key]:.2f} from grey in the latent; common colours nearer it than tau_bg "
               f"{config.tau_bg:g} (read off {where}): "
               + (", ".join(f"{c} {distances[key][c]:.2f}" for c in near[key]) or "none") for key in KEY_COLORS]
    injected = torch.tensor(pipe.key_latent(config.replace(key_color="green")))
    paper = torch.tensor(PAPER_C_GB)
    angle = float(torch.rad2deg(torch.arccos((injected @ paper / (injected.norm() * paper.norm()).clamp_min(1e-12))
                                             .clamp(-1, 1)))) if len(injected) == len(paper) else float("nan")
    details.append(f"green injection C = {[round(float(v), 2) for v in injected]}: |C| {float(injected.norm()):.2f}, "
                   f"{angle:.0f} degrees from the paper's C_gb (0, 1, 1, 0) on SDXL (|C_gb| 1.41)")
    numbers = {"distance_from_grey": {k: round(v, 3) for k, v in units.items()}, "tau_bg": config.tau_bg,
               "green_injection": [round(float(v), 4) for v in injected], "angle_from_paper_degrees": round(angle, 1),
               "mask_signal": config.mask_signal, "near_key": near, "palette_distance": distances,
               "suggested_key_color": suggested}
    if config.key_color in weak:
        return (Check(name, "warn", f"the VAE hardly tells {', '.join(weak)} from grey (under {WEAK_KEY:g} in the "
                      "UNet's latent units): the object mask's key distance reads noise there", details, numbers),
                suggested)
    if suggested == config.key_color:
        tail = (f"; objects of these colours want another key (--key-color): {', '.join(near[suggested])}"
                if near[suggested] else "")
        return Check(name, "ok", f"the {suggested} key has the fewest common colours near it{tail}", details,
                     numbers), suggested
    return (Check(name, "warn", f"{len(near[config.key_color])} common colours lie near the {config.key_color} key "
                  f"({', '.join(near[config.key_color])}), {len(near[suggested])} near {suggested}: suggested key "
                  f"{suggested} (--key-color {suggested})", details, numbers), suggested)


@dataclass
class DoctorJob:
    prompt: str
    seconds: float
    entry: dict[str, Any]  # the object's entry in taue.json
    warnings: list[str]
    clean: torch.Tensor  # phase 1's clean estimate at the cut


def phase_one(pipe: Any, config: TAUEConfig, prompts: tuple[str, ...], background: str,
              progress: Any = None) -> tuple[Check, list[DoctorJob], tuple[int, int]]:
    """One job per prompt at the model's native size: did phase 1 paint the key backdrop (mask_checks reads it)."""
    name = "phase 1"
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    jobs = []
    for number, prompt in enumerate(prompts, 1):
        if progress is not None:
            progress(f"job {number}/{len(prompts)}: {prompt!r} at {size}x{size}, {config.num_inference_steps} steps")
        started = time.perf_counter()
        result = pipe(prompt, background, seed=DOCTOR_SEED, width=size, height=size, config=config)
        seconds = time.perf_counter() - started
        jobs.append(DoctorJob(prompt, seconds, dict(result.metadata["objects"][0]),
                              list(result.metadata.get("warnings", [])), result.latents["clean_estimate"]))
    details = [_job_line(job) for job in jobs]
    formed = sum(1 for j in jobs if (j.entry.get("backdrop_fraction") or 0) >= MIN_BACKDROP)
    numbers = {"steps": config.num_inference_steps, "size": [size, size], "seed": DOCTOR_SEED,
               "key_color": config.key_color, "min_backdrop": MIN_BACKDROP, "backdrop_formed": formed,
               "jobs": [{"prompt": j.prompt, "seconds": round(j.seconds, 3), "warnings": j.warnings,
                         **{k: j.entry.get(k) for k in ("backdrop_fraction", "key_color", "mask_fraction",
                                                        "mask_source")}} for j in jobs]}
    summary = (f"the {config.key_color} backdrop formed on {formed} of {len(jobs)} prompts (at least "
               f"{MIN_BACKDROP:.0%} of the picture around the object key-coloured)")
    if formed * 2 <= len(jobs):
        reason = (f"the key backdrop did not form on {len(jobs) - formed} of {len(jobs)} prompts (phase 1 paints no "
                  "backdrop, so there is no object layer to key out)")
        return Check(name, "fail", summary, details, numbers, reason=reason), jobs, (size, size)
    status = "ok" if formed == len(jobs) and not any(j.warnings for j in jobs) else "warn"
    return Check(name, status, summary, details, numbers), jobs, (size, size)


def _job_line(job: DoctorJob) -> str:
    """One prompt's phase 1: the backdrop's share and colour, the mask's share and source, and what mask_checks
    said beyond the backdrop (its finding, without the advice)."""
    e = job.entry
    backdrop = e.get("backdrop_fraction") or 0.0
    colour = ", " + "#{:02x}{:02x}{:02x}".format(*e["key_color"]) if e.get("key_color") and backdrop else ""
    line = (f"{job.prompt!r}: backdrop {'formed' if backdrop >= MIN_BACKDROP else 'NOT formed'} ({backdrop:.0%} key "
            f"coloured{colour}), mask {e.get('mask_fraction') or 0:.0%} of the picture ({e.get('mask_source')})")
    findings = [w.split(": ", 1)[-1].split(", so ")[0] for w in job.warnings if "did not form" not in w]
    return line + "".join(f"; {f}" for f in findings)


@torch.no_grad()
def preview_map(pipe: Any, latents: dict[str, list[torch.Tensor]]) -> Check:
    """The previews' latent-to-RGB map against the VAE's decode of the same latents, cell by cell (a preview's
    pixel is its cell's colour): the mean absolute error in 0..255 of each group of latents."""
    import numpy as np
    import torch.nn.functional as F

    name = "previews"
    rgb = pipe.latent_to_rgb()
    factor = pipe.vae_scale_factor
    errors = {}
    for group, items in latents.items():
        total = 0.0
        for latent in items:
            h, w = latent.shape[-2:]
            preview = torch.from_numpy(np.asarray(rgb(latent, (w, h)), dtype=np.float32))
            decoded = pipe.decode_latent(latent) * 255  # [H, W, 3]
            cells = F.avg_pool2d(decoded.permute(2, 0, 1)[None], factor)[0].permute(1, 2, 0)
            total += float((preview - cells).abs().mean())
        errors[group] = total / max(len(items), 1)
    worst = max(errors.values())
    numbers = {"mean_abs_error": {g: round(e, 2) for g, e in errors.items()}, "fit_psnr_db": rgb.fit_psnr}
    what = ("previews differ from the VAE's decode of the same latent by "
            + ", ".join(f"{e:.1f} of 255 on {g}" for g, e in errors.items()) + " (mean, cell by cell)")
    if worst > PREVIEW_MAE_LIMIT:
        return Check(name, "warn", f"{what}: previews will show wrong colours (the results are not affected)",
                     numbers=numbers)
    return Check(name, "ok", what, numbers=numbers)


def job_time(jobs: list[DoctorJob], size: tuple[int, int], steps: int, device: str, default_steps: int) -> Check:
    seconds = statistics.median(j.seconds for j in jobs)
    height, width = size
    scaled = seconds * default_steps / steps
    return Check("time", "info", f"a job took {seconds:.1f} s ({width}x{height}, {steps} steps per phase, 3 phases, "
                 f"{device}; median of {len(jobs)}); time grows with the steps ({default_steps}, the model's "
                 f"default: about {scaled:.1f} s) and with the pixels, faster than them at large sizes",
                 numbers={"seconds": round(seconds, 3), "size": [width, height], "steps": steps,
                          "default_steps_seconds": round(scaled, 3)})


# ---------------------------------------------------------------------------------------------------------- the run
def diagnose(pipe: Any, vae: str | None = None, progress: Any = None) -> Report:
    """Every check on a loaded TAUEPipeline, its default config at DOCTOR_STEPS steps (at its own steps where it
    cannot run that many). `vae`: the replacement VAE it was loaded with, if any."""
    from .models.loading import FP16_FIXED_SDXL_VAE

    device = str(pipe._execution_device)
    report = Report(pipe.model_name, vae, device, str(pipe.unet.dtype).replace("torch.", ""))
    base = pipe.default_config
    try:
        config = base.replace(num_inference_steps=DOCTOR_STEPS)
    except ValueError:  # a few-step sampler, or a cut that 20 steps cannot make
        config = base
    say = progress or (lambda text: None)

    say("VAE precision")
    cells = CPU_TEST_CELLS if pipe._execution_device.type == "cpu" else TEST_CELLS
    picture = pipe.encode_pixels(doctor_picture(cells * pipe.vae_scale_factor))
    precision = vae_precision(pipe, picture)
    report.checks.append(precision)
    vocabulary, prompts, background = doctor_prompts(pipe)
    report.checks.append(vocabulary)
    say("key colours")
    keys, suggested = key_geometry(pipe, config)
    report.checks.append(keys)
    try:
        phase, jobs, size = phase_one(pipe, config, prompts, background, say)
    except (ValueError, RuntimeError) as error:  # the model's settings do not fit it, out of memory ...
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        report.checks.append(Check("phase 1", "fail", f"the job failed: {first}",
                                   reason=f"its job failed ({first})"))
        report.checks.append(preview_map(pipe, {"the test picture": [picture]}))
    else:
        report.checks.append(phase)
        say("previews")
        report.checks.append(preview_map(pipe, {"the test picture": [picture],
                                                "phase 1's clean estimates": [j.clean for j in jobs]}))
        report.checks.append(job_time(jobs, size, config.num_inference_steps, device, base.num_inference_steps))

    report.config = {"key_color": suggested}
    if suggested != base.key_color:
        report.flags += ["--key-color", suggested]
    if precision.status in ("warn", "fail") and not vae:
        report.flags += ["--vae", FP16_FIXED_SDXL_VAE]
    return report


def add_parser(commands: Any, vae_help: str) -> None:
    """The `doctor` subcommand's flags (cli.build_parser)."""
    doc = commands.add_parser("doctor", help="check a model before real work: VAE precision, key colours, phase 1, "
                              "previews, time; exit 1 when TAUE cannot use it")
    doc.add_argument("--model", default="toy", metavar="M",
                     help="hub id, diffusers folder, .safetensors file, toy or tiny-random (default: toy)")
    doc.add_argument("--single-file-config", metavar="DIR",
                     help="local diffusers SDXL folder whose configs describe a .safetensors --model")
    doc.add_argument("--vae", default=None, metavar="PATH_OR_ID", help=vae_help)
    doc.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    doc.add_argument("--dtype", default=None, help="float16, bfloat16 or float32 (default: fp16 on GPU, fp32 on CPU)")
    doc.add_argument("--write-config", default=None, metavar="PATH",
                     help="also write the findings as JSON: checks, verdict, and a 'config' section of settings")
    doc.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def doctor(args: argparse.Namespace) -> int:
    """`taue doctor`: 0 when the model is usable for TAUE, 1 when not (the verdict says why)."""
    from .cli import EXIT_FAILURE, UsageError, check_model_flags
    from .models.loading import ModelLoadError, VaeLoadError
    from .quiet import quiet_libraries

    check_model_flags(args)
    out = Path(args.write_config) if args.write_config else None
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        raise UsageError(f"--write-config must name a file in an existing folder (got {args.write_config!r})")

    quiet_libraries()
    from .pipeline import TAUEPipeline

    say = (lambda text: None) if args.quiet else (lambda text: print(f"doctor: {text} ...", file=sys.stderr))
    say(f"loading {args.model}")
    try:
        pipe = TAUEPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype, vae=args.vae,
                                            single_file_config=args.single_file_config)
    except ModelLoadError as error:
        print(f"taue: error: {'--vae' if isinstance(error, VaeLoadError) else '--model'}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    pipe.set_progress_bar_config(disable=True)
    report = diagnose(pipe, vae=args.vae, progress=say)
    for line in report.lines():
        print(line)
    if out is not None:
        try:
            out.write_text(json.dumps(report.to_dict(), indent=1) + "\n", encoding="utf-8")
        except OSError as error:
            print(f"taue: error: --write-config {str(out)!r} cannot be written ({error.strerror or error})",
                  file=sys.stderr)
            return EXIT_FAILURE
        print(f"findings written to {out}")
    return 0 if report.usable else EXIT_FAILURE
