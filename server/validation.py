"""Job requests: one description of the fields serves validation and the OpenAPI document.

Nothing from a request reaches the engine, or a path, before it is checked here. Every error names the field and
says what to change.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import secrets
from typing import Any

from taue_engine.config import KEY_COLORS, SIZE_MULTIPLE, LayoutBox, TAUEConfig, field_docs

from .config import ServerConfig
from .errors import APIError

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
LAYOUT_KEYS = ("cx", "cy", "w", "h")
SEED_MAX = 2**63 - 1
# TAUEConfig fields a request sets under other names (steps) or not at all
NOT_ADVANCED = {"num_inference_steps": "steps"}
TYPE_SCHEMAS = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "str": {"type": "string"},
    "tuple[float, ...]": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 16},
    "tuple[int, ...]": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 16},
    "tuple[str, ...]": {"type": "array", "items": {"type": "string"}, "maxItems": 16},
}


def check_job_id(job_id: str) -> str:
    """Job ids are 32 lowercase hex digits; anything else never reaches the file system."""
    if not isinstance(job_id, str) or not JOB_ID.match(job_id):
        raise APIError(404, "no such job: a job id is 32 hexadecimal digits, as returned by POST /api/v1/jobs",
                       field="id")
    return job_id


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
        text = raw.decode("utf-8")
        body = json.loads(text, parse_constant=no_constants, object_pairs_hook=no_duplicates)
    except UnicodeDecodeError:
        raise APIError(400, "the body must be UTF-8 encoded JSON", code="invalid_json") from None
    except (json.JSONDecodeError, RecursionError) as error:
        raise APIError(400, f"the body is not valid JSON ({error}): send a JSON object", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(400, f"the body must be a JSON object, not {type(body).__name__}", code="invalid_json")
    return body


def advanced_fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TAUEConfig) if f.name not in NOT_ADVANCED}


def _require_int(name: str, value: Any, low: int, high: int, multiple: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise APIError(400, f"{name} must be a whole number (got {json.dumps(value)[:40]})", field=name)
    if not low <= value <= high or value % multiple:
        rule = f"a multiple of {multiple} in {low}..{high}" if multiple > 1 else f"in {low}..{high}"
        raise APIError(400, f"{name} must be {rule} (got {value})", field=name)
    return value


def _require_prompt(name: str, value: Any, limit: int, required: bool) -> str | None:
    if value is None and not required:
        return None
    if value is None:
        what = "object" if name.startswith("objects") else name.split("_")[0]
        raise APIError(400, f"{name} is required: describe the {what} in words (a string)", field=name)
    if not isinstance(value, str):
        raise APIError(400, f"{name} must be a string (got {type(value).__name__})", field=name)
    if required and not value.strip():
        what = "object" if name.startswith("objects") else name.split("_")[0]
        raise APIError(400, f"{name} must not be empty: describe the {what}", field=name)
    if len(value) > limit:
        raise APIError(400, f"{name} is {len(value)} characters long: keep it under {limit} (the text encoders "
                       "read about 75 words)", field=name)
    if "\x00" in value:
        raise APIError(400, f"{name} must not contain NUL characters", field=name)
    return value


def _layout(value: Any, name: str = "layout") -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise APIError(400, f"{name} must be an object {{cx, cy, w, h}} of fractions 0..1", field=name)
    unknown = sorted(set(value) - set(LAYOUT_KEYS))
    missing = [k for k in LAYOUT_KEYS if k not in value]
    if unknown or missing:
        raise APIError(400, f"{name} takes exactly cx, cy, w, h (fractions of the image, 0..1); "
                       f"{'unknown: ' + ', '.join(unknown) if unknown else 'missing: ' + ', '.join(missing)}",
                       field=name)
    for key in LAYOUT_KEYS:
        item = value[key]
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise APIError(400, f"{name}.{key} must be a number in 0..1", field=f"{name}.{key}")
    try:
        return LayoutBox(**{k: float(value[k]) for k in LAYOUT_KEYS}).as_dict()
    except ValueError as error:
        key = str(error).split()[0].split(".")[-1]
        raise APIError(400, str(error).replace("layout.", f"{name}.", 1), field=f"{name}.{key}") from None


def _objects(value: Any, limits: ServerConfig) -> list[dict]:
    """`objects`: 1..max_objects of {prompt, layout}; a box left out is placed by the engine (side by side)."""
    if not isinstance(value, list) or not 1 <= len(value) <= limits.max_objects:
        raise APIError(400, f"objects must be a list of 1..{limits.max_objects} objects {{prompt, layout}}",
                       field="objects")
    objects = []
    for n, item in enumerate(value, 1):
        name = f"objects[{n}]"
        if not isinstance(item, dict):
            raise APIError(400, f"{name} must be an object {{prompt, layout}}", field=name)
        unknown = sorted(set(item) - {"prompt", "layout"})
        if unknown:
            raise APIError(400, f"{name} has the unknown field {unknown[0]!r}: an object takes prompt and layout",
                           field=f"{name}.{unknown[0]}")
        prompt = _require_prompt(f"{name}.prompt", item.get("prompt"), limits.max_prompt_chars, True)
        objects.append({"prompt": prompt, "layout": _layout(item.get("layout"), f"{name}.layout")})
    return objects


def parse_loras(value: Any, limits: ServerConfig) -> list[dict]:
    """`loras`: [{name, scale}], each name a file of the server's --lora-dir (with or without .safetensors), never a
    path; scale a number in -4..4 (default 1)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limits.max_loras:
        raise APIError(400, f"loras must be a list of at most {limits.max_loras} objects {{name, scale}}",
                       field="loras")
    known = limits.loras()
    loras = []
    for n, item in enumerate(value, 1):
        name = f"loras[{n}]"
        if not isinstance(item, dict) or "name" not in item or set(item) - {"name", "scale"}:
            raise APIError(400, f"{name} must be an object {{name, scale}} (scale optional, default 1)", field=name)
        lora = item["name"]
        if not isinstance(lora, str) or not lora:
            raise APIError(400, f"{name}.name must be the name of a LoRA file", field=f"{name}.name")
        if any(c in lora for c in "/\\") or lora.startswith(".") or "\x00" in lora:
            raise APIError(400, f"{name}.name must name a LoRA of the server's folder, not a path (got "
                           f"{lora[:60]!r}); GET /api/v1/health lists them", field=f"{name}.name")
        stem = lora[: -len(".safetensors")] if lora.lower().endswith(".safetensors") else lora
        if stem not in known:
            listed = ", ".join(sorted(known)) if known else "none (start taue-server with --lora-dir DIR)"
            raise APIError(400, f"{name}.name: no LoRA {lora[:60]!r} on this server; it has: {listed}",
                           field=f"{name}.name")
        scale = item.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not -4 <= scale <= 4:
            raise APIError(400, f"{name}.scale must be a number in -4..4 (1: as trained, 0: no effect)",
                           field=f"{name}.scale")
        if any(entry["name"] == stem for entry in loras):
            raise APIError(400, f"{name}: LoRA {stem!r} is listed twice: give it once, with one scale",
                           field=f"{name}.name")
        loras.append({"name": stem, "scale": float(scale)})
    return loras


