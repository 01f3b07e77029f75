"""What a result looks like in a layered document, and the rules that turn an editor's state into a request.

The layer stack is described once, here: the PSD and OpenRaster writers of the engine and both editor plug-ins
build it from `STACK`, so names, order and visibility agree everywhere.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .api import TAUEError
from .choices import Choice

GROUP_NAME_LIMIT = 120  # characters; editors show long names badly and PSD caps them at 255
SIZE_MULTIPLE = 8
MIN_SIZE, MAX_SIZE = 64, 2048  # the server's default limits (its /health reports its own)
SEED_MAX = 2**31 - 1  # seeds a plug-in draws or lets the artist type


@dataclass(frozen=True)
class LayerSpec:
    name: str  # the layer's name in the document
    key: str  # the result's layer (server: layers/<key>.png)
    visible: bool
    alpha_as_mask: bool = False  # the alpha becomes an editable layer / transparency mask


# bottom to top
STACK = (
    LayerSpec("Background", "background", True),
    LayerSpec("Foreground", "foreground", True, alpha_as_mask=True),
    LayerSpec("Composite", "composite", False),
    LayerSpec("Object mask", "mask", False),
)
# what the plug-ins insert: in an editor the foreground's own mask already selects the object, so the object mask
# layer stays in the files (PSD, ORA) for other tools
EDITOR_STACK = STACK[:3]
LAYER_NAME_LIMIT = 60  # characters of an object's prompt in its layer's name


def object_layer_name(prompt: str) -> str:
    """An object's layer is named after its prompt (shortened)."""
    prompt = " ".join((prompt or "?").split())
    return prompt if len(prompt) <= LAYER_NAME_LIMIT else prompt[: LAYER_NAME_LIMIT - 1] + "\u2026"


def result_stack(object_prompts: list | None = None) -> tuple:
    """The stack of a result with these objects, bottom to top. One object (or none given): `STACK`, as version 1
    made it. Several: Background, one RGBA layer per object named after its prompt (request order, so later
    objects are in front), Composite, then one hidden mask per object ('Mask: <prompt>', its visible part)."""
    if not object_prompts or len(object_prompts) == 1:
        return STACK
    names = [object_layer_name(p) for p in object_prompts]
    return (STACK[0],
            *(LayerSpec(name, f"object-{n}", True, alpha_as_mask=True) for n, name in enumerate(names, 1)),
            LayerSpec("Composite", "composite", False),
            *(LayerSpec(f"Mask: {name}", f"mask-{n}", False) for n, name in enumerate(names, 1)))


def editor_stack(object_prompts: list | None = None) -> tuple:
    """What the plug-ins insert of a result: its stack without the mask layers (each object's own mask selects it)."""
    return tuple(spec for spec in result_stack(object_prompts)
                 if spec.key != "mask" and not spec.key.startswith("mask-"))


def object_prompts(metadata: dict) -> list:
    """The objects' prompts of a result's metadata (taue.json); one-object results name only the foreground."""
    objects = metadata.get("objects")
    if objects:
        return [obj.get("prompt", "?") for obj in objects]
    return [(metadata.get("prompts") or {}).get("foreground", "?")]


def group_name(metadata: dict) -> str:
    """'TAUE: <foreground> / <background> (seed N)' (several objects: joined with ' + '), with the sampler when it
    is not the paper's Euler and each LoRA with its scale ('(seed 7, dpmpp_2m, LoRA toy-pink 0.8)'), shortened to
    GROUP_NAME_LIMIT characters."""
    prompts = metadata.get("prompts") or {}
    foreground = " + ".join(object_prompts(metadata))
    details = [f"seed {metadata.get('seed')}"]
    if metadata.get("scheduler") not in (None, "euler"):
        details.append(str(metadata["scheduler"]))
    details += [f"LoRA {lora.get('name', '?')} {lora.get('scale', 1.0):g}" for lora in metadata.get("loras") or []]
    name = f"TAUE: {foreground} / {prompts.get('background', '?')} ({', '.join(details)})"
    if len(name) > GROUP_NAME_LIMIT:
        name = name[: GROUP_NAME_LIMIT - 1] + "\u2026"
    return name


