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

from taue_engine.config import SIZE_MULTIPLE, LayoutBox, TAUEConfig, field_docs

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
    if not isinstance(value, str):
        raise APIError(400, f"{name} must be a string (got {type(value).__name__})", field=name)
    if required and not value.strip():
        raise APIError(400, f"{name} must not be empty: describe the {name.split('_')[0]}", field=name)
    if len(value) > limit:
        raise APIError(400, f"{name} is {len(value)} characters long: keep it under {limit} (the text encoders "
                       "read about 75 words)", field=name)
    if "\x00" in value:
        raise APIError(400, f"{name} must not contain NUL characters", field=name)
    return value


def _layout(value: Any) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise APIError(400, "layout must be an object {cx, cy, w, h} of fractions 0..1", field="layout")
    unknown = sorted(set(value) - set(LAYOUT_KEYS))
    missing = [k for k in LAYOUT_KEYS if k not in value]
    if unknown or missing:
        raise APIError(400, f"layout takes exactly cx, cy, w, h (fractions of the image, 0..1); "
                       f"{'unknown: ' + ', '.join(unknown) if unknown else 'missing: ' + ', '.join(missing)}",
                       field="layout")
    for key in LAYOUT_KEYS:
        item = value[key]
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise APIError(400, f"layout.{key} must be a number in 0..1", field=f"layout.{key}")
    try:
        return LayoutBox(**{k: float(value[k]) for k in LAYOUT_KEYS}).as_dict()
    except ValueError as error:
        raise APIError(400, str(error), field=f"layout.{str(error).split()[0].split('.')[-1]}") from None


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
    known = {"foreground_prompt", "background_prompt", "composite_prompt", "negative_prompt", "seed", "width",
             "height", "steps", "layout", *advanced_fields()}
    unknown = sorted(set(body) - known)
    if unknown:
        hint = "; use steps" if unknown[0] in NOT_ADVANCED else ""
        raise APIError(400, f"unknown field {unknown[0]!r}{hint}: see /api/v1/openapi.json for the fields a job takes",
                       field=unknown[0])
    request: dict[str, Any] = {}
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


def engine_arguments(request: dict, config: TAUEConfig) -> dict:
    """The pipeline's keyword arguments for a stored, validated request."""
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


def job_request_schema(limits: ServerConfig, base_config: TAUEConfig) -> dict:
    """The JSON schema of POST /jobs (OpenAPI 3.0 flavour), from the same limits the validation uses."""
    prompt = {"type": "string", "maxLength": limits.max_prompt_chars}
    size = {"type": "integer", "minimum": limits.min_size, "maximum": limits.max_size, "multipleOf": SIZE_MULTIPLE,
            "nullable": True, "description": "pixels; default: the model's native size"}
    properties: dict[str, Any] = {
        "foreground_prompt": {**prompt, "minLength": 1, "description": "the object alone, e.g. 'a red bicycle'"},
        "background_prompt": {**prompt, "minLength": 1, "description": "the scene, e.g. 'a street at dusk'"},
        "composite_prompt": {**prompt, "nullable": True, "description": "default: foreground, background"},
        "negative_prompt": {**prompt, "nullable": True},
        "seed": {"type": "integer", "minimum": 0, "maximum": SEED_MAX, "nullable": True,
                 "description": "default: random (the job reports the seed it used)"},
        "width": size,
        "height": size,
        "steps": {"type": "integer", "minimum": 2, "maximum": limits.max_steps, "nullable": True,
                  "description": f"denoising steps per phase (default {base_config.num_inference_steps})"},
        "layout": {"type": "object", "nullable": True, "additionalProperties": False,
                   "required": list(LAYOUT_KEYS),
                   "description": "where the object goes: centre and size as fractions of the image",
                   "properties": {"cx": {"type": "number", "minimum": 0, "maximum": 1},
                                  "cy": {"type": "number", "minimum": 0, "maximum": 1},
                                  "w": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1},
                                  "h": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1}}},
    }
    docs = field_docs()
    for name, f in advanced_fields().items():
        schema = dict(TYPE_SCHEMAS[str(f.type)])
        schema["nullable"] = True
        schema["description"] = f"advanced (TAUEConfig.{name}, default {json.dumps(_jsonable(getattr(base_config, name)))}): " \
                                f"{docs.get(name, '')}"
        properties[name] = schema
    return {"type": "object", "additionalProperties": False, "required": ["foreground_prompt", "background_prompt"],
            "properties": properties}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
