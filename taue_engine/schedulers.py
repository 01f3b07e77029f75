"""The samplers TAUE runs on, by the names users know, and the one fact the method needs from each: the noise
level of the latent after k steps.

TAUE cuts a seedling at one step and holds it, at the noise level of the rest of the latent, in the later phases.
Every deterministic diffusers scheduler writes the latent after k steps as `scale_k * (x0 + sigma_k * noise)`:
Euler keeps latents in sigma space (scale 1, sigma from its table), the others in variance-preserving space
(scale sqrt(alpha_bar), sigma sqrt((1 - alpha_bar) / alpha_bar)). `NoiseLevels` gives both for a scheduler whose
timesteps are set, so that the hold and the noising of brought layers work in each one's own space.

Ancestral samplers add fresh noise at every step: they are refused (names below), with the sampler to use instead.
LCM re-noises every step too, but from the job's own step generator, the same in every phase, so that the held
object and the rest of the latent get the same fresh noise in phases 1 and 2. It is for LCM-distilled weights
(LCM-LoRA, DMD2) and their 2-12 steps: with more, it is refused (LCM_MAX_STEPS). On the toy, which is not distilled,
at 50 steps, PSNR_fg fell 0.65 dB (8 pairs) to 2.7 dB (4 pairs) below Euler's and alpha IoU from 0.71 to 0.23:
phase 1's key backdrop does not form when every step re-noises (benchmarks/schedulers.py).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch

SCHEDULERS = ("euler", "dpmpp_2m", "dpmpp_2m_karras", "ddim", "unipc", "lcm")
"""The samplers a job may name (CLI --scheduler, API field scheduler, TAUEConfig.scheduler)."""
ALIASES = {"euler_discrete": "euler"}  # the name version 1 wrote into taue.json
TIMESTEP_SPACINGS = ("model", "leading", "trailing", "linspace")
LCM_MAX_STEPS = 12
ANCESTRAL = {
    "euler_a": "euler", "euler_ancestral": "euler", "k_euler_a": "euler", "dpmpp_2s_a": "dpmpp_2m",
    "dpmpp_2s_ancestral": "dpmpp_2m", "dpmpp_sde": "dpmpp_2m", "dpmpp_2m_sde": "dpmpp_2m", "ddpm": "ddim",
    "tcd": "lcm",
}
"""Samplers that add fresh noise at each step, which a held region cannot follow: refused, with what to use."""


def scheduler_name(name: str) -> str:
    """The canonical name of a sampler, or a ValueError that says which to use."""
    if not isinstance(name, str):
        raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)} (got {name!r})")
    key = name.strip().lower().replace("-", "_").replace("+", "p").replace(" ", "_")
    key = ALIASES.get(key, key)
    if key in SCHEDULERS:
        return key
    if key in ANCESTRAL:
        raise ValueError(f"scheduler {name!r} adds fresh noise at every step, which the held seedling cannot follow: "
                         f"use {ANCESTRAL[key]!r} (one of {', '.join(SCHEDULERS)})")
    raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)} (got {name!r})")


def check_steps(name: str, steps: int) -> None:
    """ValueError when a sampler is asked for more steps than the weights it is made for take (LCM)."""
    if name == "lcm" and steps > LCM_MAX_STEPS:
        raise ValueError(f"scheduler 'lcm' is for LCM-distilled weights (LCM-LoRA, DMD2), which take 2-{LCM_MAX_STEPS} "
                         f"steps (got {steps}): use fewer steps, or 'euler' (the paper's) for {steps}")


def make_scheduler(name: str, base_config: dict, timestep_spacing: str = "model"):
    """A new scheduler of that name, from the checkpoint's scheduler config (its betas, prediction type and
    spacing); `timestep_spacing` other than 'model' overrides the spacing (few-step models want 'trailing')."""
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        LCMScheduler,
        UniPCMultistepScheduler,
    )

    name = scheduler_name(name)
    choices: dict[str, tuple[Any, dict[str, Any]]] = {
        "euler": (EulerDiscreteScheduler, {}),
        "dpmpp_2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                   "use_karras_sigmas": False, "final_sigmas_type": "zero"}),
        "dpmpp_2m_karras": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                          "use_karras_sigmas": True, "final_sigmas_type": "zero"}),
        "ddim": (DDIMScheduler, {"clip_sample": False, "set_alpha_to_one": False}),  # SDXL's: latents exceed +-1
        "unipc": (UniPCMultistepScheduler, {"predict_x0": True}),
        "lcm": (LCMScheduler, {}),
    }
    kind, settings = choices[name]
    if timestep_spacing != "model":
        settings["timestep_spacing"] = timestep_spacing
    accepted = set(inspect.signature(kind.__init__).parameters)  # other samplers' keys would only draw warnings
    config = {k: v for k, v in dict(base_config).items() if k in accepted}
    return kind.from_config({**config, **settings})


def name_of(scheduler) -> str | None:
    """Our name for a scheduler object (None: one we do not run)."""
    kind = type(scheduler).__name__
    if kind == "EulerDiscreteScheduler":
        return "euler"
    if kind == "DPMSolverMultistepScheduler":
        if scheduler.config.algorithm_type != "dpmsolver++" or scheduler.config.solver_order != 2:
            return None
        return "dpmpp_2m_karras" if scheduler.config.use_karras_sigmas else "dpmpp_2m"
    return {"DDIMScheduler": "ddim", "UniPCMultistepScheduler": "unipc", "LCMScheduler": "lcm"}.get(kind)


@dataclass(frozen=True)
class NoiseLevels:
    """The latent after k steps (k = 0: the initial latent) is scale[k] * (x0 + sigma[k] * noise)."""

    scale: torch.Tensor  # [steps + 1]
    sigma: torch.Tensor  # [steps + 1]

    @classmethod
    def of(cls, scheduler) -> NoiseLevels:
        """The levels of a scheduler whose timesteps are set (`set_timesteps`)."""
        kind = type(scheduler).__name__
        if kind == "EulerDiscreteScheduler":
            sigma = scheduler.sigmas.detach().to(torch.float64).cpu()
            return cls(torch.ones_like(sigma), sigma)
        if kind in ("DPMSolverMultistepScheduler", "UniPCMultistepScheduler"):
            sigma = scheduler.sigmas.detach().to(torch.float64).cpu()  # sqrt((1 - a) / a), 0 at the end
            return cls(1 / torch.sqrt(1 + sigma**2), sigma)
        if kind in ("DDIMScheduler", "LCMScheduler"):
            alphas = scheduler.alphas_cumprod.detach().to(torch.float64).cpu()
            final = float(scheduler.final_alpha_cumprod)
            timesteps = [int(t) for t in scheduler.timesteps]
            if kind == "DDIMScheduler":  # DDIM steps to t - T/N, whatever the spacing
                stride = scheduler.config.num_train_timesteps // scheduler.num_inference_steps
                after = [t - stride for t in timesteps]
            else:  # LCM steps to the next timestep; its last step returns the clean estimate itself
                after = timesteps[1:] + [-1]
            levels = [float(alphas[timesteps[0]])] + [float(alphas[t]) if t >= 0 else final for t in after]
            if kind == "LCMScheduler":
                levels[-1] = 1.0
            alpha = torch.tensor(levels, dtype=torch.float64)
            return cls(alpha.sqrt(), ((1 - alpha) / alpha).clamp_min(0).sqrt())
        raise ValueError(f"TAUE cannot hold a region in {kind}'s latents: use one of {', '.join(SCHEDULERS)}")

    def noised(self, clean: torch.Tensor, noise: torch.Tensor, step: int) -> torch.Tensor:
        """The latent a clean latent has after `step` steps, with this noise."""
        scale, sigma = float(self.scale[step]), float(self.sigma[step])
        noisy = clean + sigma * noise
        return noisy if scale == 1.0 else scale * noisy


def clean_estimate_of(scheduler, output) -> torch.Tensor | None:
    """x0-hat of the step that produced `output`: the scheduler's own (Euler's and DDIM's pred_original_sample,
    LCM's denoised, DPM-Solver++'s and UniPC's converted model output, which they keep for their next step)."""
    if isinstance(output, tuple):  # return_dict=False, as SDXL's loop calls step: (prev_sample, x0-hat) or one
        if len(output) > 1 and output[1] is not None:
            return output[1]
    else:
        for name in ("pred_original_sample", "denoised"):
            value = getattr(output, name, None)
            if value is not None:
                return value
    kind = type(scheduler).__name__
    predicts_x0 = (kind == "DPMSolverMultistepScheduler" and scheduler.config.algorithm_type == "dpmsolver++") or (
        kind == "UniPCMultistepScheduler" and scheduler.config.predict_x0)
    if predicts_x0 and getattr(scheduler, "model_outputs", None) and scheduler.model_outputs[-1] is not None:
        return scheduler.model_outputs[-1]
    return None


