"""The two-stage hold of noise transplantation: the Laplacian high-pass that sharpens a seedling before it is put
in, `HeldRegion`, which holds that region at the rest of the latent's noise level up to the cut, then lets go
(release.KeyedRelease: over the composite's background), and `combine`, one held region for several objects."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .masks import erode, front_to_back

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """Per-channel 3x3 Laplacian of a [B, C, H, W] tensor with replicated borders."""
    channels = x.shape[1]
    kernel = _LAPLACIAN.to(x.device, x.dtype).view(1, 1, 3, 3).repeat(channels, 1, 1, 1)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=channels)


def highpass(seedling: torch.Tensor, clean: torch.Tensor, strength: float, held: torch.Tensor | None = None
             ) -> torch.Tensor:
    """f(L) = L + k * HP(x0-hat) with HP = -Laplacian: the seedling with its signal's edges sharpened and its noise
    left as it is, so that the region is released at the seedling's own noise level. (Filtering the noisy seedling
    itself, x - k Laplacian(x), would multiply its noise's std by sqrt(1 + 8k + 20k^2): 1.84 at k = 0.2.)

    `held` ([h, w] of 0/1: the cells the transplant holds) limits it to the held object's inside, the held cells
    eroded by one: a held cell on the rim has backdrop in its Laplacian's reach, and sharpening that edge writes
    the object's contrast against the key colour into the composite (speckled rims on a small latent)."""
    detail = laplacian(clean.to(seedling.device, seedling.dtype))
    if held is not None:
        inside = erode(held.float(), 1)
        detail = detail * inside.to(detail.device, detail.dtype)
    return seedling - strength * detail


class HeldRegion:
    """Two-stage noise blending for one transplanted region, in the scheduler's own noise space.

    Stage 1 (step index k <= t_crop): inside `mask` the latent is held to the target's clean part at the noise
    level of step k, `scale_k * (target / scale_crop + lam * sqrt(sigma_k^2 - sigma_crop^2) * noise)` with `noise`
    fixed (`levels`: schedulers.NoiseLevels; on Euler scale is 1 and this is `target + lam * sqrt(...) * noise`),
    while the rest of the latent is denoised from pure noise. At k = t_crop the held value is exactly `target`.
    Stage 2 (k > t_crop): released, the whole latent is denoised jointly, which harmonises light and shadow across
    the seam.
    """

    def __init__(self, target: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor, levels, crop_step: int,
                 lam: float, release: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.target = target
        self.release = release  # the clean part's step at the cut, from the latent's clean estimate (KeyedRelease)
        self.mask = mask.to(target.dtype).view(1, 1, *mask.shape[-2:])
        self.noise = noise.to(target.dtype)
        self.scales = levels.scale.to(torch.float32).cpu()
        self.sigmas = levels.sigma.to(torch.float32).cpu()
        self.crop_step = crop_step
        self.lam = lam

    def held_value(self, step_index: int) -> torch.Tensor:
        if step_index == self.crop_step:
            return self.target
        ratio = float(self.scales[step_index] / self.scales[self.crop_step])
        gap = float(self.sigmas[step_index] ** 2 - self.sigmas[self.crop_step] ** 2)
        held = self.target if ratio == 1.0 else ratio * self.target
        if self.lam == 0 or gap <= 0:
            return held
        return held + (self.lam * float(self.scales[step_index]) * gap**0.5) * self.noise

    def is_held(self, step_index: int) -> bool:
        return step_index <= self.crop_step

    def apply(self, latents: torch.Tensor, step_index: int, clean: torch.Tensor | None = None) -> torch.Tensor:
        """The latent at `step_index` (0 = before the first step), with the region held while stage 1 lasts. At the
        cut, `release` (if set) moves the held value by what it makes of `clean`, the clean estimate of the step
        just taken."""
        if not self.is_held(step_index):
            return latents
        held = self.held_value(step_index)
        if step_index == self.crop_step and self.release is not None and clean is not None:
            step = self.release(clean) * float(self.scales[step_index])
            held = held + step.to(held.device, held.dtype)
        return self.mask * held.to(latents.dtype) + (1 - self.mask) * latents


def combine(targets: list[torch.Tensor], held_masks: list[torch.Tensor]
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One held region for several objects, later objects in front: the target (each object's where it is
    visible), the union of the held cells, the shear mask (one object's cells, or all of them stacked) and each
    object's share of the region ([K, h, w])."""
    stacked = torch.stack([m.float() for m in held_masks])
    weights, remainder = front_to_back(stacked)
    if len(held_masks) == 1:
        return targets[0], held_masks[0], held_masks[0], weights
    union = 1 - remainder
    target = sum(w.to(t.device, t.dtype) * t for w, t in zip(weights, targets))
    return target / union.clamp_min(1e-6).to(target.device, target.dtype), union, stacked, weights
