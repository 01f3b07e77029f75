"""TAUEPipeline: the three phases of TAUE as a short script over diffusers' SDXL pipeline.

Each phase is one call of `StableDiffusionXLPipeline.__call__` (its prompt handling, added time ids, scheduler
loop, guidance and VAE decode), steered by the pieces of the method: the initial latent, attention processors on
the cross-attention layers, and a `callback_on_step_end` that cuts the seedling and holds transplanted regions.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from diffusers import StableDiffusionXLPipeline
from diffusers.utils import logging as diffusers_logging
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from . import __version__
from .attention import (
    AttentionCaptureProcessor,
    AttentionShearingProcessor,
    AttentionState,
    block_of,
    check_installed,
    cross_attention_layers,
    install_processors,
)
from .clean_estimate import clean_estimates
from .config import KEY_COLORS, MAX_SIZE, MIN_SIZE, SIZE_MULTIPLE, LayoutBox, TAUEConfig
from .green import dithered_mask, inject_green, layout_probability
from .keying import foreground_rgba, pixel_key_distance
from .masks import front_to_back, hold_mask, key_distance, object_mask, resize_mask
from .models.loading import (DEFAULT_HUB_MODEL, choose_device_and_dtype, load_components, model_default_config,
                             model_folder)
from .models.vocabulary import model_words, unknown_words, unknown_words_warning
from .loras import LoraSpec, as_spec, file_digest, read_lora, taught_words, unique_names
from .objects import scene_objects
from .previews import LatentToRGB, fit_latent_to_rgb, preview_size
from .schedulers import NoiseLevels, make_scheduler, name_of, prepare_for_hold
from .hold import HeldRegion, highpass
from .transplant import Transplant, over_key

STOP_WORDS = {"a", "an", "the", "of", "on", "in", "with", "and", "at", "by", ",", ".", "!", "?", "-", "'s"}


_LOCKS_GUARD = threading.Lock()


def one_run_at_a_time(method):
    """A diffusers pipeline keeps its run in itself (the scheduler's step index, the attention processors, our
    recording of x0-hat), so two threads running one pipeline corrupt each other's phases: the second waits."""

    @functools.wraps(method)
    def serialized(self, *args, **kwargs):
        with _LOCKS_GUARD:
            lock = self.__dict__.setdefault("_taue_run_lock", threading.RLock())
        with lock:
            return method(self, *args, **kwargs)

    return serialized


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


ProgressCallback = Callable[[TAUEProgress], Any]