def prepare_for_hold(scheduler, crop_step: int) -> None:
    """UniPC's corrector rewrites each step's input from the step before it, which undoes a held region (measured
    on the toy: PSNR_fg 3 dB below Euler's with it): off for the steps whose input TAUE edits (the latents after
    0..crop_step steps), in every phase alike, so that the object evolves the same in phases 1 and 2."""
    if type(scheduler).__name__ == "UniPCMultistepScheduler":
        scheduler.disable_corrector = list(range(crop_step))



class SamplerMixin:
    """The job's sampler, for a diffusers pipeline with `scheduler`: one instance per (sampler, spacing), each
    built from the checkpoint's own scheduler config, kept as it was loaded, so that switching samplers between
    jobs never drifts. The pipeline's __init__ calls `_init_samplers`."""

    scheduler: Any  # the pipeline's registered scheduler

    def _init_samplers(self) -> None:
        self._base_scheduler_config = dict(self.scheduler.config)
        self._schedulers: dict[tuple[str, str], Any] = {}
        self._job_seed = 0

    def prepare_sampler(self, config, seed: int) -> None:
        """Put the sampler `config` names in place, set it up for the hold (prepare_for_hold) and seed the noise
        its steps draw (`step_generator`)."""
        base, made = self._base_scheduler_config, self._schedulers
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

    def step_generator(self) -> torch.Generator:
        """Fresh noise a sampler draws inside its steps (LCM's re-noising): the same stream, from the job's seed,
        in every phase, so the held object and the rest of the latent are re-noised alike in phases 1 and 2."""
        return torch.Generator("cpu").manual_seed(self._job_seed)
