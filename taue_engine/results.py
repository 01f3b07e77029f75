"""What a job gives back, and what it reports while it runs.

`TAUEResult` holds the layers of one scene (each object's `ResultObject`, the background, the composite), their
metadata and the kept objects; `save` writes them as a designer opens them: PNGs, taue.json, a layered PSD and an
OpenRaster file. `TAUEProgress` is one tick of a running job.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from . import __version__
from .config import LayoutBox, TAUEConfig
from .masks import front_to_back, resize_mask
from .transplant import Transplant


class TAUECancelled(RuntimeError):
    """Raised out of the pipeline when a progress callback asks to stop."""


@dataclass(frozen=True)
class TAUEProgress:
    """One tick of progress: the phase, the step within it, and the whole job's step and total. With several
    objects, `object` numbers the object (from 1) whose foreground phase is running."""

    phase: str
    step: int
    phase_steps: int
    overall_step: int
    overall_total: int
    object: int | None = None
    preview: Callable[[], Image.Image] | None = field(default=None, compare=False, repr=False)
    """The running phase's picture at this step (previews.preview_size of the job's size): the sampler's clean
    estimate through the model's latent-to-RGB map. Made only when called; call it within the callback."""

    @property
    def fraction(self) -> float:
        return self.overall_step / self.overall_total


ProgressCallback = Callable[[TAUEProgress], Any]


@dataclass
class ResultObject:
    """One object of a result: its RGBA layer, what phase 1 painted (the object on the key colour), and its mask
    (the part of it that is visible in the scene: later objects cover earlier ones)."""

    prompt: str
    layout: LayoutBox | None
    layer: Image.Image
    on_key: Image.Image
    mask: Image.Image
    source: str = "generated"  # or 'layer' (brought by the user), 'moved' (re-laid out)


@dataclass
class TAUEResult:
    """The layers of one job, their metadata, and the method's intermediate tensors (for tests and re-use).

    `foreground` is all objects flattened (one object: its layer) and `mask` their union, as version 1 had them;
    `objects` holds each object's own layer and mask; `transplant` is what new backgrounds start from."""

    foreground: Image.Image
    foreground_on_green: Image.Image
    background: Image.Image
    composite: Image.Image
    mask: Image.Image
    metadata: dict[str, Any]
    latents: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    objects: list[ResultObject] = field(default_factory=list)
    transplant: Transplant | None = field(default=None, repr=False)

    LAYER_FILES = {
        "foreground": "foreground.png",
        "foreground_on_green": "foreground_on_green.png",
        "background": "background.png",
        "composite": "composite.png",
        "mask": "mask.png",
    }

    def images(self) -> dict[str, Image.Image]:
        """Every layer by its key: the version-1 layers, object-<n> and mask-<n> (n from 1, request order)."""
        images = {name: getattr(self, name) for name in self.LAYER_FILES}
        for n, obj in enumerate(self.objects, 1):
            images[f"object-{n}"] = obj.layer
            images[f"mask-{n}"] = obj.mask
        return images

    def save(self, directory: str | Path, psd: bool = True, ora: bool = True) -> dict[str, Path]:
        """Write the PNG layers (foreground, foreground_on_green, background, composite, mask, object-<n>,
        mask-<n>), taue.json, the kept objects (transplant.*) and (by default) the layered result.psd and
        result.ora into `directory`; returns the paths written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = {}
        images = self.images()
        for name, image in images.items():
            path = directory / self.LAYER_FILES.get(name, f"{name}.png")
            image.save(path, format="PNG")
            written[name] = path
        if self.transplant is not None:
            self.transplant.save(directory, layers=False)  # the object layers are written above
            written["transplant"] = directory / "transplant.safetensors"
        path = directory / "taue.json"
        path.write_text(json.dumps(self.metadata, indent=2, sort_keys=True), encoding="utf-8")
        written["metadata"] = path
        if psd:
            from .psd import write_psd

            written["psd"] = write_psd(directory / "result.psd", images, self.metadata)
        if ora:
            from .ora import write_ora

            written["ora"] = write_ora(directory / "result.ora", images, self.metadata)
        return written


def object_results(kept: Transplant, on_key: list[Image.Image]) -> tuple[list[ResultObject], Image.Image,
                                                                         Image.Image]:
    """Each object's result (its visible part as its mask: later objects in front), the objects' layers flattened
    and the mask of their union, from the kept objects and what phase 1 painted of each."""
    size = (kept.height, kept.width)
    weights, remainder = front_to_back(torch.stack([m.float() for m in kept.object_masks()]))
    as_image = lambda m: Image.fromarray(  # noqa: E731
        (resize_mask(m, *size).clamp(0, 1) * 255).round().to(torch.uint8).numpy(), mode="L")
    objects = [ResultObject(p, b, layer, k, as_image(w), src) for p, b, layer, k, w, src
               in zip(kept.prompts, kept.layouts, kept.layers, on_key, weights, kept.sources)]
    flattened = kept.layers[0]
    for layer in kept.layers[1:]:
        flattened = Image.alpha_composite(flattened, layer)
    return objects, flattened, as_image(1 - remainder)


def result_metadata(kept: Transplant, prompts: dict[str, str | None], seed: int, config: TAUEConfig, model: str,
                    loras: list[dict], device: str, dtype, timings: dict[str, float],
                    vae: str | None = None, key_latents: dict[str, list[float]] | None = None) -> dict[str, Any]:
    """taue.json: what made the result (prompts as {foreground, background, composite, negative}, seed, settings,
    model, its replacement VAE if any, the key latents it measured, LoRAs, device) and its objects, enough to make it
    again."""
    first = kept.layouts[0]
    return {
        "taue_version": __version__,
        "prompts": prompts,
        "objects": [{"prompt": p, "layout": b.as_dict() if b else None, "source": src}
                    for p, b, src in zip(kept.prompts, kept.layouts, kept.sources)],
        "layout": first.as_dict() if first else None,
        "seed": seed,
        "width": kept.width,
        "height": kept.height,
        "config": config.to_dict(),
        "crop_step": config.crop_step,
        "model": model,
        "vae": vae,
        "key_latents": key_latents,
        "scheduler": config.scheduler,
        "loras": [dict(entry) for entry in loras],
        "device": device,
        "dtype": str(dtype).replace("torch.", ""),
        "mask_fraction": float(1 - front_to_back(torch.stack(kept.object_masks()))[1].mean()),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "warnings": [],  # what phase 1 found that the user should hear about (mask_checks), where it ran
    }
