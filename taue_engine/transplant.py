"""What is kept of a job's objects, so that they can be put into new scenes without regenerating them.

A job grows each object in its own phase-1 run; what the composite and background phases need of it is its
seedling (the latent at t_crop), its mask in the latent, its prompt and its RGBA layer. A `Transplant` holds those
for all objects of a job, is saved next to the result, and is what background replacement and re-layout start
from. An object can also come from an RGBA image the user brings: its seedling is then encoded by the pipeline
(VAE, plus the scheduler's noise at t_crop) when a scene is composed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .config import LayoutBox
from .objects import MAX_OBJECTS, as_layout

TRANSPLANT_FILES = ("transplant.json", "transplant.safetensors")
PER_OBJECT = ("prompts", "layouts", "layers", "seedlings", "masks", "cleans", "fine_masks", "sources")
"""Transplant's fields that hold one entry per object, in the objects' order."""


def opaque_mask(layer: Image.Image) -> torch.Tensor:
    """An RGBA layer's object at image resolution: 1 where its alpha is over half; [H, W] float32."""
    alpha = torch.from_numpy(np.asarray(layer.convert("RGBA"), dtype=np.float32)[..., 3] / 255.0)
    return (alpha > 0.5).float()


def alpha_mask(layer: Image.Image, latent_size: tuple[int, int]) -> torch.Tensor:
    """An RGBA layer's alpha as a 0/1 latent mask: area-averaged to the latent grid, object where over half."""
    alpha = torch.from_numpy(np.asarray(layer.convert("RGBA"), dtype=np.float32)[..., 3] / 255.0)
    pooled = torch.nn.functional.adaptive_avg_pool2d(alpha[None, None], latent_size)[0, 0]
    return (pooled > 0.5).float()


def over_key(layer: Image.Image, key_rgb: tuple[float, float, float]) -> Image.Image:
    """The RGBA layer over a solid key-coloured backdrop: what phase 1 would have painted for it."""
    backdrop = Image.new("RGBA", layer.size, tuple(round(255 * v) for v in key_rgb) + (255,))
    return Image.alpha_composite(backdrop, layer.convert("RGBA")).convert("RGB")


def move_layer(layer: Image.Image, box: LayoutBox) -> Image.Image:
    """Re-layout: the layer's object (its alpha's bounding box) scaled, aspect kept, to fit `box` and centred in
    it, on a transparent layer of the same size."""
    layer = layer.convert("RGBA")
    bounds = layer.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    if bounds is None:
        raise ValueError("the object layer is fully transparent: nothing to move")
    obj = layer.crop(bounds)
    width, height = layer.size
    scale = min(box.w * width / obj.width, box.h * height / obj.height)
    size = (max(1, round(obj.width * scale)), max(1, round(obj.height * scale)))
    obj = obj.resize(size, Image.Resampling.LANCZOS)
    out = Image.new("RGBA", layer.size, (0, 0, 0, 0))
    out.alpha_composite(obj, (round(box.cx * width - size[0] / 2), round(box.cy * height - size[1] / 2)))
    return out