def _advanced_value(name: str, kind: str, value: Any) -> Any:
    """Type check only; ranges are TAUEConfig's own (its validation is the one source of truth)."""
    scalar = {"int": int, "float": (int, float), "bool": bool, "str": str}
    if kind in scalar:
        ok = isinstance(value, scalar[kind]) and (kind == "bool" or not isinstance(value, bool))
        if not ok:
            expected = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "a string"}[kind]
            raise APIError(400, f"{name} must be {expected} (got {json.dumps(value)[:40]})", field=name)
        return value
    item = kind[len("tuple["):].split(",")[0]
    if not isinstance(value, list) or len(value) > 16:
        raise APIError(400, f"{name} must be a list of at most 16 values", field=name)
    for element in value:
        _advanced_value(name, item, element)
    return tuple(value)


def parse_job_request(body: dict, limits: ServerConfig, base_config: TAUEConfig) -> dict:
    """The engine's keyword arguments and the normalised request (to store) from a JSON body; APIError if bad."""
    known = {"foreground_prompt", "objects", "background_prompt", "composite_prompt", "negative_prompt", "seed",
             "width", "height", "steps", "layout", "loras", *advanced_fields()}
    unknown = sorted(set(body) - known)
    if unknown:
        hint = "; use steps" if unknown[0] in NOT_ADVANCED else ""
        raise APIError(400, f"unknown field {unknown[0]!r}{hint}: see /api/v1/openapi.json for the fields a job takes",
                       field=unknown[0])
    request: dict[str, Any] = {}
    if body.get("objects") is not None:
        for name in ("foreground_prompt", "layout"):
            if body.get(name) is not None:
                raise APIError(400, f"send either objects (each with its prompt and layout) or foreground_prompt "
                               f"and layout, not both ({name} was sent too)", field=name)
        request["foreground_prompt"] = None
        request["objects"] = _objects(body["objects"], limits)
    else:
        request["foreground_prompt"] = _require_prompt("foreground_prompt", body.get("foreground_prompt"),
                                                       limits.max_prompt_chars, True)
    request["background_prompt"] = _require_prompt("background_prompt", body.get("background_prompt"),
                                                   limits.max_prompt_chars, True)
    for name in ("composite_prompt", "negative_prompt"):
        request[name] = _require_prompt(name, body.get(name), limits.max_prompt_chars, False)
    seed = body.get("seed")
    request["seed"] = secrets.randbelow(2**32) if seed is None else _require_int("seed", seed, 0, SEED_MAX)
    for name in ("width", "height"):
        value = body.get(name)
        request[name] = None if value is None else _require_int(name, value, limits.min_size, limits.max_size,
                                                               SIZE_MULTIPLE)
    steps = body.get("steps")
    request["steps"] = base_config.num_inference_steps if steps is None else _require_int(
        "steps", steps, 2, limits.max_steps)
    request["layout"] = _layout(body.get("layout"))
    request["loras"] = parse_loras(body.get("loras"), limits)
    fields = advanced_fields()
    settings = {}
    for name in sorted(set(body) & set(fields)):
        if body[name] is not None:
            settings[name] = _advanced_value(name, str(fields[name].type), body[name])
    try:
        config = base_config.replace(num_inference_steps=request["steps"], **settings)
    except ValueError as error:
        field = next((n for n in sorted(settings, key=len, reverse=True) if str(error).startswith(n)), None)
        if field is None and "crop_ratio" in str(error):
            field = "crop_ratio" if "crop_ratio" in settings else "steps"
        raise APIError(400, str(error), field=field) from None
    request["settings"] = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
    return {"request": request, "config": config}


