"""What each phase of TAUE hands the next, typed: the job every phase shares (`Job`, with its random draws in
`SceneDraws`), an object grown by phase 1 (`PhaseOneRun`, then with its masks `GrownObject`) and the scene phases 2
and 3 compose (`Composition`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from .config import TAUEConfig


@dataclass(frozen=True)
class SceneDraws:
    """The random draws of one scene, in the order they are drawn from the job's one generator: one seed, same
    pictures. Objects after the first, and layers noised into seedlings, draw theirs after these (`Job.next_noise`),
    so that a one-object job draws exactly what version 1 drew."""

    noise: torch.Tensor  # z_T: the first object's initial noise, and the composite's
    uniform: torch.Tensor  # [h, w] in 0..1: the first object's dither of the key-injection mask
    hold_composite: torch.Tensor  # the noise the composite's held objects carry until the cut
    hole: torch.Tensor  # the background's initial noise
    hold_background: torch.Tensor  # the noise the background's held surroundings carry until the cut

    @classmethod
    def draw(cls, generator: torch.Generator, shape: tuple[int, ...]) -> SceneDraws:
        noise = randn_tensor(shape, generator=generator, dtype=torch.float32)
        uniform = torch.rand(shape[-2:], generator=generator)
        hold_composite = randn_tensor(shape, generator=generator, dtype=torch.float32)
        hole = randn_tensor(shape, generator=generator, dtype=torch.float32)
        hold_background = randn_tensor(shape, generator=generator, dtype=torch.float32)
        return cls(noise, uniform, hold_composite, hole, hold_background)


@dataclass
class Job:
    """What every phase of one job shares, set up once (`TAUEPipeline._prepare_job`): its settings, every prompt
    encoded, its generator and the scene's draws; `timings` fill as the phases run."""

    config: TAUEConfig
    prompts: list[str]  # the objects', in request order
    background_prompt: str
    composite_prompt: str  # T_all, defaulted when the request gave none
    negative_prompt: str | None
    seed: int
    size: tuple[int, int]  # (height, width) of the image
    shape: tuple[int, ...]  # (1, C, h, w) of its latent
    object_embeds: list[tuple]  # per object: (embeds, negative embeds, pooled, negative pooled)
    background_embeds: tuple  # T_bg's
    composite_embeds: tuple  # T_all's
    generator: torch.Generator
    draws: SceneDraws
    started: float  # time.perf_counter() when the work began
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def dtype(self) -> torch.dtype:
        return self.background_embeds[0].dtype

    def next_noise(self) -> torch.Tensor:
        """The next unit-variance noise latent of the job's stream."""
        return randn_tensor(self.shape, generator=self.generator, dtype=torch.float32)

    def next_uniform(self) -> torch.Tensor:
        """The next [h, w] of uniform values in 0..1 (an object's dither)."""
        return torch.rand(self.shape[-2:], generator=self.generator)


@dataclass
class PhaseOneRun:
    """What phase 1's run of one object gives, and its mask is made from: what it painted, the seedling cut at
    t_crop with its clean estimate, the object tokens' attention (TAUEPipeline.object_mask reads it)."""

    on_key: Image.Image  # I_fg: the object on the key colour
    seedling: torch.Tensor  # [1, C, h, w]: the latent at t_crop, on the pipeline's device
    clean: torch.Tensor  # [1, C, h, w] float32 on the CPU: the sampler's x0-hat of the seedling
    attention: torch.Tensor | None  # [h, w] float32 on the CPU: A_fg, the object tokens' attention before the cut
    key_mask: torch.Tensor  # [h, w] 0/1: where the key colour was injected
    initial: torch.Tensor  # [1, C, h, w]: the injected initial latent
    maps_captured: int  # attention maps that made A_fg
    key_distance: torch.Tensor | None = None  # [H, W]: the clean estimate's distance from the key colour


@dataclass(kw_only=True)
class GrownObject(PhaseOneRun):
    """One object as phase 1 hands it on: its run, and the masks made from it."""

    fine_mask: torch.Tensor  # [H, W] 0/1: m_obj
    mask_source: str  # which signals made m_obj (masks.object_mask says which names; or an override's own)
    held_mask: torch.Tensor  # [h, w] 0/1: the latent cells the transplant holds in phase 2
    key_color: str = ""  # the key colour phase 1 painted (keying.formed_key), which the mask and keying read


@dataclass
class Composition:
    """What phases 2 and 3 make of the objects: the composite and background pictures, the union of the held
    cells, and the background's seedling (the composite's latent at t_crop)."""

    composite: Image.Image
    background: Image.Image
    union: torch.Tensor  # [h, w] in 0..1
    background_seedling: torch.Tensor  # [1, C, h, w]