@dataclass
class Transplant:
    """What composing a scene needs of its objects. `seedlings[k]` is None for an object that has only its
    layer (brought by the user, or moved): the pipeline encodes one from the layer. `cleans[k]` is the seedling's
    clean estimate (what the high-pass sharpens), `masks[k]` the latent cells held, `fine_masks[k]` the object at
    image resolution (None where unknown: the held cells stand in)."""

    prompts: list[str]
    layouts: list[LayoutBox | None]
    layers: list[Image.Image]  # RGBA, one per object, the image size
    seedlings: list[torch.Tensor | None]  # [1, C, h, w] at t_crop, float32 on the CPU
    masks: list[torch.Tensor]  # [h, w] 0/1 in the latent
    width: int
    height: int
    num_inference_steps: int
    crop_step: int
    model: str = "unknown"
    key_color: str = "green"
    sources: list[str] = field(default_factory=list)  # per object: 'generated', 'layer', 'moved'
    cleans: list[torch.Tensor | None] = field(default_factory=list)  # [1, C, h, w] float32 on the CPU, or None
    fine_masks: list[torch.Tensor | None] = field(default_factory=list)  # [H, W] 0/1 at the image size, or None
    scheduler: str = "euler"  # the sampler, and its spacing, the seedlings were cut with (their noise space)
    timestep_spacing: str = "model"

    def __post_init__(self) -> None:
        count = len(self.prompts)
        if not 1 <= count <= MAX_OBJECTS:
            raise ValueError(f"a scene holds 1..{MAX_OBJECTS} objects (got {count})")
        self.cleans = list(self.cleans) or [None] * count
        self.fine_masks = list(self.fine_masks) or [None] * count
        for name in PER_OBJECT:
            if name not in ("prompts", "sources") and len(getattr(self, name)) != count:
                raise ValueError(f"{name} must hold one entry per object ({count})")
        if not self.sources:
            self.sources = ["generated" if s is not None else "layer" for s in self.seedlings]
        for n, layer in enumerate(self.layers, 1):
            if layer.size != (self.width, self.height):
                raise ValueError(f"object {n}'s layer is {layer.width}x{layer.height}; the scene is "
                                 f"{self.width}x{self.height}: scale the layer to the scene's size")

    def check_composable(self, config, vae_scale_factor: int) -> None:
        """ValueError when these objects cannot go into a scene made with `config` (a TAUEConfig) on a model whose
        VAE has this scale factor: they were cut at another step, by a model with another latent, or with a sampler
        whose noise their seedlings carry."""
        if (config.num_inference_steps, config.crop_step) != (self.num_inference_steps, self.crop_step):
            raise ValueError(
                f"the objects were cut at step {self.crop_step} of {self.num_inference_steps}: use "
                f"num_inference_steps={self.num_inference_steps} and a crop_ratio that cuts there (got step "
                f"{config.crop_step} of {config.num_inference_steps})")
        latent_size = (self.height // vae_scale_factor, self.width // vae_scale_factor)
        for n, mask in enumerate(self.masks, 1):
            if tuple(mask.shape) != latent_size:
                raise ValueError(f"object {n}'s mask is {tuple(mask.shape)} in the latent; this model's latent of a "
                                 f"{self.width}x{self.height} image is {latent_size}: was it made by another model?")
        if any(s is not None for s in self.seedlings) and (self.scheduler, self.timestep_spacing) != (
                config.scheduler, config.timestep_spacing):
            raise ValueError(f"the objects' seedlings were cut with scheduler {self.scheduler!r} (timestep "
                             f"spacing {self.timestep_spacing!r}), whose noise they carry: use scheduler="
                             f"{self.scheduler!r} and timestep_spacing={self.timestep_spacing!r}")

    def object_masks(self) -> list[torch.Tensor]:
        """Each object's mask at the image size: its fine mask, or its held latent cells resized."""
        from .masks import resize_mask

        return [fine if fine is not None else (resize_mask(mask.float(), self.height, self.width) > 0.5).float()
                for fine, mask in zip(self.fine_masks, self.masks)]

    @classmethod
    def from_layers(cls, layers: list[Image.Image], prompts: list[str], *, latent_size: tuple[int, int],
                    num_inference_steps: int, crop_step: int, model: str = "unknown",
                    key_color: str = "green") -> Transplant:
        """Objects the user brings as RGBA layers (all one size): masks from their alpha, seedlings encoded later."""
        if not layers:
            raise ValueError("bring at least one RGBA object layer")
        layers = [layer.convert("RGBA") for layer in layers]
        width, height = layers[0].size
        masks = [alpha_mask(layer, latent_size) for layer in layers]
        for n, mask in enumerate(masks, 1):
            if not mask.any():
                raise ValueError(f"object layer {n} is (nearly) fully transparent: its alpha must cover the object")
        return cls(list(prompts), [None] * len(layers), layers, [None] * len(layers), masks, width, height,
                   num_inference_steps, crop_step, model, key_color, ["layer"] * len(layers),
                   fine_masks=[opaque_mask(layer) for layer in layers])

    def objects_at(self, indices: list[int]) -> Transplant:
        """The same scene with only the objects at `indices` (0-based, in that order, repeats allowed): an
        experiment composing kept objects one by one, or one object twice (lab/benchmarks/held_objects.py)."""
        bad = [i for i in indices if not 0 <= i < len(self.prompts)]
        if not indices or bad:
            raise ValueError(f"choose objects among 0..{len(self.prompts) - 1} (got {list(indices)})")
        chosen: dict[str, Any] = {name: [getattr(self, name)[i] for i in indices] for name in PER_OBJECT}
        return replace(self, **chosen)

    def moved(self, index: int, box: LayoutBox, latent_size: tuple[int, int]) -> Transplant:
        """The same objects with object `index` (0-based) moved and scaled into `box`: its layer is resampled in
        pixels and its seedling is encoded again from it when the scene is composed."""
        if not 0 <= index < len(self.prompts):
            raise ValueError(f"there is no object {index + 1} (the scene has {len(self.prompts)})")
        layer = move_layer(self.layers[index], box)
        mask = alpha_mask(layer, latent_size)
        if not mask.any():
            raise ValueError(f"the box {box.as_dict()} makes object {index + 1} smaller than one latent cell: "
                             "choose a larger box")

        def swap(values, value):
            return [value if k == index else v for k, v in enumerate(values)]

        return replace(self, layouts=swap(self.layouts, box), layers=swap(self.layers, layer),
                       seedlings=swap(self.seedlings, None), masks=swap(self.masks, mask),
                       sources=swap(self.sources, "moved"), cleans=swap(self.cleans, None),
                       fine_masks=swap(self.fine_masks, opaque_mask(layer)))

    # ------------------------------------------------------------------ files
    def save(self, directory: str | Path, layers: bool = True) -> list[Path]:
        """transplant.json, transplant.safetensors and (unless the caller wrote them) object-<n>.png in `directory`."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"mask_{k}": m.float().contiguous() for k, m in enumerate(self.masks)}
        tensors.update({f"seedling_{k}": s.float().contiguous() for k, s in enumerate(self.seedlings) if s is not None})
        tensors.update({f"clean_{k}": c.float().contiguous() for k, c in enumerate(self.cleans) if c is not None})
        tensors.update({f"fine_mask_{k}": (m > 0.5).to(torch.uint8).contiguous()
                        for k, m in enumerate(self.fine_masks) if m is not None})
        save_file(tensors, str(directory / "transplant.safetensors"))
        written = [directory / "transplant.safetensors"]
        for n, layer in enumerate(self.layers, 1):
            path = directory / f"object-{n}.png"
            if layers:
                layer.save(path, format="PNG")
            written.append(path)
        record = {"prompts": self.prompts, "layouts": [b.as_dict() if b else None for b in self.layouts],
                  "width": self.width, "height": self.height, "num_inference_steps": self.num_inference_steps,
                  "crop_step": self.crop_step, "model": self.model, "key_color": self.key_color,
                  "sources": self.sources, "scheduler": self.scheduler, "timestep_spacing": self.timestep_spacing}
        (directory / "transplant.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
        written.append(directory / "transplant.json")
        return written

    @classmethod
    def load(cls, directory: str | Path) -> Transplant:
        """Read what `save` wrote (a job's result folder)."""
        from safetensors.torch import load_file

        directory = Path(directory)
        missing = [name for name in TRANSPLANT_FILES if not (directory / name).exists()]
        if missing:
            raise ValueError(f"{directory} holds no kept objects (missing {', '.join(missing)}): only results made "
                             "by this version can take new backgrounds")
        record = json.loads((directory / "transplant.json").read_text(encoding="utf-8"))
        tensors = load_file(str(directory / "transplant.safetensors"))
        count = len(record["prompts"])
        layers = []
        for n in range(1, count + 1):
            with Image.open(directory / f"object-{n}.png") as image:
                layers.append(image.convert("RGBA"))
        return cls(record["prompts"], [as_layout(b) for b in record["layouts"]], layers,
                   [tensors.get(f"seedling_{k}") for k in range(count)], [tensors[f"mask_{k}"] for k in range(count)],
                   record["width"], record["height"], record["num_inference_steps"], record["crop_step"],
                   record.get("model", "unknown"), record.get("key_color", "green"), record.get("sources", []),
                   cleans=[tensors.get(f"clean_{k}") for k in range(count)],
                   fine_masks=[tensors[f"fine_mask_{k}"].float() if f"fine_mask_{k}" in tensors else None
                               for k in range(count)],
                   scheduler=record.get("scheduler", "euler"), timestep_spacing=record.get("timestep_spacing", "model"))
