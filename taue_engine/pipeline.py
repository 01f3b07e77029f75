"""TAUEPipeline: the three phases of TAUE as a short script over diffusers' SDXL pipeline.

Each phase is one call of `StableDiffusionXLPipeline.__call__` (its prompt handling, added time ids, scheduler
loop, guidance and VAE decode), steered by the pieces of the method: the initial latent, attention processors on
the cross-attention layers, and a `callback_on_step_end` that cuts the seedling and holds transplanted regions.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
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
from .config import MAX_SIZE, MIN_SIZE, SIZE_MULTIPLE, LayoutBox, TAUEConfig
from .green import dithered_mask, inject_green, layout_probability
from .keying import foreground_rgba
from .masks import object_mask, resize_mask
from .models.loading import DEFAULT_HUB_MODEL, choose_device_and_dtype, load_components, model_default_config
from .transplant import HeldRegion, highpass

PHASES = ("foreground", "composite", "background")
STOP_WORDS = {"a", "an", "the", "of", "on", "in", "with", "and", "at", "by", ",", ".", "!", "?", "-", "'s"}


class TAUECancelled(RuntimeError):
    """Raised out of the pipeline when a progress callback asks to stop."""


@dataclass(frozen=True)
class TAUEProgress:
    """One tick of progress: the phase, the step within it, and the whole job's step and total."""

    phase: str
    step: int
    phase_steps: int
    overall_step: int
    overall_total: int

    @property
    def fraction(self) -> float:
        return self.overall_step / self.overall_total


