"""`taue` command line: `taue generate ...` writes the layers of one scene as PNGs, PSD, ORA and taue.json;
`taue background ...` puts the objects of a result (or RGBA layers) into new scenes without regenerating them.

Every argument is checked before the model loads (seconds, not minutes), and a bad one ends the run with one line
that names the flag and what it allows, exit status 2. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from taue_client.layers import parse_object

from . import __version__
from .config import KEY_COLORS, MAX_SIZE, MIN_SIZE, SIZE_MULTIPLE, LayoutBox, TAUEConfig, field_names
from .quiet import quiet_libraries

DEFAULT_MODEL = "toy"
EXIT_USAGE, EXIT_FAILURE, EXIT_CANCELLED = 2, 1, 130

# TAUEConfig fields that have a flag of their own; other fields are set with --set FIELD=VALUE.
FIELD_FLAGS = {"num_inference_steps": "--steps", "scheduler": "--scheduler", "timestep_spacing": "--timestep-spacing"}


def add_sampling_flags(parser, loras: bool = True) -> None:
    """--scheduler, --timestep-spacing, --guidance (and --lora): the flags that pick the model people run."""
    from .schedulers import SCHEDULERS, TIMESTEP_SPACINGS

    parser.add_argument("--scheduler", default=None, metavar="NAME",
                        help=f"sampler: {', '.join(SCHEDULERS)} (default euler, the paper's)")
    parser.add_argument("--timestep-spacing", default=None, choices=TIMESTEP_SPACINGS,
                        help="spread of the steps (default: the model's); few-step models want trailing")
    parser.add_argument("--guidance", default=None, metavar="G",
                        help="guidance of all three phases (default: the paper's 7.5 / 5 / 5, or the model's own "
                             "taue_config.json: the toy takes 3 in all three); <= 1 turns CFG off (few-step models)")
    if loras:
        parser.add_argument("--lora", action="append", default=[], metavar="PATH[:SCALE]",
                            help="a LoRA .safetensors (diffusers or kohya format), scale default 1.0; repeatable")


class UsageError(Exception):
    """A bad command line: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line (UsageError), not usage and a message."""

    def error(self, message: str) -> NoReturn:  # argparse prints usage + error; we print one line
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="taue", description="TAUE Layers: foreground, background and composite from one seed.")
    parser.add_argument("--version", action="version", version=f"taue {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    gen = commands.add_parser("generate", help="generate the layers of one scene")
    gen.add_argument("--foreground", metavar="TEXT", help="the object alone, e.g. 'a red vintage bicycle'")
    gen.add_argument("--object", action="append", default=[], metavar="TEXT[@CX,CY,W,H]",
                     help="one object of several (repeat; instead of --foreground), with its box or, without, placed "
                          "side by side; later objects are in front")
    gen.add_argument("--background", required=True, metavar="TEXT",
                     help="the scene, e.g. 'a cobblestone street at dusk'")
    gen.add_argument("--composite", metavar="TEXT", help="composite prompt (default: FOREGROUND, BACKGROUND)")
    gen.add_argument("--negative", metavar="TEXT", help="negative prompt for all phases")
    gen.add_argument("--model", default=DEFAULT_MODEL, metavar="M",
                     help=f"hub id, diffusers folder, .safetensors file, or tiny-random (default: {DEFAULT_MODEL})")
    gen.add_argument("--single-file-config", metavar="DIR",
                     help="local diffusers SDXL folder whose configs describe a .safetensors --model")
    gen.add_argument("--vae", default=None, metavar="PATH_OR_ID", help=VAE_HELP)
    gen.add_argument("--seed", default="0", metavar="N", help="seed (default 0): same seed, same files")
    gen.add_argument("--steps", default=None, metavar="N", help="denoising steps per phase (default 50)")
    gen.add_argument("--width", default=None, metavar="W", help="multiple of 8 (default: the model's size)")
    gen.add_argument("--height", default=None, metavar="H", help="multiple of 8 (default: the model's size)")
    gen.add_argument("--layout", default=None, metavar="CX,CY,W,H", help="object box, fractions 0..1")
    gen.add_argument("--key-color", default=None, choices=KEY_COLORS,
                     help="backdrop of the object runs (default green; blue or magenta for a green object)")
    gen.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                     help="any TAUEConfig field, e.g. --set tau_bg=0.4 (JSON values: --set shear_blocks='[\"up\"]')")
    add_sampling_flags(gen)
    gen.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    gen.add_argument("--dtype", default=None, help="float16, bfloat16 or float32 (default: fp16 on GPU, fp32 on CPU)")
    gen.add_argument("--cpu-offload", action="store_true", help="keep idle sub-models on the CPU (small GPUs)")
    gen.add_argument("--vae-tiling", action="store_true", help="decode in tiles (small GPUs)")
    gen.add_argument("--out", default="taue-out", metavar="DIR", help="output folder (default: taue-out)")
    gen.add_argument("--psd", action=argparse.BooleanOptionalAction, default=True,
                     help="also write result.psd: a layer group, the foreground's alpha as a layer mask (default: on)")
    gen.add_argument("--ora", action=argparse.BooleanOptionalAction, default=True,
                     help="also write result.ora (OpenRaster, opens in Krita and GIMP) (default: on)")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")

    new = commands.add_parser("background", help="new backgrounds for the objects of a result, or for RGBA layers")
    source = new.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="source", metavar="DIR", help="a result folder (taue generate's --out)")
    source.add_argument("--layer", action="append", metavar="PNG", help="an RGBA object layer (repeat for several)")
    new.add_argument("--object", action="append", default=[], metavar="TEXT",
                     help="what each --layer shows, in order (default: 'an object')")
    new.add_argument("--background", action="append", required=True, metavar="TEXT",
                     help="a new background prompt (repeat for several)")
    new.add_argument("--seed", action="append", default=None, metavar="N",
                     help="seed (repeat for several; default 0): one scene per prompt and seed")
    new.add_argument("--move", action="append", default=[], metavar="N@CX,CY,W,H",
                     help="re-layout: object N (from 1) moved and scaled into the box")
    new.add_argument("--model", default=None, metavar="M", help="default: the model that made --from, else toy")
    new.add_argument("--vae", default=None, metavar="PATH_OR_ID",
                     help="as in generate (default: the VAE that made --from)")
    new.add_argument("--steps", default=None, metavar="N", help="with --layer: steps per phase (default 50)")
    new.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="any TAUEConfig field")
    add_sampling_flags(new)
    new.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    new.add_argument("--dtype", default=None, help="float16, bfloat16 or float32")
    new.add_argument("--out", default="taue-backgrounds", metavar="DIR",
                     help="output folder: one sub-folder per scene (default: taue-backgrounds)")
    new.add_argument("--quiet", action="store_true", help="no progress bar")

    from .doctor import add_parser as add_doctor_parser
    add_doctor_parser(commands, VAE_HELP)
    return parser


VAE_HELP = ("a VAE in place of the model's own: diffusers VAE folder, .safetensors file or hub id, e.g. "
            "madebyollin/sdxl-vae-fp16-fix (SDXL's VAE fixed for float16: for black or NaN pictures)")


def check_vae_flag(vae: str | None) -> None:
    """--vae names a VAE that exists (a path) or may (a hub id)."""
    from .models.loading import ModelLoadError, check_vae_exists

    if vae is not None:
        try:
            check_vae_exists(vae)
        except ModelLoadError as error:
            raise UsageError(f"--vae: {error}") from None


def made_with_vae(result: Path) -> str | None:
    """The replacement VAE a result folder was made with (its taue.json), or None: the model's own."""
    try:
        return json.loads((result / "taue.json").read_text(encoding="utf-8")).get("vae")
    except (OSError, ValueError, AttributeError):
        return None


