"""Running one job on a pipeline: what the single-process server's worker thread and a queue worker (taue-worker)
both do, so that a job gives the same files wherever it runs.

A job is its request and settings (job.json), the kept objects a new background starts from (its `kept/` folder)
and the LoRA files it names; it ends as a complete result folder, renamed into place only when whole.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from taue_engine.config import LayoutBox, TAUEConfig

from .job_requests import engine_arguments

BACKGROUND = "background"  # the kind of a job made by POST /jobs/<id>/backgrounds or POST /backgrounds


class Ran(NamedTuple):
    """What the job record keeps of a job that succeeded (its state.json, so a restart keeps them too): the timings,
    and what phase 1 found that the user should hear about (its taue.json's `warnings`), so that the API never reads
    the result's files to show them."""

    timings: dict
    warnings: list[str]


def run_job(pipe, request: dict, settings: dict, kept: Path | None, result: Path, loras: dict[str, Path],
            progress: Callable, lora_dir: Path | None = None) -> Ran:
    """Run the job and write its result folder at `result` (via a partial folder beside it); returns its timings and
    warnings.
    `loras`: the LoRA files the server may use, by name. Raises TAUECancelled when `progress` returns False, and
    the engine's errors as they are."""
    started = time.perf_counter()
    config = TAUEConfig.from_dict(settings)
    use_loras(pipe, request.get("loras") or [], loras, lora_dir)
    if request.get("kind") == BACKGROUND:
        made = new_background(pipe, request, config, kept, progress)
    else:
        made = pipe(**engine_arguments(request, config), progress_callback=progress)
    partial = result.with_name(f".{result.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    made.save(partial)
    os.replace(partial, result)
    return Ran({**made.metadata.get("timings_s", {}), "run_s": round(time.perf_counter() - started, 4)},
               [str(warning) for warning in made.metadata.get("warnings") or []])


class MissingLora(ValueError):
    """A job names a LoRA its runner's --lora-dir lacks (`name`); a queue worker says so in its own words."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


def use_loras(pipe, wanted: list[dict], files: dict[str, Path], folder: Path | None = None) -> None:
    """Put exactly the job's LoRAs in place (none: the bare model), from the server's --lora-dir."""
    from taue_engine.loras import LoraSpec

    if not hasattr(pipe, "load_loras"):
        if wanted:
            raise ValueError("this engine takes no LoRAs")
        return
    gone = [entry["name"] for entry in wanted if entry["name"] not in files]
    if gone:
        raise MissingLora(gone[0], f"LoRA {gone[0]!r} is no longer in {folder or 'the --lora-dir folder'}: put it "
                                   "back or ask for another")
    pipe.load_loras([LoraSpec(files[entry["name"]], entry["scale"], entry["name"]) for entry in wanted])


def new_background(pipe, request: dict, config: TAUEConfig, kept: Path, progress):
    """A new scene for the kept objects (the parent job's, or layers the user brought), moved where the request
    says."""
    from PIL import Image

    from taue_engine.transplant import Transplant

    if (kept / "transplant.json").exists():
        objects = Transplant.load(kept)
    else:  # layers the user brought: their seedlings are encoded by the pipeline
        layers = []
        for n in range(1, len(request["objects"]) + 1):
            with Image.open(kept / f"object-{n}.png") as image:
                layers.append(image.convert("RGBA"))
        factor = pipe.vae_scale_factor
        objects = Transplant.from_layers(layers, [o["prompt"] for o in request["objects"]],
                                         latent_size=(request["height"] // factor, request["width"] // factor),
                                         num_inference_steps=config.num_inference_steps, crop_step=config.crop_step,
                                         model=getattr(pipe, "model_name", "unknown"), key_color=config.key_color)
    latent_size = tuple(objects.masks[0].shape)
    for n in request.get("moved", []):
        objects = objects.moved(n - 1, LayoutBox(**request["objects"][n - 1]["layout"]), latent_size)
    return pipe.new_background(objects, request["background_prompt"], composite_prompt=request.get("composite_prompt"),
                               negative_prompt=request.get("negative_prompt"), seed=request["seed"], config=config,
                               progress_callback=progress)


def progress_record(tick, preview: dict | None) -> dict:
    """A job's `progress` as the API shows it, from the engine's tick and the preview it shows (or None)."""
    return {"phase": tick.phase, "object": tick.object, "step": tick.step, "phase_steps": tick.phase_steps,
            "overall_step": tick.overall_step, "overall_total": tick.overall_total,
            "fraction": round(tick.fraction, 4), "preview": preview}


def loading_record(model: str) -> dict:
    """A job's `progress` while the server loads the model it names (--models-dir), in progress_record's shape."""
    return {"phase": "loading", "model": model, "object": None, "step": 0, "phase_steps": 0, "overall_step": 0,
            "overall_total": 0, "fraction": 0.0, "preview": None}


@dataclass
class PreviewPacer:
    """When to make a running job's preview: at each phase's first and last step, and in between at most every
    `seconds` (0: every step; None: never). `maybe(tick)` gives (PNG bytes, what it shows) or None."""

    seconds: float | None
    made_at: float = field(default=-1e9)

    def maybe(self, tick) -> tuple[bytes, dict] | None:
        if self.seconds is None or getattr(tick, "preview", None) is None:
            return None
        clock = time.monotonic()
        if not (tick.step in (1, tick.phase_steps) or clock - self.made_at >= self.seconds):
            return None
        image = tick.preview()
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        self.made_at = clock
        return buffer.getvalue(), {"phase": tick.phase, "object": tick.object, "step": tick.step,
                                   "phase_steps": tick.phase_steps, "width": image.width, "height": image.height}


def describe_failure(error: Exception) -> str:
    """A message a person can act on."""
    name = type(error).__name__
    if "OutOfMemory" in name or "out of memory" in str(error).lower():
        return ("out of GPU memory: ask for a smaller width/height, or start the server with --cpu-offload; "
                "the server is still running")
    if isinstance(error, ValueError):
        return f"the engine refused the request: {error}"
    return f"{name}: {error}"


def free_accelerator_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass
