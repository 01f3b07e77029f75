"""Request fields, each described once: how a JSON value is checked and how the OpenAPI document shows it.

A field's check and its schema come from the same few values (type, range, nullable, description, message), so the
document cannot promise what the parser refuses. Every error names the field and says what to change.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from taue_engine.config import LayoutBox, TAUEConfig, field_docs

from .config import ServerConfig
from .errors import APIError
from .model_choice import ModelChoice, folder_choice

MISSING: Any = object()  # a key the body lacks; null is sent, and a few fields refuse it
LAYOUT_KEYS = ("cx", "cy", "w", "h")
MAX_LIST = 16  # the longest list an advanced (TAUEConfig) field takes


@dataclass(frozen=True)
class Context:
    """What checks and schemas depend on: the server's limits (read through, e.g. ctx.max_steps), the served
    model's defaults, the models a job may name, and for new backgrounds the parent job's number of objects (None:
    unknown, as in schemas)."""

    limits: ServerConfig
    base: TAUEConfig = dataclasses.field(default_factory=TAUEConfig)
    objects: int | None = None
    models: ModelChoice | None = None
    """The models a job may name, read once for the request (None: read from the server's folder when asked)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.limits, name)

    def bound(self, value: int | str | None) -> int | None:
        """A bound given as a number, or as the name of a limit (or `objects`)."""
        return getattr(self, value) if isinstance(value, str) else value


def refuse(name: str, message: str) -> APIError:
    """A 400 naming the field."""
    return APIError(400, message, field=name)


@dataclass(frozen=True, kw_only=True)
class Field:
    """A field of a request. Left out (or null, when `nullable`), an optional field takes `default` (called with
    the context when callable); `engine`: the pipeline takes it as is (job_requests.engine_arguments)."""

    description: str | Callable[[Context], str] = ""
    required: bool = False
    nullable: bool = True
    default: Any = None
    engine: bool = False

    def parse(self, name: str, value: Any, ctx: Context) -> Any:
        if not self.required and (value is MISSING or (value is None and self.nullable)):
            return self.default(ctx) if callable(self.default) else self.default
        return self.check(name, None if value is MISSING else value, ctx)

    def check(self, name: str, value: Any, ctx: Context) -> Any:
        raise NotImplementedError

    def shape(self, ctx: Context) -> dict:
        raise NotImplementedError

    def schema(self, ctx: Context) -> dict:
        """The OpenAPI 3.0 schema: the kind's shape, nullable when null may be sent, and the description."""
        schema = self.shape(ctx)
        if not self.required and self.nullable:
            schema["nullable"] = True
        description = self.description(ctx) if callable(self.description) else self.description
        if description:
            schema["description"] = description
        return schema


@dataclass(frozen=True, kw_only=True)
class Text(Field):
    """A prompt, at most max_prompt_chars long. With `what` (what it describes), it must say something."""

    what: str = ""

    def check(self, name: str, value: Any, ctx: Context) -> str:
        if value is None:
            raise refuse(name, f"{name} is required: describe the {self.what} in words (a string)")
        if not isinstance(value, str):
            raise refuse(name, f"{name} must be a string (got {type(value).__name__})")
        if self.what and not value.strip():
            raise refuse(name, f"{name} must not be empty: describe the {self.what}")
        if len(value) > ctx.max_prompt_chars:
            raise refuse(name, f"{name} is {len(value)} characters long: keep it under {ctx.max_prompt_chars} (the "
                               "text encoders read about 75 words)")
        if "\x00" in value:
            raise refuse(name, f"{name} must not contain NUL characters")
        return value

    def shape(self, ctx: Context) -> dict:
        return {"type": "string", "maxLength": ctx.max_prompt_chars, **({"minLength": 1} if self.what else {})}


@dataclass(frozen=True, kw_only=True)
class Whole(Field):
    """A whole number in low..high (numbers, or names of limits), a multiple of `multiple`."""

    low: int | str
    high: int | str
    multiple: int = 1

    def check(self, name: str, value: Any, ctx: Context) -> int:
        low, high = ctx.bound(self.low), ctx.bound(self.high)
        if isinstance(value, bool) or not isinstance(value, int):
            raise refuse(name, f"{name} must be a whole number (got {json.dumps(value)[:40]})")
        if not low <= value <= high or value % self.multiple:
            rule = f"a multiple of {self.multiple} in {low}..{high}" if self.multiple > 1 else f"in {low}..{high}"
            raise refuse(name, f"{name} must be {rule} (got {value})")
        return value

    def shape(self, ctx: Context) -> dict:
        shape = {"type": "integer", "minimum": ctx.bound(self.low), "maximum": ctx.bound(self.high)}
        return {**shape, "multipleOf": self.multiple} if self.multiple > 1 else shape


@dataclass(frozen=True, kw_only=True)
class Number(Field):
    """A number in low..high; `message` ({name}) says what is wanted."""

    low: float
    high: float
    message: str

    def check(self, name: str, value: Any, ctx: Context) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            raise refuse(name, self.message.format(name=name))
        return float(value)

    def shape(self, ctx: Context) -> dict:
        shape = {"type": "number", "minimum": self.low, "maximum": self.high}
        return {**shape, "default": self.default} if self.default is not None else shape


@dataclass(frozen=True, kw_only=True)
class Box(Field):
    """A layout box {cx, cy, w, h}, fractions of the image; the engine's LayoutBox checks the ranges."""

    def check(self, name: str, value: Any, ctx: Context) -> dict:
        if not isinstance(value, dict):
            raise refuse(name, f"{name} must be an object {{cx, cy, w, h}} of fractions 0..1")
        unknown = sorted(set(value) - set(LAYOUT_KEYS))
        missing = [k for k in LAYOUT_KEYS if k not in value]
        if unknown or missing:
            raise refuse(name, f"{name} takes exactly cx, cy, w, h (fractions of the image, 0..1); "
                               f"{'unknown: ' + ', '.join(unknown) if unknown else 'missing: ' + ', '.join(missing)}")
        for key in LAYOUT_KEYS:
            if isinstance(value[key], bool) or not isinstance(value[key], (int, float)):
                raise refuse(f"{name}.{key}", f"{name}.{key} must be a number in 0..1")
        try:
            return LayoutBox(**{k: float(value[k]) for k in LAYOUT_KEYS}).as_dict()
        except ValueError as error:
            key = str(error).split()[0].split(".")[-1]
            raise refuse(f"{name}.{key}", str(error).replace("layout.", f"{name}.", 1)) from None

    def shape(self, ctx: Context) -> dict:
        fraction = {"type": "number", "minimum": 0, "maximum": 1}
        size = {**fraction, "exclusiveMinimum": True}
        return {"type": "object", "additionalProperties": False, "required": list(LAYOUT_KEYS),
                "properties": {"cx": fraction, "cy": fraction, "w": size, "h": size}}


@dataclass(frozen=True, kw_only=True)
class Items(Field):
    """A list of low..high `item`s (bounds: numbers or names of limits; None: no bound); `message` ({name}, {low},
    {high}) says what is wanted. Each item is named name[n], n from 1."""

    item: Field
    low: int | str = 0
    high: int | str | None = None
    message: str

    def check(self, name: str, value: Any, ctx: Context) -> list:
        low, high = ctx.bound(self.low), ctx.bound(self.high)
        if not isinstance(value, list) or len(value) < low or (high is not None and len(value) > high):
            raise refuse(name, self.message.format(name=name, low=low, high=high))
        return [self.item.parse(f"{name}[{n}]", item, ctx) for n, item in enumerate(value, 1)]

    def shape(self, ctx: Context) -> dict:
        shape = {"type": "array", "items": self.item.schema(ctx)}
        for key, bound in (("minItems", ctx.bound(self.low)), ("maxItems", ctx.bound(self.high))):
            if bound:
                shape[key] = bound
        return shape


@dataclass(frozen=True, kw_only=True)
class Record(Field):
    """A JSON object of `fields`, checked in their order; the top-level record is a request body (name "").

    With `unknown` ({name}, {field}, {known}, {hint}), an unknown key gets that message and a missing one its field's;
    without, an unknown or missing required key gets `message` ({name}). `renamed`: names a client may try for a
    field of another name (the hint says which).
    """

    fields: dict[str, Field]
    message: str = ""
    unknown: str | None = None
    renamed: dict[str, str] = dataclasses.field(default_factory=dict)

    def check(self, name: str, value: Any, ctx: Context) -> dict:
        self.refuse_unknown(name, value)
        return {key: spec.parse(_join(name, key), value.get(key, MISSING), ctx) for key, spec in self.fields.items()}

    def refuse_unknown(self, name: str, value: Any) -> None:
        extra = sorted(set(value) - set(self.fields)) if isinstance(value, dict) else []
        missing = isinstance(value, dict) and any(key not in value for key, spec in self.fields.items()
                                                  if spec.required)
        if not isinstance(value, dict) or (self.unknown is None and (extra or missing)):
            raise refuse(name, self.message.format(name=name))
        if extra:
            hint = f"; use {self.renamed[extra[0]]}" if extra[0] in self.renamed else ""
            raise refuse(_join(name, extra[0]), self.unknown.format(name=name, field=extra[0], hint=hint,
                                                                   known=", ".join(sorted(self.fields))))

    def shape(self, ctx: Context) -> dict:
        return {"type": "object", "additionalProperties": False,
                "required": [key for key, spec in self.fields.items() if spec.required],
                "properties": {key: spec.schema(ctx) for key, spec in self.fields.items()}}


def _join(name: str, key: str) -> str:
    return f"{name}.{key}" if name else key


def lora_stem(name: str) -> str:
    """A LoRA's name as the server's folder lists it: the file name without .safetensors (any case)."""
    return name[: -len(".safetensors")] if name.lower().endswith(".safetensors") else name


@dataclass(frozen=True, kw_only=True)
class LoraName(Field):
    """A LoRA of the server's --lora-dir, by its file name (with or without .safetensors), never a path."""

    def check(self, name: str, value: Any, ctx: Context) -> str:
        if not isinstance(value, str) or not value:
            raise refuse(name, f"{name} must be the name of a LoRA file")
        if any(c in value for c in "/\\") or value.startswith(".") or "\x00" in value:
            raise refuse(name, f"{name} must name a LoRA of the server's folder, not a path (got {value[:60]!r}); "
                               "GET /api/v1/health lists them")
        stem = lora_stem(value)
        known = ctx.limits.loras()
        if stem not in known:
            listed = ", ".join(sorted(known)) if known else "none (start taue-server with --lora-dir DIR)"
            raise refuse(name, f"{name}: no LoRA {value[:60]!r} on this server; it has: {listed}")
        return stem

    def shape(self, ctx: Context) -> dict:
        return {"type": "string", "minLength": 1}


@dataclass(frozen=True, kw_only=True)
class ModelName(Field):
    """A model the server serves (its --models-dir's, or its workers'), by name, never a path."""

    def check(self, name: str, value: Any, ctx: Context) -> str:
        return (ctx.models or folder_choice(ctx.limits)).check(name, value)

    def shape(self, ctx: Context) -> dict:
        return {"type": "string", "minLength": 1}


@dataclass(frozen=True, kw_only=True)
class StyleName(Field):
    """A style of the server (built in, or a file of <data_dir>/styles), by name."""

    def check(self, name: str, value: Any, ctx: Context) -> str:
        known = ctx.limits.styles()
        if not isinstance(value, str) or value not in known:
            shown = json.dumps(value)[:60] if not isinstance(value, str) else repr(value[:60])
            raise refuse(name, f"{name}: no style {shown} on this server; it has: {', '.join(known)} (GET "
                               "/api/v1/styles describes them)")
        return value

    def shape(self, ctx: Context) -> dict:
        return {"type": "string", "minLength": 1}


@dataclass(frozen=True, kw_only=True)
class Loras(Items):
    """LoRAs {name, scale}, each named once."""

    def check(self, name: str, value: Any, ctx: Context) -> list:
        loras = super().check(name, value, ctx)
        for n, lora in enumerate(loras, 1):
            if any(other["name"] == lora["name"] for other in loras[: n - 1]):
                raise refuse(f"{name}[{n}].name", f"{name}[{n}]: LoRA {lora['name']!r} is listed twice: give it once, "
                                                  "with one scale")
        return loras


TYPE_SCHEMAS = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "str": {"type": "string"},
    "tuple[float, ...]": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": MAX_LIST},
    "tuple[int, ...]": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": MAX_LIST},
    "tuple[str, ...]": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_LIST},
}
EXPECTED = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "a string"}
SCALARS = {"int": int, "float": (int, float), "bool": bool, "str": str}