def distinct_layer_name(name: str, metadata: dict, taken) -> str:
    """A name for a result's layer that no layer in `taken` has (GIMP keeps names unique in an image and would
    append '#1'): the stack's own name, as the PSD has it; if taken, with the result's background prompt; then
    with its seed too; then numbered."""
    background = object_layer_name((metadata.get("prompts") or {}).get("background") or "?")
    candidates = [name, f"{name} ({background})", f"{name} ({background}, seed {metadata.get('seed')})"]
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    number = 2
    while f"{candidates[-1]} {number}" in taken:
        number += 1
    return f"{candidates[-1]} {number}"


def round_size(width: int, height: int, low: int = MIN_SIZE, high: int = MAX_SIZE) -> tuple[int, int]:
    """A document's size as a generation size: scaled (aspect kept) into low..high, rounded to multiples of 8.

    The layers are scaled back to the document's size when they are inserted.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"a size must be positive (got {width}x{height})")
    scale = min(1.0, high / max(width, height))
    scale = max(scale, low / min(width, height))
    def fit(v):
        return min(high, max(low, int(round(v * scale / SIZE_MULTIPLE)) * SIZE_MULTIPLE))
    return fit(width), fit(height)


def layout_from_selection(x: int, y: int, w: int, h: int, width: int, height: int) -> dict | None:
    """A selection's bounds (pixels) as the request's layout box {cx, cy, w, h} (fractions of the image), or
    None when there is no usable selection (empty, or the whole image)."""
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    if width <= 0 or height <= 0 or x1 - x0 < 1 or y1 - y0 < 1:
        return None
    if (x0, y0, x1, y1) == (0, 0, width, height):
        return None
    box = {"cx": (x0 + x1) / 2 / width, "cy": (y0 + y1) / 2 / height, "w": (x1 - x0) / width,
           "h": (y1 - y0) / height}
    return {key: round(value, 4) for key, value in box.items()}


KEY_COLORS = ("green", "blue", "magenta")  # the backdrop of the object runs; blue or magenta for green objects


BOX_HELP = "four numbers CX,CY,W,H after the @ (centre x, centre y, width, height: fractions 0..1 of the image)"


def parse_object(text: str) -> dict:
    """'PROMPT' or 'PROMPT @ CX,CY,W,H' (the form the CLI's --object and GIMP's More objects take) as a request's
    object {prompt, layout}; ValueError says what is wrong (the caller names where)."""
    prompt, at, box = text.rpartition("@")
    if not at:
        prompt = text
    if not prompt.strip():
        raise ValueError("describe the object before the @ (e.g. 'a yellow moon @ 0.7,0.3,0.3,0.3').")
    if not at:
        return {"prompt": prompt.strip(), "layout": None}
    try:
        cx, cy, w, h = (float(part) for part in box.split(","))
    except ValueError:
        raise ValueError(f"give {BOX_HELP}, e.g. 'a yellow moon @ 0.7,0.3,0.3,0.3'; an @ always starts the "
                         "box.") from None
    if not (0 <= cx <= 1 and 0 <= cy <= 1 and 0 < w <= 1 and 0 < h <= 1):
        raise ValueError(f"the box is {BOX_HELP}, with the width and height above 0.")
    return {"prompt": prompt.strip(), "layout": {"cx": cx, "cy": cy, "w": w, "h": h}}


def scene_objects(foreground: str, layout: dict | None, added: list | None) -> list:
    """The objects of a request: those added before ({prompt, layout}), then the form's own foreground if any."""
    objects = [dict(obj) for obj in (added or [])]
    if (foreground or "").strip():
        objects.append({"prompt": foreground.strip(), "layout": layout})
    return objects