def parse_backgrounds_request(body: dict, limits: ServerConfig, objects: int) -> list[dict]:
    """POST /jobs/<id>/backgrounds: one job request per new background, from `background_prompts` and the optional
    `seeds` (one per prompt, or several for one prompt), `composite_prompt`, `negative_prompt` and `layouts` (one
    per object of the parent job: null keeps the object where it is, a box moves and scales it there)."""
    known = {"background_prompts", "seeds", "composite_prompt", "negative_prompt", "layouts"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise APIError(400, f"unknown field {unknown[0]!r}: new backgrounds take {', '.join(sorted(known))}",
                       field=unknown[0])
    prompts = body.get("background_prompts")
    if not isinstance(prompts, list) or not 1 <= len(prompts) <= limits.max_batch:
        raise APIError(400, f"background_prompts must be a list of 1..{limits.max_batch} prompts, one new job each",
                       field="background_prompts")
    prompts = [_require_prompt(f"background_prompts[{n}]", p, limits.max_prompt_chars, True)
               for n, p in enumerate(prompts, 1)]
    seeds = body.get("seeds")
    if seeds is None:
        seeds = [secrets.randbelow(2**32) for _ in prompts]
    else:
        if not isinstance(seeds, list) or not seeds:
            raise APIError(400, "seeds must be a list of whole numbers", field="seeds")
        seeds = [_require_int(f"seeds[{n}]", s, 0, SEED_MAX) for n, s in enumerate(seeds, 1)]
        if len(prompts) == 1 and len(seeds) <= limits.max_batch:
            prompts = prompts * len(seeds)
        elif len(seeds) != len(prompts):
            raise APIError(400, f"seeds must hold one seed per background prompt ({len(prompts)}), or several "
                           "seeds for one prompt", field="seeds")
    layouts = body.get("layouts")
    if layouts is not None:
        if not isinstance(layouts, list) or len(layouts) != objects:
            raise APIError(400, f"layouts must hold one entry per object of the job ({objects}): a box {{cx, cy, w, "
                           "h}} to move it, or null to keep it", field="layouts")
        layouts = [_layout(box, f"layouts[{n}]") for n, box in enumerate(layouts, 1)]
    composite = _require_prompt("composite_prompt", body.get("composite_prompt"), limits.max_prompt_chars, False)
    negative = _require_prompt("negative_prompt", body.get("negative_prompt"), limits.max_prompt_chars, False)
    return [{"background_prompt": p, "seed": s, "composite_prompt": composite, "negative_prompt": negative,
             "layouts": layouts} for p, s in zip(prompts, seeds)]


def parse_layers_request(body: dict, limits: ServerConfig, base_config: TAUEConfig) -> dict:
    """POST /backgrounds: object layers the user brings (`objects`: [{prompt, png}], png a base64 RGBA PNG, all of
    one size) and the new backgrounds to put them in. Returns the job requests, the layers and the config."""
    import base64
    import binascii
    import io

    from PIL import Image, UnidentifiedImageError

    known = {"objects", "background_prompts", "seeds", "composite_prompt", "negative_prompt", "steps", "key_color",
             "loras"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise APIError(400, f"unknown field {unknown[0]!r}: new backgrounds for brought layers take "
                       f"{', '.join(sorted(known))}", field=unknown[0])
    items = body.get("objects")
    if not isinstance(items, list) or not 1 <= len(items) <= limits.max_objects:
        raise APIError(400, f"objects must be a list of 1..{limits.max_objects} objects {{prompt, png}} (png: a "
                       "base64-encoded RGBA PNG whose alpha covers the object)", field="objects")
    prompts, layers = [], []
    for n, item in enumerate(items, 1):
        name = f"objects[{n}]"
        if not isinstance(item, dict) or sorted(item) != ["png", "prompt"]:
            raise APIError(400, f"{name} must be {{prompt, png}}", field=name)
        prompts.append(_require_prompt(f"{name}.prompt", item["prompt"], limits.max_prompt_chars, True))
        try:
            data = base64.b64decode(item["png"], validate=True) if isinstance(item["png"], str) else None
            image = Image.open(io.BytesIO(data)) if data else None
        except (binascii.Error, ValueError, UnidentifiedImageError):
            image = None
        if image is None or image.format != "PNG":
            raise APIError(400, f"{name}.png must be a PNG file encoded as base64", field=f"{name}.png")
        image = image.convert("RGBA")
        width, height = image.size
        if (width % SIZE_MULTIPLE or height % SIZE_MULTIPLE or not limits.min_size <= min(width, height)
                or max(width, height) > limits.max_size):
            raise APIError(400, f"{name}.png is {width}x{height}: layers must be multiples of {SIZE_MULTIPLE} in "
                           f"{limits.min_size}..{limits.max_size} pixels (scale or crop it)", field=f"{name}.png")
        if layers and image.size != layers[0].size:
            raise APIError(400, f"{name}.png is {width}x{height} but objects[1].png is "
                           f"{layers[0].width}x{layers[0].height}: bring all layers at the scene's size",
                           field=f"{name}.png")
        if not image.getchannel("A").point(lambda a: 255 if a > 127 else 0).getbbox():
            raise APIError(400, f"{name}.png is (nearly) fully transparent: its alpha must cover the object",
                           field=f"{name}.png")
        layers.append(image)
    batch = parse_backgrounds_request({k: body[k] for k in ("background_prompts", "seeds", "composite_prompt",
                                                             "negative_prompt") if k in body}, limits, len(layers))
    steps = body.get("steps")
    steps = base_config.num_inference_steps if steps is None else _require_int("steps", steps, 2, limits.max_steps)
    settings = {}
    if body.get("key_color") is not None:
        settings["key_color"] = _advanced_value("key_color", "str", body["key_color"])
    try:
        config = base_config.replace(num_inference_steps=steps, **settings)
    except ValueError as error:
        raise APIError(400, str(error), field="key_color" if "key_color" in str(error) else "steps") from None
    width, height = layers[0].size
    loras = parse_loras(body.get("loras"), limits)
    requests = [{**extra, "objects": [{"prompt": p, "layout": None} for p in prompts], "width": width,
                 "height": height, "steps": steps, "settings": settings, "loras": loras} for extra in batch]
    for request in requests:
        request.pop("layouts")
    return {"requests": requests, "layers": layers, "config": config}


def engine_arguments(request: dict, config: TAUEConfig) -> dict:
    """The pipeline's keyword arguments for a stored, validated request."""
    if request.get("objects"):
        return {"objects": request["objects"], "background_prompt": request["background_prompt"],
                "composite_prompt": request["composite_prompt"], "negative_prompt": request["negative_prompt"],
                "seed": request["seed"], "width": request["width"], "height": request["height"], "config": config}
    return {
        "foreground_prompt": request["foreground_prompt"],
        "background_prompt": request["background_prompt"],
        "composite_prompt": request["composite_prompt"],
        "negative_prompt": request["negative_prompt"],
        "seed": request["seed"],
        "width": request["width"],
        "height": request["height"],
        "layout": request["layout"],
        "config": config,
    }


LORAS_SCHEMA = {
    "type": "array", "nullable": True, "maxItems": 8,
    "description": "LoRAs for all three phases: names of files in the server's --lora-dir (GET /health lists them), "
                   "never paths; a job without loras runs on the bare model",
    "items": {"type": "object", "additionalProperties": False, "required": ["name"],
              "properties": {"name": {"type": "string", "minLength": 1},
                             "scale": {"type": "number", "minimum": -4, "maximum": 4, "default": 1}}}}


def job_request_schema(limits: ServerConfig, base_config: TAUEConfig) -> dict:
    """The JSON schema of POST /jobs (OpenAPI 3.0 flavour), from the same limits the validation uses."""
    prompt = {"type": "string", "maxLength": limits.max_prompt_chars}
    size = {"type": "integer", "minimum": limits.min_size, "maximum": limits.max_size, "multipleOf": SIZE_MULTIPLE,
            "nullable": True, "description": "pixels; default: the model's native size"}
    box = {"type": "object", "additionalProperties": False, "required": list(LAYOUT_KEYS),
           "properties": {"cx": {"type": "number", "minimum": 0, "maximum": 1},
                          "cy": {"type": "number", "minimum": 0, "maximum": 1},
                          "w": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1},
                          "h": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1}}}
    properties: dict[str, Any] = {
        "foreground_prompt": {**prompt, "minLength": 1, "nullable": True,
                              "description": "the object alone, e.g. 'a red bicycle' (or send objects)"},
        "objects": {"type": "array", "nullable": True, "minItems": 1, "maxItems": limits.max_objects,
                    "description": "several objects instead of foreground_prompt (and layout): each gets its own "
                                   "layer (layers/object-<n>.png) and mask (layers/mask-<n>.png), n from 1 in this "
                                   "order; later objects are in front where boxes overlap; boxes left out are placed "
                                   "side by side",
                    "items": {"type": "object", "additionalProperties": False, "required": ["prompt"],
                              "properties": {"prompt": {**prompt, "minLength": 1},
                                             "layout": {**box, "nullable": True}}}},
        "background_prompt": {**prompt, "minLength": 1, "description": "the scene, e.g. 'a street at dusk'"},
        "composite_prompt": {**prompt, "nullable": True, "description": "default: foreground, background"},
        "negative_prompt": {**prompt, "nullable": True},
        "seed": {"type": "integer", "minimum": 0, "maximum": SEED_MAX, "nullable": True,
                 "description": "default: random (the job reports the seed it used)"},
        "width": size,
        "height": size,
        "steps": {"type": "integer", "minimum": 2, "maximum": limits.max_steps, "nullable": True,
                  "description": f"denoising steps per phase (default {base_config.num_inference_steps})"},
        "layout": {**box, "nullable": True,
                   "description": "where the object goes: centre and size as fractions of the image"},
        "loras": LORAS_SCHEMA,
    }
    docs = field_docs()
    for name, f in advanced_fields().items():
        schema = dict(TYPE_SCHEMAS[str(f.type)])
        schema["nullable"] = True
        schema["description"] = f"advanced (TAUEConfig.{name}, default {json.dumps(_jsonable(getattr(base_config, name)))}): " \
                                f"{docs.get(name, '')}"
        properties[name] = schema
    return {"type": "object", "additionalProperties": False, "required": ["background_prompt"],
            "description": "foreground_prompt (one object) or objects (several) is required",
            "oneOf": [{"required": ["foreground_prompt"]}, {"required": ["objects"]}],
            "properties": properties}