def int_flag(flag: str, text: str | None, low: int, high: int, multiple: int = 1) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{flag} must be a whole number (got {text!r})") from None
    if not low <= value <= high or value % multiple:
        rule = f"a multiple of {multiple} in {low}..{high}" if multiple > 1 else f"in {low}..{high}"
        raise UsageError(f"{flag} must be {rule} (got {value})")
    return value


def config_from_flags(args, base: TAUEConfig | None = None) -> TAUEConfig:
    """The config of the flags (--steps, --set) on top of `base` (the model's defaults)."""
    changes: dict[str, Any] = {}
    steps = int_flag("--steps", args.steps, 2, 1000)
    if steps is not None:
        changes["num_inference_steps"] = steps
    for name in ("scheduler", "timestep_spacing"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name)
    if getattr(args, "guidance", None) is not None:
        try:
            guidance = float(args.guidance)
        except ValueError:
            raise UsageError(f"--guidance must be a number (got {args.guidance!r})") from None
        changes.update(guidance_foreground=guidance, guidance_composite=guidance, guidance_background=guidance)
    known = field_names()
    for item in args.set:
        name, sep, raw = item.partition("=")
        if not sep or name not in known:
            raise UsageError(f"--set takes FIELD=VALUE with FIELD one of: {', '.join(known)} (got {item!r})")
        try:
            changes[name] = json.loads(raw)
        except json.JSONDecodeError:
            changes[name] = raw
    try:
        return (base or TAUEConfig()).replace(**changes)
    except (ValueError, TypeError) as error:
        field = max((n for n in known if str(error).startswith(n)), key=len, default=None)
        if field is not None and field not in changes and changes:
            # the value is the model's own default (its taue_config.json); the flags given made it impossible
            flag = next((FIELD_FLAGS[n] for n in changes if n in FIELD_FLAGS), "--set")
            raise UsageError(f"{flag}: with this model's default {field} (its taue_config.json): {error}") from None
        flag = FIELD_FLAGS.get(field, f"--set {field}") if field else "--set"
        if field and field.startswith("guidance_") and getattr(args, "guidance", None) is not None:
            flag = "--guidance"
        raise UsageError(f"{flag}: {error}") from None


