"""TAUEPipeline: the three phases of TAUE as a short script over diffusers' SDXL pipeline.

Each phase is one call of `StableDiffusionXLPipeline.__call__` (its prompt handling, added time ids, scheduler
loop, guidance and VAE decode), steered by the pieces of the method: the initial latent, attention processors on
the cross-attention layers, and a `callback_on_step_end` that cuts the seedling and holds transplanted regions.
What is not the method lives beside it, as mixins and helpers: the LoRAs (lora_manager.py), the sampler cache
(schedulers.py), the VAE's latents (vae_io.py), the prompts (prompts.py), previews (previews.py), one job's runs
(runs.py), what the phases hand each other (phases.py) and the result with its files (results.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel
from diffusers.schedulers import KarrasDiffusionSchedulers
from PIL import Image
from transformers import (
    CLIPImageProcessor,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    CLIPVisionModelWithProjection,
)

from . import attention as attn
from . import hold, masks
from .clean_estimate import clean_estimates
from .config import KEY_COLORS, LayoutBox, TAUEConfig
from .green import dithered_mask, inject_green, layout_probability
from .hold import HeldRegion, highpass
from .keying import foreground_rgba, formed_key
from .lora_manager import LoraManagerMixin
from .mask_checks import MIN_BACKDROP, phase_one_warnings
from .models import loading
from .models.vocabulary import model_words
from .objects import SceneObject, check_request, scene_objects
from .phases import Composition, GrownObject, Job, PhaseOneRun, SceneDraws
from .previews import PreviewMixin
from .prompts import PromptMixin
from .release import KeyedRelease
from .results import (
    ProgressCallback,
    ResultObject,
    TAUECancelled,
    TAUEProgress,
    TAUEResult,
    object_results,
    result_metadata,
)
from .runs import StepReport, denoising_runs, one_run_at_a_time
from .schedulers import NoiseLevels, SamplerMixin
from .transplant import Transplant, over_key
from .vae_io import VaeIOMixin

__all__ = ["TAUEPipeline", "TAUEResult", "TAUEProgress", "TAUECancelled", "ResultObject", "ProgressCallback"]


class TAUEPipeline(LoraManagerMixin, PromptMixin, SamplerMixin, VaeIOMixin, PreviewMixin, StableDiffusionXLPipeline):
    """Layered generation (foreground RGBA, background, composite) with TAUE on any SDXL checkpoint.

    Two methods are the extension points of experiments that change one piece of the method and keep the rest:
    `object_mask` (m_obj; lab/testbed.py's oracle_pipeline puts the truth there) and `seedling_at_cut` (the latent
    phase 1 cuts; lab/benchmarks/truth_at_cut.py puts the truth there). Override them in a subclass.
    """

    def __init__(self, vae: AutoencoderKL, text_encoder: CLIPTextModel, text_encoder_2: CLIPTextModelWithProjection,
                 tokenizer: CLIPTokenizer, tokenizer_2: CLIPTokenizer, unet: UNet2DConditionModel,
                 scheduler: KarrasDiffusionSchedulers, image_encoder: CLIPVisionModelWithProjection = None,
                 feature_extractor: CLIPImageProcessor = None, force_zeros_for_empty_prompt: bool = True,
                 add_watermarker: bool | None = None):
        # SDXL's parameters, unchanged: diffusers reads the components off this signature (from_pretrained, components)
        super().__init__(vae, text_encoder, text_encoder_2, tokenizer, tokenizer_2, unet, scheduler,
                         image_encoder=image_encoder, feature_extractor=feature_extractor,
                         force_zeros_for_empty_prompt=force_zeros_for_empty_prompt, add_watermarker=add_watermarker)
        self.model_name = "unknown"
        self.default_config = TAUEConfig()  # a call without config: the paper's, or the model folder's own
        self.known_words: frozenset[str] | None = None  # the model's vocabulary (None: it publishes none)
        self.current_phase: str | None = None  # 'foreground', 'composite' or 'background' while one runs
        self._run_lock = threading.RLock()  # one job at a time (runs.one_run_at_a_time)
        self._init_loras()
        self._init_samplers()
        self._init_vae_io()
        self._init_previews()

    @classmethod
    def from_pretrained(
        cls,
        model: str = loading.DEFAULT_HUB_MODEL,
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        cpu_offload: bool = False,
        vae_tiling: bool = False,
        vae_slicing: bool = False,
        single_file_config: str | None = None,
        vae: str | Any | None = None,
        **kwargs: Any,
    ) -> TAUEPipeline:
        """Load `model`: a hub id, a local diffusers folder, a single .safetensors checkpoint, or 'tiny-random'.

        Args:
            device: 'cuda', 'mps' or 'cpu'; default: the best available.
            dtype: default float16 on CUDA and MPS, float32 on the CPU.
            cpu_offload: keep idle sub-models in CPU memory (small GPUs).
            vae_tiling, vae_slicing: decode in tiles / slices (small GPUs, large images).
            single_file_config: a local diffusers SDXL folder whose configs describe a single-file checkpoint
                (otherwise diffusers looks them up on the hub).
            vae: in place of the model's own VAE (replace_vae): a diffusers VAE folder, a .safetensors VAE file, a
                hub id (madebyollin/sdxl-vae-fp16-fix: SDXL's VAE fixed for float16) or a module.
        Raises:
            ModelLoadError: the model cannot be found; the message says what to do.
        """
        device, torch_dtype = loading.choose_device_and_dtype(device, dtype)
        pipe = loading.load_components(
            model, torch_dtype, build=lambda components: cls(**components),
            from_pretrained=lambda path, **options: super(TAUEPipeline, cls).from_pretrained(path, **options),
            from_single_file=cls.from_single_file, single_file_config=single_file_config, **kwargs)
        if type(pipe) is not cls:
            pipe = cls(**pipe.components)
        pipe.model_name = model
        if vae is not None:
            pipe.replace_vae(vae, torch_dtype)
        pipe.default_config = loading.model_default_config(model)
        pipe.known_words = model_words(loading.model_folder(model))
        if cpu_offload:
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        if vae_tiling:
            pipe.vae.enable_tiling()
        if vae_slicing:
            pipe.vae.enable_slicing()
        pipe.key_latents()  # the model's calibration, measured once at load
        return pipe

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
        # 1. Check inputs
        config = config or self.default_config
        default_size = self.unet.config.sample_size * self.vae_scale_factor
        width = default_size if width is None else width
        height = default_size if height is None else height
        scene = scene_objects(objects, foreground_prompt, layout)
        check_request(background_prompt, composite_prompt, negative_prompt, seed, width, height)
        assert background_prompt is not None  # check_request refused anything but a non-empty string
        self.key_latent(config)  # checks green_latent against the model

        # 2. Set the job up: its sampler, every prompt encoded once, the scene's random draws
        job = self._prepare_job(config, [obj.prompt for obj in scene], background_prompt, composite_prompt,
                                negative_prompt, seed, (height, width))

        # 3. Each object's initial noise and dither: the first object's are the scene's, the others' come after
        draws = [(job.draws.noise, job.draws.uniform)] + [(job.next_noise(), job.next_uniform()) for _ in scene[1:]]

        steps, several = config.num_inference_steps, len(scene) > 1
        with denoising_runs(self, (len(scene) + 2) * steps, steps, progress_callback,
                            callback_on_step_end) as (report, original_processors):
            # 4. Phase 1, per object: the object on the key colour, its seedling cut at t_crop, its mask m_obj
            grown = []
            for k, (obj, embeds, (noise, uniform)) in enumerate(zip(scene, job.object_embeds, draws)):
                t0 = time.perf_counter()
                grown.append(self._grow_object(job, obj, embeds, noise, uniform,
                                               report(k, "foreground", k + 1 if several else None),
                                               original_processors))
                job.timings[f"foreground_{k + 1}" if several else "foreground"] = time.perf_counter() - t0

            # 5. Phases 2 and 3: the composite around the held seedlings, then the background around the objects
            composed = self._compose(job, [g.seedling for g in grown], [g.clean for g in grown],
                                     [g.held_mask for g in grown], [g.fine_mask for g in grown],
                                     [g.key_color for g in grown], report(len(scene), "composite", None),
                                     report(len(scene) + 1, "background", None), original_processors)

        # 6. Key each object's layer out of what phase 1 painted, gated by its mask
        t0 = time.perf_counter()
        keyed = [foreground_rgba(g.on_key, g.fine_mask, config, self._execution_device, g.key_color) for g in grown]
        job.timings["keying"] = time.perf_counter() - t0

        # 7. The result: the layers, the kept objects (what new backgrounds start from), metadata and tensors
        kept = Transplant(job.prompts, [obj.layout for obj in scene], [layer for layer, _ in keyed],
                          [g.seedling.float().cpu() for g in grown], [g.held_mask.cpu() for g in grown], width,
                          height, steps, config.crop_step, self.model_name, config.key_color,
                          cleans=[g.clean for g in grown], fine_masks=[g.fine_mask.cpu() for g in grown],
                          scheduler=config.scheduler, timestep_spacing=config.timestep_spacing)
        first = grown[0]
        latents: dict[str, Any] = {"green_mask": first.key_mask, "initial_foreground": first.initial,
                   "seedling": first.seedling.cpu(), "clean_estimate": first.clean}
        if first.attention is not None:
            latents["attention"] = first.attention
        if several:
            latents.update(seedlings=[g.seedling.cpu() for g in grown], clean_estimates=[g.clean for g in grown],
                           object_masks=[g.held_mask.cpu() for g in grown])
        return self._assemble(job, kept, [g.on_key for g in grown], composed, latents, grown,
                              [info for _, info in keyed])

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
        # 1. Check inputs: the request's, then whether these objects can be composed with `config` on this model
        config = config or self.default_config
        if not isinstance(transplant, Transplant):
            raise ValueError(f"transplant must be a Transplant (got {type(transplant).__name__})")
        check_request(background_prompt, composite_prompt, negative_prompt, seed, transplant.width, transplant.height)
        self.key_latent(config)  # checks green_latent against the model
        transplant.check_composable(config, self.vae_scale_factor)

        # 2. Set the job up: its sampler, every prompt encoded once, the scene's random draws
        job = self._prepare_job(config, list(transplant.prompts), background_prompt, composite_prompt,
                                negative_prompt, seed, (transplant.height, transplant.width))

        # 3. The seedlings: those kept, or a brought or moved layer's latent (exactly clean) noised to t_crop
        levels = NoiseLevels.of(self.scheduler)
        seedlings, cleans = [], []
        for layer, seedling, clean in zip(transplant.layers, transplant.seedlings, transplant.cleans):
            if seedling is None:
                clean = self.encode_pixels(over_key(layer, KEY_COLORS[config.key_color]))
                seedling = levels.noised(clean, job.next_noise(), config.crop_step)
            if tuple(seedling.shape) != job.shape:
                raise ValueError(f"a kept seedling is {tuple(seedling.shape)}, this model needs {job.shape}")
            seedlings.append(seedling.to(device=self._execution_device, dtype=job.dtype))
            cleans.append(None if clean is None else clean.float().cpu())
        job.timings["encode"] = time.perf_counter() - job.started

        # 4. Phases 2 and 3 around the objects
        steps = config.num_inference_steps
        with denoising_runs(self, 2 * steps, steps, progress_callback,
                            callback_on_step_end) as (report, original_processors):
            composed = self._compose(job, seedlings, cleans, [m.to(self._execution_device) for m in transplant.masks],
                                     transplant.fine_masks, [transplant.key_color] * len(seedlings),
                                     report(0, "composite", None), report(1, "background", None), original_processors)

        # 5. The result: the objects' own layers, kept with the seedlings they were composed from
        kept = replace(transplant, seedlings=[s.float().cpu() for s in seedlings],
                       masks=[m.cpu() for m in transplant.masks], cleans=cleans, model=self.model_name,
                       scheduler=config.scheduler, timestep_spacing=config.timestep_spacing)
        on_key = [over_key(layer, KEY_COLORS[kept.key_color]) for layer in kept.layers]
        return self._assemble(job, kept, on_key, composed, {"seedlings": seedlings})

    # ------------------------------------------------------------------ the shared setup
    def _prepare_job(self, config: TAUEConfig, prompts: list[str], background_prompt: str,
                     composite_prompt: str | None, negative_prompt: str | None, seed: int,
                     size: tuple[int, int]) -> Job:
        """What every job does before its phases: the sampler in place, every prompt encoded once (one batch through
        each text encoder, reused by every phase), one generator and the scene's draws from it, the timesteps."""
        self.prepare_sampler(config, seed)
        started = time.perf_counter()
        composite_prompt, object_embeds, bg, comp = self._encode_scene(prompts, background_prompt, composite_prompt,
                                                                       negative_prompt)
        encoded = time.perf_counter() - started
        generator = torch.Generator("cpu").manual_seed(seed)
        shape = (1, self.unet.config.in_channels, size[0] // self.vae_scale_factor, size[1] // self.vae_scale_factor)
        draws = SceneDraws.draw(generator, shape)
        self.scheduler.set_timesteps(config.num_inference_steps, device="cpu")
        return Job(config, prompts, background_prompt, composite_prompt, negative_prompt, seed, size, shape,
                   object_embeds, bg, comp, generator, draws, started, {"encode_prompts": encoded})

    # ------------------------------------------------------------------ the phases
    def _run_phase(self, job: Job, phase: str, embeds: tuple, guidance: float, latents: torch.Tensor,
                   on_latents: Callable[[int, torch.Tensor], torch.Tensor], report: StepReport) -> Image.Image:
        """One denoising run through SDXL's own __call__, from `latents` in unit-variance noise space (SDXL scales
        them by init_noise_sigma); `on_latents(step_index, latents)` may edit the latent after every step."""
        prompt_embeds, negative_embeds, pooled, negative_pooled = embeds
        self.current_phase = phase

        def step_end(pipe, i, t, callback_kwargs):
            latents = on_latents(i + 1, callback_kwargs["latents"])
            report(i, t, latents)
            return {"latents": latents}

        height, width = job.size
        return super().__call__(
            prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_embeds,
            pooled_prompt_embeds=pooled,
            negative_pooled_prompt_embeds=negative_pooled,
            num_inference_steps=job.config.num_inference_steps,
            guidance_scale=guidance,
            latents=latents,
            height=height,
            width=width,
            output_type="pil",
            generator=self.step_generator(),
            callback_on_step_end=step_end,
            callback_on_step_end_tensor_inputs=["latents"],
        ).images[0]

    def _grow_object(self, job: Job, obj: SceneObject, embeds: tuple, noise: torch.Tensor, uniform: torch.Tensor,
                     report: StepReport, original_processors: dict) -> GrownObject:
        """Phase 1 for one object: the object on an injected key-colour latent; the seedling is cut at t_crop, the
        object tokens' attention is captured before it, and the object mask is made from both."""
        config, size = job.config, job.size
        device, dtype = self._execution_device, embeds[0].dtype
        (latent_h, latent_w), crop = noise.shape[-2:], config.crop_step
        probability = layout_probability(latent_h, latent_w, obj.layout,
                                         config.layout_mask_std if obj.layout else config.mask_std,
                                         config.mask_p_min, config.mask_p_max,
                                         power=config.layout_mask_power if obj.layout else 1.0)
        key_mask = dithered_mask(probability, uniform)
        initial = inject_green(noise, key_mask, self.key_latent(config), config.green_alpha)
        capture = attn.AttentionState(latent_size=(latent_h, latent_w), cfg=self._uses_cfg(config.guidance_foreground),
                                      capture_until=crop, capture_factors=config.attention_resolutions,
                                      token_indices=self._object_token_indices(obj.prompt))
        attn.install_processors(self.unet, lambda name: attn.AttentionCaptureProcessor(capture, name))
        kept: dict[str, torch.Tensor] = {}

        def cut_seedling(step_index: int, latents: torch.Tensor) -> torch.Tensor:
            capture.step = step_index
            if step_index == crop:
                latents = self.seedling_at_cut(latents, config)
                kept["seedling"] = latents.detach().clone()
                self.unet.set_attn_processor(dict(original_processors))  # capture is over: no more cost
            return latents

        attn.check_installed(self.unet, attn.AttentionCaptureProcessor)
        with clean_estimates(self.scheduler, {crop}) as clean:
            on_key = self._run_phase(job, "foreground", embeds, config.guidance_foreground,
                                     initial.to(device=device, dtype=dtype), cut_seedling, report)
        attention, estimate, captured = capture.attention_map(), clean[crop].float().cpu(), capture.captured_maps
        attention = None if attention is None else attention.float().cpu()
        around = masks.backdrop_region(key_mask, attention, size, config.tau_attention)
        config = config.replace(key_color=formed_key(on_key, around, config.key_color, MIN_BACKDROP))
        distance = self.key_distance_map(estimate, config, size, around)
        run = PhaseOneRun(on_key=on_key, seedling=kept["seedling"], clean=estimate, attention=attention,
                          key_mask=key_mask, initial=initial, maps_captured=captured, key_distance=distance)
        fine_mask, source = self.object_mask(run, config, size)
        off_key = distance > config.tau_bg * config.hold_growth_key_distance
        held = masks.hold_mask(fine_mask, (latent_h, latent_w), config.hold_fraction, config.hold_dilation, off_key)
        return GrownObject(**vars(run), fine_mask=fine_mask, mask_source=source, held_mask=held,
                           key_color=config.key_color)

    def seedling_at_cut(self, latents: torch.Tensor, config: TAUEConfig) -> torch.Tensor:
        """Extension point: phase 1's latent after t_crop steps, which becomes the object's seedling and the latent
        phase 1 goes on from. The latent itself; lab/benchmarks/truth_at_cut.py puts the object's truth there."""
        return latents

    def object_mask(self, run: PhaseOneRun, config: TAUEConfig, size: tuple[int, int]) -> tuple[torch.Tensor, str]:
        """Extension point: m_obj of one object's phase-1 run at image resolution `size`, and which signals made it:
        the seedling's clean estimate far from the key AND the object tokens' attention (masks.object_mask). The
        one place the mask is made, so that an experiment can put another in its place (lab/testbed.py's
        oracle_pipeline puts the truth). Reads `run.clean` when `run.key_distance` is not set."""
        distance = run.key_distance
        if distance is None:
            distance = self.key_distance_map(run.clean, config, size)
        return masks.object_mask(distance, run.attention, size, config.tau_bg, config.tau_attention,
                                 config.mask_blur, config.mask_dilation)

    def _compose(self, job: Job, seedlings: list[torch.Tensor], cleans: list[torch.Tensor | None],
                 held_masks: list[torch.Tensor], fine_masks: Sequence, key_names: Sequence[str],
                 report_composite: StepReport, report_background: StepReport, original_processors: dict) -> Composition:
        """Phases 2 and 3 from the objects' seedlings, clean estimates, held cells, fine masks and keys: the composite
        cultivated from the high-passed seedlings (held in their cells, later objects in front, released keyed over
        its own background) with each object's prompt sheared into its visible part, then the background
        transplanted from the composite outside all of them. Objects kept without a clean estimate (by an older
        version) are transplanted unsharpened and released as held."""
        config, draws = job.config, job.draws
        device, dtype = self._execution_device, job.dtype
        to_device = lambda x: x.to(device=device, dtype=dtype)  # noqa: E731
        crop = config.crop_step
        levels = NoiseLevels.of(self.scheduler)
        init_sigma = float(self.scheduler.init_noise_sigma)
        targets = [highpass(s, c, config.highpass_strength, m) if config.highpass and c is not None else s
                   for s, c, m in zip(seedlings, cleans, held_masks)]
        target, union, shear_mask, weights = hold.combine(targets, held_masks)
        release = (KeyedRelease(cleans, fine_masks, held_masks, key_names, weights, union, config, self.decode_latent,
                                self.encode_pixels, device)
                   if config.release_keyed and all(c is not None for c in cleans) else None)
        kept: dict[str, torch.Tensor] = {}

        # Phase 2: composite. Transplant the high-passed seedlings, shear attention, hold, release them keyed.
        t0 = time.perf_counter()
        hold_composite = HeldRegion(target, union.to(device), to_device(draws.hold_composite), levels, crop,
                                    config.transplant_noise, release)
        initial_composite = hold_composite.apply(to_device(draws.noise) * init_sigma, 0)
        cfg = self._uses_cfg(config.guidance_composite)
        pair = (lambda e: torch.cat([e[1], e[0]])) if cfg else (lambda e: e[0])  # CFG's [uncond, cond]
        shear = attn.AttentionState(latent_size=(int(union.shape[-2]), int(union.shape[-1])),
                                    shear_mask=shear_mask.to(device, dtype),
                                    shear_context=torch.cat([pair(e) for e in job.object_embeds]
                                                            + [pair(job.background_embeds)]))
        sheared_layers = [n for n in attn.cross_attention_layers(self.unet) if attn.block_of(n) in config.shear_blocks]
        attn.install_processors(self.unet, lambda name: attn.AttentionShearingProcessor(shear, name)
                                if name in sheared_layers else None)

        def hold_objects(step_index: int, latents: torch.Tensor) -> torch.Tensor:
            latents = hold_composite.apply(latents, step_index, latest.get("latest"))
            if step_index == crop:
                kept["background_seedling"] = latents.detach().clone()
            return latents

        attn.check_installed(self.unet, attn.AttentionShearingProcessor, sheared_layers)
        with clean_estimates(self.scheduler, None) as latest:
            composite = self._run_phase(job, "composite", job.composite_embeds, config.guidance_composite,
                                        initial_composite / init_sigma, hold_objects, report_composite)
        job.timings["composite"] = time.perf_counter() - t0

        # Phase 3: background. Transplant the composite's background, re-grow the holes from fresh noise.
        t0 = time.perf_counter()
        self.unet.set_attn_processor(dict(original_processors))  # diffusers empties the dict it is given
        hold_background = HeldRegion(kept["background_seedling"], (1 - union).to(device),
                                     to_device(draws.hold_background), levels, crop, config.transplant_noise)
        initial_background = hold_background.apply(to_device(draws.hole) * init_sigma, 0)
        background = self._run_phase(job, "background", job.background_embeds, config.guidance_background,
                                     initial_background / init_sigma, lambda k, z: hold_background.apply(z, k),
                                     report_background)
        job.timings["background"] = time.perf_counter() - t0
        return Composition(composite, background, union, kept["background_seedling"])

    # ------------------------------------------------------------------ the shared result
    def _assemble(self, job: Job, kept: Transplant, on_key: list[Image.Image], composed: Composition,
                  latents: dict[str, Any], grown: Sequence[GrownObject] = (),
                  keyed: Sequence[dict[str, Any]] = ()) -> TAUEResult:
        """The result as both __call__ and new_background give it: each object's layer and visible mask, the
        objects flattened, metadata (with the masks and key colours phase 1 found, where it ran, and what the user
        should hear of them) and the method's tensors (`latents`: the caller's, with the scene's own)."""
        objects, flattened, union_image = object_results(kept, on_key)
        job.timings["total"] = time.perf_counter() - job.started
        prompts = {"foreground": " + ".join(kept.prompts), "background": job.background_prompt,
                   "composite": job.composite_prompt, "negative": job.negative_prompt}
        metadata = result_metadata(kept, prompts, job.seed, job.config, self.model_name, self.active_loras, str(
            self._execution_device), job.dtype, job.timings, self.vae_name, self.key_latents())
        if grown:  # phase 1 ran
            metadata.update({"mask_source": grown[0].mask_source, "key_color": keyed[0]["key_color"],
                             "attention_maps_captured": sum(g.maps_captured for g in grown)})
            for entry, g, info in zip(metadata["objects"], grown, keyed):
                entry.update({"mask_source": g.mask_source, "mask_fraction": float(g.fine_mask.mean()), **info})
            metadata["warnings"] = phase_one_warnings(metadata["objects"], job.config.key_color)
        latents = {"initial_noise": job.draws.noise, "object_mask": composed.union.cpu(),
                   "background_seedling": composed.background_seedling.cpu(), **latents}
        return TAUEResult(flattened, on_key[0], composed.background, composed.composite, union_image, metadata,
                          latents, objects, kept)
