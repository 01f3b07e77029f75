"""The procedures' arguments, described once: GIMP registers them from here and the request is built from them.

No GIMP import: unit-tested outside GIMP.
"""

from __future__ import annotations

from taue_client import DEFAULT_URL, TAUEError, editor_request
from taue_client.layers import MAX_SIZE, SEED_MAX


class Argument:
    def __init__(self, name: str, nick: str, blurb: str, kind: str, default, low=None, high=None):
        self.name, self.nick, self.blurb, self.kind, self.default = name, nick, blurb, kind, default
        self.low, self.high = low, high


# in the dialog's order; names are GIMP's (kebab-case)
ARGUMENTS = (
    Argument("foreground-prompt", "_Foreground", "The object alone, e.g. 'a red vintage bicycle'", "string", ""),
    Argument("background-prompt", "_Background", "The scene behind it, e.g. 'a cobblestone street at dusk'",
             "string", ""),
    Argument("composite-prompt", "_Composite (optional)", "The whole scene; default: foreground, background",
             "string", ""),
    Argument("negative-prompt", "_Negative (optional)", "What none of the layers should show", "string", ""),
    Argument("seed", "_Seed", "-1: a new random seed each run", "int", -1, -1, SEED_MAX),
    Argument("steps", "S_teps", "Denoising steps per phase", "int", 30, 2, 200),
    Argument("width", "_Width", "0: the image's width, rounded to a multiple of 8", "int", 0, 0, MAX_SIZE),
    Argument("height", "_Height", "0: the image's height, rounded to a multiple of 8", "int", 0, 0, MAX_SIZE),
    Argument("use-selection", "_Place the object in the selection", "The selection's bounds become the object's box",
             "boolean", True),
    Argument("server-url", "Server _URL", "Where taue-server listens", "string", DEFAULT_URL),
    Argument("token", "T_oken", "Only for a server started with --token", "string", ""),
)


def request_from(values: dict, image_size: tuple, selection: tuple | None, seed: int | None = None) -> dict:
    """The POST /jobs body from the procedure's values.

    image_size: the image's (width, height), the default generation size (rounded); selection: the selection's
    bounds (x, y, w, h) or None; seed: used when values['seed'] is -1 (None: a new random one).
    """
    width, height = values.get("width") or 0, values.get("height") or 0
    if bool(width) != bool(height):
        raise TAUEError("settings", "Give both width and height, or 0 for both to use the image's size.", "size")
    chosen = values.get("seed", -1)
    return editor_request(values.get("foreground-prompt", ""), values.get("background-prompt", ""),
                          image_size=image_size, size=(width, height) if width else None,
                          selection=selection if values.get("use-selection", True) else None,
                          seed=seed if chosen is None or chosen < 0 else chosen,
                          composite=values.get("composite-prompt", ""), negative=values.get("negative-prompt", ""),
                          steps=values.get("steps"), size_hint="; 0 uses the image's size")
