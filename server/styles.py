"""Styles: named presets of a model, its LoRAs and what a model card gives (sampler, timestep spacing, steps,
guidance per phase, crop ratio), chosen per job as in krita-ai-diffusion. Two are built in; more are JSON files in
<data_dir>/styles, one style per file, named after it. A job's `style` fills the fields the job does not send.

A style file holds the request's own fields, e.g. `{"description": "...", "model": "photo", "loras": [{"name":
"watercolor", "scale": 0.8}], "steps": 30, "scheduler": "dpmpp_2m", "guidance_composite": 4.5}`. Their types and
the sampling fields' ranges are checked when the folder is read (a bad file is skipped with one log line); whether
the model and LoRAs it names are there is checked when a job uses it, as for fields the job sends.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taue_engine.config import MODEL_CARD_FIELDS, TAUEConfig

from .job_requests import NOT_ADVANCED as REQUEST_NAMES
from .model_choice import path_like

log = logging.getLogger("taue.server")
CONFIG_NAMES = {value: key for key, value in REQUEST_NAMES.items()}
SAMPLING_FIELDS = tuple(REQUEST_NAMES.get(name, name) for name in MODEL_CARD_FIELDS)
STYLE_FIELDS = ("model", "loras", *SAMPLING_FIELDS)
"""What a style may set: the job's model, its LoRAs and its model card's sampling."""
MAX_NAME = 64
_told: set[tuple[str, float]] = set()  # (file, mtime) already logged as skipped


@dataclass(frozen=True)
class Style:
    name: str
    description: str
    fields: dict[str, Any] = field(default_factory=dict)
    """A subset of STYLE_FIELDS, as a request sends them."""
    builtin: bool = False

    def view(self) -> dict:
        """What GET /styles shows of it."""
        return {"name": self.name, "description": self.description, "builtin": self.builtin, **self.fields}


def _paper() -> Style:
    paper = TAUEConfig()  # its sampling defaults are the paper's (marked PAPER there)
    fields = {REQUEST_NAMES.get(name, name): getattr(paper, name) for name in MODEL_CARD_FIELDS}
    return Style("paper", f"The paper's settings on the server's default model: {fields['steps']} "
                          f"{fields['scheduler']} steps, guidance {fields['guidance_foreground']:g} / "
                          f"{fields['guidance_composite']:g} / {fields['guidance_background']:g}, the cut at "
                          f"{fields['crop_ratio']:g} of the way", fields, builtin=True)


FEW_STEP = Style("few-step", "For few-step weights (SDXL-Lightning, Hyper-SDXL, SDXL-Turbo, or a few-step LoRA): 8 "
                             "steps at guidance 1 from the last timestep (trailing). It needs such weights: a full "
                             "SDXL checkpoint gives a blurred, unfinished picture at 8 steps",
                 {"steps": 8, "scheduler": "euler", "timestep_spacing": "trailing", "guidance_foreground": 1.0,
                  "guidance_composite": 1.0, "guidance_background": 1.0}, builtin=True)


def built_in() -> dict[str, Style]:
    return {style.name: style for style in (_paper(), FEW_STEP)}


def load_styles(folder: Path | None) -> dict[str, Style]:
    """The built-in styles, then those of `folder` (read each time: a file added while the server runs counts), in
    name order; a file that is not a valid style is skipped with one log line."""
    styles = built_in()
    if folder is None or not folder.is_dir():
        return styles
    for path in sorted(folder.glob("*.json")):
        try:
            style = read_style(path, styles)
        except ValueError as error:
            stamp = (str(path), path.stat().st_mtime if path.exists() else 0.0)
            if stamp not in _told:
                _told.add(stamp)
                log.warning("styles: skipped %s: %s", path, error)
            continue
        styles[style.name] = style
    return styles


def read_style(path: Path, known: dict[str, Style]) -> Style:
    """The style in `path` (named after the file), or ValueError saying what is wrong with it."""
    name = path.stem
    if name in known:
        raise ValueError(f"the name {name!r} is taken (a built-in style): rename the file")
    if len(name) > MAX_NAME or name.startswith(".") or any(c in name for c in "/\\\x00"):
        raise ValueError(f"name the file after the style, at most {MAX_NAME} characters")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not a JSON file ({error})") from None
    if not isinstance(data, dict):
        raise ValueError("a style is a JSON object {description, model, loras, steps, scheduler, ...}")
    unknown = sorted(set(data) - {"description", *STYLE_FIELDS})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}: a style takes description, {', '.join(STYLE_FIELDS)}")
    description = data.pop("description", "")
    if not isinstance(description, str):
        raise ValueError("description must be a string")
    model = data.get("model")
    if model is not None and (not isinstance(model, str) or not model or path_like(model)):
        raise ValueError("model must be a model's name (as GET /health lists them), not a path")
    loras = data.get("loras")
    if loras is not None and not (isinstance(loras, list) and all(
            isinstance(lora, dict) and isinstance(lora.get("name"), str) and set(lora) <= {"name", "scale"}
            and isinstance(lora.get("scale", 1.0), (int, float)) and not isinstance(lora.get("scale"), bool)
            for lora in loras)):
        raise ValueError("loras must be a list of {name, scale}")
    sampling = {name: data[name] for name in SAMPLING_FIELDS if name in data}
    try:
        TAUEConfig(**{CONFIG_NAMES.get(name, name): value for name, value in sampling.items()})
    except (TypeError, ValueError) as error:
        raise ValueError(str(error)) from None
    return Style(name, description, data)