@dataclass(frozen=True, kw_only=True)
class Setting(Field):
    """An advanced field: a TAUEConfig field under its own name, typed and documented by the dataclass. Only the
    type is checked here; the range is TAUEConfig's own (its validation is the one source of truth)."""

    name: str
    kind: str

    @classmethod
    def of(cls, field: dataclasses.Field) -> Setting:
        return cls(name=field.name, kind=str(field.type), description=lambda ctx: _setting_doc(field.name, ctx))

    def check(self, name: str, value: Any, ctx: Context) -> Any:
        return _typed(name, self.kind, value)

    def shape(self, ctx: Context) -> dict:
        return dict(TYPE_SCHEMAS[self.kind])


def _typed(name: str, kind: str, value: Any) -> Any:
    if kind in SCALARS:
        if not isinstance(value, SCALARS[kind]) or (kind != "bool" and isinstance(value, bool)):
            raise refuse(name, f"{name} must be {EXPECTED[kind]} (got {json.dumps(value)[:40]})")
        return value
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise refuse(name, f"{name} must be a list of at most {MAX_LIST} values")
    item = kind[len("tuple["):].split(",")[0]
    return tuple(_typed(name, item, element) for element in value)


@cache
def _docs() -> dict[str, str]:
    return field_docs()


def _setting_doc(name: str, ctx: Context) -> str:
    default = getattr(ctx.base, name)
    if isinstance(default, tuple):
        default = list(default)
    elif isinstance(default, float) and not math.isfinite(default):
        default = None
    return f"advanced (TAUEConfig.{name}, default {json.dumps(default)}): {_docs().get(name, '')}"