def build_request(foreground: str, background: str, *, composite: str = "", negative: str = "",
                  seed: int | None = None, steps: int | None = None, size: tuple | None = None,
                  layout: dict | None = None, objects: list | None = None, key_color: str | None = None,
                  choice: Choice | None = None) -> dict:
    """The JSON body of POST /api/v1/jobs from a form's values; empty optional fields are left out (steps 0 or None:
    the style's, else the model's). `choice`: the model, style, LoRAs and sampler chosen (choices.Choice).

    `objects` are the objects added before ({prompt, layout}); with the form's foreground they make a
    several-object request (one object alone is sent as the single-object request it is)."""
    background = (background or "").strip()
    scene = scene_objects(foreground, layout, objects)
    if not scene:
        raise TAUEError("settings", "Describe the foreground object (e.g. 'a red vintage bicycle').", "foreground")
    if not background:
        raise TAUEError("settings", "Describe the background (e.g. 'a cobblestone street at dusk').", "background")
    if len(scene) == 1:
        request = {"foreground_prompt": scene[0]["prompt"], "background_prompt": background}
        layout = scene[0].get("layout")
    else:
        request = {"objects": [{k: v for k, v in obj.items() if v is not None} for obj in scene],
                   "background_prompt": background}
        layout = None
    if key_color not in (None, "", "green"):
        if key_color not in KEY_COLORS:
            raise TAUEError("settings", f"The key colour must be one of {', '.join(KEY_COLORS)} (got {key_color!r}).",
                            "key_color")
        request["key_color"] = key_color
    if (composite or "").strip():
        request["composite_prompt"] = composite.strip()
    if (negative or "").strip():
        request["negative_prompt"] = negative.strip()
    if seed is not None:
        request["seed"] = int(seed)
    if steps:
        request["steps"] = int(steps)
    if size is not None:
        request["width"], request["height"] = int(size[0]), int(size[1])
    if layout is not None:
        request["layout"] = dict(layout)
    if choice is not None:
        request.update(choice.request_fields())
    return request


def new_background_request(background: str, *, seed: int | None = None, composite: str = "",
                           negative: str = "") -> dict:
    """The body of POST /api/v1/jobs/<id>/backgrounds for one new background (seed None draws one)."""
    background = (background or "").strip()
    if not background:
        raise TAUEError("settings", "Describe the new background (e.g. 'a beach at noon').", "background")
    request = {"background_prompts": [background],
               "seeds": [random.randint(0, SEED_MAX) if seed is None else int(seed)]}
    if (composite or "").strip():
        request["composite_prompt"] = composite.strip()
    if (negative or "").strip():
        request["negative_prompt"] = negative.strip()
    return request


def editor_request(foreground: str, background: str, *, image_size: tuple[int, int],
                   size: tuple[int, int] | None = None, selection: tuple[int, int, int, int] | None = None,
                   seed: int | None = None, composite: str = "", negative: str = "", steps: int | None = None,
                   low: int = MIN_SIZE, high: int = MAX_SIZE, size_hint: str = "", objects: list | None = None,
                   key_color: str | None = None, choice: Choice | None = None) -> dict:
    """What an editor plug-in sends: generated at `size` (checked: multiples of 8 in low..high) or, when None, at
    the image's size rounded; the selection's bounds (x, y, w, h) place the object; seed None draws one (the
    request carries it, so the plug-in can show it). `size_hint` ends the size error with the host's own advice."""
    if size is None:
        size = round_size(image_size[0], image_size[1], low, high)
    elif tuple(size) != round_size(size[0], size[1], low, high):
        raise TAUEError("settings", f"Width and height must be multiples of {SIZE_MULTIPLE} in {low}..{high} (got "
                                    f"{size[0]}x{size[1]}){size_hint}.", "size")
    layout = layout_from_selection(*selection, *image_size) if selection is not None else None
    return build_request(foreground, background, composite=composite, negative=negative,
                         seed=random.randint(0, SEED_MAX) if seed is None else seed, steps=steps, size=size,
                         layout=layout, objects=objects, key_color=key_color, choice=choice)
