"""The procedures' arguments, described once: GIMP registers them from here and the request is built from them.

No GIMP import: unit-tested outside GIMP.
"""

from __future__ import annotations

from taue_client import DEFAULT_URL, TAUEError, build_request, layout_from_selection, round_size
from taue_client.layers import MAX_SIZE

SEED_MAX = 2**31 - 1


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


def request_from(values: dict, image_size: tuple, selection: tuple | None, seed: int) -> dict:
    """The POST /jobs body from the procedure's values.

    image_size: the image's (width, height), the default generation size (rounded); selection: the selection's
    bounds (x, y, w, h) or None; seed: used when values['seed'] is -1 (the caller draws it, so it can be shown).
    """
    width, height = values.get("width") or 0, values.get("height") or 0
    if width or height:
        if not (width and height):
            raise TAUEError("settings", "Give both width and height, or 0 for both to use the image's size.", "size")
        if (width, height) != round_size(width, height):
            raise TAUEError("settings", f"Width and height must be multiples of 8 in 64..{MAX_SIZE} (got "
                                        f"{width}x{height}); 0 uses the image's size.", "size")
        size = (width, height)
    else:
        size = round_size(*image_size)
    layout = None
    if values.get("use-selection", True) and selection is not None:
        layout = layout_from_selection(*selection, *image_size)
    chosen = values.get("seed", -1)
    return build_request(values.get("foreground-prompt", ""), values.get("background-prompt", ""),
                         composite=values.get("composite-prompt", ""), negative=values.get("negative-prompt", ""),
                         seed=seed if chosen is None or chosen < 0 else chosen, steps=values.get("steps"),
                         size=size, layout=layout)
