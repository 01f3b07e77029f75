"""The procedures' arguments, described once: GIMP registers them from here and the requests are built from them.

No GIMP import: unit-tested outside GIMP.
"""

from __future__ import annotations

from taue_client import (
    DEFAULT_URL,
    KEY_COLORS,
    Choice,
    Client,
    TAUEError,
    describe_offer,
    editor_request,
    new_background_request,
    parse_loras,
    server_offer,
)
from taue_client.layers import MAX_SIZE, SEED_MAX, parse_object


class Argument:
    def __init__(self, name: str, nick: str, blurb: str, kind: str, default, low=None, high=None, choices=()):
        self.name, self.nick, self.blurb, self.kind, self.default = name, nick, blurb, kind, default
        self.low, self.high, self.choices = low, high, choices


# in the dialog's order; names are GIMP's (kebab-case). kind 'text': a string of several lines
ARGUMENTS = (
    Argument("foreground-prompt", "_Foreground", "The object alone, e.g. 'a red vintage bicycle' (in front of the "
             "other objects)", "string", ""),
    Argument("objects", "More _objects (optional)", "One object per line, behind the Foreground: PROMPT, or "
             "PROMPT @ CX,CY,W,H to place it (centre and size, fractions 0..1 of the image)", "text", ""),
    Argument("background-prompt", "_Background", "The scene behind it, e.g. 'a cobblestone street at dusk'",
             "string", ""),
    Argument("composite-prompt", "_Composite (optional)", "The whole scene; default: foreground, background",
             "string", ""),
    Argument("negative-prompt", "_Negative (optional)", "What none of the layers should show", "string", ""),
    Argument("key-color", "_Key colour", "The backdrop the objects are cut from: blue or magenta for green objects",
             "choice", KEY_COLORS[0], choices=KEY_COLORS),
    Argument("seed", "_Seed", "-1: a new random seed each run", "int", -1, -1, SEED_MAX),
    Argument("model", "_Model (optional)", "A model of the server by name (the dialog lists them); empty: the "
             "server's default", "string", ""),
    Argument("style", "St_yle (optional)", "A style of the server by name: its model, LoRAs, sampler and steps, for "
             "the fields left empty here", "string", ""),
    Argument("loras", "_LoRAs (optional)", "LoRAs of the server's --lora-dir: NAME or NAME:SCALE, separated by "
             "commas (e.g. 'watercolor:0.8, ink')", "string", ""),
    Argument("sampler", "Sample_r (optional)", "e.g. euler, dpmpp_2m; empty: the style's, else the model's",
             "string", ""),
    Argument("steps", "S_teps", "Denoising steps per phase; 0: the style's, else the model's", "int", 0, 0, 200),
    Argument("width", "_Width", "0: the image's width, rounded to a multiple of 8", "int", 0, 0, MAX_SIZE),
    Argument("height", "_Height", "0: the image's height, rounded to a multiple of 8", "int", 0, 0, MAX_SIZE),
    Argument("use-selection", "_Place the object in the selection", "The selection's bounds become the "
             "Foreground's box", "boolean", True),
    Argument("server-url", "Server _URL", "Where taue-server listens", "string", DEFAULT_URL),
    Argument("token", "T_oken", "Only for a server started with --token", "string", ""),
)

# New Background: the scene's prompts and seed; the objects are the selected result's, on the server that made it
BACKGROUND_SERVER = Argument("server-url", "Server _URL", "Empty: the server that made the selected result",
                             "string", "")
BACKGROUND_ARGUMENTS = tuple(BACKGROUND_SERVER if a.name == "server-url" else a for a in ARGUMENTS if a.name in (
    "background-prompt", "composite-prompt", "negative-prompt", "seed", "server-url", "token"))


def background_server(values: dict, record: dict) -> str:
    """Where New Background sends its job: the Server URL given, else the server that made the result (kept with
    its job id), else the default."""
    return (values.get("server-url") or "").strip() or record.get("server") or DEFAULT_URL

def offer_text(url: str, token: str, timeout: float = 3.0) -> str:
    """What the server at `url` offers (models, styles, LoRAs, samplers), for the dialog; or why it cannot say."""
    try:
        client = Client(url or DEFAULT_URL, token, timeout=timeout)
        return "This server offers\n" + describe_offer(server_offer(client.health(), client.styles()))
    except TAUEError as error:
        return f"The server's models, styles and LoRAs are listed here when it answers. {error.message}"
    except Exception as error:  # noqa: BLE001 - a label: the dialog must open whatever the saved URL is
        return f"The server's models, styles and LoRAs are listed here when it answers ({type(error).__name__})."


def choice_from(values: dict) -> Choice:
    """The Model, Style, LoRAs and Sampler fields as the choice sent with the job."""
    return Choice(model=values.get("model") or "", style=values.get("style") or "",
                  loras=parse_loras(values.get("loras") or ""), scheduler=values.get("sampler") or "")


def parse_objects(text: str) -> list:
    """The 'More objects' lines as the request's objects ({prompt, layout}); blank lines are skipped."""
    objects = []
    for number, line in enumerate((text or "").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            objects.append(parse_object(line))
        except ValueError as error:
            raise TAUEError("settings", f"More objects, line {number} ({line!r}): {error}", "objects") from None
    return objects


def _seed(values: dict, seed: int | None) -> int | None:
    """The seed argument, or `seed` when it is -1 (None: taue_client draws one)."""
    chosen = values.get("seed", -1)
    return seed if chosen is None or chosen < 0 else chosen


def request_from(values: dict, image_size: tuple, selection: tuple | None, seed: int | None = None) -> dict:
    """The POST /jobs body from the procedure's values.

    image_size: the image's (width, height), the default generation size (rounded); selection: the selection's
    bounds (x, y, w, h) or None, the Foreground's box; seed: used when values['seed'] is -1 (None: a new random one).
    """
    width, height = values.get("width") or 0, values.get("height") or 0
    if bool(width) != bool(height):
        raise TAUEError("settings", "Give both width and height, or 0 for both to use the image's size.", "size")
    return editor_request(values.get("foreground-prompt", ""), values.get("background-prompt", ""),
                          image_size=image_size, size=(width, height) if width else None,
                          selection=selection if values.get("use-selection", True) else None,
                          seed=_seed(values, seed), objects=parse_objects(values.get("objects", "")),
                          key_color=values.get("key-color") or None,
                          composite=values.get("composite-prompt", ""), negative=values.get("negative-prompt", ""),
                          steps=values.get("steps"), size_hint="; 0 uses the image's size",
                          choice=choice_from(values))


def background_request_from(values: dict, seed: int | None = None) -> dict:
    """The POST /jobs/<id>/backgrounds body (one new background) from the New Background procedure's values."""
    return new_background_request(values.get("background-prompt", ""), seed=_seed(values, seed),
                                  composite=values.get("composite-prompt", ""),
                                  negative=values.get("negative-prompt", ""))
