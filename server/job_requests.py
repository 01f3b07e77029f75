"""The three job requests (POST /jobs, POST /jobs/<id>/backgrounds, POST /backgrounds), each one typed model.

Each body is a Record of fields (fields.py): the parser, its messages, the OpenAPI schema and the engine's
arguments all come from it, and a field two requests share is one object. Nothing from a request reaches the
engine, or a path, before it is checked here.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from typing import Any

from taue_engine.config import SIZE_MULTIPLE, TAUEConfig

from .config import ServerConfig
from .errors import APIError
from .fields import Box, Context, Items, LoraName, Loras, ModelName, Number, Record, Setting, StyleName, Text, Whole
from .images import Png
from .model_choice import ModelChoice

SEED_MAX = 2**63 - 1
NOT_ADVANCED = {"num_inference_steps": "steps"}  # TAUEConfig fields a request sets under another name
ADVANCED = {f.name: Setting.of(f) for f in dataclasses.fields(TAUEConfig) if f.name not in NOT_ADVANCED}


def _random_seed(ctx: Context) -> int:
    return secrets.randbelow(2**32)


OBJECT_PROMPT = Text(what="object", required=True)
COMPOSITE = Text(engine=True, description="default: foreground, background")
NEGATIVE = Text(engine=True)
SEED = Whole(low=0, high=SEED_MAX, engine=True, default=_random_seed,
             description="default: random (the job reports the seed it used)")
SIZE = Whole(low="min_size", high="max_size", multiple=SIZE_MULTIPLE, engine=True,
             description="pixels; default: the model's native size")
STEPS = Whole(low=2, high="max_steps", default=lambda ctx: ctx.base.num_inference_steps,
              description=lambda ctx: f"denoising steps per phase (default {ctx.base.num_inference_steps})")
LORAS = Loras(
    item=Record(fields={"name": LoraName(required=True),
                        "scale": Number(low=-4, high=4, default=1.0, nullable=False,
                                        message="{name} must be a number in -4..4 (1: as trained, 0: no effect)")},
                required=True, message="{name} must be an object {{name, scale}} (scale optional, default 1)"),
    high="max_loras", default=lambda ctx: [], message="{name} must be a list of at most {high} objects {{name, scale}}",
    description="LoRAs for all three phases: names of files in the server's --lora-dir (GET /health lists them), "
                "never paths; a job without loras runs on the bare model")
MODEL = ModelName(description="a model by name, one of GET /health's models: of the server's --models-dir (it "
                              "switches to it before the job runs), or served by a taue-worker behind a queue; "
                              "default: /health's model")
STYLE = StyleName(description="a style by name (GET /styles lists them): its model, LoRAs and sampling fill the "
                              "fields the request does not send")
LAYER_SETTINGS = ("key_color", "scheduler", "timestep_spacing", "guidance_composite", "guidance_background",
                  "crop_ratio")
"""The TAUEConfig fields new backgrounds for brought layers take (no foreground runs: no guidance_foreground)."""

JOB = Record(fields={
    "foreground_prompt": Text(what="foreground", engine=True,
                              description="the object alone, e.g. 'a red bicycle' (or send objects)"),
    "objects": Items(
        item=Record(fields={"prompt": OBJECT_PROMPT, "layout": Box()}, required=True,
                    message="{name} must be an object {{prompt, layout}}",
                    unknown="{name} has the unknown field {field!r}: an object takes prompt and layout"),
        low=1, high="max_objects", engine=True, message="{name} must be a list of {low}..{high} objects "
                                                        "{{prompt, layout}}",
        description="several objects instead of foreground_prompt (and layout): each gets its own layer "
                    "(layers/object-<n>.png) and mask (layers/mask-<n>.png), n from 1 in this order; later objects "
                    "are in front where boxes overlap; boxes left out are placed side by side"),
    "background_prompt": Text(what="background", required=True, engine=True,
                              description="the scene, e.g. 'a street at dusk'"),
    "composite_prompt": COMPOSITE,
    "negative_prompt": NEGATIVE,
    "seed": SEED,
    "width": SIZE,
    "height": SIZE,
    "steps": STEPS,
    "layout": Box(engine=True, description="where the object goes: centre and size as fractions of the image"),
    "loras": LORAS,
    "model": MODEL,
    "style": STYLE,
    **ADVANCED,
}, unknown="unknown field {field!r}{hint}: see /api/v1/openapi.json for the fields a job takes", renamed=NOT_ADVANCED)

BACKGROUNDS = Record(fields={
    "background_prompts": Items(item=Text(what="background", required=True), low=1, high="max_batch", required=True,
                                message="{name} must be a list of {low}..{high} prompts, one new job each",
                                description="one new job per prompt"),
    "seeds": Items(item=dataclasses.replace(SEED, required=True, description=""), low=1,
                   message="{name} must be a list of whole numbers",
                   description="one per prompt, or several for one prompt (one job each); default random"),
    "layouts": Items(item=Box(), low="objects", high="objects",
                     message="{name} must hold one entry per object of the job ({high}): a box {{cx, cy, w, h}} to "
                             "move it, or null to keep it",
                     description="re-layout: one entry per object of the job, a box to move and scale the object "
                                 "there without regenerating it, or null to keep it"),
    "composite_prompt": COMPOSITE,
    "negative_prompt": NEGATIVE,
}, unknown="unknown field {field!r}: new backgrounds take {known}")

LAYERS = Record(fields={
    "objects": Items(
        item=Record(fields={"prompt": OBJECT_PROMPT, "png": Png(required=True)}, required=True,
                    message="{name} must be {{prompt, png}}"),
        low=1, high="max_objects", required=True,
        message="{name} must be a list of {low}..{high} objects {{prompt, png}} (png: a base64-encoded RGBA PNG whose "
                "alpha covers the object)",
        description="the objects, in order (later in front): each an RGBA PNG at the scene's size, base64"),
    **{name: BACKGROUNDS.fields[name] for name in ("background_prompts", "seeds", "composite_prompt",
                                                   "negative_prompt")},
    "steps": STEPS,
    **{name: ADVANCED[name] for name in LAYER_SETTINGS},
    "loras": LORAS,
    "model": MODEL,
    "style": STYLE,
}, unknown="unknown field {field!r}: new backgrounds for brought layers take {known}")


def parse_json_body(raw: bytes) -> dict:
    """The request body as a JSON object; NaN, Infinity and duplicate keys are refused."""
    def no_constants(name: str):
        raise APIError(400, f"{name} is not valid JSON: send numbers as finite decimals", code="invalid_json")

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        duplicated = sorted({k for k in keys if keys.count(k) > 1})
        if duplicated:
            raise APIError(400, f"field {duplicated[0]!r} appears twice: send each field once", code="invalid_json",
                           field=duplicated[0])
        return dict(pairs)

    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=no_constants, object_pairs_hook=no_duplicates)
    except UnicodeDecodeError:
        raise APIError(400, "the body must be UTF-8 encoded JSON", code="invalid_json") from None
    except (json.JSONDecodeError, RecursionError) as error:
        raise APIError(400, f"the body is not valid JSON ({error}): send a JSON object", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(400, f"the body must be a JSON object, not {type(body).__name__}", code="invalid_json")
    return body


def parse_job_request(body: dict, limits: ServerConfig, base_config: TAUEConfig,
                      models: ModelChoice | None = None) -> dict:
    """POST /jobs: {"request": the normalised request (to store), "config": the TAUEConfig it runs with}. `models`:
    the models a job may name (default: the server's folder, read when `model` is sent)."""
    ctx = Context(limits, base_config, models=models)
    JOB.refuse_unknown("", body)
    if body.get("objects") is not None:  # several objects replace foreground_prompt and layout
        for name in ("foreground_prompt", "layout"):
            if body.get(name) is not None:
                raise APIError(400, f"send either objects (each with its prompt and layout) or foreground_prompt "
                               f"and layout, not both ({name} was sent too)", field=name)
    elif body.get("foreground_prompt") is None:
        JOB.fields["foreground_prompt"].check("foreground_prompt", None, ctx)  # says it is required
    values = JOB.check("", body, ctx)
    settings = {name: values.pop(name) for name in sorted(ADVANCED)}
    settings = {name: value for name, value in settings.items() if value is not None}
    for name in ("objects", "model", "style"):
        if values[name] is None:
            del values[name]
    config = run_config(base_config, values["steps"], settings)
    return {"request": {**values, "settings": {k: list(v) if isinstance(v, tuple) else v
                                               for k, v in settings.items()}}, "config": config}


def parse_backgrounds_request(body: dict, limits: ServerConfig, objects: int) -> list[dict]:
    """POST /jobs/<id>/backgrounds: one job request per new background (layouts: one entry per object of the
    parent job; null keeps the object where it is, a box moves and scales it there)."""
    return _one_per_background(BACKGROUNDS.check("", body, Context(limits, objects=objects)), limits)


def _one_per_background(values: dict, limits: ServerConfig) -> list[dict]:
    """The background prompts and their seeds paired: one seed per prompt, or several for one prompt."""
    prompts, seeds = values["background_prompts"], values["seeds"]
    if seeds is None:
        seeds = [secrets.randbelow(2**32) for _ in prompts]
    elif len(prompts) == 1 and len(seeds) <= limits.max_batch:
        prompts = prompts * len(seeds)
    elif len(seeds) != len(prompts):
        raise APIError(400, f"seeds must hold one seed per background prompt ({len(prompts)}), or several seeds "
                       "for one prompt", field="seeds")
    return [{"background_prompt": p, "seed": s, "composite_prompt": values["composite_prompt"],
             "negative_prompt": values["negative_prompt"], "layouts": values.get("layouts")}
            for p, s in zip(prompts, seeds)]


def parse_layers_request(body: dict, limits: ServerConfig, base_config: TAUEConfig,
                         models: ModelChoice | None = None) -> dict:
    """POST /backgrounds: object layers the user brings (all of one size) and the new backgrounds to put them in.
    Returns the job requests, the layers (RGBA images) and the config."""
    values = LAYERS.check("", body, Context(limits, base_config, models=models))
    layers = [item["png"] for item in values["objects"]]
    for n, layer in enumerate(layers[1:], 2):
        if layer.size != layers[0].size:
            raise APIError(400, f"objects[{n}].png is {layer.width}x{layer.height} but objects[1].png is "
                           f"{layers[0].width}x{layers[0].height}: bring all layers at the scene's size",
                           field=f"objects[{n}].png")
    batch = _one_per_background(values, limits)
    settings = {name: values[name] for name in LAYER_SETTINGS if values[name] is not None}
    config = run_config(base_config, values["steps"], settings)
    width, height = layers[0].size
    requests = [{**extra, "objects": [{"prompt": item["prompt"], "layout": None} for item in values["objects"]],
                 "width": width, "height": height, "steps": values["steps"], "settings": settings,
                 "loras": values["loras"],
                 **{name: values[name] for name in ("model", "style") if values[name] is not None}}
                for extra in batch]
    for request in requests:
        request.pop("layouts")
    return {"requests": requests, "layers": layers, "config": config}


def run_config(base_config: TAUEConfig, steps: int, settings: dict[str, Any]) -> TAUEConfig:
    """The TAUEConfig a job runs with; its own validation says what is wrong, named after the field sent (the
    message's subject, else a field it mentions, else steps when it is about them)."""
    try:
        return base_config.replace(num_inference_steps=steps, **settings)
    except ValueError as error:
        message = str(error)
        sent = sorted(settings, key=len, reverse=True)
        field = (next((n for n in sent if message.startswith(n)), None) or next((n for n in sent if n in message), None)
                 or ("steps" if "steps" in message else None))
        raise APIError(400, message, field=field) from None


def engine_arguments(request: dict, config: TAUEConfig) -> dict:
    """The pipeline's keyword arguments for a stored, validated POST /jobs request: its engine fields, as stored."""
    return {**{name: request.get(name) for name, spec in JOB.fields.items() if spec.engine}, "config": config}


def job_request_schema(limits: ServerConfig, base_config: TAUEConfig) -> dict:
    """The JSON schema of POST /jobs (OpenAPI 3.0 flavour)."""
    return {**JOB.shape(Context(limits, base_config)),
            "description": "foreground_prompt (one object) or objects (several) is required",
            "oneOf": [{"required": ["foreground_prompt"]}, {"required": ["objects"]}]}


def backgrounds_request_schema(limits: ServerConfig) -> dict:
    """The JSON schema of POST /jobs/<id>/backgrounds."""
    return BACKGROUNDS.shape(Context(limits))


def layers_request_schema(limits: ServerConfig, base_config: TAUEConfig) -> dict:
    """The JSON schema of POST /backgrounds (object layers brought as base64 PNGs)."""
    return LAYERS.shape(Context(limits, base_config))