@dataclass
class TAUEResult:
    """The layers of one job, their metadata, and the method's intermediate tensors (for tests and re-use)."""

    foreground: Image.Image
    foreground_on_green: Image.Image
    background: Image.Image
    composite: Image.Image
    mask: Image.Image
    metadata: dict[str, Any]
    latents: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    LAYER_FILES = {
        "foreground": "foreground.png",
        "foreground_on_green": "foreground_on_green.png",
        "background": "background.png",
        "composite": "composite.png",
        "mask": "mask.png",
    }

    def save(self, directory: str | Path, psd: bool = True, ora: bool = True) -> dict[str, Path]:
        """Write the five PNG layers, taue.json and (by default) the layered result.psd and result.ora into
        `directory`; returns the paths written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, filename in self.LAYER_FILES.items():
            path = directory / filename
            getattr(self, name).save(path, format="PNG")
            written[name] = path
        path = directory / "taue.json"
        path.write_text(json.dumps(self.metadata, indent=2, sort_keys=True), encoding="utf-8")
        written["metadata"] = path
        layers = (self.foreground, self.background, self.composite, self.mask, self.metadata)
        if psd:
            from .psd import write_psd

            written["psd"] = write_psd(directory / "result.psd", *layers)
        if ora:
            from .ora import write_ora

            written["ora"] = write_ora(directory / "result.ora", *layers)
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
        if cpu_offload:
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        if vae_tiling:
            pipe.vae.enable_tiling()
        if vae_slicing:
            pipe.vae.enable_slicing()
        return pipe

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

    def _use_scheduler(self, config: TAUEConfig) -> None:
        if config.scheduler == "euler_discrete" and not isinstance(self.scheduler, EulerDiscreteScheduler):
            self.scheduler = EulerDiscreteScheduler.from_config(self.scheduler.config)

    @staticmethod
    def _check_request(foreground_prompt, background_prompt, composite_prompt, negative_prompt, seed, width,
                       height, layout) -> LayoutBox | None:
        for name, value, required in (("foreground_prompt", foreground_prompt, True),
                                      ("background_prompt", background_prompt, True),
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
        if layout is None or isinstance(layout, LayoutBox):
            return layout
        if isinstance(layout, dict):
            return LayoutBox(**{k: layout[k] for k in ("cx", "cy", "w", "h")})
        if isinstance(layout, (tuple, list)) and len(layout) == 4:
            return LayoutBox(*layout)
        raise ValueError(f"layout must be (cx, cy, w, h) in 0..1 (got {layout!r})")

    def _run_phase(self, index: int, config: TAUEConfig, embeds: tuple, guidance: float, latents: torch.Tensor,
                   size: tuple[int, int], on_latents: Callable[[int, torch.Tensor], torch.Tensor],
                   report: Callable[[int, int, torch.Tensor, Any], None]) -> Image.Image:
        """One denoising run through SDXL's own __call__, from `latents` in unit-variance noise space (SDXL scales
        them by init_noise_sigma); `on_latents(step_index, latents)` may edit the latent after every step."""
        prompt_embeds, negative_embeds, pooled, negative_pooled = embeds
        self.current_phase = PHASES[index]

        def step_end(pipe, i, t, callback_kwargs):
            latents = on_latents(i + 1, callback_kwargs["latents"])
            report(index, i, t, latents)
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
            callback_on_step_end=step_end,
            callback_on_step_end_tensor_inputs=["latents"],
        ).images[0]

    # ------------------------------------------------------------------ the method
    @torch.no_grad()
    def __call__(
        self,
        foreground_prompt: str,
        background_prompt: str,
        composite_prompt: str | None = None,
        negative_prompt: str | None = None,
        layout: LayoutBox | tuple | dict | None = None,
        seed: int = 0,
        width: int | None = None,
        height: int | None = None,
        config: TAUEConfig | None = None,
        progress_callback: ProgressCallback | None = None,
        callback_on_step_end: Callable | None = None,
    ) -> TAUEResult:
        """Generate the foreground, background and composite layers of one scene, from one seed.

        Args:
            foreground_prompt: T_fg, the object alone ("a red vintage bicycle").
            background_prompt: T_bg, the scene without the object ("a cobblestone street at dusk").
            composite_prompt: T_all; default `T_fg + ", " + T_bg`. Attended to by layers that do not shear, and
                the pooled text embedding of the composite phase.
            negative_prompt: used by all three phases; default none (SDXL's zeroed negative embedding).
            layout: where the object goes, (cx, cy, w, h) in 0..1; default: centred, TKG-DM's Gaussian.
            seed: one seed for all three phases: same seed, same pictures.
            width, height: multiples of 8; default the model's native size (1024 for SDXL).
            config: every hyperparameter of the method; default `self.default_config` (the paper's values, or
                those a model folder ships in `taue_config.json`).
            progress_callback: called after every denoising step with a `TAUEProgress`; returning False (or
                raising `TAUECancelled`) stops the job within that step.
            callback_on_step_end: diffusers-style `fn(pipe, step, timestep, callback_kwargs)`, called after the
                method's own edits with `callback_kwargs["latents"]`; `pipe.current_phase` names the phase.
        Returns:
            TAUEResult with the RGBA foreground, I_fg, I_bg, I_all, m_obj and metadata.
        Raises:
            ValueError: an argument or config value is out of range (the message names it).
            TAUECancelled: the progress callback stopped the job.
        """
        config = config or self.default_config
        default_size = self.unet.config.sample_size * self.vae_scale_factor
        width = default_size if width is None else width
        height = default_size if height is None else height
        layout = self._check_request(foreground_prompt, background_prompt, composite_prompt, negative_prompt,
                                     seed, width, height, layout)
        composite_prompt = composite_prompt or f"{foreground_prompt}, {background_prompt}"
        if len(config.green_latent) != self.unet.config.in_channels:
            raise ValueError(f"green_latent must have {self.unet.config.in_channels} values for this model "
                             f"(got {len(config.green_latent)})")
        self._use_scheduler(config)
        device = self._execution_device
        steps, crop = config.num_inference_steps, config.crop_step
        timings: dict[str, float] = {}
        started = time.perf_counter()

        # Prompt embeddings: computed once per prompt (one batch through each text encoder), reused by every phase.
        fg, bg, comp = self._encode_prompts([foreground_prompt, background_prompt, composite_prompt],
                                            negative_prompt, device)
        dtype = fg[0].dtype
        timings["encode_prompts"] = time.perf_counter() - started

        # One seed: all random draws of the job come from one generator, in a fixed order.
        generator = torch.Generator("cpu").manual_seed(seed)
        latent_h, latent_w = height // self.vae_scale_factor, width // self.vae_scale_factor
        shape = (1, self.unet.config.in_channels, latent_h, latent_w)
        noise = randn_tensor(shape, generator=generator, dtype=torch.float32)
        uniform = torch.rand((latent_h, latent_w), generator=generator)
        hold_noise_composite = randn_tensor(shape, generator=generator, dtype=torch.float32)
        hole_noise = randn_tensor(shape, generator=generator, dtype=torch.float32)
        hold_noise_background = randn_tensor(shape, generator=generator, dtype=torch.float32)
        to_device = lambda x: x.to(device=device, dtype=dtype)  # noqa: E731

        self.scheduler.set_timesteps(steps, device="cpu")
        sigmas = self.scheduler.sigmas.clone()
        init_sigma = float(self.scheduler.init_noise_sigma)
        total = 3 * steps
        bar_config = dict(getattr(self, "_progress_bar_config", {}))
        bar = self.progress_bar(total=total)
        self.set_progress_bar_config(**{**bar_config, "disable": True})

        def report(phase_index: int, i: int, t, latents: torch.Tensor) -> None:
            bar.update(1)
            if callback_on_step_end is not None:
                callback_on_step_end(self, i, t, {"latents": latents})
            if progress_callback is not None:
                tick = TAUEProgress(PHASES[phase_index], i + 1, steps, phase_index * steps + i + 1, total)
                if progress_callback(tick) is False:
                    raise TAUECancelled(f"cancelled during the {tick.phase} phase at step {tick.step}/{steps}")

        kept: dict[str, torch.Tensor] = {}
        original_processors = dict(self.unet.attn_processors)
        try:
            # ---- Phase 1: the object on an injected green latent; cut the seedling, capture attention.
            t0 = time.perf_counter()
            probability = layout_probability(latent_h, latent_w, layout,
                                              config.layout_mask_std if layout else config.mask_std,
                                              config.mask_p_min, config.mask_p_max)
            green_mask = dithered_mask(probability, uniform)
            initial_fg = inject_green(noise, green_mask, config.green_latent, config.green_alpha)
            capture = AttentionState(latent_size=(latent_h, latent_w), cfg=self._uses_cfg(config.guidance_foreground),
                                     capture_until=crop, capture_factors=config.attention_resolutions,
                                     token_indices=self._object_token_indices(foreground_prompt))
            install_processors(self.unet, lambda name: AttentionCaptureProcessor(capture, name))

            def cut_seedling(step_index: int, latents: torch.Tensor) -> torch.Tensor:
                capture.step = step_index
                if step_index == crop:
                    kept["seedling"] = latents.detach().clone()
                    self.unet.set_attn_processor(dict(original_processors))  # capture is over: no more cost
                return latents

            check_installed(self.unet, AttentionCaptureProcessor)
            foreground_on_green = self._run_phase(0, config, fg, config.guidance_foreground, to_device(initial_fg),
                                                  (height, width), cut_seedling, report)
            timings["foreground"] = time.perf_counter() - t0

            # ---- The object mask from the seedling's green signal and the object tokens' attention.
            t0 = time.perf_counter()
            seedling = kept["seedling"]
            attention_map = capture.attention_map()
            attention_map = None if attention_map is None else attention_map.float().cpu()
            m_obj, mask_source = object_mask(seedling.cpu(), attention_map, config.green_latent, config.tau_bg,
                                             config.tau_attention, config.mask_blur_sigma)
            timings["object_mask"] = time.perf_counter() - t0

            # ---- Phase 2: composite. Transplant the high-passed seedling, shear attention, hold then release.
            t0 = time.perf_counter()
            target = highpass(seedling, config.highpass_strength) if config.highpass else seedling
            hold_composite = HeldRegion(target, m_obj.to(device), to_device(hold_noise_composite), sigmas, crop,
                                        config.transplant_noise)
            initial_composite = hold_composite.apply(to_device(noise) * init_sigma, 0)
            cfg = self._uses_cfg(config.guidance_composite)
            pair = (lambda e: torch.cat([e[1], e[0]])) if cfg else (lambda e: e[0])  # CFG's [uncond, cond]
            shear = AttentionState(latent_size=(latent_h, latent_w), shear_mask=m_obj.to(device, dtype),
                                   shear_context=torch.cat([pair(fg), pair(bg)]))
            sheared_layers = [n for n in cross_attention_layers(self.unet) if block_of(n) in config.shear_blocks]
            install_processors(self.unet, lambda name: AttentionShearingProcessor(shear, name)
                               if name in sheared_layers else None)

            def hold_object(step_index: int, latents: torch.Tensor) -> torch.Tensor:
                latents = hold_composite.apply(latents, step_index)
                if step_index == crop:
                    kept["background_seedling"] = latents.detach().clone()
                return latents

            check_installed(self.unet, AttentionShearingProcessor, sheared_layers)
            composite = self._run_phase(1, config, comp, config.guidance_composite, initial_composite / init_sigma,
                                        (height, width), hold_object, report)
            timings["composite"] = time.perf_counter() - t0

            # ---- Phase 3: background. Transplant the composite's background, re-grow the hole from fresh noise.
            t0 = time.perf_counter()
            self.unet.set_attn_processor(dict(original_processors))  # diffusers empties the dict it is given
            hold_background = HeldRegion(kept["background_seedling"], (1 - m_obj).to(device),
                                         to_device(hold_noise_background), sigmas, crop, config.transplant_noise)
            initial_background = hold_background.apply(to_device(hole_noise) * init_sigma, 0)
            background = self._run_phase(2, config, bg, config.guidance_background, initial_background / init_sigma,
                                         (height, width), lambda k, z: hold_background.apply(z, k), report)
            timings["background"] = time.perf_counter() - t0
        finally:
            self.unet.set_attn_processor(dict(original_processors))
            self.set_progress_bar_config(**bar_config)
            bar.close()
            self.current_phase = None

        # ---- The layers.
        t0 = time.perf_counter()
        foreground, key_info = foreground_rgba(foreground_on_green, m_obj, config, device=device)
        mask_image = Image.fromarray(
            (resize_mask(m_obj, height, width).clamp(0, 1) * 255).round().to(torch.uint8).numpy(), mode="L")
        timings["keying"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - started

        metadata = {
            "taue_version": __version__,
            "prompts": {"foreground": foreground_prompt, "background": background_prompt,
                        "composite": composite_prompt, "negative": negative_prompt},
            "seed": seed,
            "width": width,
            "height": height,
            "layout": layout.as_dict() if layout else None,
            "config": config.to_dict(),
            "crop_step": crop,
            "model": self.model_name,
            "device": str(device),
            "dtype": str(dtype).replace("torch.", ""),
            "mask_source": mask_source,
            "mask_fraction": float(m_obj.mean()),
            "attention_maps_captured": capture.captured_maps,
            "key_color": key_info["key_color"],
            "timings_s": {k: round(v, 4) for k, v in timings.items()},
        }
        latents = {"initial_noise": noise, "green_mask": green_mask, "initial_foreground": initial_fg,
                   "seedling": seedling.cpu(), "object_mask": m_obj.cpu(),
                   "background_seedling": kept["background_seedling"].cpu()}
        if attention_map is not None:
            latents["attention"] = attention_map
        return TAUEResult(foreground, foreground_on_green, background, composite, mask_image, metadata, latents)