def _loras(args) -> list:
    """--lora PATH[:SCALE], each file checked before the model loads."""
    from .loras import parse_lora

    specs = []
    for text in getattr(args, "lora", []) or []:
        try:
            specs.append(parse_lora(text).check())
        except ValueError as error:
            raise UsageError(f"--lora: {error}") from None
    return specs


def load_loras(pipe, specs: list) -> None:
    if not specs:
        return
    try:
        pipe.load_loras(specs)
    except ValueError as error:
        raise UsageError(f"--lora: {error}") from None


def check_model_flags(args) -> None:
    """The flags that say which model to load and how (--model, --device, --dtype, --vae, --single-file-config),
    checked before anything loads."""
    from .models.loading import ModelLoadError, check_model_exists

    try:
        check_model_exists(args.model)
    except ModelLoadError as error:
        raise UsageError(f"--model: {error}") from None
    check_device_flags(args)
    check_vae_flag(args.vae)
    if args.single_file_config is not None and not Path(args.single_file_config).is_dir():
        raise UsageError(f"--single-file-config must be a diffusers folder (got {args.single_file_config!r})")


def check_device_flags(args) -> None:
    """--device and --dtype, checked against this torch before anything loads."""
    from .models.loading import check_device, choose_device_and_dtype

    if args.device is not None:
        try:
            check_device(args.device)
        except ValueError as error:
            raise UsageError(f"--device: {error}") from None
    try:
        choose_device_and_dtype(args.device, args.dtype)
    except ValueError as error:
        raise UsageError(f"--dtype: {error}") from None


def check_arguments(args) -> dict:
    """Everything that can be checked without loading the model; returns the pipeline's keyword arguments."""
    from .objects import scene_objects

    if args.key_color:
        args.set = [*args.set, f"key_color={args.key_color}"]
    if not args.background.strip():
        raise UsageError("--background must not be empty")
    if args.object and args.foreground is not None:
        raise UsageError("give --foreground for one object or --object for each of several, not both")
    if not args.object and (args.foreground is None or not args.foreground.strip()):
        raise UsageError("--foreground must not be empty (or give --object for each of several objects)")
    objects = None
    if args.object:
        if args.layout is not None:
            raise UsageError("--layout is for --foreground; give each --object its box as TEXT@CX,CY,W,H")
        try:
            objects = scene_objects([_object(text) for text in args.object])
        except ValueError as error:
            raise UsageError(f"--object: {error}") from None
    config = config_from_flags(args)
    loras = _loras(args)
    seed = int_flag("--seed", args.seed, 0, 2**63 - 1)
    width = int_flag("--width", args.width, MIN_SIZE, MAX_SIZE, multiple=SIZE_MULTIPLE)
    height = int_flag("--height", args.height, MIN_SIZE, MAX_SIZE, multiple=SIZE_MULTIPLE)
    layout = None
    if args.layout is not None:
        try:
            layout = LayoutBox.parse(args.layout)
        except ValueError as error:
            raise UsageError(f"--layout: {error}") from None
    check_model_flags(args)
    return {
        "foreground_prompt": None if objects else args.foreground,
        "objects": objects,
        "background_prompt": args.background,
        "composite_prompt": args.composite,
        "negative_prompt": args.negative,
        "layout": layout,
        "seed": seed,
        "width": width,
        "height": height,
        "config": config,
        "loras": loras,
    }


