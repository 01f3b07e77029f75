"""What a server offers to choose (models, styles, LoRAs, samplers: its /health and /styles) and what the artist
chose, as a plug-in remembers it and sends it with every job.

An empty choice sends nothing: the server's default model, no style, no LoRA, the style's (else the model's)
sampler. (Steps are a form field of their own: 0 leaves them to the style, else the model.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .api import TAUEError

LORA_SCALE = (-4.0, 4.0)  # what the server takes (1: as trained, 0: no effect)


@dataclass
class Offer:
    """What one server offers, read from its /health and /styles."""

    models: list = field(default_factory=list)  # [{name, loaded, default, loading}], the default first
    styles: list = field(default_factory=list)  # [{name, description, problem, ...}]
    loras: list = field(default_factory=list)  # names
    schedulers: list = field(default_factory=list)
    scheduler: str = ""  # the default model's own
    loading: str | None = None  # the model the server is switching to now

    @property
    def default_model(self) -> str:
        return next((m["name"] for m in self.models if m.get("default")), "")


def server_offer(health: dict, styles: dict | None = None) -> Offer:
    """The offer of a server from its /health and /styles answers (styles None: a server without styles)."""
    loading = health.get("loading_model")
    models = [{"name": m.get("name", "?"), "loaded": bool(m.get("loaded")), "default": bool(m.get("default")),
               "loading": m.get("name") == loading} for m in health.get("models") or []]
    return Offer(models=models, styles=list((styles or {}).get("styles") or []),
                 loras=[str(name) for name in health.get("loras") or []],
                 schedulers=[str(name) for name in health.get("schedulers") or []],
                 scheduler=str(health.get("scheduler") or ""), loading=loading)


def model_label(model: dict) -> str:
    """A model as a list shows it: 'photo', 'anime (loading...)', 'turbo (default)'."""
    notes = []
    if model.get("loading"):
        notes.append("loading\u2026")
    if model.get("default"):
        notes.append("default")
    return f"{model['name']} ({', '.join(notes)})" if notes else model["name"]


def style_label(style: dict) -> str:
    return f"{style['name']} (not here)" if style.get("problem") else style["name"]


def style_tooltip(style: dict) -> str:
    """A style's description, what it sets, and why it cannot run here (if so)."""
    sets = [f"{key} {value}" for key, value in style.items()
            if key not in ("name", "description", "builtin", "problem", "loras")]
    sets += [f"LoRA {lora.get('name')} {lora.get('scale', 1.0):g}" for lora in style.get("loras") or []]
    lines = [style.get("description") or style["name"], "Sets: " + (", ".join(sets) or "nothing")]
    if style.get("problem"):
        lines.append(f"Cannot run on this server: {style['problem']}")
    return "\n".join(lines)


def describe_offer(offer: Offer) -> str:
    """The offer in a few lines, for a dialog that cannot list it in menus (GIMP's)."""
    models = ", ".join(model_label(m) for m in offer.models) or "the one it was started with"
    styles = ", ".join(style_label(s) for s in offer.styles) or "none"
    return (f"Models: {models}\nStyles: {styles}\nLoRAs: {', '.join(offer.loras) or 'none (start the server with '}"
            + ("" if offer.loras else "--lora-dir)")
            + f"\nSamplers: {', '.join(offer.schedulers)} (default {offer.scheduler or '?'})")


@dataclass
class Choice:
    """The model, style, LoRAs and sampler an artist chose; empty ones are left to the server."""

    model: str = ""
    style: str = ""
    loras: list = field(default_factory=list)  # [{"name", "scale"}]
    scheduler: str = ""

    def request_fields(self) -> dict:
        """The fields of a job request this choice sets."""
        fields: dict = {}
        if self.model.strip():
            fields["model"] = self.model.strip()
        if self.style.strip():
            fields["style"] = self.style.strip()
        if self.loras:
            fields["loras"] = [{"name": lora["name"], "scale": float(lora.get("scale", 1.0))} for lora in self.loras]
        if self.scheduler.strip():
            fields["scheduler"] = self.scheduler.strip()
        return fields

    def to_setting(self) -> str:
        """As a plug-in keeps it in the editor's settings (one JSON string)."""
        return json.dumps({"model": self.model, "style": self.style, "loras": self.loras,
                           "scheduler": self.scheduler})

    @classmethod
    def from_setting(cls, text: str) -> Choice:
        """A choice kept by `to_setting`; anything unreadable is the empty choice (nothing is lost but the choice)."""
        try:
            data = json.loads(text or "{}")
            loras = [{"name": str(lora["name"]), "scale": float(lora.get("scale", 1.0))}
                     for lora in data.get("loras") or [] if isinstance(lora, dict) and lora.get("name")]
            return cls(model=str(data.get("model") or ""), style=str(data.get("style") or ""), loras=loras,
                       scheduler=str(data.get("scheduler") or ""))
        except (ValueError, TypeError, AttributeError):
            return cls()


def parse_loras(text: str) -> list:
    """'watercolor:0.8, ink' (commas or new lines; scale 1 when left out) as a request's loras [{name, scale}]."""
    loras: list[dict] = []
    for part in (text or "").replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        name, colon, scale = part.rpartition(":")
        if not colon:
            name, scale = part, "1"
        try:
            value = float(scale)
        except ValueError:
            raise TAUEError("settings", f"LoRAs: {part!r} is not NAME or NAME:SCALE (e.g. 'watercolor:0.8').",
                            "loras") from None
        if not name.strip() or not LORA_SCALE[0] <= value <= LORA_SCALE[1]:
            raise TAUEError("settings", f"LoRAs: {part!r}: give a LoRA's name and a scale in {LORA_SCALE[0]:g}.."
                                        f"{LORA_SCALE[1]:g} (1: as trained).", "loras")
        if any(lora["name"] == name.strip() for lora in loras):
            raise TAUEError("settings", f"LoRAs: {name.strip()!r} is listed twice: give it once.", "loras")
        loras.append({"name": name.strip(), "scale": value})
    return loras


def format_loras(loras: list) -> str:
    """[{name, scale}] as 'watercolor:0.8, ink:1' (what parse_loras reads)."""
    return ", ".join(f"{lora['name']}:{float(lora.get('scale', 1.0)):g}" for lora in loras)