def backgrounds_request_schema(limits: ServerConfig) -> dict:
    """The JSON schema of POST /jobs/<id>/backgrounds."""
    prompt = {"type": "string", "maxLength": limits.max_prompt_chars}
    schema = job_request_schema(limits, TAUEConfig())
    box = schema["properties"]["layout"]
    return {"type": "object", "additionalProperties": False, "required": ["background_prompts"], "properties": {
        "background_prompts": {"type": "array", "minItems": 1, "maxItems": limits.max_batch,
                               "items": {**prompt, "minLength": 1}, "description": "one new job per prompt"},
        "seeds": {"type": "array", "nullable": True, "items": {"type": "integer", "minimum": 0, "maximum": SEED_MAX},
                  "description": "one per prompt, or several for one prompt (one job each); default random"},
        "composite_prompt": {**prompt, "nullable": True},
        "negative_prompt": {**prompt, "nullable": True},
        "layouts": {"type": "array", "nullable": True, "items": box,
                    "description": "re-layout: one entry per object of the job, a box to move and scale the object "
                                   "there without regenerating it, or null to keep it"}}}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def layers_request_schema(limits: ServerConfig) -> dict:
    """The JSON schema of POST /backgrounds (object layers brought as base64 PNGs)."""
    schema = backgrounds_request_schema(limits)
    properties = {k: v for k, v in schema["properties"].items() if k != "layouts"}
    properties["objects"] = {
        "type": "array", "minItems": 1, "maxItems": limits.max_objects,
        "description": "the objects, in order (later in front): each an RGBA PNG at the scene's size, base64",
        "items": {"type": "object", "additionalProperties": False, "required": ["prompt", "png"],
                  "properties": {"prompt": {"type": "string", "minLength": 1, "maxLength": limits.max_prompt_chars},
                                 "png": {"type": "string", "format": "byte"}}}}
    properties["steps"] = {"type": "integer", "minimum": 2, "maximum": limits.max_steps, "nullable": True}
    properties["key_color"] = {"type": "string", "enum": list(KEY_COLORS), "nullable": True}
    properties["loras"] = LORAS_SCHEMA
    return {"type": "object", "additionalProperties": False, "required": ["objects", "background_prompts"],
            "properties": properties}