class TAUEPipeline(StableDiffusionXLPipeline):
    """Layered generation (foreground RGBA, background, composite) with TAUE on any SDXL checkpoint."""

    model_name: str = "unknown"
    default_config: TAUEConfig = TAUEConfig()
    """The settings used when a call passes no config: the paper's, or a model folder's own `taue_config.json`."""

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_HUB_MODEL,
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        cpu_offload: bool = False,
        vae_tiling: bool = False,
        vae_slicing: bool = False,
        single_file_config: str | None = None,
        **kwargs: Any,
    ) -> "TAUEPipeline":
        """Load `model`: a hub id, a local diffusers folder, a single .safetensors checkpoint, or 'tiny-random'.

        Args:
            device: 'cuda', 'mps' or 'cpu'; default: the best available.
            dtype: default float16 on CUDA and MPS, float32 on the CPU.
            cpu_offload: keep idle sub-models in CPU memory (small GPUs).
            vae_tiling, vae_slicing: decode in tiles / slices (small GPUs, large images).
            single_file_config: a local diffusers SDXL folder whose configs describe a single-file checkpoint
                (otherwise diffusers looks them up on the hub).
        Raises:
            ModelLoadError: the model cannot be found; the message says what to do.
        """
        device, torch_dtype = choose_device_and_dtype(device, dtype)
        pipe = load_components(
            model,
            torch_dtype,
            build=lambda components: cls(**components),
            from_pretrained=lambda path, **options: super(TAUEPipeline, cls).from_pretrained(path, **options),
            from_single_file=cls.from_single_file,
            single_file_config=single_file_config,
            **kwargs,
        )
        if type(pipe) is not cls:
            pipe = cls(**pipe.components)
        pipe.model_name = model
        pipe.default_config = model_default_config(model)
        pipe.known_words = model_words(model_folder(model))
        if cpu_offload:
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        if vae_tiling:
            pipe.vae.enable_tiling()
        if vae_slicing:
            pipe.vae.enable_slicing()
        return pipe

    def prompt_warning(self, prompts: list[str | None], lora_words: list[set[str] | None] | None = None) -> str | None:
        """One line naming the words of `prompts` this model does not know (None: all known, or the model publishes
        no vocabulary, as SDXL checkpoints do). A LoRA adds the words it says it teaches; one that does not say
        turns the check off, as any word may mean something to it. `lora_words`: the words of the LoRAs a job will
        load (loras.file_words); default those loaded now."""
        known = getattr(self, "known_words", None)
        if lora_words is None:
            lora_words = [entry["words"] for entry in self.__dict__.get("_loras", {}).values()]
        for words in lora_words:
            known = None if known is None or words is None else known | words
        unknown = unknown_words(known, prompts)
        return unknown_words_warning(getattr(self, "model_name", "loaded"), unknown)

    # ------------------------------------------------------------------ LoRAs
    @one_run_at_a_time
    def load_loras(self, loras: list[LoraSpec | str | Path | tuple] | None) -> list[dict[str, Any]]:
        """Make exactly these LoRAs active, for every phase of the jobs that follow: each a `LoraSpec`, a path, a
        'PATH[:SCALE]' string or a (path, scale) pair; an empty list (or None) leaves none. LoRAs no longer asked
        for are deleted from the model (with none left, the model is exactly as loaded); files already loaded are
        reused with their new scale. Loaded by diffusers (`load_lora_weights`, through peft), from the file's
        tensors: diffusers-format and kohya/A1111 files alike. Returns `active_loras`.

        Raises:
            ValueError: a file is missing, not .safetensors, or not a LoRA of this model (the message says which).
        """
        specs = unique_names([as_spec(spec) for spec in (loras or [])])
        for spec in specs:
            spec.check()
        loaded = self.__dict__.setdefault("_loras", {})
        stamps = {spec.name: (str(spec.path.resolve()), spec.path.stat().st_mtime_ns, spec.path.stat().st_size)
                  for spec in specs}
        stale = [name for name, entry in loaded.items() if stamps.get(name) != entry["stamp"]]
        if stale and len(stale) == len(loaded):
            self.unload_lora_weights()  # none kept: peft's layers go too
            loaded.clear()
        elif stale:
            self.delete_adapters(stale)
            for name in stale:
                del loaded[name]
        for spec in specs:
            if spec.name in loaded:
                continue
            tensors, metadata = read_lora(spec.path)
            verbosity = diffusers_logging.get_verbosity()
            try:
                diffusers_logging.set_verbosity(diffusers_logging.CRITICAL)  # a failure is reported below, in a line
                self.load_lora_weights(tensors, adapter_name=spec.name)
            except Exception as error:  # noqa: BLE001 - diffusers/peft raise many kinds for a foreign file
                if any(spec.name in names for names in self.get_list_adapters().values()):
                    self.delete_adapters([spec.name])
                why = ("its layers have other sizes: it was made for another base model" if "size mismatch" in
                       str(error) else f"{type(error).__name__}: {str(error).splitlines()[0][:160]}")
                raise ValueError(f"{spec.path.name} is not a LoRA this model can load ({why})") from None
            finally:
                diffusers_logging.set_verbosity(verbosity)
            loaded[spec.name] = {"stamp": stamps[spec.name], "digest": file_digest(spec.path),
                                 "words": taught_words(metadata), "file": spec.path.name}
        # a LoRA at scale 0 is off (disable_lora), not peft's branch run at weight 0: no work and nothing of it in
        # the sums; the files still match no LoRA only to one 8-bit level, as after an unload (tests/test_loras.py)
        live = [spec for spec in specs if spec.scale != 0]
        if live:
            self.enable_lora()
            self.set_adapters([spec.name for spec in live], adapter_weights=[spec.scale for spec in live])
        elif loaded:
            self.disable_lora()
        self.active_loras = [{"name": spec.name, "file": loaded[spec.name]["file"], "scale": spec.scale,
                              "sha256": loaded[spec.name]["digest"]} for spec in specs]
        return self.active_loras

    active_loras: list[dict[str, Any]] = []
    """The LoRAs of the jobs that run now: name, file, scale and sha256 (recorded in each result's taue.json)."""

    # ------------------------------------------------------------------ helpers
    def _object_token_indices(self, prompt: str) -> list[int]:
        """Positions of the object's words in T_fg (not BOS/EOS/padding, not stop words)."""
        tok = self.tokenizer
        ids = tok(prompt, truncation=True, max_length=tok.model_max_length).input_ids
        special = {tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}
        words = [i for i, t in enumerate(ids) if t not in special]
        content = [i for i in words if tok.convert_ids_to_tokens(ids[i]).replace("</w>", "") not in STOP_WORDS]
        return content or words

    def _encode_prompts(self, prompts: list[str], negative_prompt: str | None, device) -> list[tuple]:
        """(embeds, negative embeds, pooled, negative pooled) per prompt, the negative encoded once for all.

        As in SDXL's encode_prompt, no negative prompt means zeroed embeddings when the model asks for them
        (`force_zeros_for_empty_prompt`), else the encoded empty string.
        """
        zero_negative = negative_prompt is None and self.config.force_zeros_for_empty_prompt
        texts = prompts + ([] if zero_negative else [negative_prompt or ""])
        embeds, _, pooled, _ = self.encode_prompt(texts, device=device, num_images_per_prompt=1,
                                                  do_classifier_free_guidance=False)
        n = len(prompts)
        if zero_negative:
            negative, negative_pooled = torch.zeros_like(embeds[:1]), torch.zeros_like(pooled[:1])
        else:
            negative, negative_pooled = embeds[n : n + 1], pooled[n : n + 1]
        return [(embeds[i : i + 1], negative, pooled[i : i + 1], negative_pooled) for i in range(n)]

    def _uses_cfg(self, guidance: float) -> bool:
        """Whether SDXL's __call__ will batch [uncond, cond] for this guidance scale (as diffusers decides it)."""
        return guidance > 1 and self.unet.config.time_cond_proj_dim is None

    def _prepare_sampler(self, config: TAUEConfig, seed: int) -> None:
        """Put the job's sampler in place, built from the checkpoint's own scheduler config (kept as it was loaded,
        so that switching samplers between jobs never drifts), one instance per (sampler, spacing); set it up for
        the hold (schedulers.prepare_for_hold) and seed the noise its steps draw (`_step_generator`)."""
        base = self.__dict__.setdefault("_base_scheduler_config", dict(self.scheduler.config))
        made = self.__dict__.setdefault("_schedulers", {})
        key = (config.scheduler, config.timestep_spacing)
        if key not in made:
            spacing_matches = config.timestep_spacing in ("model", base.get("timestep_spacing"))
            if name_of(self.scheduler) == config.scheduler and spacing_matches and not made:
                made[key] = self.scheduler  # the checkpoint's own scheduler is the one asked for
            else:
                made[key] = make_scheduler(config.scheduler, base, config.timestep_spacing)
        self.scheduler = made[key]
        prepare_for_hold(self.scheduler, config.crop_step)
        self._job_seed = seed

    def _step_generator(self) -> torch.Generator:
        """Fresh noise a sampler draws inside its steps (LCM's re-noising): the same stream, from the job's seed,
        in every phase, so the held object and the rest of the latent are re-noised alike in phases 1 and 2."""
        return torch.Generator("cpu").manual_seed(self._job_seed)

    @staticmethod
    def _check_request(background_prompt, composite_prompt, negative_prompt, seed, width, height) -> None:
        for name, value, required in (("background_prompt", background_prompt, True),
                                      ("composite_prompt", composite_prompt, False),
                                      ("negative_prompt", negative_prompt, False)):
            if value is None and not required:
                continue
            if not isinstance(value, str) or (required and not value.strip()):
                raise ValueError(f"{name} must be a non-empty string (got {value!r})")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise ValueError(f"seed must be a whole number in 0..2^63-1 (got {seed!r})")
        for name, value in (("width", width), ("height", height)):
            if (isinstance(value, bool) or not isinstance(value, int) or value % SIZE_MULTIPLE
                    or not MIN_SIZE <= value <= MAX_SIZE):
                raise ValueError(
                    f"{name} must be a multiple of {SIZE_MULTIPLE} in {MIN_SIZE}..{MAX_SIZE} (got {value!r})")

    def _run_phase(self, phase: str, config: TAUEConfig, embeds: tuple, guidance: float, latents: torch.Tensor,
                   size: tuple[int, int], on_latents: Callable[[int, torch.Tensor], torch.Tensor],
                   report: Callable[[int, Any, torch.Tensor], None]) -> Image.Image:
        """One denoising run through SDXL's own __call__, from `latents` in unit-variance noise space (SDXL scales
        them by init_noise_sigma); `on_latents(step_index, latents)` may edit the latent after every step."""
        prompt_embeds, negative_embeds, pooled, negative_pooled = embeds
        self.current_phase = phase

        def step_end(pipe, i, t, callback_kwargs):
            latents = on_latents(i + 1, callback_kwargs["latents"])
            report(i, t, latents)
            return {"latents": latents}

        height, width = size
        return super().__call__(
            prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_embeds,
            pooled_prompt_embeds=pooled,
            negative_pooled_prompt_embeds=negative_pooled,
            num_inference_steps=config.num_inference_steps,
            guidance_scale=guidance,
            latents=latents,
            height=height,
            width=width,
            output_type="pil",
            generator=self._step_generator(),
            callback_on_step_end=step_end,
            callback_on_step_end_tensor_inputs=["latents"],
        ).images[0]

    @contextmanager
    def _vae_for_io(self):
        """The VAE, in float32 for the call if it is a float16 VAE that asks for it (`force_upcast`, as SDXL's own
        __call__ does), back in its own dtype afterwards."""
        vae = self.vae
        dtype = vae.dtype
        upcast = dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
        if upcast:
            vae.to(torch.float32)
        try:
            yield vae
        finally:
            if upcast:
                vae.to(dtype)

    def _latent_scale(self, device) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """(offset, scale) with UNet latent = (VAE latent - offset) * scale: the VAE's latents_mean and
        scaling_factor / latents_std when its config has both, else (0, scaling_factor)."""
        config = self.vae.config
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        if mean is not None and std is not None:
            return (torch.tensor(mean, device=device).view(1, -1, 1, 1),
                    config.scaling_factor / torch.tensor(std, device=device).view(1, -1, 1, 1))
        return 0.0, config.scaling_factor

    @torch.no_grad()
    def _encode_image(self, image: Image.Image) -> torch.Tensor:
        """The VAE's mean latent of an RGB image, in the UNet's units (scaled as SDXL scales latents); [1, C, h, w]
        float32 on the CPU."""
        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0)
        pixels = pixels.permute(2, 0, 1)[None]
        with self._vae_for_io() as vae:
            encoded = vae.encode(pixels.to(self._execution_device, vae.dtype))
            # AutoencoderKL gives a distribution (its mean is the latent), AutoencoderTiny the latent itself
            latent = (encoded.latent_dist.mean if hasattr(encoded, "latent_dist") else encoded.latents).float()
        offset, scale = self._latent_scale(latent.device)
        return ((latent - offset) * scale).cpu()

    @torch.no_grad()
    def _decode_latent(self, latent: torch.Tensor) -> torch.Tensor:
        """The VAE's picture of a latent in the UNet's units [1, C, h, w]: [H, W, 3] float32 in 0..1 on the CPU,
        decoded as SDXL's own __call__ decodes (the inverse of `_encode_image`'s scaling)."""
        latent = latent.float().to(self._execution_device)
        offset, scale = self._latent_scale(latent.device)
        with self._vae_for_io() as vae:
            image = vae.decode((latent / scale + offset).to(vae.dtype)).sample
        return ((image[0].float().permute(1, 2, 0) + 1.0) / 2.0).clamp(0.0, 1.0).cpu()

    def key_distance_map(self, clean: torch.Tensor, config: TAUEConfig, size: tuple[int, int]) -> torch.Tensor:
        """How far each pixel of a clean estimate is from the key colour, [H, W] at `size` (0 on the key, 1 on a
        grey): read off the decoded picture or the latent, as `config.mask_signal` says."""
        if config.mask_signal == "latent":
            key, unit = self.key_reference(config.key_color)
            return key_distance(clean, key, unit, size)
        distance = pixel_key_distance(self._decode_latent(clean), config.key_color)
        if tuple(distance.shape) != tuple(size):
            distance = resize_mask(distance, *size)
        return distance

    def _solid_latent(self, name: str, rgb: tuple[float, float, float]) -> torch.Tensor:
        """E(colour): the VAE's mean latent of a solid image of that colour, [C] (computed once per model)."""
        cache = self.__dict__.setdefault("_solid_latents", {})
        if name not in cache:
            side = 8 * self.vae_scale_factor
            solid = Image.new("RGB", (side, side), tuple(round(255 * v) for v in rgb))
            cache[name] = self._encode_image(solid).mean(dim=(0, 2, 3))
        return cache[name]

    def key_latent(self, config: TAUEConfig) -> tuple[float, ...]:
        """C, the latent that phase 1 injects: the paper's `green_latent` for the green key; for another key,
        green_latent + (E(key) - E(green)), the VAE's own step from a solid green to a solid key colour."""
        if len(config.green_latent) != self.unet.config.in_channels:
            raise ValueError(f"green_latent must have {self.unet.config.in_channels} values for this model "
                             f"(got {len(config.green_latent)})")
        if config.key_color == "green":
            return config.green_latent
        step = self._solid_latent(config.key_color, KEY_COLORS[config.key_color]) - self._solid_latent(
            "green", KEY_COLORS["green"])
        return tuple(float(c + d) for c, d in zip(config.green_latent, step))

    def key_reference(self, key_color: str) -> tuple[torch.Tensor, float]:
        """What the object mask measures against: E(key), the latent a clean key-coloured backdrop has, and the
        unit ||E(key) - E(grey)|| (a mid grey is at distance 1 from the key)."""
        key = self._solid_latent(key_color, KEY_COLORS[key_color])
        grey = self._solid_latent("grey", (0.5, 0.5, 0.5))
        return key, float((key - grey).norm())

    @staticmethod
    def _scene_draws(generator: torch.Generator, shape: tuple) -> dict[str, torch.Tensor]:
        """The random draws of one scene, in their fixed order (the first object's noise and dither, then the
        composite's hold noise, the background's hole and hold noise): one seed, same pictures."""
        draws = {"noise": randn_tensor(shape, generator=generator, dtype=torch.float32)}
        draws["uniform"] = torch.rand(shape[-2:], generator=generator)
        for name in ("hold_composite", "hole", "hold_background"):
            draws[name] = randn_tensor(shape, generator=generator, dtype=torch.float32)
        return draws

    @contextmanager
    def _runs(self, total: int, steps: int, progress_callback, callback_on_step_end):
        """The denoising runs of one job: one progress bar over all of them, the UNet's own attention processors
        put back whatever happens. Yields (report, original_processors); report(run, phase, object) is the step
        callback of run `run` (0-based, `steps` steps each): the bar, the diffusers callback, the job's progress."""
        bar_config = dict(getattr(self, "_progress_bar_config", {}))
        bar = self.progress_bar(total=total)
        self.set_progress_bar_config(**{**bar_config, "disable": True})

        def report(run: int, phase: str, obj: int | None):
            name = f"{phase} (object {obj})" if obj else phase

            def tick(i: int, t, latents: torch.Tensor) -> None:
                if i == 0:  # the bar names the phase that runs
                    bar.set_postfix_str(name, refresh=False)
                bar.update(1)
                if callback_on_step_end is not None:
                    callback_on_step_end(self, i, t, {"latents": latents})
                if progress_callback is not None:
                    clean = latest.get("latest")
                    progress = TAUEProgress(phase, i + 1, steps, run * steps + i + 1, total, obj,
                                            preview=lambda: self.preview_image(latents if clean is None else clean))
                    if progress_callback(progress) is False:
                        raise TAUECancelled(f"cancelled during the {phase} phase at step {progress.step}/{steps}")
            return tick

        original_processors = dict(self.unet.attn_processors)
        try:
            with clean_estimates(self.scheduler, None) as latest:  # each step's x0-hat, for the previews
                yield report, original_processors
        finally:
            self.unet.set_attn_processor(dict(original_processors))
            self.set_progress_bar_config(**bar_config)
            bar.close()
            self.current_phase = None

    def latent_to_rgb(self) -> LatentToRGB:
        """The model's latent-to-RGB map for previews, fitted to its VAE on first use (previews.py)."""
        cache = self.__dict__.setdefault("_latent_to_rgb", {})
        if id(self.vae) not in cache:
            cache.clear()
            cache[id(self.vae)] = fit_latent_to_rgb(self._encode_image, self.vae_scale_factor)
        return cache[id(self.vae)]

    def preview_image(self, latents: torch.Tensor) -> Image.Image:
        """A quick picture of a latent [1, C, h, w] (a clean estimate), at previews.preview_size of its image."""
        height, width = (side * self.vae_scale_factor for side in latents.shape[-2:])
        return self.latent_to_rgb()(latents, preview_size(width, height))

    def _encode_scene(self, prompts: list[str], background_prompt: str, composite_prompt: str | None,
                      negative_prompt: str | None) -> tuple:
        """(T_all, each object's embeddings, T_bg's, T_all's): every prompt encoded once, in one batch; T_all
        defaults to the object prompts and T_bg joined with ', '."""
        composite_prompt = composite_prompt or ", ".join(prompts + [background_prompt])
        *object_embeds, bg, comp = self._encode_prompts(prompts + [background_prompt, composite_prompt],
                                                        negative_prompt, self._execution_device)
        return composite_prompt, object_embeds, bg, comp

    def _grow_object(self, prompt: str, layout: LayoutBox | None, embeds: tuple, noise: torch.Tensor,
                     uniform: torch.Tensor, key: tuple[float, ...], config: TAUEConfig, size: tuple[int, int],
                     report, original_processors: dict) -> dict[str, Any]:
        """Phase 1 for one object: the object on an injected key-colour latent; the seedling is cut at t_crop, the
        object tokens' attention is captured before it, and the object mask is made from both."""
        device, dtype = self._execution_device, embeds[0].dtype
        latent_h, latent_w = noise.shape[-2:]
        crop = config.crop_step
        probability = layout_probability(latent_h, latent_w, layout,
                                          config.layout_mask_std if layout else config.mask_std,
                                          config.mask_p_min, config.mask_p_max,
                                          power=config.layout_mask_power if layout else 1.0)
        key_mask = dithered_mask(probability, uniform)
        initial = inject_green(noise, key_mask, key, config.green_alpha)
        capture = AttentionState(latent_size=(latent_h, latent_w), cfg=self._uses_cfg(config.guidance_foreground),
                                 capture_until=crop, capture_factors=config.attention_resolutions,
                                 token_indices=self._object_token_indices(prompt))
        install_processors(self.unet, lambda name: AttentionCaptureProcessor(capture, name))
        kept: dict[str, torch.Tensor] = {}

        def cut_seedling(step_index: int, latents: torch.Tensor) -> torch.Tensor:
            capture.step = step_index
            if step_index == crop:
                kept["seedling"] = latents.detach().clone()
                self.unet.set_attn_processor(dict(original_processors))  # capture is over: no more cost
            return latents

        check_installed(self.unet, AttentionCaptureProcessor)
        with clean_estimates(self.scheduler, {crop}) as clean:
            on_key = self._run_phase("foreground", config, embeds, config.guidance_foreground,
                                     initial.to(device=device, dtype=dtype), size, cut_seedling, report)
        attention_map = capture.attention_map()
        attention_map = None if attention_map is None else attention_map.float().cpu()
        grown = {"on_key": on_key, "seedling": kept["seedling"], "clean": clean[crop].float().cpu(),
                 "attention": attention_map, "key_mask": key_mask, "initial": initial, "maps": capture.captured_maps}
        grown["key_distance"] = self.key_distance_map(grown["clean"], config, size)
        grown["fine_mask"], grown["mask_source"] = self._object_mask(grown, config, size)
        off_key = grown["key_distance"] > config.tau_bg * config.hold_growth_key_distance
        grown["mask"] = hold_mask(grown["fine_mask"], (latent_h, latent_w), config.hold_fraction,
                                  config.hold_dilation, within=off_key)
        return grown

    def _object_mask(self, grown: dict[str, Any], config: TAUEConfig, size: tuple[int, int]) -> tuple[torch.Tensor, str]:
        """m_obj of one grown object at image resolution, from its seedling's clean estimate and its attention
        (masks.object_mask); the one place the mask is made, so that an experiment can put the truth in its place
        (benchmarks/oracle_mask.py)."""
        distance = grown.get("key_distance")
        if distance is None:
            distance = self.key_distance_map(grown["clean"], config, size)
        return object_mask(distance, grown["attention"], size, config.tau_bg, config.tau_attention,
                           config.mask_blur, config.mask_dilation)

    def _compose(self, object_embeds: list[tuple], bg: tuple, comp: tuple, seedlings: list[torch.Tensor],
                 cleans: list[torch.Tensor | None], masks: list[torch.Tensor], draws: dict[str, torch.Tensor],
                 config: TAUEConfig, size: tuple[int, int], report_composite, report_background,
                 original_processors: dict, timings: dict) -> dict[str, Any]:
        """Phases 2 and 3 from the objects' seedlings, their clean estimates and their (latent) masks: the
        composite cultivated from the high-passed seedlings (held in their masks, later objects in front) with each
        object's prompt sheared into its visible part, then the background transplanted from the composite outside
        all of them. An object without a clean estimate (kept by an older version) is transplanted unsharpened."""
        device, dtype = self._execution_device, bg[0].dtype
        to_device = lambda x: x.to(device=device, dtype=dtype)  # noqa: E731
        crop = config.crop_step
        levels = NoiseLevels.of(self.scheduler)
        init_sigma = float(self.scheduler.init_noise_sigma)
        targets = [highpass(s, c, config.highpass_strength) if config.highpass and c is not None else s
                   for s, c in zip(seedlings, cleans)]
        if len(masks) == 1:
            target, union, shear_mask = targets[0], masks[0], masks[0]
        else:  # one held region: each object's target where it is visible
            shear_mask = torch.stack([m.float() for m in masks])
            weights, remainder = front_to_back(shear_mask)
            union = 1 - remainder
            target = sum(w.to(t.device, t.dtype) * t for w, t in zip(weights, targets))
            target = target / union.clamp_min(1e-6).to(target.device, target.dtype)
        kept: dict[str, torch.Tensor] = {}

        # ---- Phase 2: composite. Transplant the high-passed seedlings, shear attention, hold then release.
        t0 = time.perf_counter()
        hold_composite = HeldRegion(target, union.to(device), to_device(draws["hold_composite"]), levels, crop,
                                    config.transplant_noise)
        initial_composite = hold_composite.apply(to_device(draws["noise"]) * init_sigma, 0)
        cfg = self._uses_cfg(config.guidance_composite)
        pair = (lambda e: torch.cat([e[1], e[0]])) if cfg else (lambda e: e[0])  # CFG's [uncond, cond]
        shear = AttentionState(latent_size=tuple(union.shape[-2:]), shear_mask=shear_mask.to(device, dtype),
                               shear_context=torch.cat([pair(e) for e in object_embeds] + [pair(bg)]))
        sheared_layers = [n for n in cross_attention_layers(self.unet) if block_of(n) in config.shear_blocks]
        install_processors(self.unet, lambda name: AttentionShearingProcessor(shear, name)
                           if name in sheared_layers else None)

        def hold_objects(step_index: int, latents: torch.Tensor) -> torch.Tensor:
            latents = hold_composite.apply(latents, step_index)
            if step_index == crop:
                kept["background_seedling"] = latents.detach().clone()
            return latents

        check_installed(self.unet, AttentionShearingProcessor, sheared_layers)
        composite = self._run_phase("composite", config, comp, config.guidance_composite,
                                    initial_composite / init_sigma, size, hold_objects, report_composite)
        timings["composite"] = time.perf_counter() - t0

        # ---- Phase 3: background. Transplant the composite's background, re-grow the holes from fresh noise.
        t0 = time.perf_counter()
        self.unet.set_attn_processor(dict(original_processors))  # diffusers empties the dict it is given
        hold_background = HeldRegion(kept["background_seedling"], (1 - union).to(device),
                                     to_device(draws["hold_background"]), levels, crop, config.transplant_noise)
        initial_background = hold_background.apply(to_device(draws["hole"]) * init_sigma, 0)
        background = self._run_phase("background", config, bg, config.guidance_background,
                                     initial_background / init_sigma, size, lambda k, z: hold_background.apply(z, k),
                                     report_background)
        timings["background"] = time.perf_counter() - t0
        return {"composite": composite, "background": background, "union": union,
                "background_seedling": kept["background_seedling"]}

    def _layers(self, prompts: list[str], layouts: list, layers: list[Image.Image], on_key: list[Image.Image],
                masks: list[torch.Tensor], sources: list[str], size: tuple[int, int]):
        """Each object's result (its visible part as its mask), the objects flattened and their union's mask."""
        height, width = size
        weights, remainder = front_to_back(torch.stack([m.float() for m in masks]))
        as_image = lambda m: Image.fromarray(  # noqa: E731
            (resize_mask(m, height, width).clamp(0, 1) * 255).round().to(torch.uint8).numpy(), mode="L")
        objects = [ResultObject(p, b, layer, k, as_image(w), src)
                   for p, b, layer, k, w, src in zip(prompts, layouts, layers, on_key, weights, sources)]
        flattened = layers[0]
        for layer in layers[1:]:
            flattened = Image.alpha_composite(flattened, layer)
        return objects, flattened, as_image(1 - remainder)

    # ------------------------------------------------------------------ the method
    @torch.no_grad()
    @one_run_at_a_time
    def __call__(
        self,
        foreground_prompt: str | None = None,
        background_prompt: str | None = None,
        composite_prompt: str | None = None,
        negative_prompt: str | None = None,
        layout: LayoutBox | tuple | dict | None = None,
        seed: int = 0,
        width: int | None = None,
        height: int | None = None,
        config: TAUEConfig | None = None,
        progress_callback: ProgressCallback | None = None,
        callback_on_step_end: Callable | None = None,
        objects: list | None = None,
    ) -> TAUEResult:
        """Generate the object layer(s), background and composite of one scene, from one seed.

        Args:
            foreground_prompt: T_fg, the object alone ("a red vintage bicycle"); or give `objects`.
            background_prompt: T_bg, the scene without the object ("a cobblestone street at dusk").
            composite_prompt: T_all; default the object prompt(s) and T_bg joined with ", ". Attended to by layers
                that do not shear, and the pooled text embedding of the composite phase.
            negative_prompt: used by all phases; default none (SDXL's zeroed negative embedding).
            layout: where the object goes, (cx, cy, w, h) in 0..1; default: centred, TKG-DM's Gaussian.
            seed: one seed for all phases: same seed, same pictures.
            width, height: multiples of 8; default the model's native size (1024 for SDXL).
            config: every hyperparameter of the method; default `self.default_config` (the paper's values, or
                those a model folder ships in `taue_config.json`).
            progress_callback: called after every denoising step with a `TAUEProgress`; returning False (or
                raising `TAUECancelled`) stops the job within that step.
            callback_on_step_end: diffusers-style `fn(pipe, step, timestep, callback_kwargs)`, called after the
                method's own edits with `callback_kwargs["latents"]`; `pipe.current_phase` names the phase.
            objects: several objects instead of `foreground_prompt`: a list of {"prompt": ..., "layout": {cx, cy, w,
                h}} (or `SceneObject`s); boxes left out are placed side by side. Each object gets its own
                foreground phase and seedling; later objects are in front where boxes overlap.
        Returns:
            TAUEResult with each object's RGBA layer and mask, I_bg, I_all, the kept objects and metadata.
        Raises:
            ValueError: an argument or config value is out of range (the message names it).
            TAUECancelled: the progress callback stopped the job.
        """
        config = config or self.default_config
        default_size = self.unet.config.sample_size * self.vae_scale_factor
        width = default_size if width is None else width
        height = default_size if height is None else height
        scene = scene_objects(objects, foreground_prompt, layout)
        self._check_request(background_prompt, composite_prompt, negative_prompt, seed, width, height)
        prompts = [obj.prompt for obj in scene]
        key = self.key_latent(config)
        self._prepare_sampler(config, seed)
        device = self._execution_device
        steps, crop = config.num_inference_steps, config.crop_step
        timings: dict[str, float] = {}
        started = time.perf_counter()

        # Prompt embeddings: computed once per prompt (one batch through each text encoder), reused by every phase.
        composite_prompt, object_embeds, bg, comp = self._encode_scene(prompts, background_prompt, composite_prompt,
                                                                       negative_prompt)
        dtype = bg[0].dtype
        timings["encode_prompts"] = time.perf_counter() - started

        # One seed: all random draws of the job come from one generator, in a fixed order; objects after the first
        # draw theirs last, so that a one-object job draws exactly what version 1 drew.
        generator = torch.Generator("cpu").manual_seed(seed)
        latent_h, latent_w = height // self.vae_scale_factor, width // self.vae_scale_factor
        shape = (1, self.unet.config.in_channels, latent_h, latent_w)
        draws = self._scene_draws(generator, shape)
        object_draws = [(draws["noise"], draws["uniform"])]
        for _ in scene[1:]:
            object_draws.append((randn_tensor(shape, generator=generator, dtype=torch.float32),
                                 torch.rand((latent_h, latent_w), generator=generator)))

        self.scheduler.set_timesteps(steps, device="cpu")
        several = len(scene) > 1
        with self._runs((len(scene) + 2) * steps, steps, progress_callback,
                        callback_on_step_end) as (report, original_processors):
            grown = []
            for k, (obj, embeds, (noise, uniform)) in enumerate(zip(scene, object_embeds, object_draws)):
                t0 = time.perf_counter()
                grown.append(self._grow_object(obj.prompt, obj.layout, embeds, noise, uniform, key, config,
                                               (height, width), report(k, "foreground", k + 1 if several else None),
                                               original_processors))
                timings["foreground" if not several else f"foreground_{k + 1}"] = time.perf_counter() - t0
            composed = self._compose(object_embeds, bg, comp, [g["seedling"] for g in grown],
                                     [g["clean"] for g in grown], [g["mask"] for g in grown], draws, config,
                                     (height, width),
                                     report(len(scene), "composite", None), report(len(scene) + 1, "background", None),
                                     original_processors, timings)

        # ---- The layers.
        t0 = time.perf_counter()
        keyed = [foreground_rgba(g["on_key"], g["fine_mask"], config, device=device) for g in grown]
        masks = [g["mask"] for g in grown]
        fine_masks = [g["fine_mask"] for g in grown]
        layouts = [obj.layout for obj in scene]
        result_objects, flattened, union_image = self._layers(
            prompts, layouts, [layer for layer, _ in keyed], [g["on_key"] for g in grown], fine_masks,
            ["generated"] * len(scene), (height, width))
        timings["keying"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - started

        transplant = Transplant(prompts, layouts, [layer for layer, _ in keyed],
                                [g["seedling"].float().cpu() for g in grown], [m.cpu() for m in masks], width, height,
                                steps, crop, self.model_name, config.key_color,
                                cleans=[g["clean"] for g in grown], fine_masks=[m.cpu() for m in fine_masks],
                                scheduler=config.scheduler, timestep_spacing=config.timestep_spacing)
        metadata = self._metadata(transplant, background_prompt, composite_prompt, negative_prompt, seed, config,
                                  dtype, timings)
        metadata.update({
            "layout": layouts[0].as_dict() if layouts[0] else None,
            "mask_source": grown[0]["mask_source"],
            "attention_maps_captured": sum(g["maps"] for g in grown),
            "key_color": keyed[0][1]["key_color"],
        })
        for entry, g, (_, info) in zip(metadata["objects"], grown, keyed):
            entry.update({"mask_source": g["mask_source"], "mask_fraction": float(g["fine_mask"].mean()),
                          "key_color": info["key_color"]})
        first = grown[0]
        latents = {"initial_noise": draws["noise"], "green_mask": first["key_mask"],
                   "initial_foreground": first["initial"], "seedling": first["seedling"].cpu(),
                   "clean_estimate": first["clean"], "object_mask": composed["union"].cpu(),
                   "background_seedling": composed["background_seedling"].cpu()}
        if first["attention"] is not None:
            latents["attention"] = first["attention"]
        if several:
            latents["seedlings"] = [g["seedling"].cpu() for g in grown]
            latents["clean_estimates"] = [g["clean"] for g in grown]
            latents["object_masks"] = [m.cpu() for m in masks]
        return TAUEResult(flattened, grown[0]["on_key"], composed["background"], composed["composite"], union_image,
                          metadata, latents, result_objects, transplant)

    def _metadata(self, transplant: Transplant, background_prompt: str, composite_prompt: str,
                  negative_prompt: str | None, seed: int, config: TAUEConfig, dtype, timings: dict) -> dict[str, Any]:
        objects = [{"prompt": p, "layout": b.as_dict() if b else None, "source": src}
                   for p, b, src in zip(transplant.prompts, transplant.layouts, transplant.sources)]
        return {
            "taue_version": __version__,
            "prompts": {"foreground": " + ".join(transplant.prompts), "background": background_prompt,
                        "composite": composite_prompt, "negative": negative_prompt},
            "objects": objects,
            "seed": seed,
            "width": transplant.width,
            "height": transplant.height,
            "config": config.to_dict(),
            "crop_step": config.crop_step,
            "model": self.model_name,
            "scheduler": config.scheduler,
            "loras": [dict(entry) for entry in self.active_loras],
            "device": str(self._execution_device),
            "dtype": str(dtype).replace("torch.", ""),
            "mask_fraction": float(1 - front_to_back(torch.stack(transplant.object_masks()))[1].mean()),
            "timings_s": {k: round(v, 4) for k, v in timings.items()},
        }

    @torch.no_grad()
    @one_run_at_a_time
    def new_background(
        self,
        transplant: Transplant,
        background_prompt: str,
        composite_prompt: str | None = None,
        negative_prompt: str | None = None,
        seed: int = 0,
        config: TAUEConfig | None = None,
        progress_callback: ProgressCallback | None = None,
        callback_on_step_end: Callable | None = None,
    ) -> TAUEResult:
        """A new scene around objects already made: the composite and background phases only.

        Args:
            transplant: the kept objects of a result (`result.transplant`, `Transplant.load(folder)`), objects
                brought as RGBA layers (`Transplant.from_layers`) or moved ones (`Transplant.moved`). Objects without
                a seedling get one from their layer: the VAE's latent of the layer over the key colour, plus the
                scheduler's noise at t_crop.
            background_prompt, composite_prompt, negative_prompt, seed, progress_callback, callback_on_step_end: as
                in `__call__`; the same seed and prompts as the original job give the original composite back.
            config: as in `__call__`; its steps and crop ratio must cut where the objects' seedlings were cut.
        Returns:
            TAUEResult whose object layers are the transplant's own, unchanged.
        """
        config = config or self.default_config
        if not isinstance(transplant, Transplant):
            raise ValueError(f"transplant must be a Transplant (got {type(transplant).__name__})")
        width, height = transplant.width, transplant.height
        self._check_request(background_prompt, composite_prompt, negative_prompt, seed, width, height)
        if (config.num_inference_steps, config.crop_step) != (transplant.num_inference_steps, transplant.crop_step):
            raise ValueError(
                f"the objects were cut at step {transplant.crop_step} of {transplant.num_inference_steps}: use "
                f"num_inference_steps={transplant.num_inference_steps} and a crop_ratio that cuts there (got step "
                f"{config.crop_step} of {config.num_inference_steps})")
        latent_h, latent_w = height // self.vae_scale_factor, width // self.vae_scale_factor
        for n, mask in enumerate(transplant.masks, 1):
            if tuple(mask.shape) != (latent_h, latent_w):
                raise ValueError(f"object {n}'s mask is {tuple(mask.shape)} in the latent; this model's latent of a "
                                 f"{width}x{height} image is {(latent_h, latent_w)}: was it made by another model?")
        prompts = list(transplant.prompts)
        self.key_latent(config)  # checks green_latent against the model
        cut_with = (transplant.scheduler, transplant.timestep_spacing)
        if any(seedling is not None for seedling in transplant.seedlings) and cut_with != (
                config.scheduler, config.timestep_spacing):
            raise ValueError(f"the objects' seedlings were cut with scheduler {transplant.scheduler!r} (timestep "
                             f"spacing {transplant.timestep_spacing!r}), whose noise they carry: use scheduler="
                             f"{transplant.scheduler!r} and timestep_spacing={transplant.timestep_spacing!r}")
        self._prepare_sampler(config, seed)
        device = self._execution_device
        steps, crop = config.num_inference_steps, config.crop_step
        timings: dict[str, float] = {}
        started = time.perf_counter()
        composite_prompt, object_embeds, bg, comp = self._encode_scene(prompts, background_prompt, composite_prompt,
                                                                       negative_prompt)
        dtype = bg[0].dtype
        generator = torch.Generator("cpu").manual_seed(seed)
        shape = (1, self.unet.config.in_channels, latent_h, latent_w)
        draws = self._scene_draws(generator, shape)
        self.scheduler.set_timesteps(steps, device="cpu")
        levels = NoiseLevels.of(self.scheduler)
        seedlings, cleans = [], []
        for layer, seedling, clean in zip(transplant.layers, transplant.seedlings, transplant.cleans):
            if seedling is None:  # a brought or moved layer: its latent (exactly clean), noised to t_crop
                clean = self._encode_image(over_key(layer, KEY_COLORS[config.key_color]))
                seedling = levels.noised(clean, randn_tensor(shape, generator=generator, dtype=torch.float32), crop)
            if tuple(seedling.shape) != shape:
                raise ValueError(f"a kept seedling is {tuple(seedling.shape)}, this model needs {shape}")
            seedlings.append(seedling.to(device=device, dtype=dtype))
            cleans.append(None if clean is None else clean.float().cpu())
        timings["encode"] = time.perf_counter() - started

        with self._runs(2 * steps, steps, progress_callback, callback_on_step_end) as (report, original_processors):
            composed = self._compose(object_embeds, bg, comp, seedlings, cleans,
                                     [m.to(device) for m in transplant.masks], draws, config, (height, width), report(0, "composite", None),
                                     report(1, "background", None), original_processors, timings)
        timings["total"] = time.perf_counter() - started

        key_rgb = KEY_COLORS[transplant.key_color]
        on_key = [over_key(layer, key_rgb) for layer in transplant.layers]
        masks = [m.cpu() for m in transplant.masks]
        result_objects, flattened, union_image = self._layers(prompts, transplant.layouts, transplant.layers, on_key,
                                                              transplant.object_masks(), transplant.sources,
                                                              (height, width))
        kept = Transplant(prompts, list(transplant.layouts), list(transplant.layers),
                          [s.float().cpu() for s in seedlings], masks, width, height, steps, crop, self.model_name,
                          transplant.key_color, list(transplant.sources), cleans=cleans,
                          fine_masks=list(transplant.fine_masks), scheduler=config.scheduler,
                          timestep_spacing=config.timestep_spacing)
        metadata = self._metadata(kept, background_prompt, composite_prompt, negative_prompt, seed, config, dtype,
                                  timings)
        metadata["layout"] = kept.layouts[0].as_dict() if kept.layouts[0] else None
        latents = {"initial_noise": draws["noise"], "object_mask": composed["union"].cpu(),
                   "background_seedling": composed["background_seedling"].cpu(), "seedlings": seedlings}
        return TAUEResult(flattened, on_key[0], composed["background"], composed["composite"], union_image, metadata,
                          latents, result_objects, kept)