def _object(text: str) -> dict:
    """'PROMPT' or 'PROMPT@CX,CY,W,H' as an object of the request (the rule GIMP's More objects follows too)."""
    try:
        return parse_object(text)
    except ValueError as error:
        raise UsageError(f"--object {text!r}: {error}") from None


def check_writable(out: Path) -> None:
    """Fail before any work when `out` cannot hold the result (a folder is made and a file written and removed)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out must be a folder (got the file {str(out)!r})")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".taue-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"--out {str(out)!r} cannot be written ({error.strerror or error}): choose a folder you "
                         "can write") from None


def save_or_rescue(result, out: Path, **options) -> dict:
    """result.save(out); when that fails after the work (disk full, folder removed), the files go to a new temporary
    folder instead and the error names it: nothing generated is lost."""
    import tempfile

    try:
        return result.save(out, **options)
    except OSError as error:
        rescue = Path(tempfile.mkdtemp(prefix="taue-rescued-"))
        result.save(rescue, **options)
        raise SaveFailed(f"could not save to {str(out)!r} ({error.strerror or error}); the result is in {rescue}") \
            from None


class SaveFailed(Exception):
    """The work is done but --out could not take it: printed as one line naming where the files went, exit 1."""


def generate(args) -> int:
    request = check_arguments(args)
    out = Path(args.out)
    check_writable(out)

    quiet_libraries()
    from .models.loading import ModelLoadError, VaeLoadError
    from .pipeline import TAUECancelled, TAUEPipeline

    if not args.quiet:
        print(f"loading {args.model} ...", file=sys.stderr)
    try:
        pipe = TAUEPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype,
                                            cpu_offload=args.cpu_offload, vae_tiling=args.vae_tiling,
                                            single_file_config=args.single_file_config, vae=args.vae)
    except ModelLoadError as error:
        flag = "--vae" if isinstance(error, VaeLoadError) else "--model"
        print(f"taue: error: {flag}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except ValueError as error:
        raise UsageError(str(error)) from None
    pipe.set_progress_bar_config(disable=args.quiet, desc="TAUE",
                                 unit="step", leave=True)
    request["config"] = config_from_flags(args, pipe.default_config)
    load_loras(pipe, request.pop("loras"))
    warning = pipe.prompt_warning([request["foreground_prompt"], request["background_prompt"],
                                   request["composite_prompt"], *[o.prompt for o in request["objects"] or []]])
    if warning:
        print(f"taue: warning: {warning}", file=sys.stderr)
    try:
        result = pipe(**request)
    except ValueError as error:
        raise UsageError(str(error)) from None
    except TAUECancelled as error:
        print(f"taue: {error}", file=sys.stderr)
        return EXIT_CANCELLED
    written = save_or_rescue(result, out, psd=args.psd, ora=args.ora)
    if not args.quiet:
        for name, path in written.items():
            print(f"{name:>20}: {path}")
    for warning in result.metadata.get("warnings", []):  # what phase 1 found (mask_checks), even with --quiet
        print(f"taue: warning: {warning}", file=sys.stderr)
    return 0


def new_backgrounds(args) -> int:
    """New scenes (one per background prompt and seed) around the objects of a result folder or RGBA layers."""
    from PIL import Image

    from .models.loading import ModelLoadError, VaeLoadError, check_model_exists
    from .transplant import Transplant

    prompts = [p for p in args.background]
    if any(not p.strip() for p in prompts):
        raise UsageError("--background must not be empty")
    seeds = [int_flag("--seed", s, 0, 2**63 - 1) for s in (args.seed or ["0"])]
    moves = []
    for item in args.move:
        number, at, box = item.partition("@")
        if not at or not number.strip().isdigit():
            raise UsageError(f"--move takes N@CX,CY,W,H, e.g. 1@0.3,0.5,0.4,0.6 (got {item!r})")
        try:
            moves.append((int(number) - 1, LayoutBox.parse(box)))
        except ValueError as error:
            raise UsageError(f"--move: {error}") from None
    kept = None
    if args.source:
        try:
            kept = Transplant.load(args.source)
        except (ValueError, OSError) as error:
            raise UsageError(f"--from: {error}") from None
        if args.layer or args.object:
            raise UsageError("--object names --layer files; a --from result has its own")
    else:
        if args.object and len(args.object) != len(args.layer):
            raise UsageError(f"give one --object per --layer ({len(args.layer)} layers, {len(args.object)} objects)")
        for path in args.layer:
            if not Path(path).is_file():
                raise UsageError(f"--layer: no file {path!r}")
    model = args.model or (kept.model if kept is not None else DEFAULT_MODEL)
    try:
        check_model_exists(model)
    except ModelLoadError as error:
        raise UsageError(f"--model: {error}") from None
    check_device_flags(args)
    vae = args.vae if args.vae is not None or args.source is None else made_with_vae(Path(args.source))
    check_vae_flag(vae)
    config = config_from_flags(args)
    loras = _loras(args)
    if kept is not None and args.steps is not None:
        raise UsageError("--steps: a --from result keeps the steps it was made with")

    quiet_libraries()
    from .pipeline import TAUECancelled, TAUEPipeline

    out = Path(args.out)
    check_writable(out)
    try:
        pipe = TAUEPipeline.from_pretrained(model, device=args.device, dtype=args.dtype, vae=vae)
    except ModelLoadError as error:
        print(f"taue: error: {'--vae' if isinstance(error, VaeLoadError) else '--model'}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    config = config_from_flags(args, pipe.default_config)
    load_loras(pipe, loras)
    objects = list(kept.prompts) if kept is not None else list(args.object or [])
    warning = pipe.prompt_warning(prompts + objects + [getattr(args, "composite", None)])
    if warning:
        print(f"taue: warning: {warning}", file=sys.stderr)
    if kept is None:
        layers = []
        for path in args.layer:
            with Image.open(path) as image:
                layers.append(image.convert("RGBA"))
        if len({layer.size for layer in layers}) != 1:
            raise UsageError("--layer: all layers must have one size")
        width, height = layers[0].size
        factor = pipe.vae_scale_factor
        if width % factor or height % factor:
            raise UsageError(f"--layer: the layers' size must be a multiple of {factor} (got {width}x{height})")
        try:
            kept = Transplant.from_layers(layers, args.object or ["an object"] * len(layers),
                                          latent_size=(height // factor, width // factor),
                                          num_inference_steps=config.num_inference_steps,
                                          crop_step=config.crop_step, model=model, key_color=config.key_color)
        except ValueError as error:
            raise UsageError(f"--layer: {error}") from None
    else:
        sampler = {} if args.scheduler or args.timestep_spacing else {  # the noise the seedlings carry
            "scheduler": kept.scheduler, "timestep_spacing": kept.timestep_spacing}
        config = config.replace(num_inference_steps=kept.num_inference_steps,
                                crop_ratio=TAUEConfig.crop_ratio_cutting_after(kept.crop_step,
                                                                               kept.num_inference_steps), **sampler)
    for index, box in moves:
        try:
            latent_h, latent_w = kept.masks[0].shape
            kept = kept.moved(index, box, latent_size=(int(latent_h), int(latent_w)))
        except ValueError as error:
            raise UsageError(f"--move: {error}") from None
    scenes = [(p, s) for p in prompts for s in seeds]
    for number, (prompt, seed) in enumerate(scenes, 1):
        pipe.set_progress_bar_config(disable=args.quiet, desc=f"scene {number}/{len(scenes)}", unit="step",
                                     leave=True)
        try:
            result = pipe.new_background(kept, prompt, seed=seed, config=config)
        except ValueError as error:
            raise UsageError(str(error)) from None
        except TAUECancelled as error:
            print(f"taue: {error}", file=sys.stderr)
            return EXIT_CANCELLED
        folder = out / (str(number) if len(scenes) > 1 else ".")
        save_or_rescue(result, folder)
        if not args.quiet:
            print(f"{prompt!r} seed {seed}: {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "generate":
            return generate(args)
        if args.command == "background":
            return new_backgrounds(args)
        if args.command == "doctor":
            from .doctor import doctor
            return doctor(args)
    except UsageError as error:
        print(f"taue: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SaveFailed as error:
        print(f"taue: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("taue: interrupted; nothing was written for the unfinished job", file=sys.stderr)
        return EXIT_CANCELLED
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
